import json

import pytest
from pydantic import TypeAdapter

from rljudge import TestSuite
from rljudge.converters import from_input_output, from_klear_ground_truth
from rljudge_sandbox import execute, extract_program

from .conftest import load_jsonl

SUITE = TypeAdapter(TestSuite)
LCB = load_jsonl("lcb_v1_sandboxfusion_3problems.jsonl")


def _program(text: str) -> str:
    program = extract_program(text)
    assert program is not None
    return program


@pytest.mark.parametrize("problem", LCB, ids=[p["task_id"] for p in LCB])
def test_lcb_input_output_suite_is_valid(problem):
    suite = from_input_output(
        {"inputs": problem["inputs"], "outputs": problem["outputs"], "fn_name": problem["fn_name"]}
    )
    assert SUITE.validate_python(suite).type == ("call" if problem["fn_name"] else "stdio")


@pytest.mark.parametrize("problem", LCB, ids=[p["task_id"] for p in LCB])
def test_lcb_passing_program_is_correct(problem):
    suite = from_input_output(json.dumps({k: problem[k] for k in ("inputs", "outputs", "fn_name")}))
    assert execute(_program(problem["passed_code"]), suite)["verdict"] == "correct"


@pytest.mark.parametrize("problem", LCB, ids=[p["task_id"] for p in LCB])
def test_lcb_failing_program_is_not_correct(problem):
    suite = from_input_output({k: problem[k] for k in ("inputs", "outputs", "fn_name")})
    assert execute(_program(problem["failed_code"]), suite)["verdict"] not in ("correct", "sandbox_error")


def test_lcb_call_arguments_are_json_lines():
    suite = from_input_output({"inputs": ["[1, 2]\n3"], "outputs": ["true"], "fn_name": "f"})
    assert suite["cases"] == [{"args": [[1, 2], 3], "expected": True}]


def test_taco_wrapped_call_outputs_are_unwrapped():
    suite = from_input_output({"inputs": [[1, 2], [3, 4]], "outputs": [[3], [7]], "fn_name": "add"})
    assert [c["expected"] for c in suite["cases"]] == [3, 7]


def test_apps_line_lists_become_text():
    suite = from_input_output({"inputs": [["1", "2"]], "outputs": [["3"]]})
    assert suite["cases"] == [{"input": "1\n2", "output": "3"}]


def test_klear_inputs_outputs():
    gt = json.dumps({"inputs": ["1 2\n"], "outputs": ["3\n"]})
    suite = from_klear_ground_truth(gt)
    assert execute("a, b = map(int, input().split())\nprint(a + b)", suite)["verdict"] == "correct"


def test_klear_functional_is_one_assert_test():
    gt = {"functional": "def check(candidate):\n    assert candidate(2) == 4\n\ncheck(square)"}
    suite = from_klear_ground_truth(gt)
    SUITE.validate_python(suite)
    assert execute("def square(x):\n    return x * x", suite)["verdict"] == "correct"


def test_klear_functional_detects_wrong_program():
    gt = {"functional": "def check(candidate):\n    assert candidate(2) == 4\n\ncheck(square)"}
    assert execute("def square(x):\n    return x + 3", from_klear_ground_truth(gt))["verdict"] == "wrong_answer"


def test_klear_pytest():
    gt = {"pytest": "from solution import add\n\ndef test_add():\n    assert add(1, 2) == 3\n"}
    suite = from_klear_ground_truth(json.dumps(gt))
    SUITE.validate_python(suite)
    assert execute("def add(a, b):\n    return a + b", suite)["verdict"] == "correct"


def test_klear_rllm_livecodebench_list():
    gt = [{"input": "[1, 2]", "output": "3", "testtype": "functional", "metadata": {"func_name": "total"}}]
    suite = from_klear_ground_truth(gt)
    SUITE.validate_python(suite)
    program = "class Solution:\n    def total(self, xs):\n        return sum(xs)"
    assert execute(program, suite)["verdict"] == "correct"


def test_klear_primeintellect_stdin_list():
    gt = [{"type": "stdin_stdout", "input": "4\n", "output": "16\n"}]
    suite = from_klear_ground_truth(gt)
    assert execute("print(int(input()) ** 2)", suite)["verdict"] == "correct"


def test_klear_unknown_shape_is_rejected():
    with pytest.raises(ValueError):
        from_klear_ground_truth({"something": 1})
