"""Shared fixtures: a real redis-server, real judge workers and a real gateway per test session.

- ``redis_url``: a private redis-server on a free loopback port (no persistence), for the session.
- ``workers``: ``rljudge worker --workers 2`` as a subprocess against that Redis.
- ``gateway``: the FastAPI app served by uvicorn in a thread on a free port; ``judge_url`` is its URL.
- ``make_gateway(**settings)``: more gateways with other settings (auth, limits) on the same Redis
  and workers.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from redis import Redis
from rq import Worker

from rljudge import BatchResult
from rljudge_cli.stack import free_port
from rljudge_service.app import create_app
from rljudge_service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).with_name("data")


_SAMPLE = re.compile(r"^(?P<name>[a-z_]+)\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+-]+)$")


def metric_total(url: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` on the gateway's /metrics whose labels include ``labels``."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or match["name"] != name:
            continue
        found = dict(re.findall(r'([a-z_]+)="([^"]*)"', match["labels"]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match["value"])
    return total


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``condition`` until it holds (for process start-up, where no event exists to wait on)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


def judge(url: str, items: list[dict[str, Any]], **body: object) -> BatchResult:
    """POST /v1/judge and return the parsed batch (asserting a 200)."""
    response = httpx.post(f"{url}/v1/judge", json={"items": items, **body}, timeout=120)
    assert response.status_code == 200, response.text
    return BatchResult.model_validate_json(response.content)


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.TemporaryDirectory(prefix="rljudge-test-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is required (make install installs it)"
        self.process = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir.name,
            ],
            stdout=subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url)

        def up() -> bool:
            try:
                return bool(client.ping())
            except Exception:
                return False

        wait_until(up, 10, "redis-server")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()
    server.dir.cleanup()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture()
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


def start_workers(redis_url: str, count: int, extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RLJUDGE_REDIS_URL": redis_url, **(extra_env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "rljudge_cli.main", "worker", "--workers", str(count)],
        env=env,
        start_new_session=True,
    )


def stop_process_group(process: subprocess.Popen[bytes], timeout_s: float = 15) -> None:
    import signal

    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="session")
def workers(redis_url: str) -> Iterator[subprocess.Popen[bytes]]:
    process = start_workers(redis_url, 2)
    connection = Redis.from_url(redis_url)
    wait_until(lambda: Worker.count(connection=connection) >= 2, 60, "2 judge workers")
    yield process
    stop_process_group(process)


class ThreadedGateway:
    """The real app under a real uvicorn, in a thread of the test process."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadedGateway:
        self.thread.start()
        wait_until(lambda: self.server.started, 20, "the gateway")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="session")
def gateway(redis_url: str, workers: subprocess.Popen[bytes]) -> Iterator[ThreadedGateway]:
    with ThreadedGateway(Settings(redis_url=redis_url)) as server:
        yield server


@pytest.fixture(scope="session")
def judge_url(gateway: ThreadedGateway) -> str:
    """Base URL of a live rljudge stack (real Redis, 2 real workers)."""
    return gateway.url


@pytest.fixture()
def make_gateway(redis_url: str, workers: subprocess.Popen[bytes]) -> Iterator[Callable[..., ThreadedGateway]]:
    started: list[ThreadedGateway] = []

    def make(**overrides: Any) -> ThreadedGateway:
        overrides.setdefault("redis_url", redis_url)
        server = ThreadedGateway(Settings(**overrides)).__enter__()
        started.append(server)
        return server

    yield make
    for server in started:
        server.__exit__(None, None, None)
