"""``rljudge worker``: a pool of RQ workers that judge chunks.

The parent imports math-verify and the job code once, then forks the workers (RQ's WorkerPool), so
each starts ready. Workers are ``SimpleWorker``s (no fork per job: a fork costs ~9 ms, a chunk's
isolation comes from the Pebble pool and the jail anyway). A worker that dies is replaced.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from rq.worker_pool import WorkerPool

from rljudge_service import keys

from . import jobs, math_judge, pools, reaper
from .settings import get_settings

log = logging.getLogger("rljudge.workers")


class JudgeWorker(SimpleWorker):
    """An RQ worker that judges in this process and stops its judging pools when it exits.

    A SimpleWorker sends no heartbeats while a job runs, so RQ would declare any chunk longer than
    its monitoring interval (+60 s) abandoned. Liveness is the chunk's lease instead (``lease.py``):
    RQ's own detection is pushed out to the job's timeout.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.job_monitoring_interval = 24 * 3600

    _beat_at = 0.0

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ's heartbeat, in one round trip instead of three, and not again within a second
        between jobs (the worker's key lives ``worker_ttl`` + 60 s; a job's own heartbeats, sent in
        RQ's pipelines, are untouched)."""
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)
            return
        if timeout is None and time.monotonic() - self._beat_at < 1.0:
            return
        self._beat_at = time.monotonic()
        with self.connection.pipeline(transaction=False) as pipe:
            super().heartbeat(timeout, pipe)
            pipe.execute()

    def set_state(self, state: str, pipeline: Any = None) -> None:
        """RQ's set_state, without rewriting a state the worker already has (one round trip a job)."""
        if pipeline is None and state == getattr(self, "_state", None):
            return
        super().set_state(state, pipeline)

    def teardown(self) -> None:
        pools.shutdown()
        super().teardown()


class JudgeWorkerPool(WorkerPool):
    """RQ's worker pool plus the reaper that re-queues chunks of workers that died."""

    _last_reap = 0.0

    def check_workers(self, respawn: bool = True) -> None:
        super().check_workers(respawn=respawn)
        now = time.monotonic()
        if now - self._last_reap >= min(5.0, get_settings().lease_ttl_s / 2):
            self._last_reap = now
            try:
                reaper.reap(self.connection, get_settings().lease_ttl_s)
            except RedisError as exc:
                log.warning("reaper could not reach Redis: %s", exc)


def preload() -> None:
    """Everything a worker needs, imported before forking."""
    math_judge.preload()
    assert jobs.judge_chunk  # the job module and its imports


def run(
    redis_url: str | None = None, workers: int | None = None, burst: bool = False, queues: list[str] | None = None
) -> None:
    settings = get_settings()
    preload()
    connection = Redis.from_url(redis_url or settings.redis_url)
    pool = JudgeWorkerPool(
        queues or list(keys.QUEUES),
        connection=connection,
        num_workers=workers or os.cpu_count() or 1,
        worker_class=JudgeWorker,
        serializer=JSONSerializer,
    )
    pool.start(burst=burst, logging_level=os.environ.get("RLJUDGE_LOG_LEVEL", "WARNING"))
