"""The benchmarks' own bookkeeping (``loadtests/bench.py``, ``loadtests/bench_settings.py``): the
order in which configurations take turns, how a measured value is printed next to its target, and
how a setting's worker scaling is computed."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from loadtests.bench import shown, turns
from loadtests.bench_settings import scaling


@pytest.mark.parametrize("sides", [1, 2, 3])
def test_each_configuration_runs_right_after_each_other_one_equally_often(sides: int) -> None:
    """Within ``2 * sides`` rounds, each side runs right after each other side (in the same round)
    equally often: none always inherits the same predecessor's leftovers."""
    rounds = [turns(r, sides) for r in range(2 * sides)]
    assert all(sorted(order) == list(range(sides)) for order in rounds)
    after = Counter(pair for order in rounds for pair in itertools.pairwise(order))
    assert {after[(a, b)] for a in range(sides) for b in range(sides) if a != b} <= {2}
    assert sum(after.values()) == 2 * sides * (sides - 1)


def test_turns_refuses_more_sides_than_it_balances() -> None:
    """With 4 sides a rotation and its reverse never put side 0 right before side 2."""
    with pytest.raises(ValueError, match="up to 3"):
        turns(0, 4)


def test_a_value_just_short_of_its_target_never_prints_as_the_target() -> None:
    assert shown(1.63, 1.7) == "1.63"
    assert shown(1.6998, 1.7) == "1.6998"  # 2 decimals would print 1.70 next to "NO"
    assert shown(1.699, 1.7) == "1.699"
    assert shown(1.7003, 1.7) == "1.7003"
    assert shown(1.7, 1.7) == "1.70"
    assert shown(9.8, 10.0) == "9.80"


def test_scaling_is_the_ratio_of_mean_steps_and_the_median_of_each_steps_ratio() -> None:
    """``bench_settings --scaling``: 1-worker steps of 0.6, 0.9, 0.6 s against 0.3, 0.6, 0.4 s on 2
    workers scale 2.1 / 1.3 in the means, while the steps' own ratios are 2, 1.5 and 1.5."""
    out = scaling([0.6, 0.9, 0.6], [0.3, 0.6, 0.4])
    assert out["scaling"] == pytest.approx(2.1 / 1.3)
    assert out["scaling_step_median"] == pytest.approx(1.5)
    assert out["mean_ms"] == pytest.approx(700.0)
    assert out["steps_ms"] == [600.0, 900.0, 600.0]
    with pytest.raises(ValueError):  # steps that were not taken in turns (counts differ)
        scaling([0.6], [0.3, 0.4])
