"""Shared pieces of the benchmarks: workloads from real data, a stack to run against, reports."""

from __future__ import annotations

import functools
import json
import platform
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from rljudge import JudgeClient
from rljudge_cli.stack import Stack, free_port

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = Path(__file__).with_name("results")


@functools.cache
def math_pairs() -> list[tuple[str, str]]:
    """(response, gold) pairs of real Qwen2.5-Math rollouts: the shared 800 when present, else the
    80 bundled with the tests (read once)."""
    shared = SHARED / "qwen25math_math_cot_100_labelled.jsonl"
    if shared.exists():
        rows = [json.loads(line) for line in shared.open()]
        return [(resp, row["gt"]) for row in rows for resp in row["code"]]
    bundled = ROOT / "tests" / "data" / "math" / "qwen25math_labelled_subset.jsonl"
    rows = [json.loads(line) for line in bundled.open()]
    return [(resp, row["gt"]) for row in rows for resp in row["responses"]]


@contextmanager
def running_stack(workers: int, **env: str) -> Iterator[Stack]:
    stack = Stack(port=free_port(), workers=workers, env=dict(env))
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


#: Set in a stack's environment, whether its benchmark client sends identical items once
#: (``JudgeClient(dedup=...)``; the stack itself ignores it). Unset: as the stack de-duplicates.
CLIENT_DEDUP = "RLJUDGE_CLIENT_DEDUP"


def stack_client(stack: Stack, **kwargs: Any) -> JudgeClient:
    """A client of ``stack`` that de-duplicates a batch's identical items exactly when the stack's
    gateway and workers do (``RLJUDGE_DEDUP_ENABLED``): a configuration measured without
    de-duplication has none anywhere. ``CLIENT_DEDUP`` in the stack's environment overrides it."""
    setting = stack.env.get(CLIENT_DEDUP, stack.env.get("RLJUDGE_DEDUP_ENABLED", "true"))
    return JudgeClient(stack.url, dedup=TypeAdapter(bool).validate_python(setting), **kwargs)  # as the stack reads it


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0

    return {
        "p50_ms": pick(0.50),
        "p95_ms": pick(0.95),
        "p99_ms": pick(0.99),
        "mean_ms": statistics.fmean(ordered) * 1000,
    }


def machine() -> dict[str, Any]:
    import os

    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def write_report(name: str, payload: dict[str, Any], table: list[list[str]], header: list[str]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        **payload,
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in table]
    md = RESULTS / f"{name}.md"
    md.write_text(f"# {name}\n\n{payload['when']}, {payload['machine']['cpus']} CPUs\n\n" + "\n".join(lines) + "\n")
    print(md.read_text())
    return md
