"""A warm jail judges several submissions of one scope: nothing of one reaches the next.

Every test here runs submissions one after another in one real Firejail (``JailSession``) or
through the Pebble pool (``CodeJudge`` with a scope), and checks what the later submission can see.
"""

import secrets

import pytest

from rljudge_sandbox import CodeJudge
from rljudge_sandbox.jail import MARKER_PREFIX
from rljudge_sandbox.runner import MAX_SUBMISSIONS_PER_JAIL, JailSession

from .conftest import FAST, ONE, sandbox_processes, stdio

RUN = {"type": "run"}
LIMITS = {"time_s": 2.0, "wall_s": 4.0}

#: Prints the jail it runs in: the marker is in the harness's argv, which a forked child shares.
WHICH_JAIL = (
    f"print(next(a for a in open('/proc/self/cmdline').read().split(chr(0)) if a.startswith({MARKER_PREFIX!r})))"
)

#: Prints how many live processes other than itself run under its own uid.
OTHERS_OF_MY_UID = """
import os
me = str(os.getuid())
others = 0
for pid in os.listdir('/proc'):
    if not pid.isdigit() or int(pid) == os.getpid():
        continue
    try:
        status = open(f'/proc/{pid}/status').read()
    except OSError:
        continue
    uid_line = next(line for line in status.splitlines() if line.startswith('Uid:'))
    if me in uid_line.split() and 'zombie' not in status:
        others += 1
print(others)
"""

SCAN_MEMORY = """
import ctypes, sys
hexed = sys.stdin.read().strip()
head, tail = bytes.fromhex(hexed[:16]), bytes.fromhex(hexed[16:])  # never whole in this process
found = False
for line in open('/proc/self/maps'):
    fields = line.split()
    if not fields[1].startswith('r') or (len(fields) > 5 and fields[5] not in ('[heap]', '[stack]')):
        continue  # anonymous memory, the heap and the stack: where a process keeps its data
    start, end = (int(x, 16) for x in fields[0].split('-'))
    for offset in range(start, end, 1 << 20):
        chunk = ctypes.string_at(offset, min((1 << 20) + 64, end - offset))  # overlapping reads
        at = chunk.find(head)
        while at != -1 and not found:
            found = chunk[at + len(head) : at + len(head) + len(tail)] == tail
            at = chunk.find(head, at + 1)
print('found' if found else 'absent')
"""
"""Searches its own data memory (read with ctypes) for bytes given on stdin, so that its own source
does not hold them."""


def _stdout(result: dict) -> str:
    assert result["verdict"] == "correct", result
    return result["tests"][0]["stdout"].strip()


@pytest.fixture
def session():
    with JailSession("scope-a") as s:
        yield s


def test_a_session_judges_many_submissions_in_one_jail(session):
    jails = {_stdout(session.judge(WHICH_JAIL, RUN, LIMITS, "all")) for _ in range(5)}
    assert len(jails) == 1 and session.served == 5


def test_a_later_submission_cannot_find_an_earlier_ones_data_in_memory(session):
    secret = "rljudge-secret-" + secrets.token_hex(16)
    holder = f"SECRET = {secret!r}\nprint(SECRET)"
    assert session.judge(holder, stdio(("", secret)), LIMITS, "all")["verdict"] == "correct"
    result = session.judge(SCAN_MEMORY, {"type": "run", "stdin": secret.encode().hex()}, LIMITS, "all")
    assert _stdout(result) == "absent"
    # the scanner works: it finds a string its own process holds
    mine = "rljudge-own-" + secrets.token_hex(16)
    probe = f"held = {mine!r}\n" + SCAN_MEMORY
    assert _stdout(session.judge(probe, {"type": "run", "stdin": mine.encode().hex()}, LIMITS, "all")) == "found"


def test_processes_left_by_a_submission_are_gone_before_the_next(session):
    daemon = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(10**6)\nprint('ok')"
    assert session.judge(daemon, ONE, LIMITS, "all")["verdict"] == "correct"
    assert _stdout(session.judge(OTHERS_OF_MY_UID, RUN, LIMITS, "all")) == "0"


def test_sysv_and_posix_ipc_are_refused(session):
    program = (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "print([libc.shmget(0x5151, 4096, 0o1666), libc.msgget(0x5152, 0o1666), libc.semget(0x5153, 1, 0o1666)])"
    )
    assert _stdout(session.judge(program, RUN, LIMITS, "all")) == "[-1, -1, -1]"


def test_a_failing_submission_does_not_spoil_the_next(session):
    assert session.judge("while True:\n    pass", ONE, FAST, "all")["verdict"] == "time_limit"
    assert session.judge("def f(:", ONE, FAST, "all")["verdict"] == "compile_error"
    assert session.judge("import os\nos._exit(3)", ONE, FAST, "all")["verdict"] == "runtime_error"
    assert session.judge("print('ok')", ONE, FAST, "all")["verdict"] == "correct"
    assert session.served == 4


def test_a_dead_jail_is_replaced_transparently(session):
    first = _stdout(session.judge(WHICH_JAIL, RUN, LIMITS, "all"))
    session.close()  # as if the jail had died
    assert _stdout(session.judge(WHICH_JAIL, RUN, LIMITS, "all")) != first


def test_a_jail_is_replaced_after_its_budget_or_when_it_cannot_isolate():
    session = JailSession("s")
    try:
        first = _stdout(session.judge(WHICH_JAIL, RUN, LIMITS, "all"))
        assert session.isolated  # the harness runs submissions under a sandbox uid (the worker is root)
        assert session.reusable_for("s") and not session.reusable_for("t") and not session.reusable_for(None)
        session.served = MAX_SUBMISSIONS_PER_JAIL
        assert session.alive and not session.reusable_for("s")
        session.served, session.isolated = 1, False  # a harness that could not drop to a sandbox uid
        assert not session.reusable_for("s")
    finally:
        session.close()
    assert first.startswith(MARKER_PREFIX)


def test_the_pool_never_shares_a_jail_across_scopes():
    with CodeJudge(max_workers=1) as judge:
        a1 = _stdout(judge.judge(WHICH_JAIL, RUN, LIMITS, scope="batch-a"))
        a2 = _stdout(judge.judge(WHICH_JAIL, RUN, LIMITS, scope="batch-a"))
        b = _stdout(judge.judge(WHICH_JAIL, RUN, LIMITS, scope="batch-b"))
        none1 = _stdout(judge.judge(WHICH_JAIL, RUN, LIMITS))
        none2 = _stdout(judge.judge(WHICH_JAIL, RUN, LIMITS))
    assert a1 == a2
    assert len({a1, b, none1, none2}) == 4
    assert sandbox_processes() == []
