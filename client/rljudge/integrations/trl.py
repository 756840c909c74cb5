"""A TRL reward function backed by rljudge: ``GRPOTrainer(reward_funcs=[RLJudgeReward(url)])``.

TRL (checked against 1.16) calls each reward function with ``prompts``, ``completions`` (strings, or
chat message lists for conversational datasets), ``completion_ids`` and every other dataset column
as a keyword argument holding one value per completion (plus ``trainer_state``, ``log_metric``,
``log_extra``); it wants one ``float`` or ``None`` per completion back, and turns ``None`` into
NaN, which it leaves out of the reward. This function answers ``None`` for every item the judge
could not score (``status != "scored"``: a judge failure is never a reward of 0).

The reference of each completion comes from the first dataset column present among
``reference_keys`` (by default ``problem_id``, ``tests``, ``input_output``, ``test_cases``,
``ground_truth``, ``gold``, ``answer``, ``solution``, ``label``, ``problem``): a math gold answer,
a code test suite (rljudge's, TACO/APPS/LiveCodeBench ``input_output``, Klear's ``ground_truth``)
or a ``problem:<id>``; a ``problem_id`` (or ``problem``) column holds bare ids of suites
registered with ``PUT /v1/problems/{id}``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from .._models import ItemResult
from .._sync import SyncJudgeClient
from ._items import PROBLEM_PREFIX, Kind, completion_text, make_item

__all__ = ["DEFAULT_REFERENCE_KEYS", "RLJudgeReward"]

log = logging.getLogger("rljudge.integrations.trl")

#: ``problem`` comes last: in math datasets (MATH, NuminaMath) it is the question's text, and the
#: gold answer sits in ``solution``/``answer``; only a dataset with no other reference column uses
#: it as the id of a registered suite.
DEFAULT_REFERENCE_KEYS: tuple[str, ...] = (
    "problem_id",
    "tests",
    "input_output",
    "test_cases",
    "ground_truth",
    "gold",
    "answer",
    "solution",
    "label",
    "problem",
)
_PROBLEM_ID_KEYS = frozenset({"problem_id", "problem"})


class RLJudgeReward:
    """A TRL reward function (batch in, ``list[float | None]`` out) that scores through rljudge.

    ``url`` defaults to ``$RLJUDGE_URL`` (else ``http://127.0.0.1:8000``), ``api_key`` to
    ``$RLJUDGE_API_KEY``. ``kind`` forces ``"math"`` or ``"code"`` (default: decided per row from
    its reference). ``reward_scheme`` is ``binary``, ``fraction`` or ``klear``; ``limits`` are code
    limits (``{"time_s": 2, "memory_mb": 512, ...}``); ``client_kwargs`` go to ``SyncJudgeClient``
    (``batch_size``, ``max_concurrency``, ``retries``, ...). ``name`` is the ``__name__`` TRL logs
    the reward under (``rewards/<name>/mean``). Each call also logs, when TRL passes
    ``log_metric``, ``<name>/scored_fraction``: the share of completions the judge scored.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        kind: Kind | None = None,
        reference_keys: Sequence[str] = DEFAULT_REFERENCE_KEYS,
        reward_scheme: Literal["binary", "fraction", "klear"] = "binary",
        strip_think: bool = True,
        require_think: bool = False,
        limits: Mapping[str, Any] | None = None,
        deadline_s: float | None = None,
        name: str = "rljudge",
        **client_kwargs: Any,
    ) -> None:
        self.url = url or os.environ.get("RLJUDGE_URL") or "http://127.0.0.1:8000"
        self.api_key = api_key or os.environ.get("RLJUDGE_API_KEY") or None
        self.kind = kind
        self.reference_keys = tuple(reference_keys)
        self.reward_scheme = reward_scheme
        self.strip_think = strip_think
        self.require_think = require_think
        self.limits = dict(limits) if limits else None
        self.deadline_s = deadline_s
        self.__name__ = name
        self.client_kwargs = client_kwargs
        self._client: SyncJudgeClient | None = None
        #: The results of the last call, in order (for inspection and tests).
        self.last_results: list[ItemResult] = []

    # The client (a thread and an event loop) is created on first use and not pickled, so the
    # reward function can be copied to other processes.
    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None}

    @property
    def client(self) -> SyncJudgeClient:
        if self._client is None:
            self._client = SyncJudgeClient(self.url, api_key=self.api_key, **self.client_kwargs)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _references(self, n: int, kwargs: Mapping[str, Any]) -> tuple[str, list[Any]]:
        for key in self.reference_keys:
            values = kwargs.get(key)
            if values is not None:
                if len(values) != n:
                    raise ValueError(f"dataset column {key!r} has {len(values)} values for {n} completions")
                if key in _PROBLEM_ID_KEYS:
                    values = [v if str(v).startswith(PROBLEM_PREFIX) else f"{PROBLEM_PREFIX}{v}" for v in values]
                return key, list(values)
        raise ValueError(
            f"no reference column among {list(self.reference_keys)} in the dataset columns {sorted(kwargs)}; "
            "add one (the gold answer or the tests) or pass reference_keys=[...]"
        )

    def __call__(
        self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] | None = None, **kwargs: Any
    ) -> list[float | None]:
        if completions is None:
            raise TypeError("RLJudgeReward needs `completions` (TRL passes them as a keyword argument)")
        n = len(completions)
        key, references = self._references(n, kwargs)
        items: list[dict[str, Any] | None] = []
        for i, (completion, reference) in enumerate(zip(completions, references, strict=True)):
            try:
                items.append(
                    make_item(
                        completion_text(completion),
                        reference,
                        kind=self.kind,
                        item_id=str(i),
                        strip_think=self.strip_think,
                        require_think=self.require_think,
                        limits=self.limits,
                    )
                )
            except ValueError as exc:
                log.warning("rljudge: completion %d: column %r is not a usable reference: %s", i, key, exc)
                items.append(None)
        to_judge = [item for item in items if item is not None]
        judged = iter(self.client.judge(to_judge, reward_scheme=self.reward_scheme, deadline_s=self.deadline_s))
        results = [
            next(judged)
            if item is not None
            else ItemResult(id=str(i), index=i, status="rejected", verdict="invalid_item", detail=f"bad {key}")
            for i, item in enumerate(items)
        ]
        self.last_results = results
        rewards = [r.reward if r.status == "scored" else None for r in results]
        log_metric: Callable[[str, float], None] | None = kwargs.get("log_metric")
        if log_metric is not None and n:
            log_metric(f"{self.__name__}/scored_fraction", sum(r is not None for r in rewards) / n)
        return rewards
