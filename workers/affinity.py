"""Which CPU each RQ worker of a pool runs on (``RLJUDGE_PIN_WORKERS``: ``auto``, ``on``, ``off``).

A worker's RQ process and its math judge process take turns: one waits while the other works (the
chunk goes to the judge process, its verdicts come back). Pinned, the pair shares one CPU and each
worker has its own: a hand-off wakes a process on the core it is running on (no wake-up of another
core, the chunk's data still in that core's cache), and one worker's Redis round trips do not land
on the core where another worker is judging. Measured with 2 workers on 2 cores, uncached batches of
1,024 math items, ``auto`` against ``off`` on stacks taking turns (``python -m loadtests.bench_settings
--scaling``, ``loadtests/results/bench_settings_scaling_pin.md``): 246.7 -> 233.5 ms a batch (-5.4%)
on 2 workers; 1 worker, which ``auto`` leaves unpinned, unchanged.

The pool parent pins itself to the worker's CPU around the fork (``pinned``), so the worker starts
pinned and everything it forks later inherits it: its Pebble math process and the threads RQ and
Pebble start. Code judging is not pinned (``unpin`` runs first in each code pool process): a worker
runs several submissions at once (``code_concurrency``), and those must spread over the CPUs.

``auto`` pins when the pool has as many workers on every CPU it may run on (one each, by default),
unless a CFS quota caps the CPU time of its cgroup at fewer CPUs than that: a container with a CPU
limit on a shared node (a Kubernetes pod without exclusive CPUs), whose neighbours would pin their
workers to the same CPU numbers. With fewer workers than CPUs it does not pin: a pinned worker
cannot move off a core that the gateway, Redis or a client also wakes up on (1 worker on 2 CPUs
judged those batches 3% slower pinned); nor with a number that does not divide evenly (3 workers
on 2 CPUs: two would share a core the scheduler could not relieve). The quota is read from the
process's own cgroup as mounted in its namespace (``quota_cpus``: a container's; a quota set on a
parent cgroup only is not seen). Where several pools share a machine's CPUs without quotas, set
``off``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("rljudge.workers.affinity")

#: The CPUs the pool may run on, as its parent found them before pinning anything (``remember``):
#: what ``unpin`` gives back to a code pool process forked from a pinned worker.
_allowed: frozenset[int] | None = None

#: Where the CFS quota of this process's cgroup is found: cgroup v2 (``cpu.max``: "quota period" or
#: "max period"), then v1 (``cpu.cfs_quota_us``: -1 for none, and ``cpu.cfs_period_us``).
CGROUP_V2_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_CPU = (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))


def quota_cpus(v2: Path = CGROUP_V2_CPU_MAX, v1: tuple[Path, Path] = CGROUP_V1_CPU) -> float | None:
    """The CPUs' worth of time the cgroup's CFS quota allows (2.0 for a Kubernetes limit of 2), or
    None when no quota is set or none can be read."""
    with contextlib.suppress(OSError, ValueError):
        quota, period = v2.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    with contextlib.suppress(OSError, ValueError):
        quota_us, period_us = (int(path.read_text()) for path in v1)
        return None if quota_us < 0 else quota_us / period_us
    return None


def should_pin(setting: str, workers: int, allowed: frozenset[int], quota: float | None) -> bool:
    """Whether a pool of ``workers`` whose processes may run on ``allowed`` CPUs, under a CFS quota
    of ``quota`` CPUs (None: none), pins its workers, by the setting (``auto``: see the module
    docstring)."""
    if setting == "on":
        return True
    if setting == "off":
        return False
    shared = quota is not None and len(allowed) > math.ceil(quota)
    return not shared and workers % len(allowed) == 0  # (workers >= 1: at least one on each CPU)


def remember(setting: str, workers: int) -> bool:
    """In the pool parent, before any worker starts: note the CPUs it may run on and say whether
    its ``workers`` are pinned."""
    global _allowed
    _allowed = frozenset(os.sched_getaffinity(0))
    pin = should_pin(setting, workers, _allowed, quota_cpus())
    log.info("workers %s (CPUs %s)", "pinned, one CPU each" if pin else "not pinned", sorted(_allowed))
    return pin


def next_cpu(taken: list[int]) -> int:
    """The CPU for a new worker: the one the fewest live workers hold (``taken``: one entry per
    live pinned worker), the lowest first; a respawned worker takes its dead predecessor's."""
    assert _allowed is not None, "remember() runs first, in the pool parent"
    return min(sorted(_allowed), key=taken.count)


@contextlib.contextmanager
def pinned(cpu: int) -> Iterator[None]:
    """This process on ``cpu`` alone meanwhile (a process forked inside starts pinned there), then
    back on the CPUs it had."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def unpin() -> None:
    """Back on every CPU the pool may use (a code pool process forked from a pinned worker; an
    unpinned one is on them already). A failure is logged, not raised: it runs as a Pebble pool's
    initializer, where an exception would break the pool, and a pinned jail still judges."""
    try:
        if _allowed is not None and os.sched_getaffinity(0) != _allowed:
            os.sched_setaffinity(0, _allowed)
    except OSError as exc:
        log.warning("could not put a code judging process back on CPUs %s: %s", sorted(_allowed or ()), exc)


def usable_cpus() -> int:
    """The CPUs this process may run on (a cpuset container's, not the host's): the default number
    of workers."""
    return len(os.sched_getaffinity(0)) or 1
