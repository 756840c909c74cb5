"""Chunk leases: how the fleet notices that a worker died in the middle of a chunk.

While a chunk runs, its worker keeps ``rljudge:lease:{job_id}`` alive with a short TTL
(``RLJUDGE_LEASE_TTL_S``, 15 s). A worker killed with SIGKILL (or a host that vanished) stops
refreshing it; the lease expires and the reaper (``reaper.py``) re-queues the chunk. RQ's own
abandoned-job detection waits for the job's whole timeout, far too long for a trainer's step.

The worker takes the lease in the transaction that puts the chunk in RQ's started registry (see
``JudgeWorker.prepare_execution``), so a started chunk never lacks one, and keeps it until RQ has
finalised the job; one refresher thread per worker process keeps it alive meanwhile.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError

from rljudge_service import keys

log = logging.getLogger("rljudge.workers.lease")


class Lease:
    """The lease of the chunk this worker process is judging (one chunk at a time)."""

    def __init__(self, redis: Redis, ttl_s: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._key: str | None = None
        self._refresher: threading.Thread | None = None

    def acquire(self, pipeline: Pipeline, job_id: str) -> None:
        """Take the lease of ``job_id`` when ``pipeline`` executes; refresh it until ``release``."""
        self._key = keys.lease(job_id)
        pipeline.set(self._key, self.owner, ex=self.ttl_s)
        if self._refresher is None:  # started once, in the worker process (after the pool forked)
            self._refresher = threading.Thread(target=self._refresh, name="lease-refresher", daemon=True)
            self._refresher.start()

    def release(self) -> None:
        """Stop refreshing. The lease runs out by itself: deleting it would open a window in which
        RQ has not yet finalised the job and a reaper would take it for abandoned."""
        self._key = None

    def _refresh(self) -> None:
        while True:
            time.sleep(self.ttl_s / 3)
            key = self._key
            if key is None:
                continue
            try:
                self.redis.set(key, self.owner, ex=self.ttl_s)
            except RedisError as exc:  # Redis restarting: keep trying, the chunk itself will notice
                log.warning("could not refresh lease %s: %s", key, exc)
