"""Compatibility endpoints: peers' protocols served by rljudge, so switching is a URL change.

- ``POST /get_reward``: OpenRLHF's remote reward protocol (``--remote_rm_url http://HOST:8000/get_reward``).
  OpenRLHF posts ``{"query": [prompt+response, ...], "prompts": [...], "labels": [...]}`` and reads
  ``rewards`` (and ``scores``, ``extra_logs`` when present) as tensors, so every entry must be a
  number: an item the judge could not score gets ``unscored_reward`` (default 0.0) and
  ``extra_logs.rljudge_scored = 0``. Options ride on the URL's query string
  (``/get_reward?reward_scheme=klear&require_think=true``), since OpenRLHF sends only the body.
- ``POST /run_code``: SandboxFusion's run-code API, which verl's ``sandbox_fusion`` reward calls
  (``reward.sandbox_fusion.url=http://HOST:8000/run_code``). Python only; the program runs once
  in a jail on ``stdin`` as a ``run`` test, under ``run_timeout`` (CPU and wall seconds) and
  ``memory_limit_MB``. SandboxFusion's ``/submit`` (dataset evaluation) is not served: verl never
  calls it.

Both enqueue through the same ``BatchService`` as ``/v1/judge``: queueing, backpressure, the
verdict cache, deadlines and metrics are shared.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from rljudge import BatchResult, ItemResult
from rljudge.integrations import make_item

from ..errors import ServiceError
from ..jsonbody import JSONRoute
from .batches import BatchSubmission
from .deps import BatchesDep, CallerDep

router = APIRouter(tags=["compatibility"], route_class=JSONRoute)

#: OpenRLHF's client gives up on a request after 180 s; answer before it does.
GET_REWARD_DEADLINE_S = 150.0
SANDBOX_LANGUAGES = ("python", "python3")
#: SandboxFusion's ``memory_limit_MB <= 0`` means "no limit"; rljudge always has one.
UNLIMITED_MEMORY_MB = 4096


class UnprocessableInput(ServiceError):
    status_code = 422


async def _judge(batches: BatchesDep, caller: str, items: list[dict[str, Any]], **envelope: Any) -> list[ItemResult]:
    body = BatchSubmission(items=items, **envelope)
    return BatchResult.model_validate_json(await batches.judge(body, body.items, None, caller)).results


# ----------------------------------------------------------------------------- OpenRLHF


class GetRewardRequest(BaseModel):
    """OpenRLHF's remote reward request. Extra keys (sent by some forks) are ignored."""

    model_config = ConfigDict(extra="ignore")

    query: list[str] = Field(min_length=1, description="prompt + response, as OpenRLHF decodes them.")
    prompts: list[str] | None = Field(default=None, description="The prompts, to cut off the responses.")
    labels: list[Any] = Field(
        description="Per item: the math gold answer, `problem:<id>`, or a code test suite (JSON or object)."
    )


class GetRewardResponse(BaseModel):
    rewards: list[float]
    scores: list[float] = Field(description="1.0 when the verdict is `correct`, else 0.0 (OpenRLHF's filtering).")
    extra_logs: dict[str, list[float]] = Field(
        description="`rljudge_scored`: 1.0 when the judge scored the item; `rljudge_correct`: as `scores`."
    )
    results: list[ItemResult] = Field(description="rljudge's full result per item (OpenRLHF ignores it).")


def _response_of(query: str, prompt: str | None) -> str:
    """The response part of OpenRLHF's ``query`` (prompt + response, special tokens kept)."""
    if prompt:
        if query.startswith(prompt):
            return query[len(prompt) :]
        cut = query.find(prompt)  # e.g. a BOS token the tokenizer added in front
        if cut != -1:
            return query[cut + len(prompt) :]
    return query


@router.post("/get_reward", response_model=GetRewardResponse, response_model_exclude_none=True)
async def get_reward(
    body: GetRewardRequest,
    batches: BatchesDep,
    caller: CallerDep,
    reward_scheme: Literal["binary", "fraction", "klear"] = "binary",
    require_think: bool = False,
    unscored_reward: Annotated[float, Query(description="Reward of items the judge could not score.")] = 0.0,
    deadline_s: Annotated[float, Query(gt=0, le=3600)] = GET_REWARD_DEADLINE_S,
) -> GetRewardResponse:
    """OpenRLHF's remote reward model protocol; each label is a gold answer or a code reference."""
    n = len(body.query)
    if len(body.labels) != n:
        raise UnprocessableInput(f"labels has {len(body.labels)} entries but query has {n}: one label per query")
    if body.prompts is not None and len(body.prompts) != n:
        raise UnprocessableInput(f"prompts has {len(body.prompts)} entries but query has {n}: one prompt per query")
    if not math.isfinite(unscored_reward):
        raise UnprocessableInput("unscored_reward must be a finite number")
    items: list[dict[str, Any]] = []
    for i, (query, label) in enumerate(zip(body.query, body.labels, strict=True)):
        if label is None or (isinstance(label, str) and not label.strip()):
            raise UnprocessableInput(
                f"labels[{i}] is empty: set OpenRLHF's --label_key to the column holding the gold answer or the tests"
            )
        response = _response_of(query, body.prompts[i] if body.prompts is not None else None)
        try:
            items.append(make_item(response, label, item_id=str(i), require_think=require_think))
        except ValueError as exc:
            raise UnprocessableInput(f"labels[{i}]: {exc}") from None
    results = await _judge(batches, caller, items, reward_scheme=reward_scheme, deadline_s=deadline_s)
    scored = [r.status == "scored" and r.reward is not None for r in results]
    correct = [1.0 if r.verdict == "correct" else 0.0 for r in results]
    rewards = [
        float(r.reward) if r.reward is not None and ok else unscored_reward
        for r, ok in zip(results, scored, strict=True)
    ]
    return GetRewardResponse(
        rewards=rewards,
        scores=correct,
        extra_logs={"rljudge_scored": [1.0 if ok else 0.0 for ok in scored], "rljudge_correct": correct},
        results=results,
    )


# ----------------------------------------------------------------------------- SandboxFusion


class RunCodeRequest(BaseModel):
    """SandboxFusion's ``RunCodeRequest`` (the fields verl's sandbox_fusion client sends)."""

    model_config = ConfigDict(extra="ignore")

    code: str
    language: str = "python"
    stdin: str | None = ""
    compile_timeout: float = Field(default=10, description="Ignored: Python has no compile step.")
    run_timeout: float = Field(default=10, gt=0, le=60, description="CPU and wall seconds for the run.")
    memory_limit_MB: int = Field(default=-1, le=8192, description="Address-space limit; <= 0: 4096 MB.")
    files: dict[str, str | None] = Field(default_factory=dict, description="Not supported: must be empty.")
    fetch_files: list[str] = Field(default_factory=list, description="Not supported: must be empty.")

    @field_validator("language")
    @classmethod
    def _python_only(cls, value: str) -> str:
        if value not in SANDBOX_LANGUAGES:
            raise ValueError(f"language {value!r} is not supported by rljudge: use 'python'")
        return value

    @field_validator("files", "fetch_files")
    @classmethod
    def _no_files(cls, value: Any) -> Any:
        if value:
            raise ValueError("files are not supported by rljudge's run_code (the jail's filesystem is empty)")
        return value


class CommandRunResult(BaseModel):
    status: Literal["Finished", "TimeLimitExceeded", "Error"]
    execution_time: float | None = None
    return_code: int | None = None
    stdout: str | None = None
    stderr: str | None = None


class RunCodeResponse(BaseModel):
    status: Literal["Success", "Failed", "SandboxError"]
    message: str
    compile_result: CommandRunResult | None = None
    run_result: CommandRunResult | None = None
    executor_pod_name: str | None = None
    files: dict[str, str] = Field(default_factory=dict)


def _run_code_response(result: ItemResult) -> RunCodeResponse:
    if result.status != "scored":
        return RunCodeResponse(status="SandboxError", message=result.detail or result.verdict or result.status)
    if result.verdict == "compile_error":  # what running `python` on it prints
        run = CommandRunResult(status="Finished", execution_time=0.0, return_code=1, stdout="", stderr=result.detail)
        return RunCodeResponse(status="Failed", message="", run_result=run)
    test = (result.tests or [None])[0]
    if test is None:
        return RunCodeResponse(status="SandboxError", message=f"no run result ({result.verdict})")
    seconds = (test.time_ms or 0.0) / 1000.0
    if test.status == "time_limit":
        run = CommandRunResult(
            status="TimeLimitExceeded", execution_time=seconds, stdout=test.stdout or "", stderr=test.detail or ""
        )
        return RunCodeResponse(status="Failed", message="", run_result=run)
    code = test.exit_code if test.exit_code is not None else (0 if test.status == "passed" else 1)
    stderr = test.detail or ""
    if test.status in ("memory_limit", "output_limit") and not stderr:
        stderr = test.status.replace("_", " ")
    run = CommandRunResult(
        status="Finished", execution_time=seconds, return_code=code, stdout=test.stdout or "", stderr=stderr
    )
    ok = test.status == "passed" and code == 0
    return RunCodeResponse(status="Success" if ok else "Failed", message="", run_result=run)


@router.post("/run_code", response_model=RunCodeResponse)
async def run_code(body: RunCodeRequest, batches: BatchesDep, caller: CallerDep) -> RunCodeResponse:
    """SandboxFusion's ``/run_code`` for Python: one run of ``code`` on ``stdin``, in a jail."""
    limits = {
        "time_s": body.run_timeout,
        "wall_s": body.run_timeout,
        "memory_mb": body.memory_limit_MB if body.memory_limit_MB > 0 else UNLIMITED_MEMORY_MB,
    }
    if limits["memory_mb"] < 16:
        raise UnprocessableInput("memory_limit_MB must be at least 16 (or <= 0 for the default)")
    item = {"kind": "code", "id": "run", "code": body.code, "tests": {"type": "run", "stdin": body.stdin or ""}}
    item["limits"] = limits
    # The jail's start, the run and its wall cap, plus time in the queue.
    deadline_s = 2 * body.run_timeout + 30
    (result,) = await _judge(batches, caller, [item], deadline_s=deadline_s)
    return _run_code_response(result)
