"""``rljudge up``: Redis, the gateway and the workers on one machine, stopped together.

Each part runs as a child process in its own process group. SIGINT/SIGTERM (or any part dying)
stops them all: SIGTERM first, SIGKILL to the whole group after a grace period, so nothing is left
behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from redis import Redis
from redis.exceptions import RedisError

GRACE_S = 10.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    redis_url: str | None = None
    log_dir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, ready_timeout_s: float = 60.0) -> None:
        """Start every part and return once the gateway reports ready (raise if it does not)."""
        try:
            if self.redis_url is None:
                self.redis_url = self.start_redis()
            env = {**os.environ, **self.env, "RLJUDGE_REDIS_URL": self.redis_url}
            cli = [sys.executable, "-m", "rljudge_cli.main"]
            self._spawn("gateway", [*cli, "gateway", "--host", self.host, "--port", str(self.port)], env)
            self._spawn("workers", [*cli, "worker", "--workers", str(self.workers)], env)
            self._wait_ready(ready_timeout_s)
        except BaseException:
            self.stop()
            raise

    def start_redis(self) -> str:
        """Start a private redis-server on a free loopback port (no persistence) and return its URL
        once it answers; ``stop`` stops it. ``start`` calls it when no ``redis_url`` is given."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found: install it (apt-get install redis-server) or pass --redis-url")
        port = free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="rljudge-redis-")
        args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
        self._spawn("redis", [*args, "--dir", self._tmp.name], dict(os.environ))
        url = f"redis://127.0.0.1:{port}/0"
        client = Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return url
            except RedisError:
                self._check_alive()
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start within 10 s") from None
                time.sleep(0.05)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        """Start one part in its own process group; its output goes to ``log_dir/<name>.log`` when
        a log folder is set, else stdout is dropped and stderr stays on the terminal."""
        if self.log_dir is None:
            self.children[name] = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, start_new_session=True)
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{name}.log").open("ab") as log:
            self.children[name] = subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with httpx.Client(base_url=self.url, timeout=2.0) as http:
            while True:
                self._check_alive()
                with contextlib.suppress(httpx.TransportError):
                    if http.get("/readyz").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the stack was not ready within {timeout_s:.0f} s")
                time.sleep(0.1)

    def _check_alive(self) -> None:
        for name, child in self.children.items():
            code = child.poll()
            if code is not None:
                raise RuntimeError(f"{name} exited with status {code}")

    def wait(self) -> int:
        """Block until SIGINT/SIGTERM asks to stop (0) or a part dies (1)."""
        watched = {signal.SIGINT, signal.SIGTERM, signal.SIGCHLD}
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
        try:
            while True:
                for name, child in self.children.items():
                    if child.poll() is not None:
                        print(f"rljudge: {name} exited with status {child.returncode}; stopping", file=sys.stderr)
                        return 1
                info = signal.sigtimedwait(watched, 1.0)
                if info is not None and info.si_signo in (signal.SIGINT, signal.SIGTERM):
                    return 0
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def stop(self) -> None:
        """Stop workers, then the gateway, then Redis: SIGTERM, a grace period, SIGKILL to the group."""
        for name in ("workers", "gateway", "redis"):
            child = self.children.get(name)
            if child is None:
                continue
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=GRACE_S)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)  # stragglers in the group (pool processes)
            child.wait()
        self.children.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
