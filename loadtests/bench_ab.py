"""Before/after: the same workloads against the server code of a git revision and of the working tree.

    python -m loadtests.bench_ab [--ref HEAD] [--rounds 2]
    python -m loadtests.bench_ab --side-by-side [--ref HEAD] [--requests 400] [--steps 40]
        [--env NAME=VALUE ...] [--report bench_ab_side_by_side]

The revision's ``service/``, ``workers/`` and ``sandbox/`` are extracted to a temporary folder and
put first on the stack's ``PYTHONPATH`` (as ``rljudge_service`` etc.), so both run in this
invocation on the same machine, alternating ``rounds`` times (noise hits both alike). Reports the
median of the rounds. Writes loadtests/results/bench_ab.{json,md}.

``--side-by-side`` runs both stacks at once instead and alternates request by request: one-item
math batches (each a new answer) and GRPO steps (new prompts each, an empty verdict cache), each
side first in every other turn. Finer than whole rounds, whose minutes apart the machine's speed
drifts by 10-20%. ``--env`` starts both stacks with these settings too (e.g. the GRPO target's
baseline: ``RLJUDGE_CACHE_ENABLED=false RLJUDGE_DEDUP_ENABLED=false``); ``--requests 0`` runs the
GRPO steps only. Writes loadtests/results/bench_ab_side_by_side.{json,md} (``--report``: another
name, to keep several).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from rljudge import JudgeClient

from . import bench
from .bench_settings import parse_env
from .common import RESULTS, ROOT, machine, running_stack, stack_client, write_report

PACKAGES = {"rljudge_service": "service", "rljudge_workers": "workers", "rljudge_sandbox": "sandbox"}


def extract(ref: str, into: Path) -> Path:
    tree = into / "tree"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, *PACKAGES.values()], check=True, capture_output=True
    )
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    paths = into / "path"
    paths.mkdir()
    for package, folder in PACKAGES.items():
        (paths / package).symlink_to(tree / folder)
    return paths


async def grpo_steps(url: str, redis_url: str, steps: int) -> list[float]:
    """Seconds of each of ``steps`` GRPO steps (new prompts each, an empty verdict cache), one
    client kept across them as a trainer keeps it: pauses that come every few steps show here."""
    seconds = []
    async with JudgeClient(url, batch_size=10_000, max_concurrency=1) as client:
        await client.judge(bench.math_items(64, offset=400), deadline_s=3600)
        for r in range(steps):
            batch = bench.grpo_items(64, salt=r)
            bench.flush_cache(redis_url)
            with bench.Measure() as m:
                await client.judge(batch, deadline_s=3600)
            seconds.append(m.seconds)
    return seconds


def measure(env: dict[str, str]) -> dict[str, float]:
    out: dict[str, float] = {}
    with running_stack(workers=bench.WORKERS, RLJUDGE_CACHE_ENABLED="false", **env) as stack:
        asyncio.run(bench.service_batches(stack.url, [bench.math_items(64, offset=400)], bench.Measure()))
        m = asyncio.run(bench.one_item_latency(stack.url, 200))
        lat = bench.percentiles(m.samples)
        out["1-item p50 ms"], out["1-item p99 ms"] = lat["p50_ms"], lat["p99_ms"]
        with bench.Measure() as m:
            asyncio.run(bench.service_batches(stack.url, [bench.math_items(1024, offset=r * 97) for r in range(3)], m))
        out["math 1024 items/s (2 workers)"] = 3 * 1024 / m.seconds
        out["math CPU ms/item"] = m.cpu_s / (3 * 1024) * 1000
        subs, items, _ = bench.humaneval_subs(True)
        with bench.Measure() as m:
            asyncio.run(bench.service_code(stack.url, items, m))
        out["HumanEval subs/s"] = len(items) / m.seconds
        subs = bench.stdio_workload(60, 10, False)
        items = [
            {
                "kind": "code",
                "code": program,
                "tests": {"type": "stdio", "cases": [{"input": i, "output": o} for i, o in cases]},
                "limits": {"time_s": 1.0},
            }
            for program, cases in subs
        ]
        with bench.Measure() as m:
            asyncio.run(bench.service_code(stack.url, items, m))
        out["stdio 10-test subs/s"] = len(items) / m.seconds
    with running_stack(workers=1, RLJUDGE_CACHE_ENABLED="false", **env) as stack:
        asyncio.run(bench.service_batches(stack.url, [bench.math_items(64, offset=400)], bench.Measure()))
        with bench.Measure() as m:
            asyncio.run(bench.service_batches(stack.url, [bench.math_items(1024, offset=r * 97) for r in range(3)], m))
        out["math 1024 items/s (1 worker)"] = 3 * 1024 / m.seconds
    out["2 vs 1 worker"] = out["math 1024 items/s (2 workers)"] / out["math 1024 items/s (1 worker)"]
    with running_stack(workers=bench.WORKERS, **env) as stack:
        asyncio.run(bench.service_batches(stack.url, [bench.math_items(64, offset=400)], bench.Measure()))
        bench.flush_cache(stack.redis_url or "")
        with bench.Measure() as m:
            asyncio.run(bench.service_batches(stack.url, [bench.grpo_items(64)], m))
        out["GRPO 64x16 cache on items/s"] = 1024 / m.seconds
        with bench.Measure() as m:  # the same prompts, a later epoch: the verdict cache as the step left it
            asyncio.run(bench.service_batches(stack.url, [bench.grpo_items(64, epoch=1)], m))
        out["GRPO 64x16 revisited items/s"] = 1024 / m.seconds
        steps = asyncio.run(grpo_steps(stack.url, stack.redis_url or "", 12))
        out["GRPO 12 steps: mean ms"] = statistics.fmean(steps) * 1000
        out["GRPO 12 steps: slowest ms"] = max(steps) * 1000
    for key, value in out.items():
        print(f"    {key:34s} {value:9.2f}", flush=True)
    return out


async def side_by_side(stacks: list[Any], requests: int, steps: int) -> dict[str, list[list[float]]]:
    """Milliseconds of each one-item batch and each GRPO step on each stack, taking turns."""
    out: dict[str, list[list[float]]] = {"1-item": [[], []], "GRPO step": [[], []]}
    single = [stack_client(stack) for stack in stacks]
    grpo = [stack_client(stack, batch_size=10_000, max_concurrency=1) for stack in stacks]
    try:
        for client in single + grpo:
            await client.judge(bench.math_items(64, offset=400), deadline_s=3600)
        for i in range(requests + bench.WARM_UP_REQUESTS if requests else 0):
            for side in bench.turns(i, 2):
                started = time.perf_counter()
                result = (await single[side].judge([bench.new_answer(i)]))[0]
                if i >= bench.WARM_UP_REQUESTS:
                    out["1-item"][side].append((time.perf_counter() - started) * 1000)
                assert result.status == "scored", result
        for step in range(steps):
            batch = bench.grpo_items(64, salt=step)
            for side in bench.turns(step, 2):
                bench.flush_cache(stacks[side].redis_url or "")
                with bench.Measure() as m:
                    await grpo[side].judge(batch, deadline_s=3600)
                out["GRPO step"][side].append(m.seconds * 1000)
    finally:
        for client in single + grpo:
            await client.aclose()
    return out


def main_side_by_side(ref: str, requests: int, steps: int, env: dict[str, str], report: str) -> None:
    with tempfile.TemporaryDirectory(prefix="rljudge-ab-") as tmp, contextlib.ExitStack() as running:
        before_path = extract(ref, Path(tmp))
        stacks = [
            running.enter_context(running_stack(workers=bench.WORKERS, **env, PYTHONPATH=str(before_path))),
            running.enter_context(running_stack(workers=bench.WORKERS, **env)),
        ]
        samples = asyncio.run(side_by_side(stacks, requests, steps))
    table, rows = [], []
    for workload, (before, after) in samples.items():
        if not before:  # none asked for (--requests 0)
            continue
        for stat, pick in (("p50", statistics.median), ("mean", statistics.fmean)):
            b, a = pick(before), pick(after)
            rows.append({"measure": f"{workload} {stat} ms", "before": b, "after": a, "after_over_before": a / b})
            table.append([f"{workload} {stat} ms", f"{b:.2f}", f"{a:.2f}", f"{a / b:.3f}"])
    write_report(
        report,
        {"ref": ref, "env": env, "requests": requests, "steps": steps, "rows": rows, "samples_ms": samples},
        table,
        ["measure", f"before ({ref})", "after (working tree)", "after / before"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", default="HEAD")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--side-by-side", action="store_true", help="both stacks at once, alternating requests")
    parser.add_argument("--requests", type=int, default=400, help="one-item batches a side (--side-by-side)")
    parser.add_argument("--steps", type=int, default=40, help="GRPO steps a side (--side-by-side)")
    parser.add_argument(
        "--env", nargs="*", default=[], metavar="NAME=VALUE", help="both stacks' settings (--side-by-side)"
    )
    parser.add_argument("--report", default="bench_ab_side_by_side", help="report name in loadtests/results/")
    args = parser.parse_args()
    if args.side_by_side:
        main_side_by_side(args.ref, args.requests, args.steps, parse_env(args.env), args.report)
        return
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="rljudge-ab-") as tmp:
        before_path = extract(args.ref, Path(tmp))
        for r in range(args.rounds):
            for name, env in (("before", {"PYTHONPATH": str(before_path)}), ("after", {})):
                print(f"== round {r + 1}: {name}", flush=True)
                runs[name].append(measure(env))
    median = {name: {k: statistics.median(run[k] for run in rs) for k in rs[0]} for name, rs in runs.items()}
    lines = [
        f"# before ({args.ref}) / after (working tree)",
        "",
        f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, {machine()['cpus']} CPUs, median of {args.rounds}"
        " alternating rounds",
        "",
        "| measure | before | after | after / before |",
        "|---|---|---|---|",
    ]
    for key in median["before"]:
        b, a = median["before"][key], median["after"][key]
        lines.append(f"| {key} | {b:.2f} | {a:.2f} | {a / b:.2f} |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_ab.json").write_text(json.dumps({"ref": args.ref, "runs": runs, "median": median}, indent=2))
    (RESULTS / "bench_ab.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
