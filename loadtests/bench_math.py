"""Math latency and throughput through the whole service (client -> gateway -> Redis -> workers).

    python -m loadtests.bench_math [--requests 300] [--items 1000]

Measures, in one run on this machine:
- latency of a one-item batch on an idle service (sequential requests; p50/p95/p99);
- items/s of a 1,000-item batch of real Qwen2.5-Math rollouts with 1 and with 2 workers, verdict
  cache off (every item is really verified) and on (repeated answers, as in GRPO groups).
Writes loadtests/results/bench_math.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from rljudge import JudgeClient, MathItem

from .common import math_pairs, percentiles, running_stack, write_report


async def one_item_latency(url: str, requests: int) -> dict[str, float]:
    samples = []
    async with JudgeClient(url) as client:
        for i in range(requests + 20):
            item = MathItem(response=f"so \\boxed{{{i}}} % {uuid.uuid4().hex}", gold=str(i))
            started = time.perf_counter()
            result = (await client.judge([item]))[0]
            elapsed = time.perf_counter() - started
            assert result.status == "scored", result
            if i >= 20:  # warm-up excluded
                samples.append(elapsed)
    return percentiles(samples)


async def batch_throughput(url: str, items: list[MathItem], rounds: int = 2) -> dict[str, float]:
    best = 0.0
    async with JudgeClient(url, batch_size=len(items)) as client:
        for _ in range(rounds):
            started = time.perf_counter()
            results = await client.judge(items)
            elapsed = time.perf_counter() - started
            assert all(r.status == "scored" for r in results), {r.status for r in results}
            best = max(best, len(items) / elapsed)
    return {"items_per_s": best}


def workload(count: int) -> list[MathItem]:
    pairs = math_pairs()
    return [MathItem(response=pairs[i % len(pairs)][0], gold=pairs[i % len(pairs)][1]) for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--items", type=int, default=1000)
    args = parser.parse_args()
    items = workload(args.items)
    runs: dict[str, dict[str, float]] = {}
    with running_stack(workers=2) as stack:
        runs["latency_1_item"] = asyncio.run(one_item_latency(stack.url, args.requests))
        runs["batch_2_workers_cache_on"] = asyncio.run(batch_throughput(stack.url, items))
    for workers in (1, 2):
        with running_stack(workers=workers, RLJUDGE_CACHE_ENABLED="false") as stack:
            runs[f"batch_{workers}_workers_cache_off"] = asyncio.run(batch_throughput(stack.url, items))
    scaling = runs["batch_2_workers_cache_off"]["items_per_s"] / runs["batch_1_workers_cache_off"]["items_per_s"]
    lat = runs["latency_1_item"]
    table = [
        [
            "one-item batch latency",
            f"p50 {lat['p50_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms",
        ],
        [
            f"{args.items}-item batch, 1 worker, cache off",
            f"{runs['batch_1_workers_cache_off']['items_per_s']:.0f} items/s",
        ],
        [
            f"{args.items}-item batch, 2 workers, cache off",
            f"{runs['batch_2_workers_cache_off']['items_per_s']:.0f} items/s",
        ],
        [
            f"{args.items}-item batch, 2 workers, cache on",
            f"{runs['batch_2_workers_cache_on']['items_per_s']:.0f} items/s",
        ],
        ["2 workers / 1 worker (cache off)", f"{scaling:.2f} x"],
    ]
    write_report(
        "bench_math",
        {"items": args.items, "requests": args.requests, "runs": runs, "scaling_2_vs_1": scaling},
        table,
        ["measure", "result"],
    )


if __name__ == "__main__":
    main()
