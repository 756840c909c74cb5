"""How a worker writes a chunk's results: a pipelined HSETNX per result, then a round trip for the
fleet's counters of those written, against one ``HSETNX_MANY`` call (``rljudge_workers.jobs``)
that does both, on a redis-server of its own.

    python -m loadtests.bench_writes [--chunks 300] [--results 256]

Reports, per result written: the writer's CPU (the worker process), Redis's CPU (``INFO cpu``:
the fleet's one shared thread) and the wall time of a chunk's write. Both ways take turns, chunk by
chunk. Writes loadtests/results/bench_writes.{json,md}.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import orjson
from redis import Redis

from rljudge_cli.stack import Stack
from rljudge_service import keys
from rljudge_workers.jobs import HSETNX_MANY

from .common import write_report

#: A math result as workers store it (about 170 bytes).
PAYLOAD = orjson.dumps(
    {
        "id": "rollout-0001",
        "index": 1,
        "kind": "math",
        "status": "scored",
        "reward": 1.0,
        "verdict": "correct",
        "cached": True,
        "elapsed_ms": 0.0,
        "grader": "math-verify 0.8.0",
    }
)


def redis_cpu_s(redis: Redis) -> float:
    info = redis.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=300)
    parser.add_argument("--results", type=int, default=256, help="results per chunk")
    args = parser.parse_args()
    stack = Stack()  # Redis alone
    try:
        redis = Redis.from_url(stack.start_redis())
        fields = [str(i) for i in range(args.results)]

        stat = keys.stat_items("math", "scored", "correct")

        def pipelined(key: str) -> list[int]:
            pipe = redis.pipeline(transaction=False)
            for field in fields:
                pipe.hsetnx(key, field, PAYLOAD)
            written = pipe.execute()
            if any(written):
                redis.hincrby(keys.STATS, stat, sum(written))
            return written

        def one_call(key: str) -> list[int]:
            args = (part for field in fields for part in (field, PAYLOAD))
            return redis.eval(HSETNX_MANY, 2, key, keys.STATS, stat, len(fields), *args)

        ways: dict[str, Callable[[str], list[int]]] = {
            "pipelined HSETNX per result + counters": pipelined,
            "HSETNX_MANY (one call, counters included)": one_call,
        }
        totals = {name: {"writer_cpu_s": 0.0, "redis_cpu_s": 0.0, "wall_s": 0.0} for name in ways}
        for chunk in range(args.chunks + 10):
            for name, write in ways.items():
                key = f"bench:{name}:{chunk}"
                cpu0, redis0, wall0 = time.process_time(), redis_cpu_s(redis), time.perf_counter()
                written = write(key)
                wall, cpu, on_redis = (
                    time.perf_counter() - wall0,
                    time.process_time() - cpu0,
                    redis_cpu_s(redis) - redis0,
                )
                assert sum(written) == args.results and write(key) == [0] * args.results  # HSETNX semantics
                redis.delete(key)
                if chunk >= 10:  # warm-up excluded
                    totals[name]["writer_cpu_s"] += cpu
                    totals[name]["redis_cpu_s"] += on_redis
                    totals[name]["wall_s"] += wall
    finally:
        stack.stop()
    per = args.chunks * args.results
    rows = [
        {
            "way": name,
            "writer_cpu_us_per_result": t["writer_cpu_s"] / per * 1e6,
            "redis_cpu_us_per_result": t["redis_cpu_s"] / per * 1e6,
            "wall_ms_per_chunk": t["wall_s"] / args.chunks * 1e3,
        }
        for name, t in totals.items()
    ]
    write_report(
        "bench_writes",
        {"chunks": args.chunks, "results_per_chunk": args.results, "rows": rows},
        [
            [
                r["way"],
                f"{r['writer_cpu_us_per_result']:.2f}",
                f"{r['redis_cpu_us_per_result']:.2f}",
                f"{r['wall_ms_per_chunk']:.2f}",
            ]
            for r in rows
        ],
        ["way", "writer CPU us/result", "Redis CPU us/result", "wall ms/chunk"],
    )


if __name__ == "__main__":
    main()
