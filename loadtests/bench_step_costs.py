"""The fixed costs of one 1,024-rollout GRPO step outside judging, each measured against the way it
was done before, taking turns in one run:

    python -m loadtests.bench_step_costs [--repeats 40]

- the client preparing the items (``JudgeClient._prepare``: each response trimmed to what is judged),
  against ``trimmed_response`` judging its own answer again (the previous way);
- the gateway queueing a 1,024-item batch without de-duplication (16 chunks of 64 math items, a
  Redis of its own): chunks stored once and referred to by their job (``INLINE_CHUNK_BYTES``)
  against chunks inside their RQ jobs (up to 16 KiB, the previous threshold);
- building the 1,024 results of a GRPO step's ~70 judged inputs and their copies
  (``results.results_of``) against encoding each copy from a dict (the previous way);
- the client's side of a GRPO step past preparing it, sending identical items once
  (``JudgeClient(dedup=True)``: finding the copies, encoding the ~74 items sent, parsing their
  results and expanding them to 1,024) against sending every item (encoding 1,024, parsing 1,024
  results); the answers are built once, as the gateway would send them.

Each is the median over ``repeats`` turns. Writes loadtests/results/bench_step_costs.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from rljudge import BatchResult, JudgeClient
from rljudge._client import _json_body
from rljudge._copies import distinct, expand
from rljudge.extract import answer_source
from rljudge_cli.stack import Stack
from rljudge_service import batches, judged
from rljudge_service.notifier import Notifier
from rljudge_service.results import Written, item_result, results_of
from rljudge_service.settings import Settings

from .bench import grpo_items, math_items
from .common import write_report


def trimmed_twice(response: str, strip_think: bool) -> str:
    """The previous ``trimmed_response``: the trimmed text is judged again to check it."""
    source = answer_source(response, strip_think)
    if len(source) < len(response) and answer_source(source, strip_think) == source:
        return source
    return response


def results_by_dict(entry: dict[str, Any], judgement: dict[str, Any], scheme: str) -> list[Written]:
    """The previous encoding of copies: the result as a dict once, then each copy a dict, encoded whole."""
    result = item_result(entry, judgement, scheme, cached=True)
    kind, status, verdict = entry["item"]["kind"], result.status, result.verdict or "none"
    fields = result.model_dump(mode="json", exclude_none=True)
    out = [Written(str(entry["index"]), orjson.dumps(fields), kind, status, verdict, True)]
    for index, item_id in entry.get("copies", ()):
        copy = {**fields, "id": item_id, "index": index, "cached": True, "elapsed_ms": 0.0}
        out.append(Written(str(index), orjson.dumps(copy), kind, status, verdict, True))
    return out


def queued_entries(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Items as the client sends them, validated into queued entries as the gateway does."""
    return batches.validated_entries(items)[1]["math"]


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()

    client = JudgeClient("http://unused")
    step = grpo_items(64, salt=3)

    def prepare_now() -> object:
        return [client._prepare(item, i) for i, item in enumerate(step)]

    def prepare_before() -> object:
        out = []
        for i, item in enumerate(step):
            data = {**item, "id": str(i)}
            data["response"] = trimmed_twice(data["response"], True)
            out.append(data)
        return out

    assert prepare_now() == prepare_before()

    # a GRPO step's groups, as the gateway and the workers hold them
    entries = queued_entries([client._prepare(item, i) for i, item in enumerate(step)])
    keys_ = {e["index"]: batches.judged_key(e["item"]) for e in entries}
    groups = batches.group_identical_math([dict(e) for e in entries], keys_)
    judgement = {"verdict": "correct", "grader": judged.MATH_GRADER}

    def results_now() -> list[Written]:
        return [w for e in groups for w in results_of(e, dict(judgement), "binary", cached=True)]

    def results_before() -> list[Written]:
        return [w for e in groups for w in results_by_dict(e, dict(judgement), "binary")]

    assert len(results_now()) == len(step)
    assert results_now() == results_before()  # the same bytes either way

    # the client's side: the answers a gateway sends for the items sent, each item "correct"
    prepared = prepare_now()
    assert isinstance(prepared, list)
    sent, _where = distinct(prepared)

    def answer(items: list[dict[str, Any]]) -> bytes:
        entries = [{"index": i, "id": item["id"], "item": item} for i, item in enumerate(items)]
        body = b",".join(results_of(e, dict(judgement), "binary")[0].payload for e in entries)
        return b'{"batch_id":"b","done":true,"total":%d,"completed":%d,"results":[%s]}' % (len(items), len(items), body)

    answer_sent, answer_all = answer(sent), answer(prepared)

    def client_copies_once() -> object:
        items, where = distinct(prepared)
        _json_body({"items": items, "reward_scheme": "binary"})
        return expand(BatchResult.model_validate_json(answer_sent).results, where, prepared, 10_000)

    def client_every_item() -> object:
        _json_body({"items": prepared, "reward_scheme": "binary"})
        return BatchResult.model_validate_json(answer_all).results

    assert [(r.id, r.index, r.verdict) for r in client_copies_once()] == [  # type: ignore[attr-defined]
        (r.id, r.index, r.verdict)
        for r in client_every_item()  # type: ignore[attr-defined]
    ]

    stack = Stack(workers=0)
    url = stack.start_redis()
    loop = asyncio.new_event_loop()
    try:
        sync = Redis.from_url(url)
        service = batches.BatchService(AsyncRedis.from_url(url), sync, Notifier(AsyncRedis.from_url(url)), Settings())
        batch = queued_entries([client._prepare(item, i) for i, item in enumerate(math_items(1024))])
        meta = {"total": len(batch), "ids": orjson.dumps([e["id"] for e in batch])}
        count = 0

        def enqueue(inline_bytes: int) -> Callable[[], object]:
            def run() -> object:
                nonlocal count
                count += 1
                batch_id = f"bench-{count}"
                valid = {"math": batch, "code": []}
                chunks = service._chunks(batch_id, time.time() + 600, "binary", valid, {"math": 2})
                saved, batches.INLINE_CHUNK_BYTES = batches.INLINE_CHUNK_BYTES, inline_bytes
                try:
                    loop.run_until_complete(service._enqueue(batch_id, chunks, meta, {}, {}))
                finally:
                    batches.INLINE_CHUNK_BYTES = saved
                return chunks

            return run

        pairs = {
            "client: prepare 1,024 GRPO items": (prepare_now, prepare_before),
            "gateway: queue 1,024 math items (16 chunks)": (enqueue(batches.INLINE_CHUNK_BYTES), enqueue(16 * 1024)),
            "1,024 results of a GRPO step (~70 judged inputs and their copies)": (results_now, results_before),
            f"client: a GRPO step's {len(sent)} distinct items sent, results expanded (before: all 1,024)": (
                client_copies_once,
                client_every_item,
            ),
        }
        samples: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in pairs}
        for turn in range(args.repeats):
            for name, (now, before) in pairs.items():
                order = (now, before) if turn % 2 else (before, now)
                for fn in order:
                    samples[name][0 if fn is now else 1].append(timed(fn))
                    sync.flushdb()  # untimed: each batch queued into an empty Redis
    finally:
        loop.close()
        stack.stop()

    rows = []
    for name, (now, before) in samples.items():
        a, b = statistics.median(now), statistics.median(before)
        rows.append({"cost": name, "now_ms": a, "before_ms": b, "before_over_now": b / a})
    print(
        write_report(
            "bench_step_costs",
            {"repeats": args.repeats, "rows": rows, "distinct_inputs": len(groups), "distinct_items": len(sent)},
            [[r["cost"], f"{r['now_ms']:.2f}", f"{r['before_ms']:.2f}", f"{r['before_over_now']:.2f}"] for r in rows],
            ["cost", "now ms", "before ms", "before / now"],
        )
    )


if __name__ == "__main__":
    main()
