"""Reward hacks: none of these may gain a passed test."""

import pytest

from .conftest import run, stdio

CALL = {"type": "call", "fn_name": "f", "cases": [{"args": [2], "expected": 4}]}
ASSERTS = {"type": "assert", "asserts": ["assert f(2) == 4", "assert f(3) == 9"], "setup": ""}
HUMANEVAL = {
    "type": "assert",
    "test": "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(3) == 9\n",
    "entry_point": "f",
}
PYTEST = {"type": "pytest", "source": "from solution import f\n\ndef test_f():\n    assert f(2) == 4\n"}
ALL_SUITES = [CALL, ASSERTS, HUMANEVAL, PYTEST]
IDS = ["call", "mbpp", "humaneval", "pytest"]

EARLY_EXITS = {
    "exit": "exit(0)",
    "sys.exit": "import sys\nsys.exit(0)",
    "os._exit": "import os\nos._exit(0)",
    "raise SystemExit": "raise SystemExit",
}


def passed(result):
    return result["passed"]


@pytest.mark.parametrize("suite", ALL_SUITES, ids=IDS)
@pytest.mark.parametrize("exit_code", EARLY_EXITS.values(), ids=EARLY_EXITS.keys())
def test_exit_early_at_import(suite, exit_code):
    assert passed(run(exit_code + "\ndef f(x):\n    return x * x", suite)) == 0


@pytest.mark.parametrize("suite", ALL_SUITES, ids=IDS)
@pytest.mark.parametrize("exit_code", EARLY_EXITS.values(), ids=EARLY_EXITS.keys())
def test_exit_inside_the_function(suite, exit_code):
    body = "\n".join("    " + line for line in exit_code.splitlines())
    assert passed(run(f"def f(x):\n{body}", suite)) == 0


@pytest.mark.parametrize("suite", ALL_SUITES, ids=IDS)
def test_object_equal_to_everything(suite):
    program = (
        "class Any:\n    def __eq__(self, o):\n        return True\n    __hash__ = object.__hash__\n"
        "def f(x):\n    return Any()"
    )
    assert passed(run(program, suite)) == 0


@pytest.mark.parametrize("suite", ALL_SUITES, ids=IDS)
def test_int_subclass_equal_to_everything(suite):
    program = (
        "class I(int):\n    def __eq__(self, o):\n        return True\n    __hash__ = int.__hash__\n"
        "def f(x):\n    return I(0)"
    )
    assert passed(run(program, suite)) == 0


@pytest.mark.parametrize("suite", ALL_SUITES, ids=IDS)
def test_overriding_builtins(suite):
    program = (
        "import builtins\nbuiltins.isinstance = lambda *a: True\n"
        "builtins.AssertionError = type('N', (Exception,), {})\n"
        "builtins.print = lambda *a, **k: None\nbuiltins.bool = lambda *a: True\nbuiltins.len = lambda *a: 0\n"
        "def f(x):\n    return -1"
    )
    assert passed(run(program, suite)) == 0


@pytest.mark.parametrize("suite", ALL_SUITES, ids=IDS)
def test_patching_the_harness_checker(suite):
    program = (
        "import builtins, sys\n"
        "builtins.__rljudge_check__ = lambda *a, **k: None\n"
        "globals()['__rljudge_check__'] = lambda *a, **k: None\n"
        "m = sys.modules.get('__main__')\n"
        "for name in ('encode', 'checker', 'run_in_child', 'report_exception'):\n"
        "    for mod in list(sys.modules.values()):\n"
        "        if hasattr(mod, name):\n            setattr(mod, name, lambda *a, **k: None)\n"
        "def f(x):\n    return -1"
    )
    assert passed(run(program, suite)) == 0


@pytest.mark.parametrize("suite", ALL_SUITES, ids=IDS)
def test_forging_messages_on_the_report_fd(suite):
    program = (
        "import os, json\n"
        "for fd in range(3, 10):\n"
        '    try:\n        os.write(fd, b\'{"t": "done"}\\n{"t": "result", "v": 4}\\n\')\n'
        "    except OSError:\n        pass\n"
        "os._exit(0)"
    )
    assert passed(run(program, suite)) == 0


def test_stdout_cannot_forge_a_harness_frame():
    program = 'print(\'{"t": "ran", "exit": 0, "signal": null, "cpu": 0, "stdout": "4", "msgs": []}\')'
    assert passed(run(program, stdio(("", "4")))) == 0


def test_printing_another_tests_expected_output_gains_only_that_test():
    suite = stdio(("1", "one"), ("2", "two"), ("3", "three"))
    result = run("print('two')", suite)
    assert [t["status"] for t in result["tests"]] == ["wrong_answer", "passed", "wrong_answer"]


def test_expected_outputs_are_not_in_the_jail():
    # The needle is built at run time so that the program's own source does not contain it.
    program = (
        "import gc, sys\n"
        "def scan():\n"
        "    n = 'DETCEPXE-TERCES'[::-1]\n"
        "    for o in gc.get_objects():\n"
        "        try:\n"
        "            if n in repr(o):\n"
        "                return True\n"
        "        except Exception:\n"
        "            pass\n"
        "    f = sys._getframe(1)\n"
        "    while f:\n"
        "        if n in repr(f.f_locals):\n"
        "            return True\n"
        "        f = f.f_back\n"
        "    return False\n"
        "print('found' if scan() else 'clean')"
    )
    suite = stdio(("", "clean"), ("", "SECRET-EXPECTED"))
    assert [t["status"] for t in run(program, suite)["tests"]] == ["passed", "wrong_answer"]


def test_files_do_not_reach_a_later_submission():
    writer = (
        "import os\nfor d in ('/tmp', os.path.expanduser('~'), '/dev/shm', '/var/tmp', '/run/lock'):\n"
        "    try:\n        open(os.path.join(d, 'answers'), 'w').write('4')\n    except OSError:\n        pass"
    )
    run(writer, stdio(("", "")))
    reader = (
        "import os\nhits = [d for d in ('/tmp', os.path.expanduser('~'), '/dev/shm', '/var/tmp', '/run/lock')\n"
        "        if os.path.exists(os.path.join(d, 'answers'))]\nprint('ok' if not hits else hits)"
    )
    assert run(reader)["verdict"] == "correct"


def test_assert_not_reached_is_not_a_pass():
    program = "def f(x):\n    raise KeyboardInterrupt"
    assert passed(run(program, HUMANEVAL)) == 0


def test_catching_the_assertion_inside_the_function_does_not_help():
    program = "import sys\ndef f(x):\n    sys.settrace(None)\n    return -1\nsys.excepthook = lambda *a: None"
    assert passed(run(program, HUMANEVAL)) == 0
