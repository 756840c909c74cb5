"""Group advantages, batch filters and the SFT term."""

from __future__ import annotations

import pytest
import torch

from rljudge_trainer.advantages import (
    get_advantage_estimator,
    grpo_advantages,
    grpo_mean_only_advantages,
    overlong_filter,
    sft_loss,
    zero_advantage_filter,
)


def test_grpo_normalises_within_each_group():
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 2.0])
    groups = torch.tensor([0, 0, 0, 0, 7, 7, 7, 7])  # any labels
    adv, metrics = grpo_advantages(rewards, groups)
    for g in (0, 7):
        r = rewards[groups == g]
        expected = (r - r.mean()) / (r.std() + 1e-6)
        torch.testing.assert_close(adv[groups == g], expected)
    assert metrics["adv_mean"] == pytest.approx(0.0, abs=1e-6)


def test_mean_only_variant_skips_the_std():
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0])
    adv, _ = grpo_mean_only_advantages(rewards, torch.zeros(4, dtype=torch.long))
    torch.testing.assert_close(adv, torch.tensor([0.75, -0.25, -0.25, -0.25]))
    assert get_advantage_estimator("grpo_mean_only") is grpo_mean_only_advantages


def test_uniform_and_singleton_groups_get_zero_advantage():
    adv, _ = grpo_advantages(torch.tensor([1.0, 1.0, 1.0, 0.5]), torch.tensor([0, 0, 0, 1]))
    assert torch.isfinite(adv).all()
    assert (adv == 0).all()


def test_unknown_estimator_lists_the_known_ones():
    with pytest.raises(ValueError, match="grpo_mean_only"):
        get_advantage_estimator("rloo")


def test_zero_advantage_filter_drops_uniform_groups_and_counts_them():
    rewards = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0])
    groups = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    keep, metrics = zero_advantage_filter(rewards, groups)
    assert keep.tolist() == [False, False, True, True, False, False, False, False]
    assert metrics == {"groups_total": 4.0, "groups_dropped_zero_adv": 3.0}


def test_overlong_filter_drops_truncated_responses():
    keep, metrics = overlong_filter(torch.tensor([False, True, False]))
    assert keep.tolist() == [True, False, True]
    assert metrics["overlong_dropped"] == 1.0


def test_sft_term_uses_only_fully_correct_responses():
    log_prob = torch.tensor([[-1.0, -3.0], [-5.0, -7.0], [-2.0, -100.0]], requires_grad=True)
    mask = torch.tensor([[1, 1], [1, 1], [1, 0]])
    rewards = torch.tensor([1.0, 0.0, 1.0])
    loss, metrics = sft_loss(log_prob, mask, rewards, alpha=0.1)
    assert float(loss.detach()) == pytest.approx(0.1 * (1 + 3 + 2) / 3)
    assert metrics["sft_responses"] == 2.0
    loss.backward()
    assert (log_prob.grad[1] == 0).all() and log_prob.grad[2, 1] == 0


def test_sft_term_is_zero_without_correct_responses():
    loss, _ = sft_loss(torch.full((2, 3), -1.0), torch.ones(2, 3), torch.zeros(2))
    assert float(loss) == 0.0
