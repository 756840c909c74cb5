"""``rljudge-train --config FILE [--set section.key=value ...]``: run the GPPO trainer."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .config import load_config
from .loop import train

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rljudge-train", description="GPPO (and PPO-clip / DAPO) RL training with rewards from rljudge."
    )
    parser.add_argument("--config", required=True, help="YAML config (see trainer/configs/)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value, e.g. --set run.steps=10 --set judge.url=http://127.0.0.1:8000",
    )
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        cfg = load_config(args.config, args.overrides)
    except (OSError, ValueError) as exc:
        print(f"rljudge-train: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0
    records = train(cfg)
    last = next((r for r in reversed(records) if "reward_mean" in r), None)
    if last is not None:
        print(f"rljudge-train: step {last['step']}: mean reward {last['reward_mean']}", file=sys.stderr)
    return 0
