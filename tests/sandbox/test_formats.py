"""Correctness of every test format, on real benchmark data where there is some."""

import json

import pytest

from rljudge_sandbox import execute

from .conftest import CODE_DATA, load_jsonl, stdio

HUMANEVAL = load_jsonl("humaneval_subset.jsonl")
LABELLED = [(t, c) for t in HUMANEVAL for c in t["completions"]]
MBPP = json.loads((CODE_DATA / "mbpp_subset.json").read_text())


def humaneval_suite(task):
    return {"type": "assert", "test": task["test"], "entry_point": task["entry_point"]}


@pytest.mark.parametrize(
    ("task", "completion"), LABELLED, ids=[f"{t['task_id']}-{c['sample_idx']}" for t, c in LABELLED]
)
def test_humaneval_labelled_completion_agrees_with_label(task, completion):
    verdict = execute(task["prompt"] + completion["completion"], humaneval_suite(task))["verdict"]
    assert verdict != "sandbox_error"
    assert (verdict == "correct") == completion["passed"], completion["result"]


def test_humaneval_timeout_label_is_time_limit():
    task = next(t for t in HUMANEVAL if t["task_id"] == "HumanEval/2")
    completion = next(c for c in task["completions"] if c["result"] == "timed out")
    verdict = execute(task["prompt"] + completion["completion"], humaneval_suite(task), {"time_s": 1})["verdict"]
    assert verdict == "time_limit"


@pytest.mark.parametrize("task", HUMANEVAL, ids=[t["task_id"] for t in HUMANEVAL])
def test_humaneval_canonical_solution_is_correct(task):
    result = execute(task["prompt"] + task["canonical_solution"], humaneval_suite(task))
    assert (result["verdict"], result["passed"], result["total"]) == ("correct", 1, 1)


@pytest.mark.parametrize("rec", MBPP, ids=[str(r["task_id"]) for r in MBPP])
def test_mbpp_reference_passes_every_assert(rec):
    suite = {"type": "assert", "asserts": rec["test_list"], "setup": "\n".join(rec["test_imports"])}
    result = execute(rec["code"], suite)
    assert (result["verdict"], result["passed"]) == ("correct", len(rec["test_list"]))


def test_mbpp_each_assert_is_its_own_test():
    rec = MBPP[2]
    suite = {"type": "assert", "asserts": rec["test_list"], "setup": ""}
    program = (
        rec["code"] + "\n_real = similar_elements\nsimilar_elements = lambda a, b: () if a[0] == 1 else _real(a, b)"
    )
    result = execute(program, suite)
    assert [t["status"] for t in result["tests"]] == ["passed", "wrong_answer", "passed"]


def test_stdio_ignores_trailing_whitespace():
    assert execute("print('a  ')\nprint('b')\nprint()", stdio(("", "a\nb")))["verdict"] == "correct"


def test_stdio_keeps_leading_whitespace():
    assert execute("print(' a')", stdio(("", "a")))["verdict"] == "wrong_answer"


def test_stdio_float_tolerance_is_opt_in():
    program = "print(0.1 + 0.2)"
    assert execute(program, stdio(("", "0.3")))["verdict"] == "wrong_answer"
    assert execute(program, stdio(("", "0.3"), float_tolerance=1e-6))["verdict"] == "correct"


def test_stdio_reads_stdin():
    suite = stdio(("3\n1 2 3\n", "6"), ("2\n5 5\n", "10"))
    assert execute("input()\nprint(sum(map(int, input().split())))", suite)["verdict"] == "correct"


def test_stdio_large_input_is_fed_completely():
    n = 200_000
    suite = stdio((f"{n}\n" + "1\n" * n, str(n)))
    program = "import sys\ndata = sys.stdin.buffer.read().split()\nprint(sum(map(int, data[1:])))"
    assert execute(program, suite)["verdict"] == "correct"


def test_stdio_thread_with_big_stack_finishes():
    program = (
        "import threading, sys\nthreading.stack_size(64 << 20)\nsys.setrecursionlimit(100000)\n"
        "def f(n):\n    return 0 if n == 0 else 1 + f(n - 1)\n"
        "def main():\n    print(f(20000))\nthreading.Thread(target=main).start()"
    )
    assert execute(program, stdio(("", "20000")))["verdict"] == "correct"


def test_stdio_sys_exit_zero_after_output_passes():
    assert execute("print(42)\nimport sys\nsys.exit(0)", stdio(("", "42")))["verdict"] == "correct"


def test_call_function():
    suite = {"type": "call", "fn_name": "add", "cases": [{"args": [1, 2], "expected": 3}]}
    assert execute("def add(a, b):\n    return a + b", suite)["verdict"] == "correct"


def test_call_solution_method_and_tuple_equals_list():
    suite = {"type": "call", "fn_name": "pair", "cases": [{"args": [1], "expected": [1, 2]}]}
    program = "class Solution:\n    def pair(self, x):\n        return (x, x + 1)"
    assert execute(program, suite)["verdict"] == "correct"


def test_call_float_tolerance():
    suite = {"type": "call", "fn_name": "f", "cases": [{"args": [], "expected": 0.3}], "float_tolerance": 1e-9}
    assert execute("def f():\n    return 0.1 + 0.2", suite)["verdict"] == "correct"


def test_call_wrong_value():
    suite = {"type": "call", "fn_name": "f", "cases": [{"args": [], "expected": [1, 2]}]}
    assert execute("def f():\n    return [2, 1]", suite)["verdict"] == "wrong_answer"


def test_call_missing_function_is_runtime_error():
    suite = {"type": "call", "fn_name": "f", "cases": [{"args": [], "expected": 1}]}
    assert execute("def g():\n    return 1", suite)["verdict"] == "runtime_error"


PYTEST_SOURCE = """
import pytest
from solution import div

def test_div():
    assert div(6, 3) == 2

def test_div_approx():
    assert div(1, 3) == pytest.approx(0.3333333)

def test_div_by_zero():
    with pytest.raises(ZeroDivisionError):
        div(1, 0)

class TestMore:
    def test_negative(self):
        assert div(-6, 3) == -2
"""


def test_pytest_suite_each_function_is_a_test():
    result = execute("def div(a, b):\n    return a / b", {"type": "pytest", "source": PYTEST_SOURCE})
    assert (result["verdict"], result["passed"], result["total"]) == ("correct", 4, 4)


def test_pytest_failure_is_wrong_answer():
    result = execute("def div(a, b):\n    return a // b if b else 0", {"type": "pytest", "source": PYTEST_SOURCE})
    assert [t["status"] for t in result["tests"]] == ["passed", "wrong_answer", "wrong_answer", "passed"]


def test_pytest_fixtures_are_reported_unsupported():
    source = "def test_x(tmp_path):\n    assert True\n"
    assert execute("x = 1", {"type": "pytest", "source": source})["verdict"] == "sandbox_error"


def test_compile_error():
    result = execute("def f(:\n    pass", stdio(("", "")))
    assert result["verdict"] == "compile_error"
    assert "SyntaxError" in result["detail"]


def test_first_failure_mode_skips_the_rest():
    suite = stdio(("1", "1"), ("2", "3"), ("3", "3"))
    result = execute("print(input())", suite, mode="first_failure")
    assert [t["status"] for t in result["tests"]] == ["passed", "wrong_answer", "skipped"]


def test_all_mode_runs_every_test():
    result = execute("print(input())", stdio(("1", "1"), ("2", "3"), ("3", "3")))
    assert (result["verdict"], result["passed"], result["total"]) == ("wrong_answer", 2, 3)


def test_runtime_error_detail_is_the_exception_line():
    result = execute("raise ValueError('boom')", stdio(("", "")))
    assert (result["verdict"], result["detail"]) == ("runtime_error", "ValueError: boom")
