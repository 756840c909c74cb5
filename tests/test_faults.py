"""Fault injection: every accepted item gets exactly one final result when workers, Redis or the
gateway die mid-load. Each test runs its own private stack (Redis, gateway, workers) so that what
it kills is its own. Counts are printed for the record (``pytest -s``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from redis import Redis
from rq import Worker

from rljudge import BatchResult, JudgeClient, MathItem
from rljudge_cli.stack import free_port
from rljudge_service.settings import Settings

from .conftest import RedisServer, ThreadedGateway, start_workers, stop_process_group, wait_until

FAULT_ENV = {"RLJUDGE_LEASE_TTL_S": "2"}


def slow_items(count: int, seconds: float = 1.0) -> list[dict]:
    """Items that take ``seconds`` each: power towers math-verify never finishes, killed at the limit."""
    return [
        {
            "kind": "math",
            "id": f"slow-{i}",
            "response": rf"\boxed{{9^{{9^{{9^{{9^{{{i + 2}}}}}}}}}}}",
            "gold": "1",
            "timeout_s": seconds,
        }
        for i in range(count)
    ]


@contextmanager
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.dir.cleanup()


def workers_up(redis_url: str, count: int) -> subprocess.Popen[bytes]:
    process = start_workers(redis_url, count, FAULT_ENV)
    connection = Redis.from_url(redis_url)
    wait_until(
        lambda: sum(w.pid in _group_pids(process) for w in Worker.all(connection=connection)) >= count,
        60,
        "workers to register",
    )
    return process


def _group_pids(process: subprocess.Popen[bytes]) -> set[int]:
    import psutil

    try:
        return {p.pid for p in psutil.Process(process.pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def account(batch: BatchResult, sent: int, redis: Redis) -> dict[str, int]:
    """Items sent, results received, duplicates and losses (results are a hash: one per index)."""
    indices = [r.index for r in batch.results]
    written = sum(int(v) for k, v in redis.hgetall("rljudge:stats").items() if k.startswith(b"items|"))
    counts = {
        "sent": sent,
        "received": len(batch.results),
        "duplicates": len(indices) - len(set(indices)) + max(0, written - sent),
        "lost": sent - len(set(indices)),
    }
    print(counts)
    return counts


def test_sigkilled_worker_chunk_is_rerun_by_another(capsys: pytest.CaptureFixture[str]) -> None:
    with (
        private_redis() as redis_server,
        ThreadedGateway(Settings(redis_url=redis_server.url, math_chunk_items=2)) as gateway,
    ):
        redis = Redis.from_url(redis_server.url)
        first = workers_up(redis_server.url, 1)
        second = None
        try:
            batch_id = httpx.post(f"{gateway.url}/v1/batches", json={"items": slow_items(4)}).json()["batch_id"]
            wait_until(lambda: any(redis.scan_iter(match="rljudge:lease:*")), 30, "a chunk to start")
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
            second = workers_up(redis_server.url, 1)
            done = httpx.get(f"{gateway.url}/v1/batches/{batch_id}", params={"wait_s": 60}, timeout=70)
            batch = BatchResult.model_validate_json(done.content)
            counts = account(batch, 4, redis)
            assert batch.done
            assert counts == {"sent": 4, "received": 4, "duplicates": 0, "lost": 0}
            assert all((r.status, r.verdict) == ("scored", "time_limit") for r in batch.results)
        finally:
            stop_process_group(first)
            if second is not None:
                stop_process_group(second)


def test_sigterm_worker_finishes_its_chunk_then_exits() -> None:
    with (
        private_redis() as redis_server,
        ThreadedGateway(Settings(redis_url=redis_server.url, math_chunk_items=2)) as gateway,
    ):
        redis = Redis.from_url(redis_server.url)
        first = workers_up(redis_server.url, 1)
        second = None
        try:
            batch_id = httpx.post(f"{gateway.url}/v1/batches", json={"items": slow_items(4)}).json()["batch_id"]
            wait_until(lambda: any(redis.scan_iter(match="rljudge:lease:*")), 30, "a chunk to start")
            first.send_signal(signal.SIGTERM)  # like Kubernetes: to the supervisor (PID 1) only
            assert first.wait(timeout=30) == 0
            finished = BatchResult.model_validate_json(httpx.get(f"{gateway.url}/v1/batches/{batch_id}").content)
            assert finished.completed >= 2  # the chunk in progress was finished, not dropped
            assert redis.llen("rq:queue:rljudge-math") >= 1  # the rest waits for another worker
            second = workers_up(redis_server.url, 1)
            done = httpx.get(f"{gateway.url}/v1/batches/{batch_id}", params={"wait_s": 60}, timeout=70)
            batch = BatchResult.model_validate_json(done.content)
            assert account(batch, 4, redis) == {"sent": 4, "received": 4, "duplicates": 0, "lost": 0}
        finally:
            stop_process_group(first)
            if second is not None:
                stop_process_group(second)


def test_gateway_restart_keeps_async_batches_fetchable() -> None:
    with private_redis() as redis_server:
        redis = Redis.from_url(redis_server.url)
        port = free_port()
        env = {**os.environ, "RLJUDGE_REDIS_URL": redis_server.url}
        argv = [sys.executable, "-m", "rljudge_cli.main", "gateway", "--port", str(port)]
        url = f"http://127.0.0.1:{port}"

        def gateway() -> subprocess.Popen[bytes]:
            process = subprocess.Popen(argv, env=env, start_new_session=True)

            def up() -> bool:
                try:
                    return httpx.get(f"{url}/healthz").status_code == 200
                except httpx.TransportError:
                    return False

            wait_until(up, 30, "the gateway")
            return process

        first = gateway()
        workers = None
        try:
            items = [{"kind": "math", "response": rf"\boxed{{{i}}}", "gold": str(i)} for i in range(50)]
            batch_id = httpx.post(f"{url}/v1/batches", json={"items": items}).json()["batch_id"]
            first.send_signal(signal.SIGTERM)
            assert first.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
            workers = workers_up(redis_server.url, 1)  # judges while no gateway runs
            second = gateway()
            try:
                done = httpx.get(f"{url}/v1/batches/{batch_id}", params={"wait_s": 30}, timeout=40)
                batch = BatchResult.model_validate_json(done.content)
                assert account(batch, 50, redis) == {"sent": 50, "received": 50, "duplicates": 0, "lost": 0}
                assert [r.reward for r in batch.results] == [1.0] * 50
            finally:
                stop_process_group(second)
        finally:
            stop_process_group(first)
            if workers is not None:
                stop_process_group(workers)


async def test_redis_restart_mid_load_loses_nothing() -> None:
    """Redis (no persistence) is killed and restarted while the client sends batches: the gateway
    answers 503 + Retry-After while it is down, the client resubmits, every item gets one result."""
    with private_redis() as redis_server, ThreadedGateway(Settings(redis_url=redis_server.url)) as gateway:
        workers = workers_up(redis_server.url, 1)
        statuses: list[int] = []
        try:
            batches = [
                [MathItem(id=f"{b}-{i}", response=rf"\boxed{{{i}}}", gold=str(i)) for i in range(40)] for b in range(6)
            ]
            restarted = threading.Event()

            def restart_redis() -> None:
                redis_server.process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
                redis_server.process.wait()  # type: ignore[union-attr]
                try:
                    statuses.append(
                        httpx.post(
                            f"{gateway.url}/v1/judge", json={"items": [{"kind": "math", "response": "x", "gold": "1"}]}
                        ).status_code
                    )
                    statuses.append(
                        int(
                            httpx.post(
                                f"{gateway.url}/v1/judge",
                                json={"items": [{"kind": "math", "response": "x", "gold": "1"}]},
                            ).headers.get("retry-after", "0")
                        )
                    )
                finally:
                    redis_server.start()
                    restarted.set()

            results = []
            async with JudgeClient(gateway.url, backoff_s=0.2, retries=10) as client:
                for number, batch in enumerate(batches):
                    if number == 2:
                        thread = threading.Thread(target=restart_redis)
                        thread.start()
                    results.extend(await client.judge(batch))
                thread.join()
            assert restarted.is_set()
            assert statuses[0] == 503 and statuses[1] >= 1
            sent = sum(len(b) for b in batches)
            ids = [r.id for r in results]
            counts = {
                "sent": sent,
                "received": len(results),
                "duplicates": len(ids) - len(set(ids)),
                "lost": sent - len(set(ids)),
            }
            print(counts)
            assert counts == {"sent": 240, "received": 240, "duplicates": 0, "lost": 0}
            assert all(r.status == "scored" and r.reward == 1.0 for r in results)
        finally:
            stop_process_group(workers)


def test_deadline_stops_the_fleet_from_judging_the_rest() -> None:
    """After the deadline, a worker skips the unfinished items of its chunk instead of judging them."""
    with (
        private_redis() as redis_server,
        ThreadedGateway(Settings(redis_url=redis_server.url, math_chunk_items=16)) as gateway,
    ):
        redis = Redis.from_url(redis_server.url)
        workers = workers_up(redis_server.url, 1)
        try:
            started = time.monotonic()
            slow = httpx.post(f"{gateway.url}/v1/judge", json={"items": slow_items(10), "deadline_s": 1.5}, timeout=30)
            batch = BatchResult.model_validate_json(slow.content)
            assert time.monotonic() - started < 5
            assert sum(r.status == "unscored" for r in batch.results) >= 8
            quick = httpx.post(
                f"{gateway.url}/v1/judge",
                json={"items": [{"kind": "math", "response": r"\boxed{1}", "gold": "1"}]},
                timeout=30,
            )
            assert quick.json()["results"][0]["reward"] == 1.0
            # the worker was free again within about one item's limit, not after all ten items
            assert time.monotonic() - started < 6
            judged = sum(
                int(v) for k, v in redis.hgetall("rljudge:stats").items() if k.startswith(b"items|math|scored")
            )
            assert judged <= 3
        finally:
            stop_process_group(workers)
