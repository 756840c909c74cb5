"""Re-queue chunks whose worker died; give up on a chunk after ``MAX_ATTEMPTS``.

Runs in every ``rljudge worker`` supervisor. A chunk is dead when it sits in RQ's started registry,
started more than a lease TTL ago, and its lease has expired (see ``lease.py``). It is then
enqueued again as a fresh job carrying ``attempt + 1``; the re-run skips items that already have a
result, so nothing is judged into two results. After ``MAX_ATTEMPTS`` the chunk's unfinished items
get ``infra_failed`` results instead of looping forever on an input that kills workers.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC

from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from rljudge_service import keys

log = logging.getLogger("rljudge.workers.reaper")

MAX_ATTEMPTS = 3


def reap(redis: Redis, lease_ttl_s: float, now: float | None = None) -> list[str]:
    """Re-queue (or give up on) every dead chunk; returns the ids of the jobs handled."""
    now = time.time() if now is None else now
    handled = []
    for name in keys.QUEUES:
        queue = Queue(name, connection=redis, serializer=JSONSerializer)
        registry = StartedJobRegistry(queue=queue)
        for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False):
            if redis.exists(keys.lease(job_id)):
                continue
            try:
                job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
            except NoSuchJobError:
                redis.zrem(registry.key, f"{job_id}:{execution_id}")
                continue
            if job.get_status(refresh=False) != JobStatus.STARTED:
                continue  # finished or failed while we looked: RQ is finalising it
            started = job.started_at.replace(tzinfo=UTC).timestamp() if job.started_at else 0.0
            if now - started < lease_ttl_s or not redis.set(keys.reap_lock(job_id), "1", nx=True, ex=60):
                continue
            _requeue(redis, queue, registry, job)
            handled.append(job_id)
    return handled


def _requeue(redis: Redis, queue: Queue, registry: StartedJobRegistry, job: Job) -> None:
    """Enqueue the chunk again (or give up on it), then forget the dead execution: in that order,
    so a crash of the reaper itself can duplicate a chunk (harmless) but never lose one."""
    from .jobs import give_up

    chunk = dict(job.args[0])
    attempt = int(chunk.get("attempt", 1)) + 1
    if attempt > MAX_ATTEMPTS:
        log.error("chunk %s died %d times; its unfinished items are infra_failed", job.id, MAX_ATTEMPTS)
        give_up(redis, chunk, f"the worker judging this item died {MAX_ATTEMPTS} times")
    else:
        chunk["attempt"] = attempt
        base = re.sub(r"-r\d+$", "", job.id)
        log.warning("chunk %s lost its worker; re-queued (attempt %d of %d)", base, attempt, MAX_ATTEMPTS)
        queue.enqueue(
            keys.JUDGE_CHUNK,
            chunk,
            job_id=f"{base}-r{attempt}",
            job_timeout=job.timeout,
            result_ttl=0,
            failure_ttl=job.failure_ttl,
            at_front=True,
        )
    registry.remove_executions(job)
    job.delete()
