"""Starting and killing Firejails (each serves one submission or, warm, several of one scope).

The command line (also in the profile's header)::

    firejail --quiet --profile=<sandbox>/firejail-profiles/python3-no-net.profile \
        --blacklist=/<entry> ...        # every top-level entry outside ALLOWED_ROOT, and every
                                        # entry of /run except /run/firejail
        /usr/bin/python3 -I -S -c <BOOTSTRAP % len(harness)> rljudge-jail-<marker>

started with an empty environment plus ``PATH``/``LANG``, cwd ``/``, in a new session, with
``PR_SET_PDEATHSIG=SIGKILL`` so that the jail dies with the process that started it. The marker
(which carries the starting process's pid) lets :func:`kill_jails` and :func:`kill_orphaned_jails`
find and kill a jail whose starter was killed before it could clean up.
"""

from __future__ import annotations

import ctypes
import functools
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

PROFILE = Path(__file__).resolve().parent / "firejail-profiles" / "python3-no-net.profile"
HARNESS = Path(__file__).resolve().parent / "harness" / "harness.py"
PYTHON = "/usr/bin/python3"
FIREJAIL = "firejail"
MARKER_PREFIX = "rljudge-jail-"
ALLOWED_ROOT = frozenset({"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "run", "sbin", "tmp", "usr"})
JAIL_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
_PR_SET_PDEATHSIG = 1


BOOTSTRAP = """import os
n={size};b=bytearray()
while len(b)<n:
 c=os.read(0,n-len(b))
 if not c:raise SystemExit(3)
 b+=c
exec(compile(bytes(b),'rljudge-harness','exec'))
"""
"""Reads exactly the harness's bytes from stdin and runs it; the protocol frames follow on stdin.

The harness cannot be a file in the jail (the project tree is hidden there) nor a ``-c`` argument
(firejail caps each argument at 4 KiB)."""


@functools.cache
def harness_bytes() -> bytes:
    """The harness source, written to the jail's stdin before the first protocol frame."""
    return HARNESS.read_bytes()


def blacklist() -> list[str]:
    """Paths hidden in the jail: every top-level entry not needed to run Python, and /run's content."""
    hidden = [f"/{name}" for name in sorted(os.listdir("/")) if name not in ALLOWED_ROOT]
    try:
        hidden += [f"/run/{name}" for name in sorted(os.listdir("/run")) if name != "firejail"]
    except OSError:
        pass
    return hidden


def command(marker: str, python: str = PYTHON) -> list[str]:
    """The full firejail argv for one submission."""
    return [
        FIREJAIL,
        "--quiet",
        f"--profile={PROFILE}",
        *(f"--blacklist={path}" for path in blacklist()),
        python,
        "-I",
        "-S",
        "-c",
        BOOTSTRAP.format(size=len(harness_bytes())),
        marker,
    ]


def new_marker() -> str:
    """``rljudge-jail-<pid of the starting process>-<random>``."""
    return f"{MARKER_PREFIX}{os.getpid()}-{secrets.token_hex(8)}"


def _starter_alive(marker_arg: bytes) -> bool:
    """Whether the process that started the jail named by this argv entry still runs."""
    try:
        return _running(int(marker_arg[len(MARKER_PREFIX) :].split(b"-", 1)[0]))
    except ValueError:
        return False


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] not in (b"Z", b"X")
    except (OSError, IndexError):
        return False


def kill_orphaned_jails(wait_s: float = 0.0) -> int:
    """SIGKILLs every jail whose starting process is gone (a pool process that Pebble killed or
    that exited with its jail still warm; PR_SET_PDEATHSIG normally got there first), then waits up
    to ``wait_s`` for them to be gone."""
    killed = []
    for pid in jail_pids():
        marker = next((arg for arg in _cmdline(pid).split(b"\0") if arg.startswith(MARKER_PREFIX.encode())), b"")
        if marker and not _starter_alive(marker):
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except OSError:
                pass
    deadline = time.monotonic() + wait_s
    while killed and time.monotonic() < deadline:
        killed = [pid for pid in killed if _running(pid)]
        if killed:
            time.sleep(0.01)
    return len(killed)


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL this process when the thread that started it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def start(marker: str, python: str = PYTHON) -> subprocess.Popen[bytes]:
    """Starts the jail with pipes on stdin/stdout/stderr."""
    return subprocess.Popen(
        command(marker, python),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(JAIL_ENV),
        cwd="/",
        start_new_session=True,
        preexec_fn=_die_with_parent,
        close_fds=True,
    )


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def jail_pids(marker: str | None = None) -> list[int]:
    """Pids of processes whose command line carries ``marker`` (any rljudge jail when None)."""
    needle = (marker or MARKER_PREFIX).encode()
    me = os.getpid()
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me and needle in _cmdline(int(p))]


def kill_jails(marker: str | None = None) -> int:
    """SIGKILLs the jail(s) carrying ``marker``: firejail's death takes its pid namespace with it."""
    killed = 0
    for pid in jail_pids(marker):
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except OSError:
            pass
    return killed
