"""Two settings of the same code side by side: GRPO steps (or math batches) on two stacks at once.

    python -m loadtests.bench_settings --a RLJUDGE_MATH_CHUNK_ITEMS=16 --b RLJUDGE_MATH_CHUNK_ITEMS=32
        [--steps 60] [--workload grpo|math1|math64|math1024|stdio|humaneval] [--workers 2] [--scaling]
        [--report bench_settings]

Each side is a stack of ``--workers`` workers (2) started with its environment variables; the
sides take turns step by step on the same batches (noise on this shared machine hits both alike;
in ``bench.turns``' order, each side first in every other step), each with one client kept across
its steps, as a trainer keeps it (sending identical items once unless the side's environment sets
``RLJUDGE_DEDUP_ENABLED=false`` or ``RLJUDGE_CLIENT_DEDUP=false``, which only the client reads).
GRPO steps are new prompts each, with an empty verdict cache; a code step is 50 new submissions
(stdio: 10 tests each; HumanEval: assert-style).
Reports each side's mean, median and slowest step and the ratio of the means. Writes
loadtests/results/bench_settings.{json,md} (``--report``: another name, to keep several).

With ``--scaling`` each side also runs a 1-worker stack, next to its own in every turn: the report
adds each side's ``--workers``-vs-1 ratio (the mean step on 1 worker over the mean on
``--workers``), the ratio that ``make bench``'s worker-scaling target reads, for two settings at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import statistics
from typing import Any

from . import bench
from .bench_code import workload as stdio_workload
from .common import running_stack, stack_client, write_report

#: Submissions a step of the code workloads: stdio (10 tests each, 75/20/5 correct/wrong/crash, as
#: ``make bench``'s (c)) and HumanEval (canonical solutions and labelled completions, as its (d)).
CODE_STEP = 50


@functools.cache
def humaneval_items() -> list[dict[str, Any]]:
    """``make bench``'s HumanEval items (d), read once."""
    return bench.humaneval_subs(quick=False)[1]


def batch(workload: str, step: int) -> list[Any]:
    """Step ``step`` of ``workload``: a GRPO step of new prompts, a math batch of N items
    (``mathN``), or a code step of ``CODE_STEP`` new submissions."""
    if workload == "grpo":
        return bench.grpo_items(64, salt=step)
    if workload == "stdio":
        subs = stdio_workload(CODE_STEP * (step + 1), 10, with_loops=False)[CODE_STEP * step :]
        return bench.stdio_items(subs, 1.0)
    if workload == "humaneval":
        items = humaneval_items()
        start = (step * CODE_STEP) % len(items)
        return (items + items)[start : start + CODE_STEP]
    return bench.math_items(int(workload.removeprefix("math")), offset=step * 97)


def parse_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"expected NAME=VALUE, got {pair!r}")
        env[name] = value
    return env


def step_times(seconds: list[float]) -> dict[str, Any]:
    """A stack's steps (seconds each) in the report's terms: mean, median and slowest ms, and each step's."""
    return {
        "mean_ms": statistics.fmean(seconds) * 1000,
        "median_ms": statistics.median(seconds) * 1000,
        "slowest_ms": max(seconds) * 1000,
        "steps_ms": [round(x * 1000, 2) for x in seconds],
    }


def scaling(one_worker_s: list[float], workers_s: list[float]) -> dict[str, Any]:
    """A side's scaling from its steps' seconds on 1 worker and on ``--workers`` (the same steps,
    taken in turns): the 1-worker steps' times, the ratio of the mean steps, and the median of each
    step's own ratio."""
    return {
        **step_times(one_worker_s),
        "scaling": statistics.fmean(one_worker_s) / statistics.fmean(workers_s),
        "scaling_step_median": statistics.median(o / m for o, m in zip(one_worker_s, workers_s, strict=True)),
    }


async def run(stacks: list[Any], workload: str, steps: int, group: int = 1) -> list[list[float]]:
    """Each stack's seconds a step. ``stacks`` come in groups of ``group`` (a side's stacks, one per
    worker count): the groups take turns in ``bench.turns``' order, and so do the stacks within
    each group, so that a side's stacks always run next to each other."""
    seconds: list[list[float]] = [[] for _ in stacks]
    clients = [stack_client(stack, batch_size=10_000, max_concurrency=1) for stack in stacks]
    try:
        for client in clients:  # warm up: connections, pools (and jails, for code)
            await client.judge(bench.math_items(64, offset=400), deadline_s=3600)
            if workload in ("stdio", "humaneval"):
                await client.judge(batch(workload, steps)[:4], deadline_s=3600)
        for step in range(steps):
            items = batch(workload, step)
            order = [g * group + k for g in bench.turns(step, len(stacks) // group) for k in bench.turns(step, group)]
            for side in order:
                client, stack = clients[side], stacks[side]
                bench.flush_cache(stack.redis_url or "")
                with bench.Measure() as m:
                    results = await client.judge(items, deadline_s=3600)
                assert all(r.status == "scored" for r in results), {r.status for r in results}
                seconds[side].append(m.seconds)
    finally:
        for client in clients:
            await client.aclose()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", nargs="*", default=[], metavar="NAME=VALUE", help="side A's environment")
    parser.add_argument("--b", nargs="*", default=[], metavar="NAME=VALUE", help="side B's environment")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument(
        "--workload", default="grpo", choices=["grpo", "math1", "math64", "math1024", "stdio", "humaneval"]
    )
    parser.add_argument("--workers", type=int, default=bench.WORKERS, help="workers of each side's stack")
    parser.add_argument(
        "--scaling", action="store_true", help="each side on a 1-worker stack as well: its --workers-vs-1 ratio"
    )
    parser.add_argument("--report", default="bench_settings", help="report name in loadtests/results/")
    args = parser.parse_args()
    sides = {"A": parse_env(args.a), "B": parse_env(args.b)}
    counts = [args.workers, 1] if args.scaling else [args.workers]
    with contextlib.ExitStack() as stack:
        stacks = [stack.enter_context(running_stack(workers=n, **env)) for env in sides.values() for n in counts]
        seconds = asyncio.run(run(stacks, args.workload, args.steps, group=len(counts)))
    own, one_worker = seconds[:: len(counts)], seconds[1 :: len(counts)]
    summary = {name: {"env": env, **step_times(s)} for (name, env), s in zip(sides.items(), own, strict=True)}
    if args.scaling:
        for name, one, s in zip(sides, one_worker, own, strict=True):
            summary[name]["one_worker"] = scaling(one, s)
    ratio = summary["B"]["mean_ms"] / summary["A"]["mean_ms"]
    table = [
        [
            name,
            " ".join(f"{k}={v}" for k, v in row["env"].items()) or "(defaults)",
            f"{row['mean_ms']:.1f}",
            f"{row['median_ms']:.1f}",
            f"{row['slowest_ms']:.1f}",
        ]
        for name, row in summary.items()
    ]
    table.append(["B / A", "mean", f"{ratio:.3f}", "", ""])
    header = [
        "side",
        "environment",
        f"mean ms a {args.workload} step, {args.workers} workers",
        "median ms",
        "slowest ms",
    ]
    if args.scaling:
        for row, name in zip(table, sides, strict=False):
            one = summary[name]["one_worker"]
            row += [f"{one['mean_ms']:.1f}", f"{one['scaling']:.3f}", f"{one['scaling_step_median']:.3f}"]
        table[-1] += ["", "", ""]
        header += ["mean ms on 1 worker", f"{args.workers} vs 1 worker", "step by step, median"]
    write_report(
        args.report,
        {
            "workload": args.workload,
            "steps": args.steps,
            "workers": args.workers,
            "scaling": args.scaling,
            "sides": summary,
            "b_over_a": ratio,
        },
        table,
        header,
    )


if __name__ == "__main__":
    main()
