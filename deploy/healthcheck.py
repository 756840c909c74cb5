"""The container image's HEALTHCHECK: one script for both roles of the image (stdlib only).

- gateway (``rljudge gateway --port P``): ``GET http://127.0.0.1:P/healthz`` answers 200.
- worker (``rljudge worker``): the RQ pool parent is alive and has at least one worker child.

The worker check is local on purpose: a Redis outage must not mark every worker unhealthy (and,
under an orchestrator that acts on health, restart the whole fleet at once). Kubernetes ignores
HEALTHCHECK; deploy/k8s uses its own probes. Exit status 0 means healthy, 1 unhealthy.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path


def rljudge_processes() -> list[tuple[int, list[str]]]:
    """(pid, argv) of every process running an rljudge subcommand."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        joined = " ".join(argv)
        if "rljudge" in joined and ("gateway" in argv or "worker" in argv):
            found.append((int(entry.name), argv))
    return found


def children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            continue
    return kids


def option(argv: list[str], name: str, default: str) -> str:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


def check() -> str | None:
    """None when healthy, else why not."""
    processes = rljudge_processes()
    if not processes:
        return "no rljudge gateway or worker process"
    for pid, argv in processes:
        if "gateway" in argv:
            port = int(option(argv, "--port", "8000"))
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as response:
                    if response.status == 200:
                        return None
            except OSError as exc:
                return f"gateway pid {pid}: /healthz on port {port}: {exc}"
        elif "worker" in argv and children(pid):
            return None
    return "the worker pool has no worker processes"


def main() -> int:
    problem = check()
    if problem is not None:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("NO_PROXY", "127.0.0.1")
    sys.exit(main())
