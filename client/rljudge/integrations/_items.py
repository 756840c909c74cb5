"""Turning a framework's (response, reference) pair into an rljudge item, shared by every integration.

A *reference* is whatever a dataset row carries to check a response against:

- a math gold answer (``"42"``, ``"\\frac{1}{2}"``, a worked solution ending in ``\\boxed{...}``);
- ``"problem:<id>"``: a code test suite registered with ``PUT /v1/problems/{id}``;
- a code test suite, as a dict or its JSON text: rljudge's own (``{"type": "stdio" | "call" |
  "assert" | "pytest" | "run", ...}``), TACO/APPS/LiveCodeBench ``input_output``
  (``{"inputs", "outputs", "fn_name"?}``), or Klear-Reasoner's / rLLM's ``ground_truth``
  (``{"functional"}``, ``{"pytest"}``, lists of ``{"input", "output", "testtype"}``).

Anything that is not recognisably a test suite is a math gold answer. Standard library only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..converters import from_klear_ground_truth

__all__ = ["PROBLEM_PREFIX", "completion_text", "make_item", "suite_from_reference"]

PROBLEM_PREFIX = "problem:"
_RLJUDGE_SUITES = frozenset({"stdio", "call", "assert", "pytest", "run"})

Kind = Literal["math", "code"]


def completion_text(completion: Any) -> str:
    """The text of one completion: a string as is; for a chat completion (a list of messages, or
    one message dict) the content of its last assistant message (else of its last message)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return _content(completion)
    if isinstance(completion, Sequence) and completion:
        messages = [m for m in completion if isinstance(m, Mapping)]
        assistant = [m for m in messages if m.get("role", "assistant") == "assistant"]
        chosen = assistant or messages
        if chosen:
            return _content(chosen[-1])
    raise TypeError(f"cannot read a completion of type {type(completion).__name__}: expected a string or messages")


def _content(message: Mapping[str, Any]) -> str:
    content = message.get("content", "")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multimodal parts: keep the text ones
        return "".join(part.get("text", "") for part in content if isinstance(part, Mapping))
    return str(content)


def _parsed(reference: Any) -> Any:
    """The JSON value of a string that looks like a JSON object or array, else the reference itself."""
    if isinstance(reference, str) and reference.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(reference)
        except ValueError:
            return reference
    return reference


def suite_from_reference(reference: Any) -> dict[str, Any] | None:
    """The rljudge TestSuite dict a reference describes, or None when it is not a code test suite.

    Raises ``ValueError`` for a reference that is a test suite in a recognised format but is
    malformed (e.g. 3 inputs and 2 outputs).
    """
    value = _parsed(reference)
    if isinstance(value, Mapping):
        if value.get("type") in _RLJUDGE_SUITES:
            return dict(value)
        if {"inputs", "outputs"} <= value.keys() or "functional" in value or "pytest" in value:
            return from_klear_ground_truth(dict(value))
        return None
    if isinstance(value, list) and value and all(isinstance(case, Mapping) for case in value):
        if all("input" in case and "output" in case for case in value):
            return from_klear_ground_truth(value)
    return None


def make_item(
    response: str,
    reference: Any,
    *,
    kind: Kind | None = None,
    item_id: str | None = None,
    strip_think: bool = True,
    require_think: bool = False,
    limits: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An rljudge item dict judging ``response`` against ``reference`` (see the module docstring).

    ``kind`` forces math or code; by default it is inferred from the reference. The dict is sent
    as is: the service validates it and answers a malformed one with a ``rejected`` result naming
    the field, so a bad row never fails its whole batch. Raises ``ValueError`` only when the
    reference is a recognisable but malformed test suite, or ``kind="code"`` and it is no suite.
    """
    item: dict[str, Any] = {"response": response, "strip_think": strip_think, "require_think": require_think}
    if item_id is not None:
        item["id"] = item_id
    if isinstance(reference, str) and reference.startswith(PROBLEM_PREFIX) and kind != "math":
        item.update(kind="code", problem=reference[len(PROBLEM_PREFIX) :])
    else:
        suite = suite_from_reference(reference) if kind != "math" else None
        if suite is not None:
            item.update(kind="code", tests=suite)
        elif kind == "code":
            raise ValueError(
                "a code reference must be `problem:<id>`, an rljudge test suite, an `input_output` record "
                f"or a Klear ground_truth; got {_preview(reference)}"
            )
        else:
            item.update(kind="math", gold=_gold_text(reference))
    if limits and item["kind"] == "code":
        item["limits"] = dict(limits)
    return item


def _gold_text(reference: Any) -> str:
    if isinstance(reference, str):
        return reference
    if reference is None:
        return ""  # the service rejects it: `gold` must not be empty
    if isinstance(reference, bool):
        return str(reference)
    if isinstance(reference, int | float):
        return repr(reference)
    if isinstance(reference, Sequence) and not isinstance(reference, bytes | bytearray) and len(reference) == 1:
        return _gold_text(reference[0])  # e.g. GSM8K-style single-answer lists
    return json.dumps(reference)


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
