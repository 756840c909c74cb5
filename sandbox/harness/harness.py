"""rljudge's in-jail test executor; it runs as ``/usr/bin/python3 -I -S -c <this source> <marker>``.

This file is executed *inside* the Firejail sandbox by the system interpreter, standard library only,
no site-packages. It is the trusted half of the jail: it never sees the expected answers. The
runner outside the jail (``rljudge_sandbox.runner``) sends it the program and then one test at a time
(inputs only) and compares what comes back against the expected outputs itself.

Protocol: newline-delimited JSON frames on stdin (runner -> harness) and stdout (harness -> runner).
A jail serves submissions one after another; the runner sends nothing until the harness is "ready".

  runner:  {"uid": int | null}                                                  (once per jail)
  harness: {"t": "ready", "isolated": bool}                                     (per submission)
  runner:  {"program": str, "limits": {...}}                                   (no answer)
  runner:  {"op": "run", "spec": {"kind": "stdio" | "call" | "assert" | "pytest", ...}}   (repeated)
  harness: {"t": "ran", "exit": int | null, "signal": int | null, "cpu": float, "wall": float,
            "maxrss_kb": int, "stdout": str, "stderr": str, "msgs": [...], "output_limit": bool,
            "wall_limit": bool, "compile_error": str | null, "compiled": bool}
  runner:  {"op": "compile"} instead of tests, for a submission without any
  harness: {"t": "compiled", "ok": bool, "error": str | null}
  runner:  {"op": "end"} (the next submission may follow) or end of stdin (the jail stops)

Each submission is served by a leader process freshly forked from the main loop, which itself never
reads a program, a test or a result; when the leader exits, every process of the sandbox uid is
killed before the next leader starts. So a submission finds neither another's data in its memory
nor another's processes; the jail's filesystem is read-only to the sandbox uid and SysV/POSIX IPC
is refused by the profile's seccomp filter, so nothing else carries over either.

Each test runs in a child forked from this process: new session, stdin/stdout/stderr on pipes, a
report pipe on fd 3, rlimits (CPU, AS, NPROC, NOFILE, FSIZE, CORE=0), and - when the harness runs as
uid 0 in the jail with CAP_SETUID/SETGID/KILL kept - a drop to an unprivileged uid with no
capabilities, so the program can neither signal nor inspect the harness. The child reports through
fd 3 only messages tagged with a per-test random nonce; comparisons happen in the runner.
"""

import ctypes
import fcntl
import io
import json
import math
import operator
import os
import resource
import select
import signal
import sys
import threading
import time
import traceback
import types

MAX_REPORT_BYTES = 64 << 20
#: Standard modules that judged programs import most (HumanEval, MBPP, LeetCode-style and contest
#: solutions), imported once per jail so that each test's child, a fork, starts with them.
PRELOAD = ("typing", "collections", "itertools", "functools", "heapq", "bisect", "string", "copy", "random", "re")
STDERR_TAIL = 4096
PR_SET_DUMPABLE = 4


# ----------------------------------------------------------------------------- value encoding


class Unencodable(Exception):
    pass


class Approx:
    """pytest.approx for the pytest shim: encoded as a tagged value and evaluated by the runner."""

    def __init__(self, expected, rel=None, abs=None):
        self.expected, self.rel, self.abs = expected, rel, abs

    def _close(self, a, b):
        rel = 1e-6 if self.rel is None else self.rel
        tol = 1e-12 if self.abs is None else self.abs
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            return len(a) == len(b) and all(self._close(x, y) for x, y in zip(a, b))  # noqa: B905 (3.9-compatible)
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(self._close(a[k], b[k]) for k in a)
        try:
            return a == b or abs(a - b) <= max(rel * abs(b), tol)
        except TypeError:
            return False

    def __eq__(self, other):
        return self._close(other, self.expected)

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = None


def encode(v, depth=0):
    """A JSON-able, type-tagged copy of a plain value; anything else (subclasses included) raises."""
    if depth > 200:
        raise Unencodable("nesting deeper than 200")
    t = type(v)
    if v is None or t is bool or t is str:
        return v
    if t is int:
        return v if -(2**53) < v < 2**53 else {"I": format(v, "x")}
    if t is float:
        return v if math.isfinite(v) else {"F": repr(v)}
    d = depth + 1
    if t is list:
        return [encode(x, d) for x in v]
    if t is tuple:
        return {"t": [encode(x, d) for x in v]}
    if t is dict:
        return {"d": [[encode(k, d), encode(x, d)] for k, x in v.items()]}
    if t is set:
        return {"s": [encode(x, d) for x in v]}
    if t is frozenset:
        return {"f": [encode(x, d) for x in v]}
    if t is bytes:
        return {"b": v.hex()}
    if t is complex:
        return {"c": [encode(v.real, d), encode(v.imag, d)]}
    if t is Approx:
        return {"a": [encode(v.expected, d), v.rel, v.abs]}
    raise Unencodable(t.__name__)


# ----------------------------------------------------------------------------- pytest shim


class _Skipped(Exception):
    pass


class _Failed(AssertionError):
    pass


class _Raises:
    def __init__(self, expected, match=None):
        self.expected, self.match, self.value = expected, match, None

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is None:
            raise _Failed(f"DID NOT RAISE {self.expected!r}")
        if not issubclass(et, self.expected):
            return False
        if self.match is not None:
            import re

            if not re.search(self.match, str(ev)):
                raise _Failed(f"exception message did not match {self.match!r}")
        self.value = ev
        return True


class _Mark:
    def __getattr__(self, name):
        if name == "parametrize":
            raise NotImplementedError("pytest.mark.parametrize is not supported by rljudge's pytest runner")

        def deco(*a, **k):
            if len(a) == 1 and callable(a[0]) and not k:
                return a[0]
            return lambda f: f

        return deco


def make_pytest_shim():
    mod = types.ModuleType("pytest")

    def raises(expected, *args, match=None, **kwargs):
        if args:
            ctx = _Raises(expected, match)
            with ctx:
                args[0](*args[1:], **kwargs)
            return ctx
        return _Raises(expected, match)

    def fail(msg=""):
        raise _Failed(msg)

    def skip(msg=""):
        raise _Skipped(msg)

    def fixture(*a, **k):
        raise NotImplementedError("pytest fixtures are not supported by rljudge's pytest runner")

    mod.approx = Approx
    mod.raises = raises
    mod.fail = fail
    mod.skip = skip
    mod.fixture = fixture
    mod.mark = _Mark()
    return mod


# ----------------------------------------------------------------------------- the untrusted child

_OPS = {
    "Eq": operator.eq,
    "NotEq": operator.ne,
    "Lt": operator.lt,
    "LtE": operator.le,
    "Gt": operator.gt,
    "GtE": operator.ge,
    "In": lambda a, b: a in b,
    "NotIn": lambda a, b: a not in b,
    "Is": operator.is_,
    "IsNot": operator.is_not,
    "truth": bool,
    "not": operator.not_,
}


def child_main(fds, spec, code, limits, uid, nonce):
    """Runs in the forked child; never returns."""
    os.setsid()
    high = [fcntl_dup(fd) for fd in fds]
    for target, fd in enumerate(high):
        os.dup2(fd, target)
    os.closerange(4, 65536)
    for res, soft, hard in child_rlimits(limits):
        resource.setrlimit(res, (soft, hard))
    if uid is not None and os.getuid() == 0:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    try:
        os.chdir("/tmp")
    except OSError:
        os.chdir("/")
    rep = io.FileIO(3, "w", closefd=False)

    def send(msg):
        msg["n"] = nonce
        rep.write((json.dumps(msg) + "\n").encode())

    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8")
    sys.stderr = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(2, "w", closefd=False)), encoding="utf-8", errors="backslashreplace"
    )
    sys.argv = ["solution.py"]
    if "random" in sys.modules:  # preloaded before the fork: give each child its own seed
        sys.modules["random"].seed()
    del fds, limits
    if isinstance(code, str):  # not compiled yet: compile here, under this child's limits
        error = compile_error(code)
        if isinstance(error, str):
            send({"t": "compile_error", "error": error})
            os._exit(0)
        send({"t": "compiled"})
        code = error
    status = run_in_child(spec, code, send)
    os._exit(status)


def compile_error(source):
    """The program's code object, or the one-line message of why it does not compile."""
    try:
        return compile(source, "solution.py", "exec")
    except (SyntaxError, ValueError) as e:
        return traceback.format_exception_only(type(e), e)[-1].strip()
    except MemoryError:
        return "MemoryError while compiling"
    except RecursionError:
        return "RecursionError while compiling"


def fcntl_dup(fd):
    return fcntl.fcntl(fd, fcntl.F_DUPFD, 100)


def child_rlimits(limits):
    cpu = max(1, math.ceil(limits["time_s"]))
    mem = int(limits["memory_mb"]) << 20
    fsize = int(limits["file_size_kb"]) << 10
    return [
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_AS, mem, mem),
        (resource.RLIMIT_NPROC, int(limits["processes"]), int(limits["processes"])),
        (resource.RLIMIT_NOFILE, int(limits["open_files"]), int(limits["open_files"])),
        (resource.RLIMIT_FSIZE, fsize, fsize),
        (resource.RLIMIT_CORE, 0, 0),
    ]


def join_threads():
    main = threading.main_thread()
    for t in threading.enumerate():
        if t is not main and not t.daemon:
            t.join()


def flush_std():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def run_in_child(spec, code, send):
    """Executes one test; returns the exit status. Messages go through ``send``."""
    import builtins

    kind = spec["kind"]

    def checker(op, vals, thunk=None):
        ok = bool(_OPS[op](*vals))
        try:
            send({"t": "cmp", "op": op, "v": [encode(v) for v in vals], "ok": ok})
        except (Unencodable, RecursionError, ValueError) as e:
            send({"t": "cmp", "op": op, "bad": str(e), "ok": ok})
        if not ok:
            raise AssertionError(thunk() if thunk is not None else None)

    try:
        if kind == "stdio":
            g = {"__name__": "__main__", "__builtins__": builtins}
            exec(code, g)
            join_threads()
        elif kind == "call":
            g = {"__name__": "solution", "__builtins__": builtins}
            exec(code, g)
            args = json.loads(spec["args"])
            fn_name = spec["fn_name"]
            sol = g.get("Solution")
            if isinstance(sol, type) and hasattr(sol, fn_name):
                fn = getattr(sol(), fn_name)
            elif fn_name in g:
                fn = g[fn_name]
            else:
                raise NameError(f"the program defines no function {fn_name!r} (nor a Solution method)")
            result = fn(*args)
            try:
                send({"t": "result", "v": encode(result)})
            except (Unencodable, RecursionError, ValueError) as e:
                send({"t": "result", "bad": str(e)})
        elif kind == "assert":
            g = {"__name__": "solution", "__builtins__": builtins}
            if spec.get("setup"):
                exec(compile(spec["setup"], "setup.py", "exec"), g)
            exec(code, g)
            tg = dict(g)
            tg["__rljudge_check__"] = checker
            exec(compile(spec["test"], "test.py", "exec"), tg)
            if spec.get("entry_point"):
                tg["check"](g[spec["entry_point"]])
        elif kind == "pytest":
            mod = types.ModuleType("solution")
            mod.__file__ = "solution.py"
            sys.modules["solution"] = mod
            sys.modules["pytest"] = make_pytest_shim()
            exec(code, mod.__dict__)
            tg = {"__name__": "test_solution", "__builtins__": builtins, "__rljudge_check__": checker}
            exec(compile(spec["source"], "test_solution.py", "exec"), tg)
            cls_name, _, fn_name = spec["name"].rpartition("::")
            if cls_name:
                inst = tg[cls_name]()
                if hasattr(inst, "setup_method"):
                    inst.setup_method(getattr(inst, fn_name))
                getattr(inst, fn_name)()
                if hasattr(inst, "teardown_method"):
                    inst.teardown_method(getattr(inst, fn_name))
            else:
                tg[fn_name]()
        else:
            raise ValueError(f"unknown test kind {kind!r}")
    except SystemExit as e:
        flush_std()
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if e.code is not None and not isinstance(e.code, int):
            try:
                sys.stderr.write(str(e.code) + "\n")
            except Exception:
                pass
        send({"t": "exit", "code": status})
        flush_std()
        return status & 0xFF
    except BaseException as e:
        report_exception(e, send)
        return 1
    flush_std()
    send({"t": "done"})
    return 0


def report_exception(e, send):
    if isinstance(e, MemoryError):
        kind = "memory"
    elif isinstance(e, (AssertionError, _Skipped)):
        kind = "assertion"
    else:
        kind = "exception"
    try:
        line = traceback.format_exception_only(type(e), e)[-1].strip()
    except BaseException:
        line = type(e).__name__
    try:
        send({"t": "error", "kind": kind, "line": line[:1000]})
    except BaseException:
        pass
    try:
        sys.stdout.flush()
    except BaseException:
        pass
    try:
        if kind != "memory":
            traceback.print_exception(type(e), e, e.__traceback__, limit=20)
        else:
            sys.stderr.write("MemoryError\n")
        sys.stderr.flush()
    except BaseException:
        pass


# ----------------------------------------------------------------------------- the trusted executor


class Executor:
    def __init__(self, limits, uid):
        self.limits = limits
        self.uid = uid
        self.can_drop = uid is not None and os.getuid() == 0
        self.wake_r, self.wake_w = os.pipe()
        for fd in (self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)

    def kill_leftovers(self, pid):
        """Kills the test's process group and every process of the sandbox uid."""
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        if self.can_drop:
            kill_uid(self.uid, skip=pid)

    def run(self, spec, code):
        lim = self.limits
        wall_s = float(lim["wall_s"])
        cap = int(lim["output_kb"]) << 10
        nonce = os.urandom(16).hex()
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        rep_r, rep_w = os.pipe()
        start = time.monotonic()

        def child():
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for fd in (in_w, out_r, err_r, rep_r, self.wake_r, self.wake_w):
                os.close(fd)
            child_main([in_r, out_w, err_w, rep_w], spec, code, lim, self.uid if self.can_drop else None, nonce)

        pid = fork_into(child, raised=111, returned=112)
        for fd in (in_r, out_w, err_w, rep_w):
            os.close(fd)
        data = (spec.get("input") or "").encode("utf-8", "surrogateescape") if spec["kind"] == "stdio" else b""
        os.set_blocking(in_w, False)
        out, err, rep = bytearray(), bytearray(), bytearray()
        sinks = {out_r: out, err_r: err, rep_r: rep}
        readers = [out_r, err_r, rep_r]
        writer = in_w
        if not data:
            os.close(in_w)
            writer = None
        output_limit = wall_limit = False
        status = rusage = None
        exited_at = None
        while True:
            now = time.monotonic()
            if status is None:
                r = os.wait4(pid, os.WNOHANG)
                if r[0] == pid:
                    status, rusage = r[1], r[2]
                    exited_at = now
            if status is not None and (not readers or now - exited_at > 0.05):
                break
            if status is None and now - start > wall_s:
                wall_limit = True
                break
            if status is not None:
                timeout = 0.05 - (now - exited_at)
            else:
                timeout = wall_s - (now - start)
            rl, wl, _ = select.select(
                [*readers, self.wake_r], [writer] if writer is not None else [], [], max(timeout, 0)
            )
            if self.wake_r in rl:
                try:
                    os.read(self.wake_r, 4096)
                except BlockingIOError:
                    pass
            if wl:
                try:
                    n = os.write(writer, data[:65536])
                    data = data[n:]
                except (BrokenPipeError, BlockingIOError) as e:
                    if isinstance(e, BrokenPipeError):
                        data = b""
                if not data:
                    os.close(writer)
                    writer = None
            for fd in rl:
                if fd == self.wake_r:
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    readers.remove(fd)
                    continue
                sinks[fd].extend(chunk)
            if len(out) + len(err) > cap or len(rep) > MAX_REPORT_BYTES:
                output_limit = True
                break
        self.kill_leftovers(pid)
        if status is None:
            _, status, rusage = os.wait4(pid, 0)
        for fd in readers + ([writer] if writer is not None else []):
            os.close(fd)
        for fd in (out_r, err_r, rep_r):
            if fd in readers:
                continue
            try:
                os.close(fd)
            except OSError:
                pass
        wall = time.monotonic() - start
        msgs = []
        for line in bytes(rep).split(b"\n"):
            if not line:
                continue
            try:
                m = json.loads(line)
            except ValueError:
                continue
            if isinstance(m, dict) and m.pop("n", None) == nonce:
                msgs.append(m)
        compile_failed = next((m.get("error") for m in msgs if m.get("t") == "compile_error"), None)
        return {
            "compile_error": str(compile_failed) if compile_failed is not None else None,
            "compiled": any(m.get("t") == "compiled" for m in msgs),
            "t": "ran",
            "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            "cpu": rusage.ru_utime + rusage.ru_stime,
            "wall": wall,
            "maxrss_kb": rusage.ru_maxrss,
            "stdout": bytes(out[:cap]).decode("utf-8", "surrogateescape"),
            "stderr": bytes(err[-STDERR_TAIL:]).decode("utf-8", "replace"),
            "msgs": msgs,
            "output_limit": output_limit,
            "wall_limit": wall_limit,
        }

    def compile_check(self, program):
        """Compiles the program in a limited child (compiler bombs): the code object or None, and
        the error. Used for a submission without tests; otherwise the first test's child compiles."""
        r_fd, w_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r_fd)
                for res, soft, hard in child_rlimits(self.limits):
                    resource.setrlimit(res, (soft, hard))
                if self.can_drop:
                    os.setgroups([])
                    os.setresgid(self.uid, self.uid, self.uid)
                    os.setresuid(self.uid, self.uid, self.uid)
                error = compile_error(program)
                os.write(w_fd, json.dumps(error if isinstance(error, str) else None).encode())
            finally:
                os._exit(0)
        os.close(w_fd)
        deadline = time.monotonic() + float(self.limits["wall_s"])
        buf = bytearray()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            rl, _, _ = select.select([r_fd], [], [], left)
            if not rl:
                continue
            chunk = os.read(r_fd, 65536)
            if not chunk:
                break
            buf.extend(chunk)
        os.close(r_fd)
        self.kill_leftovers(pid)
        os.waitpid(pid, 0)
        try:
            error = json.loads(bytes(buf))
        except ValueError:
            return None, "the compiler exceeded its limits"
        if error is not None:
            return None, error
        return compile(program, "solution.py", "exec"), None


def install_site_builtins():
    """``-S`` skips ``site``, which is what defines ``exit()``/``quit()``; programs use them."""
    import builtins

    def exit(code=None):
        raise SystemExit(code)

    builtins.exit = builtins.quit = exit


def fork_into(body, raised, returned):
    """Forks a child that runs ``body`` (meant to end in ``os._exit``); a child whose body raises
    prints the traceback and exits with ``raised``, one whose body returns with ``returned``.
    Returns the child's pid."""
    pid = os.fork()
    if pid == 0:
        try:
            body()
        except BaseException:
            try:
                traceback.print_exc()
            finally:
                os._exit(raised)
        os._exit(returned)
    return pid


def uid_processes(uid, skip=None):
    """Whether a live (not zombie) process other than ``skip`` has ``uid`` as any of its uids.

    Read from /proc/<pid>/status, which shows the credentials even of a process that made itself
    non-dumpable (its /proc directory then belongs to root). A uid with no live process cannot
    get one: only this harness starts processes under it."""
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == skip:
            continue
        try:
            with open("/proc/" + name + "/status", "rb") as f:
                status = f.read()
        except OSError:
            continue
        state = uids = b""
        for line in status.split(b"\n"):
            if line.startswith(b"State:"):
                state = line
            elif line.startswith(b"Uid:"):
                uids = line
                break
        if b"(zombie)" not in state and str(uid).encode() in uids.split():
            return True
    return False


def kill_uid(uid, skip=None):
    """Kills every process of ``uid`` in this jail: when one is left (most tests leave none), a
    helper becomes ``uid`` and kills -1. ``skip``: a process already killed, not yet reaped."""
    if not uid_processes(uid, skip):
        return
    helper = os.fork()
    if helper == 0:
        try:
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(helper, 0)


def serve_submission(proto_in_fd, write, uid):
    """One submission, in a leader process forked from the pristine main loop; never returns.

    Exit status 0: the runner ended the submission (``{"op": "end"}``); 3: end of stdin (stop).
    """
    reader = io.BufferedReader(io.FileIO(proto_in_fd, "r", closefd=False), 1 << 20)
    # without a sandbox uid (a harness not started as root) nothing kills what a submission left
    # behind: the runner then gives every submission a jail of its own
    write({"t": "ready", "isolated": uid is not None})
    line = reader.readline()
    if not line:
        os._exit(3)
    hello = json.loads(line)
    ex = Executor(hello["limits"], uid)
    # The program is compiled by the first test's child, under that test's limits (a compiler bomb
    # hurts only that child); once a child has compiled it, this process compiles it too and later
    # children start from the code object.
    program = hello["program"]
    del hello
    while True:
        line = reader.readline()
        if not line:
            os._exit(3)
        frame = json.loads(line)
        op = frame.get("op")
        if op == "end":
            os._exit(0)
        if op == "compile":  # a submission without tests
            code, error = ex.compile_check(program)
            write({"t": "compiled", "ok": code is not None, "error": error})
        elif op == "run":
            result = ex.run(frame["spec"], program)
            if result["compiled"] and isinstance(program, str):
                program = compile(program, "solution.py", "exec")
            write(result)
        else:
            os._exit(3)


def preload():
    for name in PRELOAD:
        try:
            __import__(name)
        except ImportError:
            pass


def main():
    install_site_builtins()
    preload()
    try:
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except Exception:
        pass
    proto_in = os.dup(0)
    proto_out = io.FileIO(os.dup(1), "w")
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)

    def write(msg):
        data = (json.dumps(msg) + "\n").encode()
        while data:
            n = proto_out.write(data)
            data = data[n:]

    # The jail's first frame; nothing else is sent until a leader says "ready", so this read
    # cannot take bytes that belong to a submission.
    line = io.FileIO(proto_in, "r", closefd=False).readline()
    if not line:
        return
    uid = json.loads(line).get("uid")
    can_drop = uid is not None and os.getuid() == 0
    while True:
        # Each submission is served by a fresh fork of this loop, which never reads a program, a
        # test or a result: a submission cannot find another's data in its memory. Between two
        # submissions every process left under the sandbox uid is killed.
        leader = fork_into(lambda: serve_submission(proto_in, write, uid if can_drop else None), raised=4, returned=4)
        _, status = os.waitpid(leader, 0)
        if can_drop:
            kill_uid(uid)
        if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
            return


main()
