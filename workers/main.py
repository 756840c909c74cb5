"""``rljudge worker``: a pool of RQ workers that judge chunks.

The parent imports math-verify and the job code once, then forks the workers (RQ's WorkerPool), so
each starts ready. Workers are ``SimpleWorker``s (no fork per job: a fork costs ~9 ms, a chunk's
isolation comes from the Pebble pool and the jail anyway). A worker that dies is replaced.
"""

from __future__ import annotations

import logging
import os

from redis import Redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from rq.worker_pool import WorkerPool

from rljudge_service import keys

from . import jobs, math_judge, pools
from .settings import get_settings

log = logging.getLogger("rljudge.workers")


class JudgeWorker(SimpleWorker):
    """An RQ worker that judges in this process and stops its judging pools when it exits."""

    def teardown(self) -> None:
        pools.shutdown()
        super().teardown()


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
    pool = WorkerPool(
        queues or list(keys.QUEUES),
        connection=connection,
        num_workers=workers or os.cpu_count() or 1,
        worker_class=JudgeWorker,
        serializer=JSONSerializer,
    )
    pool.start(burst=burst, logging_level=os.environ.get("RLJUDGE_LOG_LEVEL", "WARNING"))
