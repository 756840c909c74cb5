"""Identical math items of a batch sent once (``JudgeClient(dedup=True)``, the default).

A GRPO step holds 8-16 rollouts per prompt whose final answers repeat; once trimmed to what the
server judges (``extract.trimmed_response``), most of them are the same item but for their id. The
client sends each distinct item once and gives every copy the result of the item it repeats, with
its own ``id`` and ``index``; a scored copy reads ``cached`` true and 0 ms, as the copies the
gateway finds in a batch do. Copies never reach the service, so neither their bytes nor their
validation, results or parsing cost anything past this process.

Two items are identical when every field but ``id`` is equal (after preparation: serialised,
trimmed) and both ids are valid ones (a string of 1 to ``MAX_ID_CHARS`` characters: an id the
gateway would refuse or replace makes its item a batch of its own). Only math items are compared,
as the gateway groups only math items batch-wide (code is compared within a chunk by the workers,
whose verdicts can depend on timing); an item with a field that cannot be hashed is always sent,
and so is every item of a batch judged with ``dedup=False``.
"""

from __future__ import annotations

from typing import Any

from ._models import MAX_ID_CHARS, ItemResult


def distinct(prepared: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[int]]:
    """The items to send (the first of each identical group, in the batch's order) and, for each
    item of ``prepared``, the position among them of the item it is or repeats."""
    firsts: dict[tuple[tuple[str, Any], ...], int] = {}
    sent: list[dict[str, Any]] = []
    position: list[int] = []
    for data in prepared:
        pos = len(sent)
        item_id = data.get("id")
        if data.get("kind") == "math" and isinstance(item_id, str) and 0 < len(item_id) <= MAX_ID_CHARS:
            # every field but the id, in order: the id is taken out and put back (last), half the
            # CPU of skipping it while building the key
            del data["id"]
            key = tuple(data.items())
            data["id"] = item_id
            try:
                pos = firsts.setdefault(key, pos)
            except TypeError:  # an unhashable field: sent as it is
                pass
        if pos == len(sent):
            sent.append(data)
        position.append(pos)
    return sent, position


def expand(
    results: list[ItemResult], position: list[int], prepared: list[dict[str, Any]], batch_size: int
) -> list[ItemResult]:
    """One result per item of ``prepared``, in order, from ``results`` (one per sent item, as
    ``distinct`` returned them, sent in requests of ``batch_size``): a sent item's own result with
    its index in the batch, and each copy's a copy of it with the copy's id and index (a scored one
    ``cached`` and 0 ms). A rejection's detail names the item by its index in the batch (the gateway
    named it by its position in the request)."""
    out: list[ItemResult] = []
    claimed = [False] * len(results)
    details: dict[int, str] = {}  # pos -> the gateway's own detail of a rejection, before it is renamed for its item
    for index, (pos, data) in enumerate(zip(position, prepared, strict=True)):
        result = results[pos]
        if claimed[pos]:
            update: dict[str, Any] = {"id": data["id"], "index": index}
            if result.status == "scored":
                update |= {"cached": True, "elapsed_ms": 0.0}
            result = result.model_copy(update=update)
        else:
            claimed[pos] = True
            result.index = index
        if result.status == "rejected" and result.detail:
            detail = details.setdefault(pos, result.detail)
            # the gateway names an item by its position in the request (``items[3].gold: Field required``)
            result.detail = detail.replace(f"items[{pos % batch_size}]", f"items[{index}]")
        out.append(result)
    return out
