"""Reward schemes: pure functions from a judgement to a float reward.

A *judgement* is what a judge decided about one item (``verdict``, and for code ``passed`` and
``total``); it is cached and shared between items. The reward depends on the request's scheme and
on the response's own format (the ``<think>`` tags), so it is computed per item, never cached.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Klear-Reasoner's penalties for a response whose reasoning block is malformed.
KLEAR_MISSING_THINK_OPEN = -2.0
KLEAR_MISSING_THINK_CLOSE = -0.5

#: Verdicts that say something about the model; the rest say the judge failed.
MODEL_VERDICTS = frozenset(
    {
        "correct",
        "wrong_answer",
        "no_answer",
        "format_error",
        "time_limit",
        "memory_limit",
        "runtime_error",
        "output_limit",
        "compile_error",
        "no_code",
    }
)


def _binary(judgement: dict[str, Any]) -> float:
    return 1.0 if judgement["verdict"] == "correct" else 0.0


def _fraction(judgement: dict[str, Any]) -> float:
    total = judgement.get("total")
    if total:  # code: the soft reward
        return float(judgement.get("passed") or 0) / float(total)
    return _binary(judgement)


def _klear(judgement: dict[str, Any]) -> float:
    format_error = judgement.get("format_error")
    if format_error == "missing <think>":
        return KLEAR_MISSING_THINK_OPEN
    if format_error == "missing </think>":
        return KLEAR_MISSING_THINK_CLOSE
    total = judgement.get("total")
    if total:  # code: the mean of +1 (passed) / -1 (failed or not run) over the tests
        passed = int(judgement.get("passed") or 0)
        return (passed - (total - passed)) / float(total)
    return 1.0 if judgement["verdict"] == "correct" else -1.0


SCHEMES: dict[str, Callable[[dict[str, Any]], float]] = {
    "binary": _binary,
    "fraction": _fraction,
    "klear": _klear,
}


def compute_reward(scheme: str, judgement: dict[str, Any]) -> float:
    """The reward of a scored judgement under ``scheme`` (see ``rljudge.RewardScheme``)."""
    try:
        fn = SCHEMES[scheme]
    except KeyError:
        raise ValueError(f"unknown reward scheme {scheme!r}; known: {sorted(SCHEMES)}") from None
    if judgement.get("format_error") and scheme != "klear":
        return 0.0
    return fn(judgement)
