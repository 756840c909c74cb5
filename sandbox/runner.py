"""Judging one submission: one Firejail, all of its tests inside, verdicts decided out here.

:func:`execute` starts the jail (see :mod:`.jail`), hands the harness the program, then sends the
tests one at a time (inputs only) and classifies each raw result against the expected answer it
kept. It blocks; run it under :class:`rljudge_sandbox.pool.CodeJudge` (a Pebble pool with a hard
timeout of :func:`run_budget_s`) so that a stuck jail is killed with its process tree.
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
    """Line-oriented JSON frames over the jail's stdin/stdout, with deadlines."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        assert proc.stdin is not None and proc.stdout is not None
        self.win = proc.stdin
        self.fd = proc.stdout.fileno()
        self.buf = bytearray()

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
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                return None
            self.buf.extend(chunk)
        line, _, rest = bytes(self.buf).partition(b"\n")
        self.buf = bytearray(rest)
        frame = json.loads(line)
        return frame if isinstance(frame, dict) else None


def _stop(proc: subprocess.Popen[bytes], marker: str) -> str:
    """Ends the jail (its harness exits on end of stdin) and returns firejail's stderr tail."""
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
    jail.kill_jails(marker)
    err = proc.stderr.read() if proc.stderr is not None else b""
    if proc.stdout is not None:
        proc.stdout.close()
    if proc.stderr is not None:
        proc.stderr.close()
    lines = [ln for ln in err.decode("utf-8", "replace").splitlines() if "unmount: Invalid argument" not in ln]
    return "\n".join(lines[-5:])


def execute(
    program: str,
    suite: dict[str, Any],
    limits: dict[str, Any] | None = None,
    mode: str = "all",
    *,
    marker: str | None = None,
) -> dict[str, Any]:
    """Judges ``program`` on ``suite`` in one Firejail; blocking.

    Returns ``{"verdict", "passed", "total", "tests": [{"status", "time_ms", "detail"}], "detail"}``.
    ``verdict`` is ``correct`` when every test passes, else the status of the first failing test;
    ``compile_error`` for a program that does not compile; ``sandbox_error`` when the judge itself
    failed. With ``mode="first_failure"`` the tests after the first failure are ``skipped``.
    A ``run`` suite's one test also reports ``stdout`` and ``exit_code`` (see :func:`classify`).
    ``marker`` (default: a fresh one) tags the jail's processes for :func:`jail.kill_jails`.
    """
    lim = resolve_limits(limits)
    try:
        prepared: PreparedSuite = prepare(suite)
    except (UnsupportedSuite, SyntaxError, KeyError, TypeError) as e:
        return sandbox_error(f"unsupported test suite: {e}")
    total = len(prepared.tests)
    marker = marker or jail.new_marker()
    uid = UID_BASE + threading.get_native_id()
    try:
        proc = jail.start(marker)
    except OSError as e:
        return sandbox_error(f"cannot start firejail: {e}", total)
    tests: list[dict[str, Any]] = []
    try:
        chan = _Channel(proc)
        chan.win.write(jail.harness_bytes())
        chan.send({"program": program, "limits": lim, "uid": uid})
        compiled = chan.recv(JAIL_START_SLACK_S + float(lim["wall_s"]))
        if compiled is None or compiled.get("t") != "compiled":
            return sandbox_error(f"the harness did not start: {_stop(proc, marker)}", total)
        if not compiled.get("ok"):
            _stop(proc, marker)
            skipped = [{"status": "skipped", "time_ms": None, "detail": None} for _ in prepared.tests]
            return _judgement("compile_error", skipped, str(compiled.get("error"))[:DETAIL_CHARS], total)
        first_failure: str | None = None
        for test in prepared.tests:
            if first_failure is not None and mode == "first_failure":
                tests.append({"status": "skipped", "time_ms": None, "detail": None})
                continue
            chan.send({"op": "run", "spec": test.spec})
            raw = chan.recv(float(lim["wall_s"]) + PER_TEST_SLACK_S + 1.0)
            if raw is None or raw.get("t") != "ran":
                return sandbox_error(f"the harness stopped answering: {_stop(proc, marker)}", total)
            res = classify(test, raw, lim)
            tests.append(res)
            if res["status"] != "passed" and first_failure is None:
                first_failure = res["status"]
    except (OSError, ValueError) as e:
        return sandbox_error(f"lost the harness: {e}: {_stop(proc, marker)}", total)
    finally:
        if proc.returncode is None:
            _stop(proc, marker)
    if first_failure is None:
        return _judgement("correct", tests, None, total)
    first = next(t for t in tests if t["status"] not in ("passed", "skipped"))
    return _judgement(VERDICT_OF_STATUS[first_failure], tests, first["detail"], total)
