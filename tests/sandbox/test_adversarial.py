"""Hostile programs, one property each, against the real jail."""

import os
import shutil
import socket

import psutil
import pytest

from rljudge_sandbox import execute, run_budget_s
from rljudge_sandbox.jail import MARKER_PREFIX

from .conftest import FAST, ONE, run, sandbox_processes, stdio


def test_infinite_loop_is_time_limit():
    result = run("while True:\n    pass")
    assert result["verdict"] == "time_limit"


def test_ignoring_sigxcpu_is_still_time_limit():
    result = run("import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass")
    assert result["verdict"] == "time_limit"


def test_sleep_forever_hits_the_wall_cap():
    result = run("import time\ntime.sleep(10**6)")
    assert (result["verdict"], result["tests"][0]["detail"][:10]) == ("time_limit", "wall clock")


def test_ignoring_sigterm_does_not_help():
    program = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(10**6)"
    assert run(program)["verdict"] == "time_limit"


def test_fork_bomb_is_contained_and_leaves_nothing():
    program = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result = run(program)
    assert result["verdict"] in ("time_limit", "runtime_error")
    assert sandbox_processes() == []


def test_background_process_does_not_outlive_its_test():
    program = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(10**6)\nprint('ok')"
    result = run(program, stdio(("", "ok"), ("", "ok")))
    assert result["verdict"] == "correct"
    assert sandbox_processes() == []


def test_memory_bomb_is_memory_limit():
    result = run("x = bytearray(2 << 30)", limits={"memory_mb": 128})
    assert result["verdict"] == "memory_limit"


def test_growing_list_is_memory_limit():
    result = run("x = []\nwhile True:\n    x.append('y' * 10**6)", limits={"memory_mb": 128, "time_s": 2})
    assert result["verdict"] == "memory_limit"


def test_output_flood_is_output_limit():
    result = run("while True:\n    print('x' * 1000)", limits={"output_kb": 64})
    assert result["verdict"] == "output_limit"


def test_stderr_flood_is_output_limit():
    result = run("import sys\nwhile True:\n    sys.stderr.write('x' * 1000)", limits={"output_kb": 64})
    assert result["verdict"] == "output_limit"


def test_disk_fill_fails_and_host_disk_is_untouched(tmp_path):
    before = shutil.disk_usage("/tmp").used
    program = (
        "import os\nfor d in ('/tmp', os.path.expanduser('~'), '/dev/shm', '/var/tmp', '.'):\n"
        "    try:\n        open(os.path.join(d, 'fill'), 'wb').write(b'x' * (50 << 20))\n        print('wrote', d)\n"
        "    except OSError as e:\n        pass\nprint('ok')"
    )
    result = run(program, limits={"time_s": 2})
    assert result["verdict"] == "correct"
    assert shutil.disk_usage("/tmp").used - before < 40 << 20


def test_file_size_limit_applies():
    assert (
        run("open('/dev/null', 'wb').write(b'x' * 4096)\nprint('ok')", limits={"file_size_kb": 1})["verdict"]
        == "correct"
    )


def test_tcp_connect_to_host_server_fails():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    program = (
        f"import socket\ns = socket.socket()\ns.settimeout(1)\n"
        f"try:\n    s.connect(('127.0.0.1', {port}))\n    print('connected')\nexcept OSError:\n    print('ok')"
    )
    try:
        result = run(program, limits={"time_s": 2})
        assert result["verdict"] == "correct"
        with pytest.raises(TimeoutError):
            server.accept()
    finally:
        server.close()


def test_unix_sockets_are_blocked():
    program = "import socket\ntry:\n    socket.socket(socket.AF_UNIX)\nexcept OSError:\n    print('ok')"
    assert run(program)["verdict"] == "correct"


@pytest.mark.parametrize(
    "path",
    ["/work/main/pyproject.toml", os.path.abspath(__file__), "/root/.bashrc", "/etc/passwd", "/etc/shadow", "/home"],
)
def test_files_outside_the_jail_are_unreadable(path):
    program = (
        f"import os\ntry:\n    os.listdir({path!r}) if os.path.isdir({path!r}) else open({path!r}).read()\n"
        "    print('read')\nexcept OSError:\n    print('ok')"
    )
    assert run(program)["verdict"] == "correct"


def test_project_tree_cannot_be_listed():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    program = f"import os\ntry:\n    print(os.listdir({root!r}))\nexcept OSError:\n    print('ok')"
    assert run(program)["verdict"] == "correct"


def test_worker_environment_is_not_visible(monkeypatch):
    monkeypatch.setenv("RLJUDGE_API_KEYS", "secret-key")
    monkeypatch.setenv("REDIS_URL", "redis://secret:6379/0")
    program = (
        "import os\nenv = ' '.join(f'{k}={v}' for k, v in os.environ.items())\n"
        "parent = open('/proc/1/environ', 'rb').read() if os.access('/proc/1/environ', os.R_OK) else b''\n"
        "print('leak' if 'secret' in env or b'secret' in parent else 'ok')"
    )
    assert run(program)["verdict"] == "correct"


def test_program_runs_unprivileged():
    program = "import os\nprint('ok' if os.getuid() != 0 and os.geteuid() != 0 else 'root')"
    assert run(program)["verdict"] == "correct"


def test_killing_the_harness_is_denied():
    program = "import os, signal\ntry:\n    os.kill(os.getppid(), signal.SIGKILL)\nexcept OSError:\n    print('ok')"
    assert run(program, stdio(("", "ok"), ("", "ok")))["verdict"] == "correct"


def test_killing_pid_1_and_everyone_gains_nothing():
    program = (
        "import os, signal\nfor pid in (1, -1, os.getppid()):\n"
        "    try:\n        os.kill(pid, signal.SIGKILL)\n    except OSError:\n        pass"
    )
    result = run(program, stdio(("", "ok"), ("", "ok")))
    assert (result["verdict"], result["total"], len(result["tests"])) == ("wrong_answer", 2, 2)


def test_segfault_is_runtime_error():
    result = run("import ctypes\nctypes.string_at(0)")
    assert (result["verdict"], result["detail"]) == ("runtime_error", "killed by SIGSEGV")


def test_deep_recursion_is_runtime_error():
    result = run("def f(n):\n    return f(n + 1)\nf(0)")
    assert result["verdict"] == "runtime_error"
    assert "RecursionError" in result["detail"]


def test_deep_recursion_with_raised_limit_is_runtime_error():
    result = run(
        "import sys\nsys.setrecursionlimit(10**9)\ndef f(n):\n    return f(n + 1)\nf(0)",
        limits={"time_s": 2, "memory_mb": 64},
    )
    assert result["verdict"] in ("runtime_error", "memory_limit")


def test_cpu_verdict_is_independent_of_load():
    """A correct program needing ~60% of its CPU limit passes while both cores are busy (calibrated
    under the same load: a shared VM's CPU seconds per loop vary by a third from minute to minute)."""
    calibrate = "x = 0\nfor i in range(3_000_000):\n    x += i"
    hogs = [psutil.Popen(["python3", "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        base = execute(calibrate, stdio(("", "")), {"time_s": 5})
        per_3m = float(base["tests"][0]["time_ms"]) / 1000
        loops = int(3_000_000 * 0.6 * 1.0 / per_3m)
        program = f"x = 0\nfor i in range({loops}):\n    x += i\nprint('ok')"
        result = execute(program, ONE, {"time_s": 1.0, "wall_s": 10})
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    assert result["verdict"] == "correct", result
    assert 300 < result["tests"][0]["time_ms"] < 1000


def test_run_budget_covers_every_wall_cap():
    suite = stdio(*[("", "")] * 10)
    assert run_budget_s(suite, FAST) >= 10 * FAST["wall_s"]


def test_marker_prefix_is_what_the_leftover_check_looks_for():
    assert MARKER_PREFIX.startswith("rljudge-jail-")
