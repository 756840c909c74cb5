"""Rewards from the rljudge service, with judge failures kept apart from wrong answers.

A scorer takes responses and gold answers and returns one reward per response, or ``None`` when the
judge did not produce a verdict (``infra_failed``, ``unscored``, ``rejected``). The trainer drops
those responses from the update: a judge failure is never scored as 0.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from .config import JudgeConfig

__all__ = ["JudgeScorer", "ScoreBatch", "Scorer"]


@dataclass
class ScoreBatch:
    rewards: list[float | None]
    statuses: Counter[str] = field(default_factory=Counter)
    cached: int = 0

    @property
    def failed(self) -> int:
        return sum(r is None for r in self.rewards)


class Scorer(Protocol):
    def __call__(self, responses: list[str], golds: list[str]) -> ScoreBatch: ...


class JudgeScorer:
    """Scores math responses through ``rljudge.SyncJudgeClient`` (one batch request per call)."""

    def __init__(self, config: JudgeConfig) -> None:
        if not config.url:
            raise ValueError("judge.url is required: the URL of a running rljudge service")
        from rljudge import SyncJudgeClient  # the client SDK; imported late so that losses need only torch

        self._config = config
        api_key = config.api_key or os.environ.get("RLJUDGE_API_KEY")
        self._client = SyncJudgeClient(config.url, api_key=api_key, retries=config.retries)

    def __call__(self, responses: list[str], golds: list[str]) -> ScoreBatch:
        from rljudge import MathItem

        if len(responses) != len(golds):
            raise ValueError(f"{len(responses)} responses but {len(golds)} gold answers")
        if not responses:
            return ScoreBatch(rewards=[])
        items = [
            MathItem(response=text, gold=gold, strip_think=self._config.strip_think)
            for text, gold in zip(responses, golds, strict=True)
        ]
        results = self._client.judge(
            items, reward_scheme=self._config.reward_scheme, deadline_s=self._config.deadline_s
        )
        rewards: list[float | None] = [None] * len(items)
        statuses: Counter[str] = Counter()
        cached = 0
        for result in results:
            statuses[result.status] += 1
            cached += bool(result.cached)
            if result.status == "scored" and result.reward is not None:
                rewards[result.index] = float(result.reward)
        return ScoreBatch(rewards=rewards, statuses=statuses, cached=cached)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> JudgeScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
