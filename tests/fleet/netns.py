"""Hosts on one machine: network namespaces joined by a bridge, each running its own processes.

``Network`` makes a private switch (a namespace holding only a bridge) and hosts (one namespace
each, with a veth into the switch and an address in ``SUBNET``). Nothing is added to the machine's
own network namespace, so traffic goes only between the namespaces made here. Processes start
with ``ip netns exec``, each in its own session so that a host can be stopped as a whole.

``in_namespace(name)`` gives a thread pool whose threads live in a host's network namespace
(``setns(2)`` applies to the calling thread only): sockets the test opens from those threads are
that host's sockets.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

T = TypeVar("T")

SUBNET = "10.231.0"
PREFIX = "rljf"
_CLONE_NEWNET = 0x40000000


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def namespaces_supported() -> str | None:
    """None when ``ip netns add`` works here, else the kernel's refusal."""
    name = f"{PREFIX}probe{os.getpid()}"
    probe = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if probe.returncode != 0:
        return probe.stderr.strip() or f"ip netns add exited with {probe.returncode}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


def remove_stale() -> None:
    """Delete namespaces left by an earlier run of this suite whose process is gone."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in listed.splitlines():
        name = line.split()[0] if line.strip() else ""
        owner = name[len(PREFIX) :].split("-")[0]
        if name.startswith(PREFIX) and owner.isdigit() and not Path(f"/proc/{owner}").exists():
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


@dataclass
class Host:
    name: str
    namespace: str
    address: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        out: IO[bytes] = log.open("ab")
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.namespace, *argv],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        self.processes.append(process)
        return process

    def signal_all(self, sig: int) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, sig)

    def kill(self) -> None:
        """Power off: SIGKILL every process of the host, then reap them."""
        self.signal_all(signal.SIGKILL)
        for process in self.processes:
            process.wait(timeout=30)


class Network:
    def __init__(self) -> None:
        self.tag = f"{PREFIX}{os.getpid()}"
        self.switch = f"{self.tag}-sw"
        self.hosts: dict[str, Host] = {}
        self._made: list[str] = []

    def __enter__(self) -> Network:
        remove_stale()
        ip("netns", "add", self.switch)
        self._made.append(self.switch)
        ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        ip("-n", self.switch, "link", "set", "br0", "up")
        return self

    def add_host(self, name: str, last_octet: int) -> Host:
        namespace = f"{self.tag}-{name}"
        address = f"{SUBNET}.{last_octet}"
        ip("netns", "add", namespace)
        self._made.append(namespace)
        port = f"p{last_octet}"
        ip("-n", namespace, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", self.switch)
        ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", namespace, "link", "set", "lo", "up")
        ip("-n", namespace, "link", "set", "eth0", "up")
        ip("-n", self.switch, "link", "set", port, "master", "br0")
        ip("-n", self.switch, "link", "set", port, "up")
        host = Host(name, namespace, address)
        self.hosts[name] = host
        return host

    def __exit__(self, *exc: object) -> None:
        for host in self.hosts.values():
            host.signal_all(signal.SIGKILL)
        for host in self.hosts.values():
            for process in host.processes:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=30)
        for namespace in reversed(self._made):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)

    @contextlib.contextmanager
    def in_namespace(self, host: Host, threads: int = 4) -> Iterator[Callable[[Callable[[], T]], T]]:
        """``run(fn)`` runs ``fn`` on a thread that lives in ``host``'s network namespace."""
        path = f"/run/netns/{host.namespace}"
        libc = ctypes.CDLL(None, use_errno=True)

        def enter() -> None:
            fd = os.open(path, os.O_RDONLY)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({path}): {os.strerror(err)}")
            finally:
                os.close(fd)

        with ThreadPoolExecutor(threads, thread_name_prefix=f"netns-{host.name}", initializer=enter) as pool:

            def run(fn: Callable[[], T]) -> T:
                return pool.submit(fn).result()

            yield run


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    """Poll ``condition`` until it holds; raise TimeoutError naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)
