"""An item's final result, as stored in its batch's results hash, built from a judgement.

Pure functions shared by the workers, which judge, and the gateway, which answers verdict-cache
hits without queueing them: a result reads the same whoever wrote it. A *judgement* is what a
judge decided about one judged input (``verdict``, ``detail``, ``grader``; for code ``passed``,
``total``, ``tests``; ``status`` when not ``scored``); the reward is computed per item, under the
request's scheme.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from typing import Any, NamedTuple

import orjson

from rljudge import ItemResult

from . import keys
from .rewards import SCHEMES, compute_reward

log = logging.getLogger("rljudge.results")


class Written(NamedTuple):
    """One item's result: the results-hash field (its index) and JSON, and what the counters need."""

    field: str
    payload: bytes
    kind: str
    status: str
    verdict: str
    cached: bool


def item_result(
    entry: dict[str, Any], judgement: dict[str, Any], scheme: str, *, cached: bool = False, elapsed_ms: float = 0.0
) -> ItemResult:
    """The validated result of a queued entry's own item (see ``results_of``)."""
    status = judgement.get("status", "scored")
    return ItemResult(
        id=entry["id"],
        index=entry["index"],
        kind=entry["item"]["kind"],
        status=status,
        reward=compute_reward(scheme, judgement) if status == "scored" else None,
        verdict=judgement.get("verdict"),
        cached=cached,
        elapsed_ms=round(elapsed_ms, 3),
        detail=judgement.get("detail"),
        passed=judgement.get("passed"),
        total=judgement.get("total"),
        tests=judgement.get("tests"),
        grader=judgement.get("grader"),
    )


def results_of(
    entry: dict[str, Any], judgement: dict[str, Any], scheme: str, *, cached: bool = False, elapsed_ms: float = 0.0
) -> list[Written]:
    """The results of a queued entry (``{"index", "id", "item", "copies"?}``) and of its copies: the
    batch's other items with the same judged input, which share the judgement (``cached``, 0 ms)."""
    result = item_result(entry, judgement, scheme, cached=cached, elapsed_ms=elapsed_ms)
    kind, status, verdict = entry["item"]["kind"], result.status, result.verdict or "none"
    copies = entry.get("copies", ())
    if not copies:
        payload = result.model_dump_json(exclude_none=True).encode()
        return [Written(str(entry["index"]), payload, kind, status, verdict, cached)]
    # the validated result once as a dict; the copies differ from one another only in their id and
    # index, the first two fields: the rest is encoded once and each copy is its id, index and that
    fields = result.model_dump(mode="json", exclude_none=True)
    out = [Written(str(entry["index"]), orjson.dumps(fields), kind, status, verdict, cached)]
    rest = {k: v for k, v in fields.items() if k not in COPY_HEAD} | {"cached": True, "elapsed_ms": 0.0}
    tail = b"," + orjson.dumps(rest)[1:]
    for index, item_id in copies:
        field = str(index)
        payload = b'{"id":' + orjson.dumps(item_id) + b',"index":' + field.encode() + tail
        out.append(Written(field, payload, kind, status, verdict, True))
    return out


#: The fields that come first in every result (``ItemResult`` declares them first) and are a
#: copy's own: ``results_of`` writes them before the fields its copies share.
COPY_HEAD = ("id", "index")
if tuple(ItemResult.model_fields)[: len(COPY_HEAD)] != COPY_HEAD:  # checked at import, not only under asserts
    raise RuntimeError(f"ItemResult must declare {COPY_HEAD} first: copies' results are assembled after them")


def cached_judgement(value: bytes | None) -> dict[str, Any] | None:
    """A judgement read from the verdict cache, or None when there is none or it is not one this
    release can use (written by another release, or not by a worker): a miss, so the item is judged
    again rather than failing its batch or its chunk. A usable judgement makes a valid result under
    every reward scheme."""
    if value is None:
        return None
    reason = _unusable_small(value) if len(value) <= MEMO_BYTES else _unusable(value)
    if reason is not None:
        log.warning("ignoring a verdict-cache entry this release cannot use (%s): %r", reason, value[:200])
        return None
    judgement: dict[str, Any] = orjson.loads(value)
    return judgement


def _unusable(value: bytes) -> str | None:
    """Why a verdict-cache entry cannot be used, or None when it can."""
    try:
        judgement = orjson.loads(value)
        if not isinstance(judgement, dict) or not isinstance(judgement.get("verdict"), str):
            raise ValueError("no verdict")
        probe = {"index": 0, "id": "0", "item": {"kind": "math"}}
        for scheme in SCHEMES:
            results_of(probe, judgement, scheme, cached=True)
    except (ValueError, TypeError, KeyError) as exc:  # pydantic's ValidationError is a ValueError
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


#: Verdict-cache entries up to this size (a math verdict is about 70 bytes) have their usability
#: checked once per process (``_unusable_small``, 4,096 entries at most): most are shared by many
#: answers ("correct" under this grader), and a revisited GRPO step reads about 70 of them. Larger
#: ones (code verdicts with their tests) are checked each time, not kept.
MEMO_BYTES = 512
_unusable_small = functools.lru_cache(maxsize=4096)(_unusable)


def stat_fields(result: Written) -> str:
    """The fleet's counters (``keys.STATS`` fields) that one written result adds 1 to, space-separated:
    its kind, status and verdict, and a cache hit when it shares a verdict."""
    items = keys.stat_items(result.kind, result.status, result.verdict)
    return f"{items} {keys.stat_cache_hits(result.kind)}" if result.cached else items


def by_counters(written: Iterable[Written]) -> list[list[Written]]:
    """Written results grouped by what they add to the fleet's counters (kind, status, verdict, and
    whether they share a verdict), in the order each group first appears: ``stat_fields`` of a
    group's first result holds for all of it."""
    groups: dict[tuple[str, str, str, bool], list[Written]] = {}
    for result in written:
        groups.setdefault(result[2:], []).append(result)
    return list(groups.values())


def stat_counts(written: Iterable[Written]) -> dict[str, int]:
    """Increments of the fleet's item and cache-hit counters (``keys.STATS``) for written results."""
    counters: dict[str, int] = {}
    for group in by_counters(written):
        for stat in stat_fields(group[0]).split():
            counters[stat] = counters.get(stat, 0) + len(group)
    return counters
