"""verl reward functions backed by rljudge.

verl (checked against 0.9.1) loads a custom reward function named in its config and calls it per
rollout (the reward loop's ``naive`` manager: ``compute_score(data_source=, solution_str=,
ground_truth=, extra_info=, **reward_kwargs)``, awaited when it is a coroutine function) or per
batch (the legacy ``BatchRewardManager``: ``compute_score(data_sources=, solution_strs=,
ground_truths=, extra_infos=, **reward_kwargs) -> list``). This module provides all three forms:

- :func:`compute_score_async` for verl >= 0.6's reward loop (recommended): concurrent calls on one
  event loop are coalesced into batches of up to ``batch_size`` items, so thousands of per-rollout
  calls become a few HTTP requests;
- :func:`compute_score`, the same, blocking;
- :func:`compute_score_batch` for ``BatchRewardManager``.

Config (verl 0.9.x)::

    reward.custom_reward_function.path=pkg://rljudge.integrations.verl
    reward.custom_reward_function.name=compute_score_async
    +reward.custom_reward_function.reward_kwargs.url=http://judge:8000      # or set RLJUDGE_URL

``data_source`` decides math or code (see :data:`MATH_SOURCES`, :data:`CODE_SOURCES`); for any other
source the ground truth decides (a recognisable test suite or ``problem:<id>`` is code, anything
else a math gold answer). Every function returns ``{"score", "acc", "rljudge_scored"}``: verl
needs a float for every rollout, so an item the judge could not score (``status != "scored"``)
gets ``unscored_score`` (default 0.0) and ``rljudge_scored = 0.0``; watch that metric's mean.

Keyword arguments (``reward_kwargs``): ``url`` (default ``$RLJUDGE_URL``, else
``http://127.0.0.1:8000``), ``api_key`` (default ``$RLJUDGE_API_KEY``), ``reward_scheme``
(``binary``), ``require_think`` (False), ``strip_think`` (True), ``limits`` (code limits dict),
``deadline_s``, ``unscored_score`` (0.0), ``return_dict`` (True; False returns the bare float),
``retries`` (6: the client's retries of connection errors, 429 and 502-504), ``batch_size`` (256)
and ``batch_linger_s`` (0.01: how long a lone call waits for company).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

# Absolute imports: verl may load this file by path (``custom_reward_function.path=/.../verl.py``).
from rljudge._client import JudgeClient
from rljudge._models import ItemResult
from rljudge._sync import SyncJudgeClient
from rljudge.integrations._items import Kind, make_item

__all__ = [
    "CODE_SOURCES",
    "MATH_SOURCES",
    "compute_score",
    "compute_score_async",
    "compute_score_batch",
    "item_for",
    "score_of",
]

log = logging.getLogger("rljudge.integrations.verl")

DEFAULT_URL = "http://127.0.0.1:8000"

#: verl's math ``data_source`` values (its default_compute_score's, plus Klear-Reasoner's).
MATH_SOURCES = frozenset(
    {
        "openai/gsm8k",
        "lighteval/MATH",
        "DigitalLearningGmbH/MATH-lighteval",
        "HuggingFaceH4/MATH-500",
        "math_dapo",
        "math",
        "math_dapo_reasoning",
        "numina_aops_forum",
        "numina_synthetic_math",
        "numina_amc_aime",
        "numina_synthetic_amc",
        "numina_cn_k12",
        "numina_olympiads",
        "math_longcot_math_verify",
    }
)
#: Code ``data_source`` values: verl's (TACO/APPS-style ``input_output`` ground truths), Klear's
#: ``coder1_longcot`` and LiveCodeBench.
CODE_SOURCES = frozenset(
    {"codecontests", "apps", "codeforces", "taco", "livecodebench", "coder1_longcot", "primeintellect"}
)

_GSM8K_ANSWER = re.compile(r"####\s*(-?[0-9][0-9,]*(?:\.[0-9]+)?)")


def _kind_of(data_source: str) -> Kind | None:
    if data_source in MATH_SOURCES or data_source.startswith("aime"):
        return "math"
    if data_source in CODE_SOURCES or data_source.startswith("livecodebench"):
        return "code"
    return None


def item_for(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    *,
    strip_think: bool = True,
    require_think: bool = False,
    limits: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The rljudge item for one verl rollout (raises ``ValueError`` for a malformed code ground truth).

    GSM8K responses in verl's format end with ``#### <number>``; when such a response has no
    ``\\boxed{}``, that number is what is judged.
    """
    kind = _kind_of(str(data_source))
    response = solution_str
    if data_source == "openai/gsm8k" and "\\boxed" not in response:
        found = _GSM8K_ANSWER.findall(response)
        if found:
            response = f"{response}\n\\boxed{{{found[-1].replace(',', '')}}}"
    return make_item(
        response, ground_truth, kind=kind, strip_think=strip_think, require_think=require_think, limits=limits
    )


def score_of(result: ItemResult, unscored_score: float = 0.0, return_dict: bool = True) -> dict[str, float] | float:
    """verl's view of one result: ``{"score", "acc", "rljudge_scored"}`` (or the bare score)."""
    scored = result.status == "scored" and result.reward is not None
    score = float(result.reward) if scored and result.reward is not None else float(unscored_score)
    if not return_dict:
        return score
    return {
        "score": score,
        "acc": 1.0 if result.verdict == "correct" else 0.0,
        "rljudge_scored": 1.0 if scored else 0.0,
    }


# ------------------------------------------------------------------ settings and clients


def _settings(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "url": kwargs.get("url") or os.environ.get("RLJUDGE_URL") or DEFAULT_URL,
        "api_key": kwargs.get("api_key") or os.environ.get("RLJUDGE_API_KEY") or None,
        "reward_scheme": kwargs.get("reward_scheme", "binary"),
        "deadline_s": kwargs.get("deadline_s"),
        "unscored_score": float(kwargs.get("unscored_score", 0.0)),
        "return_dict": bool(kwargs.get("return_dict", True)),
        "item": {
            "strip_think": bool(kwargs.get("strip_think", True)),
            "require_think": bool(kwargs.get("require_think", False)),
            "limits": kwargs.get("limits"),
        },
        "retries": int(kwargs.get("retries", 6)),
        "batch_size": int(kwargs.get("batch_size", 256)),
        "linger_s": float(kwargs.get("batch_linger_s", 0.01)),
    }


def _rejected(index: int, detail: str) -> ItemResult:
    return ItemResult(id=str(index), index=index, status="rejected", verdict="invalid_item", detail=detail)


_sync_clients: dict[tuple[str, str | None, int], SyncJudgeClient] = {}
_sync_lock = threading.Lock()


def _sync_client(cfg: dict[str, Any]) -> SyncJudgeClient:
    key = (cfg["url"], cfg["api_key"], cfg["retries"])
    with _sync_lock:
        client = _sync_clients.get(key)
        if client is None:
            client = _sync_clients[key] = SyncJudgeClient(cfg["url"], api_key=cfg["api_key"], retries=cfg["retries"])
        return client


def _judge_blocking(items: list[dict[str, Any] | ItemResult], cfg: dict[str, Any]) -> list[ItemResult]:
    """Judge the dict items; ItemResults (items refused here) pass through in place."""
    todo = [(i, item) for i, item in enumerate(items) if isinstance(item, dict)]
    out: list[Any] = list(items)
    if todo:
        client = _sync_client(cfg)
        results = client.judge(
            [item for _, item in todo], reward_scheme=cfg["reward_scheme"], deadline_s=cfg["deadline_s"]
        )
        for (i, _), result in zip(todo, results, strict=True):
            out[i] = result
    return out


def _prepare(
    index: int, data_source: str, solution_str: str, ground_truth: Any, cfg: dict[str, Any]
) -> dict[str, Any] | ItemResult:
    try:
        return item_for(data_source, solution_str, ground_truth, **cfg["item"])
    except ValueError as exc:
        log.warning("rljudge: rollout %d (%s) has a malformed ground truth: %s", index, data_source, exc)
        return _rejected(index, f"ground_truth: {exc}")


# ------------------------------------------------------------------ the three entry points


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, float] | float:
    """verl's custom reward function (one rollout, blocking). See the module docstring."""
    cfg = _settings(kwargs)
    prepared = _prepare(0, data_source, solution_str, ground_truth, cfg)
    (result,) = _judge_blocking([prepared], cfg)
    return score_of(result, cfg["unscored_score"], cfg["return_dict"])


def compute_score_batch(
    data_sources: Sequence[str],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Mapping[str, Any] | None] | None = None,
    **kwargs: Any,
) -> list[dict[str, float] | float]:
    """verl's ``BatchRewardManager`` reward function: one call per training batch, in order."""
    if not len(data_sources) == len(solution_strs) == len(ground_truths):
        raise ValueError(
            f"{len(data_sources)} data_sources, {len(solution_strs)} solution_strs and "
            f"{len(ground_truths)} ground_truths: they must have the same length"
        )
    cfg = _settings(kwargs)
    prepared = [
        _prepare(i, str(ds), sol, gt, cfg)
        for i, (ds, sol, gt) in enumerate(zip(data_sources, solution_strs, ground_truths, strict=True))
    ]
    results = _judge_blocking(prepared, cfg)
    return [score_of(r, cfg["unscored_score"], cfg["return_dict"]) for r in results]


async def compute_score_async(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, float] | float:
    """verl's custom reward function for the reward loop (awaited per rollout, batched here)."""
    cfg = _settings(kwargs)
    prepared = _prepare(0, data_source, solution_str, ground_truth, cfg)
    if isinstance(prepared, ItemResult):
        result = prepared
    else:
        result = await _coalescer(cfg).judge(prepared)
    return score_of(result, cfg["unscored_score"], cfg["return_dict"])


# ------------------------------------------------------------------ coalescing per event loop


class _Coalescer:
    """Collects the items of concurrent calls on one event loop and judges them as one batch:
    a batch leaves when it holds ``batch_size`` items or ``linger_s`` after its first item."""

    def __init__(self, client: JudgeClient, cfg: dict[str, Any]) -> None:
        self.client = client
        self.scheme = cfg["reward_scheme"]
        self.deadline_s = cfg["deadline_s"]
        self.batch_size = max(1, cfg["batch_size"])
        self.linger_s = max(0.0, cfg["linger_s"])
        self.pending: list[tuple[dict[str, Any], asyncio.Future[ItemResult]]] = []
        self.timer: asyncio.TimerHandle | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def judge(self, item: dict[str, Any]) -> asyncio.Future[ItemResult]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ItemResult] = loop.create_future()
        self.pending.append((item, future))
        if len(self.pending) >= self.batch_size:
            self._flush()
        elif self.timer is None:
            self.timer = loop.call_later(self.linger_s, self._flush)
        return future

    def _flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        batch, self.pending = self.pending, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _send(self, batch: list[tuple[dict[str, Any], asyncio.Future[ItemResult]]]) -> None:
        try:
            results = await self.client.judge(
                [item for item, _ in batch], reward_scheme=self.scheme, deadline_s=self.deadline_s
            )
        except BaseException as exc:  # a 4xx (JudgeRequestError) or cancellation: every caller sees it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


_coalescers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], _Coalescer]] = (
    weakref.WeakKeyDictionary()
)


def _coalescer(cfg: dict[str, Any]) -> _Coalescer:
    loop = asyncio.get_running_loop()
    per_loop = _coalescers.setdefault(loop, {})
    key = tuple(cfg[k] for k in ("url", "api_key", "retries", "reward_scheme", "deadline_s", "batch_size", "linger_s"))
    found = per_loop.get(key)
    if found is None:
        client = JudgeClient(
            cfg["url"], api_key=cfg["api_key"], retries=cfg["retries"], batch_size=max(1, cfg["batch_size"])
        )
        found = per_loop[key] = _Coalescer(client, cfg)
    return found
