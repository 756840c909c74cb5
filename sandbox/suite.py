"""Turns a wire-format test suite into the harness's per-test specs and the runner's expectations.

The expected answers stay here, outside the jail: a :class:`PreparedTest` pairs what the harness
receives (``spec``: inputs only) with what the runner compares against (``expected``).

Assert-style tests (HumanEval ``test``, MBPP ``asserts``, pytest sources) are rewritten so that
every simple ``assert`` reports its operands to the runner, which re-evaluates the comparison on
plain decoded values: a program returning an object whose ``__eq__`` always answers ``True`` gains
nothing. Asserts that are not of the forms ``assert a <op> b`` (one comparison operator),
``assert x`` or ``assert not x`` run unchanged inside the jail.
"""

from __future__ import annotations

import ast
import functools
import json
from dataclasses import dataclass, field
from typing import Any

CHECK_NAME = "__rljudge_check__"
_CMP_OPS = {
    ast.Eq: "Eq",
    ast.NotEq: "NotEq",
    ast.Lt: "Lt",
    ast.LtE: "LtE",
    ast.Gt: "Gt",
    ast.GtE: "GtE",
    ast.In: "In",
    ast.NotIn: "NotIn",
    ast.Is: "Is",
    ast.IsNot: "IsNot",
}


class UnsupportedSuite(ValueError):
    """The suite uses a feature the sandbox cannot judge (e.g. pytest fixtures)."""


@dataclass(frozen=True)
class PreparedTest:
    """One test: ``spec`` goes into the jail, ``expected`` stays with the runner."""

    kind: str
    spec: dict[str, Any]
    expected: Any = None
    float_tolerance: float | None = None
    name: str = ""


@dataclass
class PreparedSuite:
    tests: list[PreparedTest] = field(default_factory=list)


class _AssertRewriter(ast.NodeTransformer):
    """Rewrites ``assert`` statements into calls of the harness's reporting checker."""

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        test = node.test
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and type(test.ops[0]) in _CMP_OPS:
            op, vals = _CMP_OPS[type(test.ops[0])], [test.left, test.comparators[0]]
        elif isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            op, vals = "not", [test.operand]
        else:
            op, vals = "truth", [test]
        args: list[ast.expr] = [ast.Constant(op), ast.Tuple(elts=vals, ctx=ast.Load())]
        if node.msg is not None:
            args.append(ast.Lambda(args=_no_args(), body=node.msg))
        call = ast.Call(func=ast.Name(CHECK_NAME, ast.Load()), args=args, keywords=[])
        return ast.copy_location(ast.Expr(call), node)


def _no_args() -> ast.arguments:
    return ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[])


@functools.lru_cache(maxsize=1024)
def rewrite_asserts(source: str) -> str:
    """Returns ``source`` with its asserts reporting to the runner (see the module docstring).
    Cached: the rollouts of one problem share its tests."""
    tree = _AssertRewriter().visit(ast.parse(source))
    return ast.unparse(ast.fix_missing_locations(tree))


def _pytest_names(tree: ast.Module) -> list[str]:
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            _check_plain_test(node)
            names.append(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name.startswith("test"):
                    _check_plain_test(item, method=True)
                    names.append(f"{node.name}::{item.name}")
    return names


def _check_plain_test(fn: ast.FunctionDef | ast.AsyncFunctionDef, method: bool = False) -> None:
    if isinstance(fn, ast.AsyncFunctionDef):
        raise UnsupportedSuite(f"async test {fn.name} is not supported")
    n_args = len(fn.args.args) + len(fn.args.posonlyargs) + len(fn.args.kwonlyargs)
    if n_args != (1 if method else 0):
        raise UnsupportedSuite(f"test {fn.name} takes fixtures or parameters, which are not supported")


def prepare(suite: dict[str, Any]) -> PreparedSuite:
    """Builds the per-test specs of a TestSuite dict (already validated by the wire schema)."""
    kind = suite.get("type")
    tol = suite.get("float_tolerance")
    out = PreparedSuite()
    if kind == "stdio":
        for i, case in enumerate(suite["cases"]):
            out.tests.append(
                PreparedTest("stdio", {"kind": "stdio", "input": case.get("input", "")}, case["output"], tol, f"#{i}")
            )
    elif kind == "run":
        # The harness runs it exactly like a stdio test (stdin fed, run as __main__); the runner
        # compares nothing and reports the exit status, stdout and stderr instead.
        out.tests.append(PreparedTest("run", {"kind": "stdio", "input": suite.get("stdin") or ""}, name="run"))
    elif kind == "call":
        for i, case in enumerate(suite["cases"]):
            spec = {"kind": "call", "fn_name": suite["fn_name"], "args": json.dumps(case.get("args", []))}
            out.tests.append(PreparedTest("call", spec, case.get("expected"), tol, f"#{i}"))
    elif kind == "assert":
        setup = suite.get("setup") or ""
        if suite.get("test") is not None:
            spec = {
                "kind": "assert",
                "setup": setup,
                "test": rewrite_asserts(suite["test"]),
                "entry_point": suite["entry_point"],
            }
            out.tests.append(PreparedTest("assert", spec, name="check"))
        else:
            for i, snippet in enumerate(suite["asserts"]):
                spec = {"kind": "assert", "setup": setup, "test": rewrite_asserts(snippet), "entry_point": None}
                out.tests.append(PreparedTest("assert", spec, name=f"#{i}"))
    elif kind == "pytest":
        tree = ast.parse(suite["source"])
        names = _pytest_names(tree)
        if not names:
            raise UnsupportedSuite("the pytest source defines no test functions")
        source = rewrite_asserts(suite["source"])
        for name in names:
            out.tests.append(PreparedTest("pytest", {"kind": "pytest", "source": source, "name": name}, name=name))
    else:
        raise UnsupportedSuite(f"unknown test suite type {kind!r}")
    return out
