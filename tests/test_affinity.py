"""Worker pinning (``workers/affinity.py``): each worker and its math judge process on a CPU of its
own, code judging on every CPU, a respawned worker on its predecessor's CPU; ``auto`` decided by the
cgroup's CFS quota. The pools run for real, on a private Redis, with the gateway in front."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from redis import Redis
from rq import Worker

from rljudge_service.settings import Settings
from rljudge_workers import affinity

from .conftest import ThreadedGateway, judge, start_workers, stop_process_group, wait_until
from .test_faults import private_redis

ALLOWED = sorted(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("setting", "workers", "allowed", "quota", "pins"),
    [
        ("auto", 2, {0, 1}, None, True),  # a whole machine, or CPUs of its own without a quota
        ("auto", 4, {0, 1}, None, True),  # more workers than CPUs: two on each
        ("auto", 3, {0, 1}, None, False),  # two would share a core the scheduler could not relieve
        ("auto", 1, {0, 1}, None, False),  # a CPU left for the gateway, Redis and clients to share
        ("auto", 2, set(range(64)), 2.0, False),  # a pod with a CPU limit on a shared 64-CPU node
        ("auto", 64, set(range(64)), 2.0, False),
        ("auto", 2, {4, 5}, 2.0, True),  # the static CPU manager: 2 exclusive CPUs, their quota
        ("auto", 2, {4, 5}, 1.5, True),  # a quota of 1.5 CPUs spread over 2: still these 2 CPUs alone
        ("auto", 3, {4, 5, 6}, 1.5, False),
        ("on", 1, set(range(64)), 2.0, True),
        ("off", 2, {0, 1}, None, False),
    ],
)
def test_auto_pins_a_pool_that_fills_cpus_no_quota_shares(
    setting: str, workers: int, allowed: set[int], quota: float | None, pins: bool
) -> None:
    assert affinity.should_pin(setting, workers, frozenset(allowed), quota) is pins


def test_quota_read_from_cgroup_v2_then_v1(tmp_path: Path) -> None:
    v2, quota_us, period_us = tmp_path / "cpu.max", tmp_path / "cfs_quota_us", tmp_path / "cfs_period_us"
    v1 = (quota_us, period_us)
    assert affinity.quota_cpus(v2, v1) is None  # neither file: no quota known
    v2.write_text("max 100000\n")
    assert affinity.quota_cpus(v2, v1) is None
    v2.write_text("250000 100000\n")
    assert affinity.quota_cpus(v2, v1) == 2.5
    v2.unlink()
    quota_us.write_text("-1\n")
    period_us.write_text("100000\n")
    assert affinity.quota_cpus(v2, v1) is None
    quota_us.write_text("150000\n")
    assert affinity.quota_cpus(v2, v1) == 1.5


@pytest.fixture()
def pinned_pool() -> Iterator[tuple[str, psutil.Process]]:
    """A private Redis, 2 workers with ``RLJUDGE_PIN_WORKERS=on`` and a gateway: (URL, pool parent)."""
    with private_redis() as server:
        process = start_workers(server.url, 2, {"RLJUDGE_PIN_WORKERS": "on"})
        connection = Redis.from_url(server.url)
        try:
            wait_until(lambda: Worker.count(connection=connection) >= 2, 60, "2 pinned workers")
            with ThreadedGateway(Settings(redis_url=server.url)) as gateway:
                yield gateway.url, psutil.Process(process.pid)
        finally:
            stop_process_group(process)


def worker_cpus(pool: psutil.Process) -> dict[int, list[int]]:
    return {worker.pid: worker.cpu_affinity() for worker in pool.children()}


def judge_processes(pool: psutil.Process) -> dict[int, tuple[int, list[int]]]:
    """Each process a worker forked (its Pebble pools'): pid -> (the worker's pid, its CPUs)."""
    return {p.pid: (w.pid, p.cpu_affinity()) for w in pool.children() for p in w.children()}


MATH = [{"kind": "math", "response": f"so \\boxed{{{i}}}", "gold": str(i % 3)} for i in range(64)]
CODE = [
    {
        "kind": "code",
        "code": f"print(input())  # {i}",
        "tests": {"type": "stdio", "cases": [{"input": "1", "output": "1"}]},
    }
    for i in range(4)
]


def test_each_worker_and_its_math_process_own_a_cpu_and_code_runs_on_all(
    pinned_pool: tuple[str, psutil.Process],
) -> None:
    url, pool = pinned_pool
    assert pool.cpu_affinity() == ALLOWED  # the parent is pinned only while it forks
    cpus = worker_cpus(pool)
    assert sorted(cpu for mine in cpus.values() for cpu in mine) == sorted(ALLOWED[i % len(ALLOWED)] for i in range(2))
    for worker in pool.children():  # RQ's threads, started after the fork, too
        for thread in worker.threads():
            with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
                assert os.sched_getaffinity(thread.id) == set(cpus[worker.pid])

    before = judge_processes(pool)  # RQ's scheduler, forked by a worker, may be among them
    math = judge(url, MATH)
    assert [r.verdict for r in math.results[:4]] == ["correct", "correct", "correct", "wrong_answer"]
    math_processes = {pid: v for pid, v in judge_processes(pool).items() if pid not in before}
    assert math_processes, "no math judge process started"
    assert all(mine == cpus[worker] for worker, mine in math_processes.values())

    code = judge(url, CODE)
    assert [r.verdict for r in code.results] == ["correct"] * len(CODE)
    code_processes = {
        pid: v for pid, v in judge_processes(pool).items() if pid not in before.keys() | math_processes.keys()
    }
    assert code_processes, "no code pool process started"
    assert all(mine == ALLOWED for _worker, mine in code_processes.values())


def test_a_respawned_worker_takes_its_predecessors_cpu(pinned_pool: tuple[str, psutil.Process]) -> None:
    _url, pool = pinned_pool
    before = worker_cpus(pool)
    victim, cpu = next(iter(before.items()))
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(set(worker_cpus(pool)) - set(before)) == 1, 60, "the pool to respawn the worker")
    after = worker_cpus(pool)
    (new,) = set(after) - set(before)
    assert after[new] == cpu
