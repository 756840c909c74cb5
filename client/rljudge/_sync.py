"""``SyncJudgeClient``: the async client driven from synchronous code (scripts, TRL, verl)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar

from ._client import ItemLike, JudgeClient
from ._models import BatchAccepted, BatchResult, ItemResult, ProblemRegistered, ProblemSuite

T = TypeVar("T")


class SyncJudgeClient:
    """Blocking twin of ``JudgeClient`` (same arguments). It runs the async client on a private
    event loop in a daemon thread, so it also works where an event loop is already running."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="rljudge-client", daemon=True)
        self._thread.start()
        self._client: JudgeClient = self._run(self._make(base_url, kwargs))

    @staticmethod
    async def _make(base_url: str, kwargs: dict[str, Any]) -> JudgeClient:
        return JudgeClient(base_url, **kwargs)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def judge(
        self,
        items: Sequence[ItemLike],
        *,
        reward_scheme: Literal["binary", "fraction", "klear"] = "binary",
        deadline_s: float | None = None,
    ) -> list[ItemResult]:
        return self._run(self._client.judge(items, reward_scheme=reward_scheme, deadline_s=deadline_s))

    def submit(self, items: Sequence[ItemLike], **kwargs: Any) -> BatchAccepted:
        return self._run(self._client.submit(items, **kwargs))

    def get_batch(self, batch_id: str, *, wait_s: float = 0.0) -> BatchResult:
        return self._run(self._client.get_batch(batch_id, wait_s=wait_s))

    def register_problem(self, problem_id: str, suite: ProblemSuite | dict[str, Any]) -> ProblemRegistered:
        return self._run(self._client.register_problem(problem_id, suite))

    def ready(self) -> bool:
        return self._run(self._client.ready())

    def close(self) -> None:
        if self._loop.is_running():
            self._run(self._client.aclose())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> SyncJudgeClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
