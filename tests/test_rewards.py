"""Reward schemes as pure functions of a judgement."""

from __future__ import annotations

import pytest

from rljudge.extract import think_format_error
from rljudge_service.rewards import compute_reward


@pytest.mark.parametrize(
    ("scheme", "verdict", "expected"),
    [
        ("binary", "correct", 1.0),
        ("binary", "wrong_answer", 0.0),
        ("binary", "no_answer", 0.0),
        ("binary", "time_limit", 0.0),
        ("klear", "correct", 1.0),
        ("klear", "wrong_answer", -1.0),
        ("klear", "no_answer", -1.0),
        ("fraction", "correct", 1.0),
        ("fraction", "wrong_answer", 0.0),
    ],
)
def test_math_rewards(scheme: str, verdict: str, expected: float) -> None:
    assert compute_reward(scheme, {"verdict": verdict}) == expected


@pytest.mark.parametrize(
    ("scheme", "passed", "total", "expected"),
    [("binary", 7, 10, 0.0), ("fraction", 7, 10, 0.7), ("klear", 7, 10, 0.4), ("klear", 0, 4, -1.0)],
)
def test_code_rewards(scheme: str, passed: int, total: int, expected: float) -> None:
    judgement = {"verdict": "wrong_answer", "passed": passed, "total": total}
    assert compute_reward(scheme, judgement) == pytest.approx(expected)


def test_all_tests_passed_is_full_reward() -> None:
    judgement = {"verdict": "correct", "passed": 5, "total": 5}
    assert [compute_reward(s, judgement) for s in ("binary", "fraction", "klear")] == [1.0, 1.0, 1.0]


def test_klear_think_penalties() -> None:
    assert think_format_error("no tags at all") == "missing <think>"
    assert think_format_error("<think> never closed") == "missing </think>"
    assert think_format_error("<think>x</think> y") is None
    missing_open = {"verdict": "format_error", "format_error": "missing <think>"}
    missing_close = {"verdict": "format_error", "format_error": "missing </think>"}
    assert compute_reward("klear", missing_open) == -2.0
    assert compute_reward("klear", missing_close) == -0.5
    assert compute_reward("binary", missing_close) == 0.0


def test_unknown_scheme_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="binary"):
        compute_reward("nope", {"verdict": "correct"})
