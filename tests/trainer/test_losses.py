"""The policy losses against the GPPO formula (Klear-Reasoner, arXiv 2508.07629) and each other."""

from __future__ import annotations

import pytest
import torch

from rljudge_trainer.losses import POLICY_LOSSES, agg_loss, get_policy_loss

RATIOS = [0.5, 0.5, 1.0, 1.5, 1.5, 12.0]
SIGNS = [-1.0, 1.0, 1.0, 1.0, -1.0, -1.0]
CFG = {"clip_ratio_low": 0.2, "clip_ratio_high": 0.28, "clip_ratio_c": 10.0}


def grad_factors(name: str, config: dict, magnitude: float = 0.7) -> list[float]:
    """d(summed per-token loss)/d(log pi), divided by -A, for the issue's six tokens."""
    log_prob = torch.log(torch.tensor([RATIOS], dtype=torch.float64)).requires_grad_()
    old = torch.zeros_like(log_prob)
    adv = torch.tensor([SIGNS], dtype=torch.float64) * magnitude
    mask = torch.ones_like(log_prob)
    loss, _ = get_policy_loss(name)(log_prob, old, adv, mask, config)
    (loss * mask.sum()).backward()  # token-mean times the token count: the summed loss
    return (log_prob.grad / -adv).squeeze(0).tolist()


def test_gppo_gradient_factors_match_the_formula():
    assert grad_factors("gppo", CFG) == pytest.approx([0.8, 0.5, 1.0, 1.28, 1.5, 0.0])


def test_clip_higher_gradient_factors_zero_on_clipped_tokens():
    assert grad_factors("dapo_clip_higher", CFG) == pytest.approx([0.0, 0.5, 1.0, 0.0, 1.5, 0.0])


def test_gppo_general_scales_only_the_clipped_tokens():
    factors = grad_factors("gppo_general", {**CFG, "beta1": 0.5, "beta2": 0.25})
    assert factors == pytest.approx([0.5 * 0.8, 0.5, 1.0, 0.25 * 1.28, 1.5, 0.0])


def test_ppo_clip_is_symmetric():
    # epsilon 0.2 both sides: token 4 (delta 1.5, A > 0) is clipped, token 1 too
    assert grad_factors("ppo_clip", {"clip_ratio": 0.2, "clip_ratio_c": 10.0}) == pytest.approx(
        [0.0, 0.5, 1.0, 0.0, 1.5, 0.0]
    )


def test_without_dual_clip_the_large_ratio_keeps_its_gradient():
    factors = grad_factors("gppo", {**CFG, "clip_ratio_c": None})
    assert factors[5] == pytest.approx(12.0)


def random_batch(seed: int, batch: int = 16, tokens: int = 24):
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(batch, tokens, generator=g, dtype=torch.float64) * 3
    log_prob = old + torch.randn(batch, tokens, generator=g, dtype=torch.float64) * 0.4
    adv = torch.randn(batch, generator=g, dtype=torch.float64)
    lengths = torch.randint(1, tokens + 1, (batch,), generator=g)
    mask = (torch.arange(tokens).unsqueeze(0) < lengths.unsqueeze(1)).to(torch.float64)
    return log_prob, old, adv, mask


def loss_and_grad(name: str, log_prob, old, adv, mask, config):
    lp = log_prob.clone().requires_grad_()
    loss, metrics = get_policy_loss(name)(lp, old, adv, mask, config)
    loss.backward()
    return loss.detach(), lp.grad, metrics


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean"])
def test_gppo_forward_equals_clip_higher(seed: int, mode: str):
    batch = random_batch(seed)
    cfg = {**CFG, "loss_agg_mode": mode}
    gppo, g_grad, g_metrics = loss_and_grad("gppo", *batch, cfg)
    dapo, d_grad, d_metrics = loss_and_grad("dapo_clip_higher", *batch, cfg)
    assert gppo == pytest.approx(float(dapo), abs=1e-12)
    assert g_metrics["clipfrac_low"] == d_metrics["clipfrac_low"]
    assert g_metrics["clipfrac_high"] == d_metrics["clipfrac_high"]
    assert g_metrics["clipfrac_low"] + g_metrics["clipfrac_high"] > 0  # the batch does exercise the clip
    # unclipped tokens get identical gradients; clipped ones differ (GPPO's nonzero, clip-higher's zero)
    differs = (g_grad - d_grad).abs() > 1e-12
    assert differs.any()
    assert (d_grad[differs] == 0).all()


@pytest.mark.parametrize("seed", range(3))
def test_beta_scales_the_gradient_of_clipped_tokens_linearly(seed: int):
    batch = random_batch(seed)
    _, full, _ = loss_and_grad("gppo_general", *batch, {**CFG, "beta1": 1.0, "beta2": 1.0})
    _, half, _ = loss_and_grad("gppo_general", *batch, {**CFG, "beta1": 0.5, "beta2": 0.5})
    _, zero, _ = loss_and_grad("gppo_general", *batch, {**CFG, "beta1": 0.0, "beta2": 0.0})
    _, dapo, _ = loss_and_grad("dapo_clip_higher", *batch, CFG)
    _, gppo, _ = loss_and_grad("gppo", *batch, CFG)
    torch.testing.assert_close(full, gppo)
    torch.testing.assert_close(zero, dapo)  # beta = 0 is clip-higher
    torch.testing.assert_close(half, (full + zero) / 2)


@pytest.mark.parametrize("name", sorted(POLICY_LOSSES))
def test_masked_tokens_affect_neither_loss_nor_gradient(name: str):
    log_prob, old, adv, mask = random_batch(7)
    loss_a, grad_a, _ = loss_and_grad(name, log_prob, old, adv, mask, CFG)
    garbage = log_prob.clone()
    garbage[mask == 0] = float("nan")  # what lies under the mask must not leak out
    old_garbage = old.clone()
    old_garbage[mask == 0] = 1e6
    loss_b, grad_b, metrics = loss_and_grad(name, garbage, old_garbage, adv, mask, CFG)
    assert loss_a == pytest.approx(float(loss_b))
    assert torch.isfinite(grad_b).all()
    assert (grad_b[mask == 0] == 0).all()
    torch.testing.assert_close(grad_a[mask == 1], grad_b[mask == 1])
    assert all(v == v for v in metrics.values())  # no NaN metric either


@pytest.mark.parametrize("name", sorted(POLICY_LOSSES))
def test_all_equal_rewards_give_zero_loss_and_no_nan(name: str):
    from rljudge_trainer.advantages import grpo_advantages

    log_prob, old, _, mask = random_batch(3, batch=8)
    adv, _ = grpo_advantages(torch.ones(8), torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]))
    assert (adv == 0).all()
    loss, grad, metrics = loss_and_grad(name, log_prob, old, adv.to(torch.float64), mask, CFG)
    assert float(loss) == 0.0
    assert torch.isfinite(grad).all() and (grad == 0).all()
    assert all(v == v for v in metrics.values())


def test_empty_mask_gives_zero_not_nan():
    log_prob, old, adv, mask = random_batch(1)
    loss, grad, _ = loss_and_grad("gppo", log_prob, old, adv, torch.zeros_like(mask), CFG)
    assert float(loss) == 0.0 and torch.isfinite(grad).all()


def test_seq_mean_token_mean_weighs_sequences_equally():
    loss_mat = torch.tensor([[1.0, 1.0, 1.0, 1.0], [4.0, 9.0, 9.0, 9.0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0]])
    assert float(agg_loss(loss_mat, mask, "token-mean")) == pytest.approx(8 / 5)
    assert float(agg_loss(loss_mat, mask, "seq-mean-token-mean")) == pytest.approx((1 + 4) / 2)
    with pytest.raises(ValueError, match="token-mean"):
        agg_loss(loss_mat, mask, "token-sum-whatever")


def test_metrics_report_clip_fractions_kl_and_entropy():
    log_prob = torch.log(torch.tensor([RATIOS]))
    entropy = torch.full_like(log_prob, 0.25)
    _, metrics = get_policy_loss("gppo")(
        log_prob,
        torch.zeros_like(log_prob),
        torch.tensor([SIGNS]),
        torch.ones_like(log_prob),
        {**CFG, "entropy": entropy},
    )
    assert metrics["clipfrac_low"] == pytest.approx(1 / 6)
    assert metrics["clipfrac_high"] == pytest.approx(1 / 6)
    assert metrics["clipfrac_dual"] == pytest.approx(1 / 6)
    assert metrics["approx_kl"] == pytest.approx(float(-log_prob.mean()))
    assert metrics["entropy"] == pytest.approx(0.25)


def test_per_sequence_advantages_broadcast_like_per_token_ones():
    log_prob, old, adv, mask = random_batch(5)
    a, _, _ = loss_and_grad("gppo", log_prob, old, adv, mask, CFG)
    b, _, _ = loss_and_grad("gppo", log_prob, old, adv.unsqueeze(1).expand_as(log_prob), mask, CFG)
    assert float(a) == pytest.approx(float(b))


def test_unknown_loss_lists_the_known_ones():
    with pytest.raises(ValueError) as info:
        get_policy_loss("grpo_typo")
    for name in ("ppo_clip", "dapo_clip_higher", "gppo", "gppo_general"):
        assert name in str(info.value)


def test_dual_clip_bound_must_exceed_one():
    log_prob, old, adv, mask = random_batch(0)
    with pytest.raises(ValueError, match="clip_ratio_c"):
        get_policy_loss("gppo")(log_prob, old, adv, mask, {"clip_ratio_c": 0.5})
