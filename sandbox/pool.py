"""A Pebble process pool that judges submissions with a hard per-submission timeout."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from typing import Any

import pebble

from . import jail
from .runner import execute, run_budget_s, sandbox_error

POOL_SLACK_S = 2.0
"""Added to :func:`run_budget_s` for the worker's own overhead before Pebble kills it."""


def _judge_task(
    program: str, suite: dict[str, Any], limits: dict[str, Any] | None, mode: str, marker: str
) -> dict[str, Any]:
    return execute(program, suite, limits, mode, marker=marker)


class CodeJudge:
    """Owns a ``pebble.ProcessPool`` (fork context) whose workers each run one jail at a time.

    ``judge`` blocks until the verdict; ``submit`` returns a future. On a Pebble timeout or a dead
    worker the result is a ``sandbox_error`` judgement, after every jail process left by that worker
    has been killed (the jail also dies with its worker through PR_SET_PDEATHSIG).
    """

    def __init__(self, max_workers: int = 2, max_tasks: int = 0) -> None:
        self._pool = pebble.ProcessPool(
            max_workers=max_workers, max_tasks=max_tasks, context=multiprocessing.get_context("fork")
        )

    def submit(
        self, program: str, suite: dict[str, Any], limits: dict[str, Any] | None = None, mode: str = "all"
    ) -> concurrent.futures.Future[dict[str, Any]]:
        """Schedules one submission; the future yields its judgement dict (never raises)."""
        timeout = run_budget_s(suite, limits) + POOL_SLACK_S
        marker = jail.new_marker()
        inner = self._pool.schedule(_judge_task, args=(program, suite, limits, mode, marker), timeout=timeout)
        outer: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()

        def finish(fut: concurrent.futures.Future[dict[str, Any]]) -> None:
            try:
                outer.set_result(fut.result())
            except concurrent.futures.TimeoutError:
                jail.kill_jails(marker)
                outer.set_result(sandbox_error(f"the judge exceeded its {timeout:.1f} s budget"))
            except pebble.ProcessExpired as e:
                jail.kill_jails(marker)
                outer.set_result(sandbox_error(f"the judge worker died: {e}"))
            except Exception as e:
                outer.set_result(sandbox_error(f"the judge failed: {type(e).__name__}: {e}"))

        inner.add_done_callback(finish)
        return outer

    def judge(
        self, program: str, suite: dict[str, Any], limits: dict[str, Any] | None = None, mode: str = "all"
    ) -> dict[str, Any]:
        """Judges one submission; blocking. See :func:`rljudge_sandbox.runner.execute`."""
        return self.submit(program, suite, limits, mode).result()

    def close(self) -> None:
        """Stops the workers (waiting for running jobs) and frees the pool."""
        self._pool.close()
        self._pool.join()

    def __enter__(self) -> CodeJudge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
