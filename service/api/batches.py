"""POST /v1/judge (synchronous batch), POST /v1/batches + GET /v1/batches/{batch_id} (asynchronous)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from pydantic import Field

from rljudge import BatchAccepted, BatchRequest, BatchResult

from ..jsonbody import JSONRoute
from .deps import BatchesDep, CallerDep, SettingsDep

router = APIRouter(prefix="/v1", tags=["judging"], route_class=JSONRoute)


class BatchSubmission(BatchRequest):
    """The gateway's view of ``BatchRequest``: items are validated one by one, so a malformed item
    is ``rejected`` with a message naming its field instead of failing the whole batch."""

    items: list[Any] = Field(min_length=1)  # type: ignore[assignment]


#: OpenAPI shows the real item schema (``BatchRequest``), not the lenient parsing model.
_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BatchRequest"}}},
    }
}
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=200, description="Resubmissions with the same key are judged once."),
]


@router.post("/judge", response_model=BatchResult, openapi_extra=_BODY_DOC)
async def judge(
    body: BatchSubmission, batches: BatchesDep, caller: CallerDep, idempotency_key: IdempotencyKey = None
) -> Response:
    """Judge a batch and answer when every item has a result or the batch deadline passes
    (unfinished items are then ``unscored``). Results come in item order."""
    key = f"{caller}:{idempotency_key}" if idempotency_key else None
    return Response(await batches.judge(body, body.items, key, caller), media_type="application/json")


@router.post("/batches", response_model=BatchAccepted, status_code=202, openapi_extra=_BODY_DOC)
async def submit_batch(
    body: BatchSubmission, batches: BatchesDep, caller: CallerDep, idempotency_key: IdempotencyKey = None
) -> BatchAccepted:
    """Queue a batch and answer at once with its ``batch_id``; fetch results with GET."""
    key = f"{caller}:{idempotency_key}" if idempotency_key else None
    batch = await batches.submit(body, body.items, key, caller)
    return BatchAccepted(batch_id=batch.batch_id, total=batch.total)


@router.get("/batches/{batch_id}", response_model=BatchResult)
async def get_batch(
    batch_id: Annotated[str, Field(max_length=64)],
    batches: BatchesDep,
    settings: SettingsDep,
    caller: CallerDep,
    wait_s: Annotated[float, Query(ge=0, description="Long-poll: wait up to this long for the batch to finish.")] = 0,
) -> Response:
    """The results known so far, in item order; ``done`` once every item has one."""
    batch = await batches.batch(batch_id)
    raw = None
    if wait_s > 0:
        until = min(time.time() + min(wait_s, settings.max_long_poll_s), batch.deadline)
        raw = await batches.wait(batch, until=until)
    return Response(await batches.collect(batch, raw), media_type="application/json")
