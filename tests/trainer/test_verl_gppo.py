"""GPPO registered in the real verl (0.9.x) policy-loss registry, called as verl's actor calls it."""

from __future__ import annotations

import pytest
import torch
from verl.trainer.ppo.core_algos import POLICY_LOSS_REGISTRY, get_policy_loss_fn
from verl.workers.config import ActorConfig

import rljudge_trainer.verl_gppo as verl_gppo
from rljudge_trainer.losses import get_policy_loss

RATIOS = [0.5, 0.5, 1.0, 1.5, 1.5, 12.0]
SIGNS = [-1.0, 1.0, 1.0, 1.0, -1.0, -1.0]


def actor_config(**overrides) -> ActorConfig:
    values = {"clip_ratio_low": 0.2, "clip_ratio_high": 0.28, "clip_ratio_c": 10.0}
    values.update(overrides)
    return ActorConfig(strategy="fsdp", rollout_n=8, ppo_micro_batch_size_per_gpu=1, **values)


def call(name: str, log_prob, old, adv, mask, config, mode: str = "token-mean"):
    # keyword arguments exactly as verl.workers.utils.losses.ppo_loss passes them
    return get_policy_loss_fn(name)(
        old_log_prob=old,
        log_prob=log_prob,
        advantages=adv,
        response_mask=mask,
        loss_agg_mode=mode,
        config=config,
        rollout_is_weights=None,
    )


def test_both_forms_are_registered():
    assert POLICY_LOSS_REGISTRY["gppo"] is verl_gppo.compute_policy_loss_gppo
    assert POLICY_LOSS_REGISTRY["gppo_general"] is verl_gppo.compute_policy_loss_gppo_general
    assert "vanilla" in POLICY_LOSS_REGISTRY  # verl's own losses are still there


def test_gradient_factors_in_verl_match_the_formula():
    log_prob = torch.log(torch.tensor([RATIOS], dtype=torch.float64)).requires_grad_()
    adv = torch.tensor([SIGNS], dtype=torch.float64)
    mask = torch.ones_like(log_prob)
    loss, metrics = call("gppo", log_prob, torch.zeros_like(log_prob), adv, mask, actor_config())
    (loss * 6).backward()
    assert (log_prob.grad / -adv).squeeze(0).tolist() == pytest.approx([0.8, 0.5, 1.0, 1.28, 1.5, 0.0])
    assert metrics["actor/gppo_clipfrac_low"] == pytest.approx(1 / 6)
    assert metrics["actor/pg_clipfrac_lower"] == pytest.approx(1 / 6)


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean"])
def test_forward_equals_verl_vanilla_and_the_trainer_loss(mode: str):
    g = torch.Generator().manual_seed(0)
    old = -torch.rand(8, 16, generator=g, dtype=torch.float64) * 2
    log_prob = old + torch.randn(8, 16, generator=g, dtype=torch.float64) * 0.5
    adv = torch.randn(8, 1, generator=g, dtype=torch.float64).expand(8, 16)
    mask = (torch.rand(8, 16, generator=g) > 0.2).to(torch.float64)
    cfg = actor_config(loss_agg_mode=mode)
    gppo, _ = call("gppo", log_prob, old, adv, mask, cfg, mode)
    vanilla, _ = call("vanilla", log_prob, old, adv, mask, cfg, mode)  # verl's clip-higher + dual clip
    ours, _ = get_policy_loss("gppo")(
        log_prob,
        old,
        adv,
        mask,
        {"clip_ratio_low": 0.2, "clip_ratio_high": 0.28, "clip_ratio_c": 10.0, "loss_agg_mode": mode},
    )
    assert float(gppo) == pytest.approx(float(vanilla), abs=1e-10)
    assert float(gppo) == pytest.approx(float(ours), abs=1e-10)


def test_gppo_general_reads_betas_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(verl_gppo.BETA1_ENV, "0.5")
    monkeypatch.setenv(verl_gppo.BETA2_ENV, "0.25")
    log_prob = torch.log(torch.tensor([RATIOS], dtype=torch.float64)).requires_grad_()
    adv = torch.tensor([SIGNS], dtype=torch.float64)
    loss, _ = call("gppo_general", log_prob, torch.zeros_like(log_prob), adv, torch.ones_like(log_prob), actor_config())
    (loss * 6).backward()
    assert (log_prob.grad / -adv).squeeze(0).tolist() == pytest.approx([0.4, 0.5, 1.0, 0.32, 1.5, 0.0])


def test_register_gppo_adds_a_fixed_beta_variant():
    verl_gppo.register_gppo("gppo_test_b0", beta1=0.0, beta2=0.0)
    log_prob = torch.log(torch.tensor([RATIOS], dtype=torch.float64)).requires_grad_()
    adv = torch.tensor([SIGNS], dtype=torch.float64)
    loss, _ = call("gppo_test_b0", log_prob, torch.zeros_like(log_prob), adv, torch.ones_like(log_prob), actor_config())
    (loss * 6).backward()
    assert (log_prob.grad / -adv).squeeze(0).tolist() == pytest.approx([0.0, 0.5, 1.0, 0.0, 1.5, 0.0])
    POLICY_LOSS_REGISTRY.pop("gppo_test_b0")


def test_verl_discovers_gppo_through_the_entry_point() -> None:
    """With rljudge installed, a plain `import verl` registers GPPO: no env var, no import line."""
    import subprocess
    import sys

    code = (
        "import verl\nfrom verl.trainer.ppo.core_algos import get_policy_loss_fn\n"
        "print(get_policy_loss_fn('gppo').__module__, get_policy_loss_fn('gppo_general').__module__)"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "VERL_USE_EXTERNAL_MODULES"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["rljudge_trainer.verl_gppo", "rljudge_trainer.verl_gppo"]
