"""Soak: mixed load for a long time, sampling what would grow if something leaked.

    python -m loadtests.soak [--minutes 20] [--sample-s 30]

Runs ``rljudge up`` (2 workers) and drives it without pause with math batches (real responses,
with GRPO-style repeats, so the cache works too) and code batches (correct, wrong, crashing,
looping and memory-hungry programs). Every ``--sample-s`` it records, for the gateway and the
worker process tree (supervisor, RQ workers, Pebble processes, jails): resident memory, open file
descriptors and process count; and Redis's ``used_memory`` and key count. Results TTLs are set
short (120 s) so that Redis reaching a plateau is visible within the run.
Writes loadtests/results/soak.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from typing import Any

import psutil
from redis import Redis

from rljudge import CodeItem, JudgeClient, MathItem, StdioTests

from .common import math_pairs, running_stack, write_report

PROGRAMS = [
    "a, b = map(int, input().split())\nprint(a + b)\n",
    "a, b = map(int, input().split())\nprint(a - b)\n",
    "raise SystemExit(input()[5])\n",
    "while True:\n    pass\n",
    "x = bytearray(1 << 31)\n",
]
TESTS = StdioTests(cases=[{"input": f"{i} {i}\n", "output": f"{2 * i}\n"} for i in range(5)])


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def sample(stack: Any, redis: Redis, started: float) -> dict[str, float]:
    row: dict[str, float] = {"t_s": round(time.monotonic() - started, 1)}
    for name in ("gateway", "workers"):
        procs = tree(stack.children[name].pid)
        rss = fds = 0
        for proc in procs:
            try:
                rss += proc.memory_info().rss
                fds += proc.num_fds()
            except psutil.NoSuchProcess:
                continue
        row[f"{name}_rss_mb"] = round(rss / 2**20, 1)
        row[f"{name}_fds"] = fds
        row[f"{name}_procs"] = len(procs)
    info = redis.info("memory")
    row["redis_used_mb"] = round(info["used_memory"] / 2**20, 2)
    row["redis_keys"] = redis.dbsize()
    return row


async def drive(url: str, until: float, counts: dict[str, int]) -> None:
    pairs = math_pairs()
    rng = random.Random(0)
    async with JudgeClient(url, batch_size=256) as client:
        while time.monotonic() < until:
            math = [MathItem(response=resp, gold=gold) for resp, gold in rng.sample(pairs, 32) for _ in range(2)]
            code = [
                CodeItem(code=rng.choice(PROGRAMS) + f"# {uuid.uuid4().hex}\n", tests=TESTS, limits={"time_s": 0.5})
                for _ in range(6)
            ]
            for results in await asyncio.gather(client.judge(math), client.judge(code)):
                for result in results:
                    counts[result.status] = counts.get(result.status, 0) + 1


async def main_async(minutes: float, sample_s: float) -> None:
    env = {"RLJUDGE_RESULTS_TTL_S": "120"}
    with running_stack(workers=2, **env) as stack:
        redis = Redis.from_url(stack.redis_url or "")
        started = time.monotonic()
        until = started + minutes * 60
        counts: dict[str, int] = {}
        samples = [sample(stack, redis, started)]
        load = asyncio.create_task(drive(stack.url, until, counts))
        while not load.done():
            await asyncio.wait({load}, timeout=sample_s)
            samples.append(sample(stack, redis, started))
            print(samples[-1], counts, flush=True)
        await load
    warm = samples[min(2, len(samples) - 1)]  # after warm-up: pools started, caches filled
    end = samples[-1]
    keys = [k for k in end if k != "t_s"]
    rows = [[k, str(samples[0][k]), str(warm[k]), str(end[k])] for k in keys]
    rows.append(["items judged", "", "", str(sum(counts.values()))])
    write_report(
        "soak",
        {"minutes": minutes, "sample_s": sample_s, "counts": counts, "samples": samples},
        rows,
        ["measure", "start", f"after warm-up ({warm['t_s']:.0f} s)", f"end ({end['t_s']:.0f} s)"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--sample-s", type=float, default=30)
    args = parser.parse_args()
    asyncio.run(main_async(args.minutes, args.sample_s))


if __name__ == "__main__":
    main()
