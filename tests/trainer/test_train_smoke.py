"""The trainer end to end against a live rljudge stack (real Redis, workers and gateway)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from rljudge_trainer.config import JudgeConfig, TrainConfig, from_dict
from rljudge_trainer.loop import train
from rljudge_trainer.reward import JudgeScorer, ScoreBatch


def tiny_config(url: str, out: Path, steps: int) -> TrainConfig:
    return from_dict(
        {
            "model": {"tiny": {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "intermediate_size": 128}},
            "task": {"max_operand": 10, "num_problems": 60, "eval_problems": 8},
            "warmup": {"steps": 60, "batch_size": 32, "lr": 3e-3},
            "rollout": {"prompts_per_step": 8, "group_size": 8, "max_new_tokens": 12},
            "algorithm": {"policy_loss": "gppo", "mini_batches": 2},
            "optim": {"lr": 2e-4},
            "judge": {"url": url},
            "run": {"steps": steps, "output_dir": str(out), "save_every": 1, "progress": False, "device": "cpu"},
        }
    )


def test_judge_scorer_tells_right_from_wrong(judge_url: str):
    with JudgeScorer(JudgeConfig(url=judge_url)) as scorer:
        batch = scorer(["\\boxed{12}", "\\boxed{13}", "no answer here"], ["12", "12", "12"])
    assert batch.rewards == [1.0, 0.0, 0.0]
    assert batch.statuses == Counter(scored=3)
    assert batch.failed == 0


def test_judge_scorer_reports_an_unreachable_judge_as_no_reward():
    with JudgeScorer(JudgeConfig(url="http://127.0.0.1:9", retries=0)) as scorer:
        batch = scorer(["\\boxed{1}", "\\boxed{2}"], ["1", "1"])
    assert batch.rewards == [None, None]  # never 0: the judge failed, not the model
    assert batch.statuses == Counter(infra_failed=2)


def test_two_steps_through_the_service_then_resume(judge_url: str, tmp_path: Path):
    records = train(tiny_config(judge_url, tmp_path, steps=2))
    steps = [r for r in records if r["step"] > 0]
    assert [r["step"] for r in steps] == [1, 2]
    for rec in steps:
        assert rec["responses"] == 64
        assert rec["judge_failed"] == 0 and rec["judge_statuses"] == {"scored": 64}
        assert 0.0 <= rec["reward_mean"] <= 1.0
    assert sum(r["updates"] for r in steps) > 0  # some groups had mixed rewards, so the policy moved
    assert any(abs(r["actor/grad_norm"]) > 0 for r in steps if r["updates"])
    assert "eval/reward" in records[0] and "eval/reward" in steps[-1]
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [0, 1, 2]
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step_000002"

    # resume: a third step continues from the checkpoint instead of starting over
    more = train(tiny_config(judge_url, tmp_path, steps=3))
    assert [r["step"] for r in more] == [3]
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step_000003"


def test_responses_the_judge_failed_are_left_out_of_the_update(tmp_path: Path):
    """A judge failure (None) is dropped and counted; it never becomes a reward of 0."""
    seen: list[int] = []

    def flaky_judge(responses: list[str], golds: list[str]) -> ScoreBatch:
        rewards: list[float | None] = []
        for i, (text, gold) in enumerate(zip(responses, golds, strict=True)):
            rewards.append(None if i % 8 == 0 else float(text.strip() == f"\\boxed{{{gold}}}"))
        seen.append(len(responses))
        return ScoreBatch(
            rewards=rewards,
            statuses=Counter(scored=len(responses) - len(responses) // 8, infra_failed=len(responses) // 8),
        )

    cfg = tiny_config("http://unused", tmp_path, steps=1)
    cfg.task.eval_problems = 0
    (rec,) = train(cfg, scorer=flaky_judge)
    assert rec["judge_failed"] == 8
    assert rec["judge_statuses"]["infra_failed"] == 8
    assert rec["responses_kept"] <= 56
    assert seen == [64]
