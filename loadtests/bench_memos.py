"""What the judge processes' memos over math-verify save, one at a time, in fresh judge processes.

    python -m loadtests.bench_memos [--memo numbers|regexes|plain] [--rounds 5] [--steps 10]

``numbers``: latex2sympy's number tokens (``math_judge.memoise_number_parsing``); ``regexes``:
math-verify's LaTeX extraction patterns kept for both of ``verify_answer``'s configurations
(``math_judge.cache_extraction_regexes``); ``plain``: answers and golds that are plain numbers
parsed without latex2sympy's grammar (``math_judge.shortcut_plain_numbers``). CPU seconds of one
judge process (forked fresh, warmed up as rljudge's workers are, the other memos installed as in
service) judging GRPO steps (64 prompts x 16 rollouts, ``bench.grpo_items``): each step's distinct
judged inputs once (what rljudge's workers judge), and every item (what judging without
de-duplication or a verdict cache costs); ``--steps`` 1,024-item math batches of real responses
(``bench.math_items``); and ``--steps`` x 100 answers of the benchmark's one-item batches
(``bench.new_answer``): each with the memo and without it. They take turns ``--rounds`` times
(noise on this shared machine hits all alike): CPU is the median round's, and what the memo saved
the median of the rounds' ratios (each round's two runs of a workload back to back, each first in
every other round). Also checks that the memo changes no verdict. Writes
loadtests/results/bench_numbers.{json,md}, bench_regexes.{json,md} or bench_plain.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics

from . import bench
from .common import write_report

MEMOS = {
    "numbers": ("bench_numbers", "with the number memo"),
    "regexes": ("bench_regexes", "with the extraction patterns kept"),
    "plain": ("bench_plain", "with plain numbers past the grammar"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memo", choices=sorted(MEMOS), default="numbers")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    from rljudge_service import judged

    report, column = MEMOS[args.memo]
    steps = [bench.grpo_items(64, salt=r) for r in range(args.steps)]
    every = [judged.math_input(item)[1:] for batch in steps for item in batch]
    distinct = [pair for batch in steps for pair in dict.fromkeys(judged.math_input(item)[1:] for item in batch)]
    responses = [judged.math_input(item)[1:] for r in range(args.steps) for item in bench.math_items(1024, 97 * r)]
    singles = [judged.math_input(bench.new_answer(i))[1:] for i in range(100 * args.steps)]
    workloads = {
        "distinct inputs of each step": distinct,
        "every item": every,
        "1,024-item batches of responses, every item": responses,
        "one-item batches' answers (100 a step)": singles,
    }

    def judge(pairs: list[tuple[str, str]], memo: bool) -> tuple[float, list[str]]:
        if args.memo == "numbers":
            return bench.verify_in_fresh_process(pairs, memoise=memo)
        if args.memo == "plain":
            return bench.verify_in_fresh_process(pairs, plain_numbers=memo)
        return bench.verify_in_fresh_process(pairs, cache_regexes=memo)

    seconds: dict[tuple[str, bool], list[float]] = {(w, m): [] for w in workloads for m in (False, True)}
    verdicts: dict[tuple[str, bool], list[str]] = {}
    for round_number in range(args.rounds):
        for name in workloads:
            for memo in (True, False) if round_number % 2 else (False, True):  # each first every other round
                cpu, verdicts[name, memo] = judge(workloads[name], memo)
                seconds[name, memo].append(cpu)
    for name in workloads:
        assert verdicts[name, True] == verdicts[name, False], f"the memo changed verdicts ({name})"
    median = {key: statistics.median(samples) for key, samples in seconds.items()}
    rows = []
    table = []
    for name, pairs in workloads.items():
        off, on = median[name, False], median[name, True]
        # saved: from each round's pair, run back to back (the machine's speed drifts between rounds)
        ratio = statistics.median(b / a for a, b in zip(seconds[name, False], seconds[name, True], strict=True))
        rows.append(
            {
                "workload": name,
                "pairs": len(pairs),
                "cpu_ms_per_step_without": off * 1000 / args.steps,
                "cpu_ms_per_step_with": on * 1000 / args.steps,
                "saved": 1 - ratio,
                "rounds_s": {"without": seconds[name, False], "with": seconds[name, True]},
            }
        )
        table.append(
            [
                name,
                str(len(pairs)),
                f"{off * 1000 / args.steps:.1f}",
                f"{on * 1000 / args.steps:.1f}",
                f"{(1 - ratio) * 100:.0f}%",
            ]
        )
    off_ratio = median["every item", False] / median["distinct inputs of each step", False]
    on_ratio = median["every item", True] / median["distinct inputs of each step", True]
    table.append(["GRPO: every item / distinct inputs (CPU)", "", f"{off_ratio:.2f} x", f"{on_ratio:.2f} x", ""])
    write_report(
        report,
        {
            "memo": args.memo,
            "steps": args.steps,
            "rounds": args.rounds,
            "rows": rows,
            "every_over_distinct": [off_ratio, on_ratio],
        },
        table,
        ["judged", "pairs", "CPU ms a step (or batch), without it (the other memos as in service)", column, "saved"],
    )


if __name__ == "__main__":
    main()
