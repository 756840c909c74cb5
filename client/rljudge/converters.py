"""Converters from the raw test formats found in public datasets to rljudge TestSuite dicts.

- :func:`from_input_output`: LiveCodeBench / TACO / APPS ``input_output`` (``inputs``, ``outputs``,
  optional ``fn_name``).
- :func:`from_klear_ground_truth`: Klear-Reasoner's code ``ground_truth`` (the Code-R1/rLLM formats:
  ``{"inputs", "outputs"[, "fn_name"]}``, ``{"functional": code}``, ``{"pytest": source}``, and
  rLLM's lists of LiveCodeBench / PrimeIntellect test dicts).

Both return plain dicts valid for ``rljudge.StdioTests`` / ``CallTests`` / ``AssertTests`` /
``PytestTests``. Standard library only.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["from_input_output", "from_klear_ground_truth"]


def _load(obj: dict[str, Any] | list[Any] | str) -> Any:
    return json.loads(obj) if isinstance(obj, str) else obj


def _as_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        return "\n".join(_as_text(x) for x in v)
    return json.dumps(v)


def _parse_args(inp: Any) -> list[Any]:
    """Call arguments: a list as is, or a string of one JSON value per line (LiveCodeBench)."""
    if isinstance(inp, list):
        return inp
    if isinstance(inp, str):
        return [json.loads(line) for line in inp.split("\n") if line.strip()]
    return [inp]


def _parse_expected(out: Any) -> Any:
    if isinstance(out, str):
        try:
            return json.loads(out)
        except ValueError:
            return out
    return out


def _call_suite(fn_name: str, inputs: list[Any], outputs: list[Any]) -> dict[str, Any]:
    expected = [_parse_expected(o) for o in outputs]
    # TACO/APPS wrap call-based outputs in a one-element list; LiveCodeBench does not.
    if (
        expected
        and all(isinstance(e, list) and len(e) == 1 for e in expected)
        and not all(isinstance(o, str) for o in outputs)
    ):
        expected = [e[0] for e in expected]
    cases = [{"args": _parse_args(i), "expected": e} for i, e in zip(inputs, expected, strict=True)]
    return {"type": "call", "fn_name": fn_name, "cases": cases}


def from_input_output(obj: dict[str, Any] | str) -> dict[str, Any]:
    """A TestSuite dict from an ``input_output`` record (a dict or its JSON string).

    With a non-empty ``fn_name``: a ``call`` suite whose arguments are parsed from each input (a
    list, or JSON values one per line as in LiveCodeBench) and whose expected values are parsed as
    JSON (a TACO/APPS one-element list wrapper is removed). Without: a ``stdio`` suite (inputs and
    outputs given as lists of lines are joined with newlines).
    """
    data = _load(obj)
    inputs, outputs = list(data["inputs"]), list(data["outputs"])
    if len(inputs) != len(outputs):
        raise ValueError(f"{len(inputs)} inputs but {len(outputs)} outputs")
    if not inputs:
        raise ValueError("no test cases")
    fn_name = data.get("fn_name")
    if fn_name:
        return _call_suite(str(fn_name), inputs, outputs)
    return {
        "type": "stdio",
        "cases": [{"input": _as_text(i), "output": _as_text(o)} for i, o in zip(inputs, outputs, strict=True)],
    }


def _from_case_list(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """rLLM's LiveCodeBench (``testtype``/``metadata.func_name``) or PrimeIntellect (``type``) lists."""
    fn_names = set()
    for c in cases:
        kind = c.get("testtype") or c.get("type")
        if kind in ("functional", "function_call"):
            meta = c.get("metadata") or {}
            if isinstance(meta, str):
                meta = json.loads(meta)
            fn_names.add(c.get("fn_name") or meta.get("func_name"))
    inputs = [c["input"] for c in cases]
    outputs = [c["output"] for c in cases]
    if fn_names:
        if len(fn_names) != 1 or None in fn_names:
            raise ValueError("function-call tests must name exactly one function")
        return _call_suite(str(fn_names.pop()), inputs, [_as_json_text(o) for o in outputs])
    return {
        "type": "stdio",
        "cases": [{"input": _as_text(i), "output": _as_text(o)} for i, o in zip(inputs, outputs, strict=True)],
    }


def _as_json_text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def from_klear_ground_truth(obj: dict[str, Any] | list[Any] | str) -> dict[str, Any]:
    """A TestSuite dict from Klear-Reasoner's code ``ground_truth`` (a JSON string or its value).

    - ``{"functional": code}``: test code run after the program (it calls ``check(...)``
      itself), one ``assert`` test;
    - ``{"pytest": source}``: a pytest file importing the program as ``solution``;
    - ``{"inputs": [...], "outputs": [...], "fn_name"?}``: as :func:`from_input_output`;
    - a list of ``{"input", "output", "testtype"|"type", ...}``: rLLM's LiveCodeBench and
      PrimeIntellect formats.
    """
    data = _load(obj)
    if isinstance(data, list):
        if not data:
            raise ValueError("no test cases")
        return _from_case_list(data)
    if not isinstance(data, dict):
        raise ValueError(f"unrecognised ground_truth of type {type(data).__name__}")
    if "functional" in data:
        return {"type": "assert", "asserts": [str(data["functional"])]}
    if "pytest" in data:
        return {"type": "pytest", "source": str(data["pytest"])}
    if "inputs" in data and "outputs" in data:
        return from_input_output(data)
    raise ValueError(f"unrecognised ground_truth keys: {sorted(data)}")
