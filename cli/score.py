"""``rljudge score FILE.jsonl -o OUT.jsonl`` and the ``make up`` demo table."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm import tqdm

from rljudge import ItemResult, JudgeClient, SyncJudgeClient


def read_items(path: Path) -> list[dict[str, Any]]:
    items = []
    with path.open() as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{path}:{number}: not JSON: {exc}") from None
    return items


async def score_file(
    source: Path,
    output: Path,
    *,
    url: str,
    api_key: str | None,
    reward_scheme: str,
    batch_size: int,
    concurrency: int,
    progress: bool,
) -> dict[str, int]:
    """Score every item of ``source`` and write one result per line to ``output``, in order."""
    items = read_items(source)
    results: list[ItemResult | None] = [None] * len(items)
    async with JudgeClient(url, api_key=api_key, batch_size=batch_size, max_concurrency=concurrency) as client:
        bar = tqdm(total=len(items), unit="item", disable=not progress)

        async def one(start: int) -> None:
            part = items[start : start + batch_size]
            for item_index, item in enumerate(part, start):
                if isinstance(item, dict):
                    item.setdefault("id", str(item_index))
            for result in await client.judge(part, reward_scheme=reward_scheme):  # type: ignore[arg-type]
                result.index += start
                results[result.index] = result
            bar.update(len(part))

        await asyncio.gather(*(one(start) for start in range(0, len(items), batch_size)))
        bar.close()
    with output.open("w") as handle:
        for result in results:
            assert result is not None
            handle.write(result.model_dump_json(exclude_none=True) + "\n")
    return dict(Counter(result.status for result in results if result is not None))


def print_demo(url: str, demo_file: Path) -> None:
    """Score the bundled rollouts and print a table: the first thing ``make up`` shows."""
    items = read_items(demo_file)
    with SyncJudgeClient(url) as client:
        results = client.judge(items, reward_scheme="binary")
    print(f"\nrljudge demo: {len(items)} math rollouts from {demo_file.name}")
    print(f"{'id':<14} {'gold':<16} {'status':<8} {'verdict':<13} {'reward':>6} {'ms':>7}")
    for item, result in zip(items, results, strict=True):
        gold = str(item.get("gold", ""))[:16]
        reward = "-" if result.reward is None else f"{result.reward:.0f}"
        elapsed = "-" if result.elapsed_ms is None else f"{result.elapsed_ms:.1f}"
        print(f"{result.id:<14} {gold:<16} {result.status:<8} {result.verdict or '-':<13} {reward:>6} {elapsed:>7}")
    print()
