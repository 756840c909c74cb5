"""``rljudge worker``: a pool of RQ workers that judge chunks.

The parent imports math-verify and the job code once, then forks the workers (RQ's WorkerPool), so
each starts ready. Workers are ``SimpleWorker``s (no fork per job: a fork costs ~9 ms, a chunk's
isolation comes from the Pebble pool and the jail anyway). A worker that dies is replaced.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.executions import Execution
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.utils import now
from rq.worker import WorkerStatus
from rq.worker_pool import WorkerPool

from rljudge_service import keys
from rljudge_service.gc_freeze import freeze_startup_objects

from . import affinity, jobs, math_judge, pools, reaper
from .lease import Lease
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
        self.lease = Lease(self.connection, get_settings().lease_ttl_s)
        self._prepared: str | None = None

    def prepare_execution(self, job: Job) -> Execution:
        """RQ's two transactions before a job runs (``rq.executions.prepare_execution``: the
        execution, the started registry, the worker's state; ``prepare_job_execution``: the
        heartbeats and the job's status) and the chunk's lease, in one: two round trips less on
        every chunk's path. Mirrors RQ 3.0 (the dependency is pinned below 4)."""
        with self.connection.pipeline() as pipe:
            ttl = self.get_heartbeat_ttl(job)
            execution = Execution.create(job, ttl, pipeline=pipe, worker_name=self.name)
            self.executions[execution.id] = execution
            self.set_state(WorkerStatus.BUSY, pipeline=pipe)
            self.heartbeat(ttl, pipeline=pipe)
            job.heartbeat(now(), ttl, pipeline=pipe)
            job.prepare_for_execution(self.name, pipeline=pipe)
            pipe.persist(job.key)
            self.lease.acquire(pipe, job.id)
            try:
                pipe.execute()
            except BaseException:
                self.lease.release()
                raise
        self._prepared = job.id
        return execution

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        """Done by ``prepare_execution`` already (RQ's own when it also has to clean an
        intermediate queue: a worker of one queue)."""
        if job.id != self._prepared or remove_from_intermediate_queue:
            super().prepare_job_execution(job, remove_from_intermediate_queue)
        self._prepared = None

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        """RQ's ``perform_job`` (the job, then its success or failure bookkeeping) under the lease."""
        try:
            return super().perform_job(job, queue, execution)
        finally:
            self.lease.release()

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

    def unsubscribe(self) -> None:
        """RQ's, in an order that cannot hang a warm shutdown for a minute. RQ unsubscribes, then
        stops its pub/sub thread and waits for it; when the thread reads the unsubscribe reply before
        the stop, it goes on to wait up to 60 s (RQ's ``sleep_time``) for a subscription that never
        comes, and the worker exits that much later (seen in the fleet test). Here the thread is
        told to stop first, and waited for at most a second (it is a daemon thread)."""
        if self.pubsub_thread:
            stop = self.pubsub_thread.stop
            if "timeout" in inspect.signature(stop).parameters:
                stop(timeout=0)  # redis-py 8 joins the thread in ``stop``; ``timeout`` bounds that
            else:
                stop()  # earlier releases only clear its running flag
            self.pubsub.unsubscribe()
            self.pubsub_thread.join(timeout=1)
            self.pubsub.close()

    def teardown(self) -> None:
        pools.shutdown()
        super().teardown()


class JudgeWorkerPool(WorkerPool):
    """RQ's worker pool plus the reaper that re-queues chunks of workers that died, and, when
    ``pin`` (``affinity.py``), each worker started on a CPU of its own."""

    _last_reap = 0.0

    def __init__(self, *args: Any, pin: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pin = pin
        self.cpus: dict[str, int] = {}  # worker name -> its CPU

    def start_worker(self, *args: Any, **kwargs: Any) -> None:
        """RQ's, forking the worker while this process is pinned to the worker's CPU."""
        if not self.pin:
            super().start_worker(*args, **kwargs)
            return
        self.cpus = {name: cpu for name, cpu in self.cpus.items() if name in self.worker_dict}
        cpu = affinity.next_cpu(list(self.cpus.values()))
        before = set(self.worker_dict)
        with affinity.pinned(cpu):
            super().start_worker(*args, **kwargs)
        for name in set(self.worker_dict) - before:
            self.cpus[name] = cpu

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
    """Everything a worker needs, imported (and math-verify warmed up) before forking; then frozen
    out of the garbage collector's sight (``gc_freeze.freeze_startup_objects``)."""
    math_judge.warm_up()
    assert jobs.judge_chunk  # the job module and its imports
    freeze_startup_objects()


def run(
    redis_url: str | None = None, workers: int | None = None, burst: bool = False, queues: list[str] | None = None
) -> None:
    settings = get_settings()
    preload()
    connection = Redis.from_url(redis_url or settings.redis_url)
    workers = workers or affinity.usable_cpus()
    pin = affinity.remember(settings.pin_workers, workers)
    pool = JudgeWorkerPool(
        queues or list(keys.QUEUES),
        connection=connection,
        num_workers=workers,
        worker_class=JudgeWorker,
        serializer=JSONSerializer,
        pin=pin,
    )
    pool.start(burst=burst, logging_level=os.environ.get("RLJUDGE_LOG_LEVEL", "WARNING"))
