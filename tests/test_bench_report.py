"""The benchmarks' own bookkeeping (``loadtests/bench.py``, ``loadtests/bench_settings.py``,
``loadtests/bench_waits.py``): the order in which configurations take turns, how a measured value is
printed next to its target, how a setting's worker scaling is computed, and how scheduler events
become each core's time by part."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from loadtests.bench import shown, turns
from loadtests.bench_settings import scaling
from loadtests.bench_waits import Attribution, Window


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


def _switch(prev: int, state: str, nxt: int) -> str:
    """A ``sched:sched_switch`` event's fields as ``perf script`` prints them."""
    return f"prev_comm=a prev_pid={prev} prev_prio=120 prev_state={state} ==> next_comm=b next_pid={nxt} next_prio=120"


def test_waits_attribute_every_cores_time_to_what_ran_on_it() -> None:
    """``bench_waits``' sweep over scheduler events: a judge process on one core for the whole
    window, an RQ worker on the other for half of it, then nothing there: the second core idle
    beside the judge, first with nothing to run, then (from the judge waking the worker) with the
    worker waiting for a core."""
    window = Window("A", 0.0, 1.0, 10, "judging")
    parts = {"A": {100: "judge processes", 200: "rq workers"}}
    sweep = Attribution([window], ["A"], parts, {}, {100: 100, 200: 200}, client=1, perf=2)
    for event in [
        (0.0, 0, 0, 0, "sched_switch", _switch(0, "R", 100)),
        (0.0, 1, 0, 0, "sched_switch", _switch(0, "R", 200)),
        (0.5, 1, 200, 200, "sched_switch", _switch(200, "S", 0)),
        (0.8, 0, 100, 100, "sched_waking", "comm=b pid=200 prio=120 target_cpu=001"),
        (1.0, 0, 100, 100, "sched_switch", _switch(100, "R", 0)),
    ]:
        sweep.feed(*event)
    tally = sweep.tally["A"]
    assert tally.items == 10 and tally.wall_s == 1.0
    assert dict(tally.busy) == {"judge processes": 1.0, "rq workers": 0.5}
    idle = {k: round(v, 6) for k, v in tally.idle_beside.items()}
    assert idle == {"judging: judge processes": 0.3, "judging: judge processes, a woken task of the stack waiting": 0.2}
    assert dict(tally.waits) == {}  # the worker was woken, but not yet back on a core
