"""Code judging throughput: rljudge against one-Firejail-per-test and a bare subprocess per test.

    python -m loadtests.bench_code [--submissions 200] [--tests 10] [--time-s 1.0]

Workload (deterministic): stdin/stdout submissions of ``--tests`` tests each, mixed as in RL
rollouts: 70% correct, 20% wrong on half their tests, 5% infinite loops, 5% crashes; and the same
without loops (75/20/5). Every submission is unique (no cache hits).

Compared in the same run, on the same 2 cores, with the same per-test limit:
- rljudge: the whole service (client -> gateway -> Redis -> 2 workers), warm jails per batch;
- one Firejail per test, with the flags of the coder1 reward code Klear-Reasoner builds on
  (``--private --seccomp=socket --profile=pip --rlimit-*``, a subprocess timeout, no ``--timeout``);
- a bare ``subprocess.run`` per test (no isolation at all: the floor), 2 at a time.
Limits are CPU seconds in rljudge and wall seconds in the baselines; infinite loops spend the full
limit on every test either way, which bounds the mix with loops physically.
Writes loadtests/results/bench_code.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rljudge import CodeItem, JudgeClient, StdioTests

from .common import running_stack, write_report

CORRECT = "import sys\nnums = list(map(int, sys.stdin.read().split()))\nprint(sum(nums))\n"
WRONG = "import sys\nnums = list(map(int, sys.stdin.read().split()))\nprint(sum(nums) + (nums[0] % 2))\n"
LOOP = "while True:\n    pass\n"
CRASH = "import sys\nnums = list(map(int, sys.stdin.read().split()))\nprint(nums[len(nums) * 2])\n"


def workload(submissions: int, tests: int, with_loops: bool) -> list[tuple[str, list[tuple[str, str]]]]:
    """``(program, [(stdin, expected stdout), ...])`` pairs; shares of kinds per the docstring."""
    if with_loops:
        kinds = ["correct"] * 70 + ["wrong"] * 20 + ["loop"] * 5 + ["crash"] * 5
    else:
        kinds = ["correct"] * 75 + ["wrong"] * 20 + ["crash"] * 5
    programs = {"correct": CORRECT, "wrong": WRONG, "loop": LOOP, "crash": CRASH}
    out = []
    for s in range(submissions):
        kind = kinds[(s * 37) % len(kinds)]
        cases = []
        for t in range(tests):
            nums = [s + t, t + 1, 3 * t + 2]
            cases.append((" ".join(map(str, nums)) + "\n", f"{sum(nums)}\n"))
        out.append((programs[kind] + f"# submission {s}\n", cases))
    return out


async def run_rljudge(url: str, subs: list[tuple[str, list[tuple[str, str]]]], time_s: float) -> dict[str, Any]:
    items = [
        CodeItem(
            code=program,
            tests=StdioTests(cases=[{"input": i, "output": o} for i, o in cases]),
            limits={"time_s": time_s, "wall_s": time_s * 2 + 1},
        )
        for program, cases in subs
    ]
    async with JudgeClient(url, batch_size=len(items)) as client:
        started = time.perf_counter()
        results = await client.judge(items, reward_scheme="fraction", deadline_s=3600)
        elapsed = time.perf_counter() - started
    assert all(r.status == "scored" for r in results), {r.status for r in results}
    return {"seconds": elapsed, "passed_tests": sum(r.passed or 0 for r in results)}


def firejail_cmd(program: str) -> list[str]:
    profile = "--profile=pip" if Path("/etc/firejail/pip.profile").exists() else "--noprofile"
    return [
        "firejail",
        "--private",
        "--quiet",
        "--seccomp=socket",
        profile,
        "--rlimit-nproc=32",
        "--rlimit-nofile=32",
        "--rlimit-fsize=2097152",
        "--rlimit-as=4294967296",
        "/usr/bin/python3",
        "-c",
        program,
    ]


def run_per_test(
    subs: list[tuple[str, list[tuple[str, str]]]], time_s: float, jailed: bool, workers: int
) -> dict[str, Any]:
    def one(job: tuple[str, str, str]) -> bool:
        program, stdin, expected = job
        argv = firejail_cmd(program) if jailed else ["/usr/bin/python3", "-I", "-S", "-c", program]
        try:
            done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=time_s)
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0 and done.stdout.rstrip() == expected.rstrip()

    jobs = [(program, i, o) for program, cases in subs for i, o in cases]
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        passed = sum(pool.map(one, jobs))
    return {"seconds": time.perf_counter() - started, "passed_tests": passed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--submissions", type=int, default=200)
    parser.add_argument("--tests", type=int, default=10)
    parser.add_argument("--time-s", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    runs: dict[str, dict[str, Any]] = {}
    rows = []
    for mix, loops in (("with 5% infinite loops", True), ("no time-outs", False)):
        subs = workload(args.submissions, args.tests, loops)
        with running_stack(workers=args.workers, RLJUDGE_CACHE_ENABLED="false") as stack:
            ours = asyncio.run(run_rljudge(stack.url, subs, args.time_s))
        jail = run_per_test(subs, args.time_s, jailed=True, workers=args.workers)
        bare = run_per_test(subs, args.time_s, jailed=False, workers=args.workers)
        for name, run in (("rljudge", ours), ("firejail per test", jail), ("bare subprocess per test", bare)):
            run["submissions_per_s"] = args.submissions / run["seconds"]
            run["tests_per_s"] = args.submissions * args.tests / run["seconds"]
            runs[f"{mix} / {name}"] = run
        for name, run in (("rljudge", ours), ("firejail per test", jail), ("bare subprocess per test", bare)):
            rows.append(
                [
                    mix,
                    name,
                    f"{run['submissions_per_s']:.2f}",
                    f"{run['tests_per_s']:.1f}",
                    str(run["passed_tests"]),
                    f"{ours['submissions_per_s'] / jail['submissions_per_s']:.2f}" if name == "rljudge" else "",
                    f"{ours['submissions_per_s'] / bare['submissions_per_s']:.2f}" if name == "rljudge" else "",
                ]
            )
    write_report(
        "bench_code",
        {
            "submissions": args.submissions,
            "tests": args.tests,
            "time_s": args.time_s,
            "workers": args.workers,
            "runs": runs,
        },
        rows,
        ["mix", "judge", "submissions/s", "tests/s", "tests passed", "x firejail/test", "x bare"],
    )


if __name__ == "__main__":
    main()
