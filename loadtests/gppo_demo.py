"""GPPO vs DAPO clip-higher vs PPO clip on a tiny model, rewards from a running rljudge service.

A character-level 2-layer Llama learns "a+b=" -> ``\\boxed{a+b}`` (0 <= a, b < 10). It is warmed up
with a few supervised steps once; then each loss trains from that same start with the same seeds
(same prompts, and the same first-step samples), judged by the math judge through the client.

    python loadtests/gppo_demo.py --url http://127.0.0.1:8000     # an rljudge service you run
    python loadtests/gppo_demo.py                                 # starts `rljudge up` for the run

Writes loadtests/results/gppo_demo.{json,md,png}. A benchmark, not a test: a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rljudge_trainer.config import from_dict
from rljudge_trainer.loop import sft_warmup, train
from rljudge_trainer.models import load_policy
from rljudge_trainer.tasks import load_task

LOSSES = ["gppo", "dapo_clip_higher", "ppo_clip"]
WINDOW = 10  # steps averaged for "before" and "after"


def base_config(url: str, steps: int, seed: int) -> dict[str, Any]:
    return {
        "model": {"tiny": {"hidden_size": 128, "num_layers": 2, "num_heads": 4, "intermediate_size": 512}},
        "task": {"max_operand": 10, "num_problems": 80, "eval_problems": 20},
        "warmup": {"steps": 150, "batch_size": 32, "lr": 3e-3},
        "rollout": {"prompts_per_step": 16, "group_size": 8, "max_new_tokens": 12},
        "algorithm": {"clip_ratio_low": 0.2, "clip_ratio_high": 0.28, "clip_ratio_c": 10.0, "mini_batches": 4},
        "optim": {"lr": 2e-4},
        "judge": {"url": url},
        "run": {"steps": steps, "seed": seed, "device": "cpu", "save_every": 0, "eval_every": 20, "resume": False},
    }


def start_service(workers: int) -> tuple[subprocess.Popen[str], str]:
    """`rljudge up` on a free port; returns the process and the URL it prints."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = shutil.which("rljudge") or str(Path(sys.executable).with_name("rljudge"))
    proc = subprocess.Popen(
        [exe, "up", "--port", str(port), "--workers", str(workers)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"`rljudge up` exited with {proc.wait()}")
        match = re.search(r"listening on (http://\S+)", line)
        if match:
            return proc, match.group(1)
    proc.terminate()
    raise RuntimeError("`rljudge up` did not report its URL within 120 s")


def stop_service(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def warm_start(cfg: dict[str, Any], where: Path) -> dict[str, Any]:
    """Build the tiny model, run the supervised warm-up once, save it; returns warm-up stats."""
    conf = from_dict(cfg)
    model, tokenizer = load_policy(None, conf.model.tiny)
    train_set, _ = load_task(
        "arithmetic",
        num_problems=conf.task.num_problems,
        eval_problems=conf.task.eval_problems,
        max_operand=conf.task.max_operand,
    )
    losses = sft_warmup(model, tokenizer, train_set, conf, progress=True)
    model.save_pretrained(where)
    tokenizer.save_pretrained(where)
    return {"steps": len(losses), "nll_first": losses[0], "nll_last": losses[-1]}


def run_loss(cfg: dict[str, Any], start: Path, loss: str, out: Path) -> list[dict[str, Any]]:
    cfg = json.loads(json.dumps(cfg))
    cfg["model"] = {"path": str(start)}
    cfg["warmup"] = {"steps": 0}
    cfg["algorithm"]["policy_loss"] = loss
    cfg["run"]["output_dir"] = str(out)
    return train(from_dict(cfg))


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    steps = [r for r in records if r["step"] > 0]
    rewards = [r["reward_mean"] for r in steps if r.get("reward_mean") is not None]
    evals = [r for r in records if "eval/reward" in r]
    return {
        "reward_first": sum(rewards[:WINDOW]) / len(rewards[:WINDOW]),
        "reward_last": sum(rewards[-WINDOW:]) / len(rewards[-WINDOW:]),
        "eval_before": evals[0]["eval/reward"],
        "eval_after": evals[-1]["eval/reward"],
        "judge_failed": sum(r["judge_failed"] for r in steps),
        "responses": sum(r["responses"] for r in steps),
        "clipfrac_low": _avg(steps, "actor/clipfrac_low"),
        "clipfrac_high": _avg(steps, "actor/clipfrac_high"),
        "seconds": sum(r["time/generate_s"] + r["time/judge_s"] + r["time/update_s"] for r in steps),
        "judge_seconds": sum(r["time/judge_s"] for r in steps),
    }


def _avg(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if key in r]
    return sum(values) / len(values) if values else None


def write_markdown(path: Path, result: dict[str, Any]) -> None:
    lines = [
        "# GPPO demo: tiny char-level Llama on `a+b=` (judged by rljudge)",
        "",
        f"{result['steps']} RL steps x {result['responses_per_step']} responses, same start and seeds for each "
        f"loss; reward = mean over scored responses; first/last = mean of the first/last {WINDOW} steps; "
        "eval = greedy accuracy on 20 held-out problems.",
        "",
        "| loss | reward first | reward last | eval before | eval after | clipfrac low | clipfrac high "
        "| judge failures | wall s (judge s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for loss, s in result["summary"].items():
        lines.append(
            f"| {loss} | {s['reward_first']:.3f} | {s['reward_last']:.3f} | {s['eval_before']:.2f} "
            f"| {s['eval_after']:.2f} | {s['clipfrac_low']:.4f} | {s['clipfrac_high']:.4f} "
            f"| {s['judge_failed']} / {s['responses']} | {s['seconds']:.0f} ({s['judge_seconds']:.0f}) |"
        )
    path.write_text("\n".join(lines) + "\n")


def write_plot(path: Path, curves: dict[str, list[float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for loss, values in curves.items():
        smooth = [
            sum(values[max(0, i - WINDOW + 1) : i + 1]) / len(values[max(0, i - WINDOW + 1) : i + 1])
            for i in range(len(values))
        ]
        (line,) = ax.plot(range(1, len(values) + 1), smooth, label=f"{loss} ({WINDOW}-step mean)")
        ax.plot(range(1, len(values) + 1), values, color=line.get_color(), alpha=0.2, linewidth=0.8)
    ax.set_xlabel("RL step")
    ax.set_ylabel("mean reward (rljudge, binary)")
    ax.set_title("Tiny Llama on a+b=: GPPO vs clip-higher vs PPO clip")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running rljudge service; default: start `rljudge up` for the run")
    parser.add_argument("--workers", type=int, default=2, help="judge workers when starting the service")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--losses", default=",".join(LOSSES))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()

    service = None
    url = args.url
    if url is None:
        service, url = start_service(args.workers)
        print(f"started rljudge at {url}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        cfg = base_config(url, args.steps, args.seed)
        with tempfile.TemporaryDirectory(prefix="gppo_demo_") as tmp:
            start = Path(tmp) / "start"
            warm = warm_start(cfg, start)
            print(f"warm-up: NLL {warm['nll_first']:.3f} -> {warm['nll_last']:.3f}", flush=True)
            runs = {loss: run_loss(cfg, start, loss, Path(tmp) / loss) for loss in args.losses.split(",")}
    finally:
        if service is not None:
            stop_service(service)

    curves = {loss: [r["reward_mean"] for r in recs if r["step"] > 0] for loss, recs in runs.items()}
    result = {
        "task": "a+b= with 0 <= a, b < 10, answer \\boxed{a+b}; binary reward from rljudge's math judge",
        "steps": args.steps,
        "seed": args.seed,
        "responses_per_step": cfg["rollout"]["prompts_per_step"] * cfg["rollout"]["group_size"],
        "config": cfg | {"judge": {"url": "(the service)"}},
        "warmup": warm,
        "summary": {loss: summarise(recs) for loss, recs in runs.items()},
        "curves": curves,
        "eval": {
            loss: [(r["step"], r["eval/reward"]) for r in recs if "eval/reward" in r] for loss, recs in runs.items()
        },
    }
    (out / "gppo_demo.json").write_text(json.dumps(result, indent=1))
    write_markdown(out / "gppo_demo.md", result)
    write_plot(out / "gppo_demo.png", curves)
    print((out / "gppo_demo.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
