"""Code judging through the gateway: real workers, real Firejail, the problem registry, rewards."""

from __future__ import annotations

import uuid

import httpx

from rljudge import ProblemRegistered

from .conftest import judge

ECHO_SUM = "a, b = map(int, input().split())\nprint(a + b)\n"
SUM_TESTS = {"type": "stdio", "cases": [{"input": f"{i} {i + 1}\n", "output": f"{2 * i + 1}\n"} for i in range(4)]}


def fenced(program: str, nonce: str = "") -> str:
    return f"<think>easy</think>Here it is:\n```python\n{program}# {nonce or uuid.uuid4().hex}\n```\n"


def test_code_verdicts_and_rewards(judge_url: str) -> None:
    items = [
        {"kind": "code", "id": "ok", "response": fenced(ECHO_SUM), "tests": SUM_TESTS},
        {"kind": "code", "id": "code-field", "code": ECHO_SUM + f"# {uuid.uuid4().hex}\n", "tests": SUM_TESTS},
        {
            "kind": "code",
            "id": "half",
            "response": fenced("a, b = map(int, input().split())\nprint(a + b if a < 2 else 0)\n"),
            "tests": SUM_TESTS,
        },
        {"kind": "code", "id": "no-code", "response": "I would use a loop.", "tests": SUM_TESTS},
        {"kind": "code", "id": "syntax", "response": fenced("def f(:\n"), "tests": SUM_TESTS},
        {"kind": "code", "id": "crash", "response": fenced("raise ValueError('boom')\n"), "tests": SUM_TESTS},
        {
            "kind": "code",
            "id": "loop",
            "response": fenced("while True:\n    pass\n"),
            "tests": SUM_TESTS,
            "limits": {"time_s": 0.3},
        },
    ]
    results = {r.id: r for r in judge(judge_url, items, reward_scheme="fraction").results}
    assert (results["ok"].verdict, results["ok"].reward, results["ok"].passed, results["ok"].total) == (
        "correct",
        1.0,
        4,
        4,
    )
    assert results["code-field"].reward == 1.0
    assert (results["half"].verdict, results["half"].reward) == ("wrong_answer", 0.5)
    assert [t.status for t in results["half"].tests or []] == ["passed", "passed", "wrong_answer", "wrong_answer"]
    assert (results["no-code"].status, results["no-code"].verdict, results["no-code"].reward) == (
        "scored",
        "no_code",
        0.0,
    )
    assert (results["syntax"].verdict, results["syntax"].reward) == ("compile_error", 0.0)
    assert results["crash"].verdict == "runtime_error" and "boom" in (results["crash"].tests or [])[0].detail
    assert results["loop"].verdict == "time_limit"
    assert all(r.status == "scored" for r in results.values())


def test_klear_and_binary_code_rewards(judge_url: str) -> None:
    half = fenced("a, b = map(int, input().split())\nprint(a + b if a < 2 else 0)\n")
    items = [{"kind": "code", "response": half, "tests": SUM_TESTS}]
    assert judge(judge_url, items, reward_scheme="klear").results[0].reward == 0.0  # (2 - 2) / 4
    assert judge(judge_url, items, reward_scheme="binary").results[0].reward == 0.0
    good = [{"kind": "code", "response": fenced(ECHO_SUM), "tests": SUM_TESTS}]
    assert judge(judge_url, good, reward_scheme="klear").results[0].reward == 1.0


def test_first_failure_mode_skips_the_rest(judge_url: str) -> None:
    wrong_first = fenced("print(0)\n")
    result = judge(
        judge_url, [{"kind": "code", "response": wrong_first, "tests": SUM_TESTS, "mode": "first_failure"}]
    ).results[0]
    assert [t.status for t in result.tests or []] == ["wrong_answer", "skipped", "skipped", "skipped"]
    assert result.passed == 0 and result.total == 4


def test_every_test_format_through_the_gateway(judge_url: str) -> None:
    call = {
        "type": "call",
        "fn_name": "add",
        "cases": [{"args": [1, 2], "expected": 3}, {"args": [5, 5], "expected": 10}],
    }
    leetcode = {"type": "call", "fn_name": "twice", "cases": [{"args": [4], "expected": 8}]}
    humaneval = {
        "type": "assert",
        "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n",
        "entry_point": "add",
    }
    mbpp = {"type": "assert", "asserts": ["assert add(1, 1) == 2", "assert add(0, 0) == 0", "assert add(2, 2) == 5"]}
    pytest_suite = {
        "type": "pytest",
        "source": "from solution import add\n\ndef test_add():\n    assert add(1, 2) == 3\n",
    }
    add = "def add(a, b):\n    return a + b\n"
    items = [
        {"kind": "code", "code": add, "tests": call},
        {"kind": "code", "code": "class Solution:\n    def twice(self, x):\n        return 2 * x\n", "tests": leetcode},
        {"kind": "code", "code": add, "tests": humaneval},
        {"kind": "code", "code": add, "tests": mbpp},
        {"kind": "code", "code": add, "tests": pytest_suite},
    ]
    results = judge(judge_url, items, reward_scheme="fraction").results
    assert [r.reward for r in results] == [1.0, 1.0, 1.0, 2 / 3, 1.0]


def test_problem_registered_once_serves_sixteen_rollouts(judge_url: str) -> None:
    problem_id = f"sum-{uuid.uuid4().hex[:8]}"
    suite = {"tests": SUM_TESTS, "limits": {"time_s": 1.0}}
    first = httpx.put(f"{judge_url}/v1/problems/{problem_id}", json=suite)
    again = httpx.put(f"{judge_url}/v1/problems/{problem_id}", json=suite)
    assert first.status_code == 201 and again.status_code == 200
    registered = ProblemRegistered.model_validate_json(first.content)
    assert registered.hash == ProblemRegistered.model_validate_json(again.content).hash and registered.tests == 4
    assert httpx.get(f"{judge_url}/v1/problems/{problem_id}").json()["hash"] == registered.hash

    right, wrong = fenced(ECHO_SUM), fenced("print(1)\n")
    items = [{"kind": "code", "response": right if i % 2 == 0 else wrong, "problem": problem_id} for i in range(16)]
    results = judge(judge_url, items).results
    assert [r.reward for r in results] == [1.0 if i % 2 == 0 else 0.0 for i in range(16)]
    assert sum(r.cached for r in results) >= 12  # two distinct programs: the rest share their verdicts


def test_unknown_problem_and_bad_code_items_are_rejected(judge_url: str) -> None:
    items = [
        {"kind": "code", "response": fenced(ECHO_SUM), "problem": "never-registered"},
        {"kind": "code", "response": fenced(ECHO_SUM)},
        {"kind": "code", "response": "x", "code": "y", "tests": SUM_TESTS},
        {"kind": "code", "code": "x", "tests": {"type": "stdio", "cases": []}},
        {"kind": "code", "code": "x", "tests": SUM_TESTS, "language": "cobol"},
        {"kind": "code", "code": "x", "tests": SUM_TESTS, "limits": {"memory_mb": 1}},
    ]
    results = judge(judge_url, items).results
    assert [r.status for r in results] == ["rejected"] * 6
    details = [r.detail or "" for r in results]
    assert "never-registered" in details[0] and "not registered" in details[0]
    assert "tests" in details[1] and "problem" in details[1]
    assert "response" in details[2]
    assert "cases" in details[3]
    assert "language" in details[4]
    assert "memory_mb" in details[5]


def test_bad_problem_suite_is_422(judge_url: str) -> None:
    response = httpx.put(f"{judge_url}/v1/problems/p1", json={"tests": {"type": "stdio"}})
    assert response.status_code == 422
    assert "cases" in response.json()["detail"]
    bad_id = httpx.put(f"{judge_url}/v1/problems/has%20space", json={"tests": SUM_TESTS})
    assert bad_id.status_code == 422


def test_hostile_program_leaves_the_worker_serving(judge_url: str) -> None:
    bombs = [
        "import os\nwhile True:\n    os.fork()\n",
        "x = bytearray(8 << 30)\n",
        "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n",
        "import ctypes\nctypes.string_at(0)\n",
    ]
    items = [{"kind": "code", "response": fenced(b), "tests": SUM_TESTS, "limits": {"time_s": 0.5}} for b in bombs]
    results = judge(judge_url, items).results
    assert all(r.status in ("scored", "infra_failed") and r.reward in (0.0, None) for r in results)
    assert all(r.verdict != "correct" for r in results)
    after = judge(judge_url, [{"kind": "code", "response": fenced(ECHO_SUM), "tests": SUM_TESTS}]).results[0]
    assert after.reward == 1.0
    assert httpx.get(f"{judge_url}/readyz").status_code == 200


def test_program_cannot_reach_the_test_redis(judge_url: str, redis_url: str, redis) -> None:
    """A submission tries to write a key into the very Redis the workers use: it must fail."""
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    marker = f"pwned-{uuid.uuid4().hex}"
    program = (
        "import socket\n"
        "try:\n"
        f"    s = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
        f"    s.sendall(b'SET {marker} 1\\r\\n')\n"
        "    print(s.recv(16))\n"
        "except OSError as exc:\n"
        "    print('refused')\n"
    )
    tests = {"type": "stdio", "cases": [{"input": "", "output": "refused"}]}
    result = judge(judge_url, [{"kind": "code", "code": program, "tests": tests}]).results[0]
    assert result.verdict == "correct"  # i.e. the program saw its connection refused
    assert redis.exists(marker) == 0


def test_jails_are_reused_within_a_batch_and_never_across_batches(judge_url: str) -> None:
    # each program prints the jail it runs in (the marker in the harness's argv, shared by forks)
    which_jail = (
        "print(next(a for a in open('/proc/self/cmdline').read().split(chr(0)) if a.startswith('rljudge-jail-')))"
    )

    def jails_of_one_batch() -> list[str]:
        items = [
            {"kind": "code", "code": f"{which_jail}  # {uuid.uuid4().hex}", "tests": {"type": "run"}} for _ in range(8)
        ]
        results = judge(judge_url, items).results
        assert all(r.verdict == "correct" for r in results), results
        return [(r.tests or [])[0].stdout.strip() for r in results]

    first, second = jails_of_one_batch(), jails_of_one_batch()
    assert len(set(first)) < len(first) and len(set(second)) < len(second)  # warm jails served several
    assert not set(first) & set(second)  # a jail never serves two batches
