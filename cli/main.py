"""The ``rljudge`` command: ``up``, ``gateway``, ``worker``, ``score``.

Subcommands import what they run lazily, so ``rljudge gateway`` never imports worker code and
``rljudge score`` needs only the client.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

DEMO_FILE = Path(__file__).with_name("demo") / "math_rollouts.jsonl"


def _cmd_up(args: argparse.Namespace) -> int:
    from rljudge_workers.affinity import usable_cpus

    from .stack import Stack

    workers = args.workers or usable_cpus()
    stack = Stack(
        host=args.host,
        port=args.port,
        workers=workers,
        redis_url=args.redis_url,
        log_dir=Path(args.log_dir) if args.log_dir else None,
    )
    stack.start()
    print(f"rljudge: gateway listening on {stack.url} (docs {stack.url}/docs)", flush=True)
    print(f"rljudge: redis {stack.redis_url}; {workers} worker(s); Ctrl-C stops everything", flush=True)
    try:
        if args.demo:
            from .score import print_demo

            print_demo(stack.url, DEMO_FILE)
        return stack.wait()
    finally:
        stack.stop()
        print("rljudge: stopped", flush=True)


def _cmd_gateway(args: argparse.Namespace) -> int:
    import uvicorn

    uvicorn.run(
        "rljudge_service.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.processes,
        loop="uvloop",
        http="httptools",
        log_level=os.environ.get("RLJUDGE_LOG_LEVEL", "warning").lower(),
        timeout_graceful_shutdown=30,
    )
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from rljudge_workers.main import run

    run(redis_url=args.redis_url, workers=args.workers, burst=args.burst)
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from .score import score_file

    summary = asyncio.run(
        score_file(
            Path(args.file),
            Path(args.output),
            url=args.url,
            api_key=args.api_key or os.environ.get("RLJUDGE_API_KEY"),
            reward_scheme=args.reward_scheme,
            batch_size=args.batch_size,
            concurrency=args.concurrency,
            progress=not args.quiet,
        )
    )
    print(", ".join(f"{k}={v}" for k, v in summary.items()), file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rljudge", description="rljudge reward service")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run Redis, the gateway and workers on this machine")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8000)
    up.add_argument("--workers", type=int, default=None, help="worker processes (default: the CPUs it may use)")
    up.add_argument("--redis-url", default=None, help="use this Redis instead of starting a private one")
    up.add_argument("--log-dir", default=None, help="write each part's log here")
    up.add_argument("--demo", action="store_true", help="score a bundled batch of math rollouts once ready")
    up.set_defaults(func=_cmd_up)

    gateway = sub.add_parser("gateway", help="run the HTTP gateway (uses RLJUDGE_REDIS_URL)")
    gateway.add_argument("--host", default="127.0.0.1")
    gateway.add_argument("--port", type=int, default=8000)
    gateway.add_argument("--processes", type=int, default=1, help="uvicorn worker processes")
    gateway.set_defaults(func=_cmd_gateway)

    worker = sub.add_parser("worker", help="run judge workers (uses RLJUDGE_REDIS_URL)")
    worker.add_argument("--workers", type=int, default=None, help="worker processes (default: the CPUs it may use)")
    worker.add_argument("--redis-url", default=None)
    worker.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    worker.set_defaults(func=_cmd_worker)

    score = sub.add_parser("score", help="score a JSONL file of items against a running service")
    score.add_argument("file")
    score.add_argument("-o", "--output", required=True)
    score.add_argument("--url", default=os.environ.get("RLJUDGE_URL", "http://127.0.0.1:8000"))
    score.add_argument("--api-key", default=None, help="or RLJUDGE_API_KEY")
    score.add_argument("--reward-scheme", default="binary", choices=["binary", "fraction", "klear"])
    score.add_argument("--batch-size", type=int, default=256)
    score.add_argument("--concurrency", type=int, default=4)
    score.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    score.set_defaults(func=_cmd_score)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
