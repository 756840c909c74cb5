"""Answer comparison, done by the runner outside the jail on plain values.

- stdio: exact after stripping trailing whitespace of every line and of the whole output; with a
  float tolerance, whitespace-separated tokens that both parse as floats compare with
  ``math.isclose(rel_tol=tol, abs_tol=tol)``.
- call: the returned value (decoded from the harness's type-tagged encoding) against the expected
  JSON value; tuples compare as lists, dict keys as strings; floats with the tolerance when given.
- assert / pytest: the reported operands of each rewritten assert are decoded and the operator is
  applied again here, with Python's semantics on builtin values.
"""

from __future__ import annotations

import math
import operator
from typing import Any


class DecodeError(ValueError):
    """A value reported by the jail is malformed."""


class Approx:
    """The runner's evaluation of ``pytest.approx`` (defaults as in pytest: rel 1e-6, abs 1e-12)."""

    def __init__(self, expected: Any, rel: float | None, abs_: float | None) -> None:
        self.expected, self.rel, self.abs = expected, rel, abs_

    def _close(self, a: Any, b: Any) -> bool:
        if isinstance(a, list | tuple) and isinstance(b, list | tuple):
            return len(a) == len(b) and all(self._close(x, y) for x, y in zip(a, b, strict=True))
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(self._close(a[k], b[k]) for k in a)
        if type(a) in (int, float) and type(b) in (int, float):
            rel = 1e-6 if self.rel is None else float(self.rel)
            tol = 1e-12 if self.abs is None else float(self.abs)
            return bool(a == b or abs(a - b) <= max(rel * abs(b), tol))
        return bool(a == b)

    def __eq__(self, other: object) -> bool:
        return self._close(other, self.expected)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]


def decode(v: Any, depth: int = 0) -> Any:
    """Inverse of the harness's ``encode``: plain JSON plus one-key tagged objects."""
    if depth > 210:
        raise DecodeError("value nested too deeply")
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, list):
        return [decode(x, depth + 1) for x in v]
    if not isinstance(v, dict) or len(v) != 1:
        raise DecodeError("malformed value")
    (tag, x), d = next(iter(v.items())), depth + 1
    try:
        if tag == "I":
            return int(x, 16)
        if tag == "F":
            return float(x)
        if tag == "t":
            return tuple(decode(y, d) for y in x)
        if tag == "d":
            return {decode(k, d): decode(y, d) for k, y in x}
        if tag == "s":
            return {decode(y, d) for y in x}
        if tag == "f":
            return frozenset(decode(y, d) for y in x)
        if tag == "b":
            return bytes.fromhex(x)
        if tag == "c":
            return complex(decode(x[0], d), decode(x[1], d))
        if tag == "a":
            return Approx(decode(x[0], d), x[1], x[2])
    except (TypeError, ValueError) as e:
        raise DecodeError(f"malformed {tag!r} value: {e}") from e
    raise DecodeError(f"unknown value tag {tag!r}")


def normalize_output(text: str) -> str:
    """Strips trailing whitespace of every line and of the whole text."""
    return "\n".join(line.rstrip() for line in text.rstrip().split("\n"))


def _tokens_close(a: str, b: str, tol: float) -> bool:
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    if math.isnan(x) or math.isnan(y):
        return False
    return math.isclose(x, y, rel_tol=tol, abs_tol=tol)


def stdio_equal(got: str, expected: str, float_tolerance: float | None = None) -> bool:
    """Compares program output with the expected output (see the module docstring)."""
    g, e = normalize_output(got), normalize_output(expected)
    if g == e:
        return True
    if float_tolerance is None:
        return False
    g_lines, e_lines = g.split("\n"), e.split("\n")
    if len(g_lines) != len(e_lines):
        return False
    for gl, el in zip(g_lines, e_lines, strict=True):
        gt, et = gl.split(), el.split()
        if len(gt) != len(et) or not all(_tokens_close(a, b, float_tolerance) for a, b in zip(gt, et, strict=True)):
            return False
    return True


def _canonical(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return [_canonical(x) for x in v]
    if isinstance(v, dict):
        return {str(k) if not isinstance(k, str) else k: _canonical(x) for k, x in v.items()}
    return v


def _values_equal(a: Any, b: Any, tol: float | None) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_values_equal(x, y, tol) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_values_equal(a[k], b[k], tol) for k in a)
    if tol is not None and type(a) in (int, float) and type(b) in (int, float):
        return math.isclose(a, b, rel_tol=tol, abs_tol=tol)
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def call_equal(got: Any, expected: Any, float_tolerance: float | None = None) -> bool:
    """Compares a decoded return value with the expected JSON value (tuples equal lists)."""
    return _values_equal(_canonical(got), _canonical(expected), float_tolerance)


_BINARY = {
    "Eq": operator.eq,
    "NotEq": operator.ne,
    "Lt": operator.lt,
    "LtE": operator.le,
    "Gt": operator.gt,
    "GtE": operator.ge,
    "In": lambda a, b: a in b,
    "NotIn": lambda a, b: a not in b,
}


def check_assert(msg: dict[str, Any]) -> str | None:
    """Re-evaluates one reported assert; returns None when it holds, else why it does not."""
    op = msg.get("op")
    if "bad" in msg:
        return f"assert operand is not a plain value ({msg['bad']})"
    vals = [decode(v) for v in msg.get("v", [])]
    try:
        if op in _BINARY and len(vals) == 2:
            ok = bool(_BINARY[op](vals[0], vals[1]))
        elif op in ("Is", "IsNot") and len(vals) == 2:
            singleton = vals[1] is None or isinstance(vals[1], bool)
            same = (type(vals[0]) is type(vals[1]) and vals[0] == vals[1]) if singleton else bool(msg.get("ok"))
            ok = same if op == "Is" else (not same if singleton else bool(msg.get("ok")))
        elif op == "truth" and len(vals) == 1:
            ok = bool(vals[0])
        elif op == "not" and len(vals) == 1:
            ok = not vals[0]
        else:
            return f"malformed assert report (op {op!r})"
    except TypeError as e:
        return f"assert comparison failed: {e}"
    return None if ok else "assertion failed"
