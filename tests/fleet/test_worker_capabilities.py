"""The worker pod's capability set (deploy/k8s/base/worker.yaml) is enough for Firejail, and each
capability in it that the jail's start-up uses is needed.

A container's root has exactly the capabilities of its bounding set. ``setpriv --bounding-set``
gives a process here the same set, so judging a program under it shows what a worker pod with
those capabilities would do: a correct program must be judged correct, not ``sandbox_error``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from .test_manifests import build, container

JUDGE = """
import json
from rljudge_sandbox import execute
suite = {"type": "stdio", "cases": [{"input": "2 3\\n", "output": "5\\n"}]}
limits = {"time_s": 1, "wall_s": 3}
print(json.dumps([execute("a, b = map(int, input().split())\\nprint(a + b)", suite, limits)["verdict"],
                  execute("print(0)", suite, limits)["verdict"]]))
"""
#: KILL is used by the harness to kill a test's leftovers (another uid); a clean run does not need it.
NEEDED_AT_START = {"SYS_ADMIN", "NET_ADMIN", "SETPCAP", "SETUID", "SETGID", "CHOWN", "DAC_OVERRIDE", "MKNOD"}


def manifest_capabilities() -> set[str]:
    return set(container(build("base"), "rljudge-worker")["securityContext"]["capabilities"]["add"])


def judge_with(capabilities: set[str]) -> list[str] | str:
    bounding = ",".join(["-all", *(f"+{c.lower()}" for c in sorted(capabilities))])
    argv = ["setpriv", f"--bounding-set={bounding}", "--inh-caps=-all", sys.executable, "-c", JUDGE]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        return out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module", autouse=True)
def _root_with_setpriv() -> None:
    assert os.geteuid() == 0, "these tests run as root (as make test does here and in CI)"
    assert shutil.which("setpriv") and shutil.which("firejail"), "setpriv (util-linux) and firejail are required"


def test_the_manifest_capabilities_are_enough_for_firejail() -> None:
    assert judge_with(manifest_capabilities()) == ["correct", "wrong_answer"]


@pytest.mark.parametrize("capability", sorted(NEEDED_AT_START))
def test_each_capability_is_needed(capability: str) -> None:
    caps = manifest_capabilities()
    assert capability in caps
    assert judge_with(caps - {capability}) != ["correct", "wrong_answer"]


def test_the_default_container_set_without_sys_admin_is_not_enough() -> None:
    """Why the pod adds capabilities at all: a plain container (runtime default set) cannot jail."""
    runtime_default = {"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP"}
    runtime_default |= {"NET_BIND_SERVICE", "NET_RAW", "SYS_CHROOT", "MKNOD", "AUDIT_WRITE", "SETFCAP"}
    assert judge_with(runtime_default) != ["correct", "wrong_answer"]
