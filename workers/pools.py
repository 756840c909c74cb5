"""Process pools that run judging under a hard timeout (Pebble), one set per worker process.

An RQ worker process judges one chunk at a time; the expensive part runs in a Pebble pool process
that is killed (and transparently replaced) when an item overruns its limit. Pools are created
lazily in the worker process, after the worker pool has forked, from a parent that already
imported math-verify, so a replacement pool process starts in milliseconds.
"""

from __future__ import annotations

import logging
import multiprocessing

from pebble import ProcessPool

from rljudge_sandbox import CodeJudge

from . import affinity
from .settings import get_settings

log = logging.getLogger("rljudge.workers.pools")

_math_pool: ProcessPool | None = None
_code_judge: CodeJudge | None = None


def _init_math_process() -> None:
    from .math_judge import preload

    preload()


def math_pool() -> ProcessPool:
    """This process's math pool: one Pebble process (each RQ worker is one core's worth of work)."""
    global _math_pool
    if _math_pool is None or not _math_pool.active:
        _math_pool = ProcessPool(
            max_workers=1,
            initializer=_init_math_process,
            context=multiprocessing.get_context("fork"),
        )
    return _math_pool


def code_judge() -> CodeJudge:
    """This process's code judge (Firejail under a Pebble timeout; up to ``code_concurrency``
    submissions at once, each pool process keeping a warm jail for the batch it is judging). Its
    processes run on every CPU of the pool, the worker's pinning undone (``affinity.unpin``)."""
    global _code_judge
    if _code_judge is None:
        _code_judge = CodeJudge(max_workers=max(1, get_settings().code_concurrency), initializer=affinity.unpin)
    return _code_judge


def shutdown() -> None:
    """Stop this process's pools (called when the worker exits)."""
    global _math_pool, _code_judge
    if _math_pool is not None:
        _math_pool.stop()
        _math_pool.join(timeout=5)
        _math_pool = None
    if _code_judge is not None:
        _code_judge.close()
        _code_judge = None
