"""SandboxFusion's ``POST /run_code``, driven by verl's own sandbox_fusion client (verl 0.9.1 installed).

verl's ``verl.utils.reward_score.sandbox_fusion`` posts ``{"compile_timeout", "run_timeout", "code",
"stdin", "memory_limit_MB", "language", "files": {}, "fetch_files": []}`` to the configured URL and
reads ``status`` / ``compile_result`` / ``run_result.{status, return_code, stdout, stderr,
execution_time}``. It never calls ``/submit``, which rljudge does not serve.
"""

from __future__ import annotations

import json
import threading
import uuid

import httpx
import pytest

pytest.importorskip("verl.utils.reward_score.sandbox_fusion", reason="needs verl==0.9.1 (the integrations extra)")

from verl.utils.reward_score import sandbox_fusion
from verl.utils.reward_score.sandbox_fusion.utils import call_sandbox_api

RUN_CODE_KEYS = {"status", "message", "compile_result", "run_result", "executor_pod_name", "files"}
RUN_RESULT_KEYS = {"status", "execution_time", "return_code", "stdout", "stderr"}


def run(url: str, code: str, stdin: str = "", run_timeout: int = 5, memory_limit_mb: int = 1024) -> dict:
    response, error = call_sandbox_api(
        f"{url}/run_code", code, stdin, compile_timeout=5, run_timeout=run_timeout, memory_limit_mb=memory_limit_mb
    )
    assert error is None, error
    assert response is not None
    return response


def fresh(code: str) -> str:
    """A program the verdict cache has never seen (each test runs its program for real)."""
    return f"{code}\n# {uuid.uuid4().hex}\n"


def fenced(code: str) -> str:
    """verl 0.9.1's scorer takes the program from a fenced block (and scores 0 without one)."""
    return f"```python\n{code}```"


def test_run_code_success_has_sandboxfusion_shape(judge_url: str) -> None:
    code = fresh("import sys\ndata = sys.stdin.read()\nprint(data.upper(), end='')\nprint('note', file=sys.stderr)")
    response = run(judge_url, code, stdin="hello\n")
    assert set(response) == RUN_CODE_KEYS
    assert response["status"] == "Success" and response["compile_result"] is None and response["files"] == {}
    result = response["run_result"]
    assert set(result) == RUN_RESULT_KEYS
    assert (result["status"], result["return_code"], result["stdout"], result["stderr"]) == (
        "Finished",
        0,
        "HELLO\n",
        "note\n",
    )
    assert 0 <= result["execution_time"] < 5


@pytest.mark.parametrize(
    ("code", "return_code", "stderr_part"),
    [
        ("import sys\nprint('partial')\nsys.exit(3)", 3, ""),
        ("raise ValueError('boom')", 1, "ValueError: boom"),
        ("def f(:\n    pass", 1, "SyntaxError"),
        ("x = bytearray(4 << 30)", 1, "MemoryError"),
    ],
)
def test_run_code_failures_are_failed_with_the_exit_status(
    judge_url: str, code: str, return_code: int, stderr_part: str
) -> None:
    response = run(judge_url, fresh(code), memory_limit_mb=256)
    assert response["status"] == "Failed"
    assert response["run_result"]["status"] == "Finished"
    assert response["run_result"]["return_code"] == return_code
    assert stderr_part in response["run_result"]["stderr"]


def test_run_code_time_limit_is_time_limit_exceeded(judge_url: str) -> None:
    response = run(judge_url, fresh("print('started', flush=True)\nwhile True:\n    pass"), run_timeout=1)
    assert response["status"] == "Failed"
    assert response["run_result"]["status"] == "TimeLimitExceeded"
    assert response["run_result"]["stdout"] == "started\n"


def test_verl_sandbox_fusion_compute_score_scores_stdio_and_call_tests(judge_url: str) -> None:
    """verl's own scorer: one /run_code per test case, comparing stdout itself (call-based tests
    are wrapped by verl into a program reading JSON arguments from stdin)."""
    semaphore = threading.Semaphore(4)
    stdio_cases = {"inputs": ["1 2\n", "3 4\n", "10 -3\n"], "outputs": ["3\n", "7\n", "7\n"]}
    right = fresh("a, b = map(int, input().split())\nprint(a + b)")
    wrong = fresh("a, b = map(int, input().split())\nprint(a + b if a < 5 else 0)")
    score, metadata = sandbox_fusion.compute_score(
        f"{judge_url}/run_code", semaphore, 1024, fenced(right), json.dumps(stdio_cases)
    )
    assert score == 1.0 and [m["status"] for m in metadata] == ["success"] * 3
    score, metadata = sandbox_fusion.compute_score(f"{judge_url}/run_code", semaphore, 1024, fenced(wrong), stdio_cases)
    assert score == pytest.approx(2 / 3)
    assert [m["status"] for m in metadata] == ["success", "success", "wrong_answer"]

    call_cases = {"fn_name": "add", "inputs": ["1\n2", "5\n6"], "outputs": ["3", "11"]}
    program = fresh("def add(a, b):\n    return a + b")
    score, metadata = sandbox_fusion.compute_score(
        f"{judge_url}/run_code", semaphore, 1024, fenced(program), call_cases
    )
    assert score == 1.0, metadata


def test_verl_sandbox_fusion_runtime_error_and_timeout_codes(judge_url: str) -> None:
    semaphore = threading.Semaphore(2)
    cases = {"inputs": ["1\n"], "outputs": ["1\n"]}
    _, metadata = sandbox_fusion.compute_score(
        f"{judge_url}/run_code", semaphore, 1024, fenced(fresh("raise SystemExit(2)")), cases
    )
    assert metadata[0]["status"] == "runtime_error" and metadata[0]["exit_code"] == 2
    _, metadata = sandbox_fusion.compute_score(
        f"{judge_url}/run_code", semaphore, 1024, fenced(fresh("while True:\n    pass")), cases, timeout=1
    )
    assert metadata[0]["status"] == "timeout"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"code": "print(1)", "language": "cpp"}, "language 'cpp' is not supported"),
        ({"code": "print(1)", "files": {"a.txt": "eA=="}}, "files are not supported"),
        ({"code": "print(1)", "run_timeout": 0}, "run_timeout"),
        ({"code": "print(1)", "memory_limit_MB": 8}, "memory_limit_MB must be at least 16"),
        ({"language": "python"}, "code: Field required"),
    ],
)
def test_run_code_bad_requests_are_422_naming_the_field(judge_url: str, body: dict, message: str) -> None:
    response = httpx.post(f"{judge_url}/run_code", json=body, timeout=30)
    assert response.status_code == 422
    assert message in response.json()["detail"]
