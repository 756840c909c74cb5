"""A Pebble process pool that judges submissions with a hard per-submission timeout."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from collections.abc import Callable
from typing import Any

import pebble

from . import jail
from .runner import JailSession, run_budget_s, sandbox_error

POOL_SLACK_S = 2.0
"""Added to :func:`run_budget_s` for the worker's own overhead before Pebble kills it."""


_session: JailSession | None = None
"""The warm jail of this pool process (each Pebble worker process has its own)."""


def _judge_task(
    program: str, suite: dict[str, Any], limits: dict[str, Any] | None, mode: str, scope: str | None
) -> dict[str, Any]:
    """Runs in a pool process: judges in this process's warm jail when it serves ``scope``, else
    in a new one (which stays warm for the next submission of the same scope)."""
    global _session
    if _session is None or not _session.reusable_for(scope):
        if _session is not None:
            _session.close()
        _session = JailSession(scope)
    result = _session.judge(program, suite, limits, mode)
    if scope is None or not _session.isolated:
        _session.close()
    return result


class CodeJudge:
    """Owns a ``pebble.ProcessPool`` (fork context) whose workers each keep one jail.

    ``judge`` blocks until the verdict; ``submit`` returns a future. ``scope`` names whose
    submissions may share a jail (the gateway passes the batch id: a jail never holds two callers'
    code); a pool process keeps its jail warm for the next submission of the same scope and
    replaces it for another scope, after ``MAX_SUBMISSIONS_PER_JAIL`` submissions, or after any
    failure. ``scope=None``: a jail for this submission alone.

    On a Pebble timeout or a dead worker the result is a ``sandbox_error`` judgement, after every
    jail whose starting process is gone has been killed (the jail also dies with its worker through
    PR_SET_PDEATHSIG).
    """

    def __init__(self, max_workers: int = 2, max_tasks: int = 0, initializer: Callable[[], None] | None = None) -> None:
        """``initializer`` runs first in each pool process (the worker's: back on every CPU)."""
        self._pool = pebble.ProcessPool(
            max_workers=max_workers,
            max_tasks=max_tasks,
            initializer=initializer,
            context=multiprocessing.get_context("fork"),
        )

    def submit(
        self,
        program: str,
        suite: dict[str, Any],
        limits: dict[str, Any] | None = None,
        mode: str = "all",
        scope: str | None = None,
    ) -> concurrent.futures.Future[dict[str, Any]]:
        """Schedules one submission; the future yields its judgement dict (never raises)."""
        timeout = run_budget_s(suite, limits) + POOL_SLACK_S
        inner = self._pool.schedule(_judge_task, args=(program, suite, limits, mode, scope), timeout=timeout)
        outer: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()

        def finish(fut: concurrent.futures.Future[dict[str, Any]]) -> None:
            try:
                outer.set_result(fut.result())
            except concurrent.futures.TimeoutError:
                jail.kill_orphaned_jails()
                outer.set_result(sandbox_error(f"the judge exceeded its {timeout:.1f} s budget"))
            except pebble.ProcessExpired as e:
                jail.kill_orphaned_jails()
                outer.set_result(sandbox_error(f"the judge worker died: {e}"))
            except Exception as e:
                outer.set_result(sandbox_error(f"the judge failed: {type(e).__name__}: {e}"))

        inner.add_done_callback(finish)
        return outer

    def judge(
        self,
        program: str,
        suite: dict[str, Any],
        limits: dict[str, Any] | None = None,
        mode: str = "all",
        scope: str | None = None,
    ) -> dict[str, Any]:
        """Judges one submission; blocking. See :func:`rljudge_sandbox.runner.execute`."""
        return self.submit(program, suite, limits, mode, scope).result()

    def close(self) -> None:
        """Stops the workers (waiting for running jobs) and frees the pool; returns once the
        workers' warm jails are gone too."""
        self._pool.close()
        self._pool.join()
        jail.kill_orphaned_jails(wait_s=5.0)

    def __enter__(self) -> CodeJudge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
