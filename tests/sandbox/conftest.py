"""Sandbox test helpers: real Firejail, real processes; a session-end check that no jail survives."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import psutil
import pytest

from rljudge_sandbox import execute
from rljudge_sandbox.jail import MARKER_PREFIX

CODE_DATA = Path(__file__).resolve().parents[1] / "data" / "code"
FAST = {"time_s": 0.5, "wall_s": 1.5}


def _ours(process: psutil.Process) -> bool:
    """Started by this test process directly, or orphaned: not a jail of the end-to-end tests' worker
    processes (theirs to clean up) nor of another test run on the same machine."""
    try:
        parents = process.parents()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    if any("rljudge_cli.main" in " ".join(parent.cmdline()) for parent in parents):
        return False
    return process.ppid() == 1 or any(parent.pid == _ME for parent in parents)


_ME = psutil.Process().pid


def sandbox_processes() -> list[psutil.Process]:
    """Live processes of an rljudge jail (firejail, harness, test children) started by these tests."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(MARKER_PREFIX in part for part in p.info["cmdline"] or []) and _ours(p):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


@pytest.fixture(scope="session", autouse=True)
def _no_jail_survives() -> Any:
    assert shutil.which("firejail"), "firejail is required for the sandbox tests"
    yield
    left = [p for p in sandbox_processes() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"sandbox processes left after the suite: {[p.pid for p in left]}"


def stdio(*pairs: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return {"type": "stdio", "cases": [{"input": i, "output": o} for i, o in pairs], **extra}


ONE = stdio(("", "ok\n"))


def run(program: str, suite: dict[str, Any] | None = None, limits: dict[str, Any] | None = None, **kw: Any) -> dict:
    return execute(program, suite or ONE, {**FAST, **(limits or {})}, **kw)


def load_jsonl(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (CODE_DATA / name).read_text().splitlines() if line.strip()]
