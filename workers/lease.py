"""Chunk leases: how the fleet notices that a worker died in the middle of a chunk.

While a chunk runs, a daemon thread of its worker keeps ``rljudge:lease:{job_id}`` alive with a
short TTL (``RLJUDGE_LEASE_TTL_S``, 15 s). A worker killed with SIGKILL (or a host that vanished)
stops refreshing it; the lease expires and the reaper (``reaper.py``) re-queues the chunk. RQ's own
abandoned-job detection waits for the job's whole timeout, far too long for a trainer's step.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Iterator

from redis import Redis
from redis.exceptions import RedisError

from rljudge_service import keys

log = logging.getLogger("rljudge.workers.lease")


@contextlib.contextmanager
def held(redis: Redis, job_id: str, ttl_s: int) -> Iterator[None]:
    """Hold the lease of ``job_id`` (refreshed every ``ttl_s / 3``) for the ``with`` block."""
    key = keys.lease(job_id)
    owner = f"{socket.gethostname()}:{os.getpid()}"
    redis.set(key, owner, ex=ttl_s)
    stop = threading.Event()

    def refresh() -> None:
        while not stop.wait(ttl_s / 3):
            try:
                redis.set(key, owner, ex=ttl_s)
            except RedisError as exc:  # Redis restarting: keep trying, the chunk itself will notice
                log.warning("could not refresh lease %s: %s", key, exc)

    thread = threading.Thread(target=refresh, name=f"lease-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        # Stop refreshing but let the lease run out by itself: deleting it here would open a window
        # in which RQ has not yet finalised the job and a reaper would take it for abandoned.
        stop.set()
        thread.join()
