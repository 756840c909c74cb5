"""What memoising latex2sympy's number tokens saves (``math_judge.memoise_number_parsing``).

    python -m loadtests.bench_numbers [--rounds 5] [--steps 10]

CPU seconds of one judge process (forked fresh, warmed up as rljudge's workers are) judging GRPO
steps (64 prompts x 16 rollouts, ``bench.grpo_items``): each step's distinct judged inputs once (what
rljudge's workers judge), and every item (what judging without de-duplication or a verdict cache
costs), with the memo and without it. The four take turns ``--rounds`` times (noise on this shared
machine hits all alike); the median round is reported. Also checks that the memo changes no
verdict on those steps. Writes loadtests/results/bench_numbers.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics

from . import bench
from .common import write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    from rljudge_service import judged

    steps = [bench.grpo_items(64, salt=r) for r in range(args.steps)]
    every = [judged.math_input(item)[1:] for batch in steps for item in batch]
    distinct = [pair for batch in steps for pair in dict.fromkeys(judged.math_input(item)[1:] for item in batch)]
    workloads = {"distinct inputs of each step": distinct, "every item": every}
    seconds: dict[tuple[str, bool], list[float]] = {(w, m): [] for w in workloads for m in (False, True)}
    verdicts: dict[tuple[str, bool], list[str]] = {}
    for _ in range(args.rounds):
        for (name, memoise), samples in seconds.items():
            cpu, verdicts[name, memoise] = bench.verify_in_fresh_process(workloads[name], memoise=memoise)
            samples.append(cpu)
    for name in workloads:
        assert verdicts[name, True] == verdicts[name, False], f"the memo changed verdicts ({name})"
    median = {key: statistics.median(samples) for key, samples in seconds.items()}
    rows = []
    table = []
    for name, pairs in workloads.items():
        off, on = median[name, False], median[name, True]
        rows.append(
            {
                "workload": name,
                "pairs": len(pairs),
                "cpu_ms_per_step_without": off * 1000 / args.steps,
                "cpu_ms_per_step_with": on * 1000 / args.steps,
                "saved": 1 - on / off,
                "rounds_s": {"without": seconds[name, False], "with": seconds[name, True]},
            }
        )
        table.append(
            [
                name,
                str(len(pairs)),
                f"{off * 1000 / args.steps:.1f}",
                f"{on * 1000 / args.steps:.1f}",
                f"{(1 - on / off) * 100:.0f}%",
            ]
        )
    off_ratio = median["every item", False] / median["distinct inputs of each step", False]
    on_ratio = median["every item", True] / median["distinct inputs of each step", True]
    table.append(["every item / distinct inputs (CPU)", "", f"{off_ratio:.2f} x", f"{on_ratio:.2f} x", ""])
    write_report(
        "bench_numbers",
        {"steps": args.steps, "rounds": args.rounds, "rows": rows, "every_over_distinct": [off_ratio, on_ratio]},
        table,
        ["judged", "pairs", "CPU ms a step, math-verify as it comes", "with the number memo", "saved"],
    )


if __name__ == "__main__":
    main()
