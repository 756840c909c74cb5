"""Judging submissions in Firejail: all of a submission's tests inside one jail, verdicts decided out here.

:class:`JailSession` starts a jail (see :mod:`.jail`) and judges submissions one after another in
it: for each it hands the harness the program, then sends the tests one at a time (inputs only)
and classifies each raw result against the expected answer it kept. :func:`execute` judges one
submission, in its own jail or in a given session. It blocks; run it under
:class:`rljudge_sandbox.pool.CodeJudge` (a Pebble pool with a hard timeout of :func:`run_budget_s`)
so that a stuck jail is killed with its process tree.
"""

from __future__ import annotations

import json
import math
import os
import select
import signal
import subprocess
import threading
import time
from typing import Any

from . import jail
from .compare import DecodeError, call_equal, check_assert, decode, stdio_equal
from .suite import PreparedSuite, PreparedTest, UnsupportedSuite, prepare

JAIL_START_SLACK_S = 3.0
"""Jail start, harness start and the compile check: added once to the per-test wall caps."""
PER_TEST_SLACK_S = 0.5
UID_BASE = 2_000_000
"""Untrusted code runs as UID_BASE + the native thread id of the caller: unique among live jails."""

DEFAULT_LIMITS: dict[str, Any] = {
    "time_s": 2.0,
    "wall_s": None,
    "memory_mb": 512,
    "processes": 8,
    "open_files": 64,
    "file_size_kb": 1024,
    "output_kb": 1024,
}
VERDICT_OF_STATUS = {
    "wrong_answer": "wrong_answer",
    "time_limit": "time_limit",
    "memory_limit": "memory_limit",
    "runtime_error": "runtime_error",
    "output_limit": "output_limit",
}
DETAIL_CHARS = 500
RUN_STDOUT_CHARS = 65_536
"""``run`` tests: the most stdout characters reported back (the head; output_kb caps it first)."""
RUN_STDERR_CHARS = 4_096
"""``run`` tests: the most stderr characters reported back (the tail, as the harness keeps it)."""


def resolve_limits(limits: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults (those of ``rljudge.Limits``) filled in; ``wall_s`` defaults to 2 x time_s + 1."""
    out = {**DEFAULT_LIMITS, **{k: v for k, v in (limits or {}).items() if v is not None}}
    if out.get("wall_s") is None:
        out["wall_s"] = 2 * float(out["time_s"]) + 1
    return out


def _count_tests(suite: dict[str, Any]) -> int:
    kind = suite.get("type")
    if kind in ("stdio", "call"):
        return len(suite.get("cases") or [])
    if kind == "assert":
        return 1 if suite.get("test") is not None else len(suite.get("asserts") or [])
    if kind == "pytest":
        return max(1, suite.get("source", "").count("def test"))
    return 1


def run_budget_s(suite: dict[str, Any], limits: dict[str, Any] | None) -> float:
    """Hard wall budget for one submission: per-test wall caps plus slack, plus the jail start."""
    lim = resolve_limits(limits)
    per_test = float(lim["wall_s"]) + PER_TEST_SLACK_S
    return JAIL_START_SLACK_S + float(lim["wall_s"]) + _count_tests(suite) * per_test


def _judgement(
    verdict: str, tests: list[dict[str, Any]] | None = None, detail: str | None = None, total: int | None = None
) -> dict[str, Any]:
    tests = tests or []
    return {
        "verdict": verdict,
        "passed": sum(1 for t in tests if t["status"] == "passed"),
        "total": total if total is not None else len(tests),
        "tests": tests,
        "detail": detail,
    }


def sandbox_error(detail: str, total: int = 0) -> dict[str, Any]:
    """The judgement for a judge failure: never to be read as a wrong answer."""
    return _judgement("sandbox_error", [], detail[:DETAIL_CHARS], total)


def _last_line(text: str) -> str | None:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:DETAIL_CHARS] if lines else None


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _text(value: str) -> str:
    """The harness decodes output with surrogateescape; results must be valid UTF-8 JSON."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def classify(test: PreparedTest, raw: dict[str, Any], lim: dict[str, Any]) -> dict[str, Any]:
    """One test's status, time and detail from the harness's raw result (pure function).

    ``run`` tests also report ``stdout`` (its head), ``exit_code`` (negative: the killing signal)
    and, as ``detail``, the stderr tail when there is one.
    """
    result = _classify(test, raw, lim)
    if test.kind == "run":
        sig = raw.get("signal")
        result["exit_code"] = -int(sig) if sig is not None else raw.get("exit")
        result["stdout"] = _text(raw.get("stdout") or "")[:RUN_STDOUT_CHARS]
        stderr = _text(raw.get("stderr") or "")[-RUN_STDERR_CHARS:]
        if stderr:
            result["detail"] = stderr
    return result


def _classify(test: PreparedTest, raw: dict[str, Any], lim: dict[str, Any]) -> dict[str, Any]:
    cpu = float(raw.get("cpu") or 0.0)
    result: dict[str, Any] = {"status": "passed", "time_ms": round(cpu * 1000, 1), "detail": None}
    msgs = [m for m in raw.get("msgs") or [] if isinstance(m, dict)]
    errors = [m for m in msgs if m.get("t") == "error"]
    sig = raw.get("signal")
    time_s = float(lim["time_s"])

    def done(status: str, detail: str | None = None) -> dict[str, Any]:
        result["status"] = status
        result["detail"] = detail[:DETAIL_CHARS] if detail else None
        return result

    if raw.get("output_limit"):
        return done("output_limit", f"output exceeded {lim['output_kb']} KiB")
    cpu_cap = max(1, math.ceil(time_s))
    if cpu > time_s or sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= cpu_cap - 0.05):
        return done("time_limit", f"CPU time {cpu:.2f} s > {time_s:g} s")
    if raw.get("wall_limit"):
        return done("time_limit", f"wall clock {float(raw.get('wall') or 0):.2f} s > {float(lim['wall_s']):g} s")
    if errors:
        err = errors[0]
        line = str(err.get("line") or "")
        if err.get("kind") == "memory":
            return done("memory_limit", line or "MemoryError")
        if err.get("kind") == "assertion" and test.kind in ("assert", "pytest"):
            return done("wrong_answer", line)
        return done("runtime_error", line or _last_line(raw.get("stderr") or ""))
    if sig is not None:
        maxrss = int(raw.get("maxrss_kb") or 0) * 1024
        if maxrss >= 0.9 * (int(lim["memory_mb"]) << 20):
            return done("memory_limit", f"killed by {_signal_name(sig)} at the memory limit")
        return done("runtime_error", f"killed by {_signal_name(sig)}")
    code = raw.get("exit")
    if code not in (0, None):
        return done("runtime_error", f"exit status {code}: {_last_line(raw.get('stderr') or '') or ''}".rstrip(": "))
    if test.kind == "run":  # exited with status 0: nothing to compare
        return result
    finished = any(m.get("t") == "done" for m in msgs) or any(m.get("t") == "exit" and m.get("code") == 0 for m in msgs)
    if test.kind == "stdio":
        if not stdio_equal(raw.get("stdout") or "", test.expected, test.float_tolerance):
            return done("wrong_answer", None)
        return result
    if not finished or any(m.get("t") == "exit" for m in msgs):
        return done("runtime_error", "the program exited before the test finished")
    if test.kind == "call":
        results = [m for m in msgs if m.get("t") == "result"]
        if len(results) != 1:
            return done("runtime_error", "no result reported")
        if "bad" in results[0]:
            return done("wrong_answer", f"returned a value that is not plain data ({results[0]['bad']})")
        try:
            got = decode(results[0].get("v"))
        except DecodeError as e:
            return done("wrong_answer", str(e))
        if not call_equal(got, test.expected, test.float_tolerance):
            return done("wrong_answer", None)
        return result
    for m in msgs:
        if m.get("t") != "cmp":
            continue
        try:
            why = check_assert(m)
        except DecodeError as e:
            why = str(e)
        if why is not None:
            return done("wrong_answer", why)
    return result


class _Channel:
    """Line-oriented JSON frames over the jail's stdin/stdout, with deadlines; firejail's stderr
    is drained on the way (its tail kept for error messages) so a long-lived jail never blocks on it."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self.win = proc.stdin
        self.fd = proc.stdout.fileno()
        self.err_fd = proc.stderr.fileno()
        self.buf = bytearray()
        self.err_tail = b""

    def send(self, msg: dict[str, Any]) -> None:
        self.win.write(json.dumps(msg).encode() + b"\n")
        self.win.flush()

    def recv(self, timeout_s: float) -> dict[str, Any] | None:
        """The next frame, or None on end of stream or timeout."""
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            watched = [self.fd] if self.err_fd < 0 else [self.fd, self.err_fd]
            ready, _, _ = select.select(watched, [], [], left)
            if not ready:
                return None
            if self.err_fd in ready:
                self._drain_stderr()
            if self.fd not in ready:
                continue
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                return None
            self.buf.extend(chunk)
        line, _, rest = bytes(self.buf).partition(b"\n")
        self.buf = bytearray(rest)
        frame = json.loads(line)
        return frame if isinstance(frame, dict) else None

    def _drain_stderr(self) -> None:
        chunk = os.read(self.err_fd, 1 << 16)
        if chunk:
            self.err_tail = (self.err_tail + chunk)[-STDERR_TAIL_BYTES:]
        else:
            self.err_fd = -1


STDERR_TAIL_BYTES = 4096
NEXT_READY_S = 1.0
"""How long a reused jail may take to be ready for its next submission (killing the last one's
processes and forking a leader take milliseconds)."""
MAX_SUBMISSIONS_PER_JAIL = 256
"""A warm jail is replaced after this many submissions (bounds whatever a jail might accumulate)."""


def _skipped(n: int) -> list[dict[str, Any]]:
    return [{"status": "skipped", "time_ms": None, "detail": None} for _ in range(n)]


class JailSession:
    """One Firejail that judges submissions one after another (see the harness's protocol).

    The jail starts on the first :meth:`judge`; a session that hits any failure (a harness that
    stops answering, a broken pipe) closes itself, and the next :meth:`judge` starts a new jail.
    ``scope`` names whose submissions may share this jail (the pool never mixes scopes; None: the
    session serves one submission only). Between two submissions the harness kills every process
    of the sandbox uid and serves the next one from a fresh fork (see ``harness.py``).
    """

    def __init__(self, scope: str | None = None, marker: str | None = None) -> None:
        self.scope = scope
        self.marker = marker
        self.served = 0
        #: Whether the harness runs submissions under a sandbox uid it can clean up after; a jail
        #: whose harness cannot (not started as root) serves one submission only.
        self.isolated = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._chan: _Channel | None = None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def reusable_for(self, scope: str | None) -> bool:
        """Whether the next submission of ``scope`` may run in this jail."""
        return (
            scope is not None
            and scope == self.scope
            and self.isolated
            and self.alive
            and self.served < MAX_SUBMISSIONS_PER_JAIL
        )

    def _start(self) -> str | None:
        """Starts the jail and hands the harness its source and first frame (the caller then waits
        for its "ready"); an error message, or None."""
        self.close()
        self.marker = self.marker or jail.new_marker()
        try:
            self._proc = jail.start(self.marker)
        except OSError as e:
            return f"cannot start firejail: {e}"
        self._chan = _Channel(self._proc)
        try:
            self._chan.win.write(jail.harness_bytes())
            self._chan.send({"uid": UID_BASE + threading.get_native_id()})
        except OSError as e:
            return f"cannot start the harness: {e}: {self.close()}"
        return None

    def _ready(self, timeout_s: float) -> bool:
        frame = self._chan.recv(timeout_s) if self._chan is not None else None
        if frame is None or frame.get("t") != "ready":
            return False
        self.isolated = bool(frame.get("isolated"))
        return True

    def judge(self, program: str, suite: dict[str, Any], limits: dict[str, Any] | None, mode: str) -> dict[str, Any]:
        """Judges one submission (see :func:`execute`)."""
        lim = resolve_limits(limits)
        try:
            prepared: PreparedSuite = prepare(suite)
        except (UnsupportedSuite, SyntaxError, KeyError, TypeError) as e:
            return sandbox_error(f"unsupported test suite: {e}")
        total = len(prepared.tests)
        if not (self.alive and self.served > 0 and self._ready_for_next()):
            error = self._start()
            if error is not None:
                return sandbox_error(error, total)
            if not self._ready(JAIL_START_SLACK_S):
                return sandbox_error(f"the harness did not start: {self.close()}", total)
        self.served += 1
        try:
            return self._judge(program, prepared, lim, mode, total)
        except (OSError, ValueError) as e:
            return sandbox_error(f"lost the harness: {e}: {self.close()}", total)

    def _ready_for_next(self) -> bool:
        """The harness's "ready" for the next submission (a jail that does not say it within
        ``NEXT_READY_S`` is replaced)."""
        try:
            return self._ready(NEXT_READY_S)
        except (OSError, ValueError):
            return False

    def _judge(
        self, program: str, prepared: PreparedSuite, lim: dict[str, Any], mode: str, total: int
    ) -> dict[str, Any]:
        chan = self._chan
        assert chan is not None
        chan.send({"program": program, "limits": lim})
        if not prepared.tests:
            chan.send({"op": "compile"})
            compiled = chan.recv(JAIL_START_SLACK_S + float(lim["wall_s"]))
            if compiled is None or compiled.get("t") != "compiled":
                return sandbox_error(f"the harness did not compile the program: {self.close()}", total)
            chan.send({"op": "end"})
            if not compiled.get("ok"):
                return _judgement("compile_error", [], str(compiled.get("error"))[:DETAIL_CHARS], total)
            return _judgement("correct", [], None, total)
        tests: list[dict[str, Any]] = []
        first_failure: str | None = None
        for test in prepared.tests:
            if first_failure is not None and mode == "first_failure":
                tests.append({"status": "skipped", "time_ms": None, "detail": None})
                continue
            chan.send({"op": "run", "spec": test.spec})
            raw = chan.recv(float(lim["wall_s"]) + PER_TEST_SLACK_S + 1.0)
            if raw is None or raw.get("t") != "ran":
                return sandbox_error(f"the harness stopped answering: {self.close()}", total)
            if raw.get("compile_error") is not None:  # reported by the first test's child
                chan.send({"op": "end"})
                return _judgement("compile_error", _skipped(total), str(raw["compile_error"])[:DETAIL_CHARS], total)
            res = classify(test, raw, lim)
            tests.append(res)
            if res["status"] != "passed" and first_failure is None:
                first_failure = res["status"]
        chan.send({"op": "end"})
        if first_failure is None:
            return _judgement("correct", tests, None, total)
        first = next(t for t in tests if t["status"] not in ("passed", "skipped"))
        return _judgement(VERDICT_OF_STATUS[first_failure], tests, first["detail"], total)

    def close(self) -> str:
        """Ends the jail (its harness exits on end of stdin); returns firejail's stderr tail."""
        proc, chan, self._proc, self._chan = self._proc, self._chan, None, None
        if proc is None:
            return ""
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self.marker is not None:
            jail.kill_jails(self.marker)
        err = chan.err_tail if chan is not None else b""
        if proc.stderr is not None:
            try:
                err += proc.stderr.read()
            except (OSError, ValueError):
                pass
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        self.marker = None
        self.served = 0
        lines = [ln for ln in err.decode("utf-8", "replace").splitlines() if "unmount: Invalid argument" not in ln]
        return "\n".join(lines[-5:])

    def __enter__(self) -> JailSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def execute(
    program: str,
    suite: dict[str, Any],
    limits: dict[str, Any] | None = None,
    mode: str = "all",
    *,
    marker: str | None = None,
    session: JailSession | None = None,
) -> dict[str, Any]:
    """Judges ``program`` on ``suite`` in a Firejail; blocking.

    Returns ``{"verdict", "passed", "total", "tests": [{"status", "time_ms", "detail"}], "detail"}``.
    ``verdict`` is ``correct`` when every test passes, else the status of the first failing test;
    ``compile_error`` for a program that does not compile; ``sandbox_error`` when the judge itself
    failed. With ``mode="first_failure"`` the tests after the first failure are ``skipped``.
    A ``run`` suite's one test also reports ``stdout`` and ``exit_code`` (see :func:`classify`).

    Without ``session`` the submission gets a jail of its own (tagged with ``marker``, default a
    fresh one, for :func:`jail.kill_jails`); with one, it runs in that session's jail.
    """
    if session is not None:
        return session.judge(program, suite, limits, mode)
    with JailSession(marker=marker) as own:
        return own.judge(program, suite, limits, mode)
