"""The Pebble pool: hard timeouts, dead workers, and reuse over many submissions."""

import pytest

from rljudge_sandbox import CodeJudge
from rljudge_sandbox import runner as runner_module

from .conftest import ONE, sandbox_processes, stdio


@pytest.fixture(scope="module")
def judge():
    with CodeJudge(max_workers=2) as j:
        yield j


def test_pool_judges_a_submission(judge):
    assert judge.judge("print('ok')", ONE, {"time_s": 1})["verdict"] == "correct"


def test_pool_runs_many_submissions(judge):
    futures = [judge.submit(f"print({i})", stdio(("", str(i))), {"time_s": 1}) for i in range(12)]
    assert [f.result()["verdict"] for f in futures] == ["correct"] * 12


def test_overrun_is_sandbox_error_and_kills_the_jail(judge, monkeypatch):
    # A budget far below what the program needs: Pebble kills the worker mid-jail.
    monkeypatch.setattr("rljudge_sandbox.pool.run_budget_s", lambda suite, limits: 0.0)
    monkeypatch.setattr("rljudge_sandbox.pool.POOL_SLACK_S", 0.5)
    result = judge.judge("import time\ntime.sleep(30)", ONE, {"time_s": 10, "wall_s": 30})
    assert result["verdict"] == "sandbox_error"
    assert sandbox_processes() == []


def test_pool_still_serves_after_an_overrun(judge):
    assert judge.judge("print('ok')", ONE, {"time_s": 1})["verdict"] == "correct"


def test_budget_is_above_the_sum_of_wall_caps():
    suite = stdio(*[("", "")] * 5)
    assert runner_module.run_budget_s(suite, {"time_s": 1, "wall_s": 2}) >= 5 * 2 + runner_module.JAIL_START_SLACK_S
