"""GPPO for verl (0.9.x): registers ``gppo`` and ``gppo_general`` in verl's policy-loss registry.

Importing this module is the whole integration; verl then finds the loss by name::

    actor_rollout_ref.actor.policy_loss.loss_mode=gppo

verl imports it in every worker when it is named in ``VERL_USE_EXTERNAL_MODULES`` or
``actor_rollout_ref.model.external_lib``, or automatically through the ``verl.plugins`` entry point
that the rljudge package declares (see trainer/README.md).

The functions follow verl's ``PolicyLossFn`` contract::

    (old_log_prob, log_prob, advantages, response_mask, loss_agg_mode, config, rollout_is_weights)
        -> (loss, metrics)

ε_l, ε_h and c come from verl's actor config (``clip_ratio_low``, ``clip_ratio_high``,
``clip_ratio_c``); aggregation is verl's own ``agg_loss`` (all its modes, data-parallel aware).
verl's actor config is a closed dataclass, so ``gppo_general`` reads β1 and β2 from the environment
variables ``RLJUDGE_GPPO_BETA1`` / ``RLJUDGE_GPPO_BETA2`` (default 1; set them for the workers via
``+ray_kwargs.ray_init.runtime_env.env_vars``), or register fixed variants with ``register_gppo``.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from .losses import gppo_loss_matrix, masked_mean

try:
    from verl.trainer.ppo.core_algos import agg_loss, get_policy_loss_fn, register_policy_loss
except ImportError as exc:  # pragma: no cover - exercised only without verl
    raise ImportError("rljudge_trainer.verl_gppo needs verl (pip install verl==0.9.1)") from exc

__all__ = ["BETA1_ENV", "BETA2_ENV", "compute_policy_loss_gppo", "compute_policy_loss_gppo_general", "register_gppo"]

BETA1_ENV = "RLJUDGE_GPPO_BETA1"
BETA2_ENV = "RLJUDGE_GPPO_BETA2"


def _gppo(
    old_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str,
    config: Any,
    rollout_is_weights: torch.Tensor | None,
    beta1: float,
    beta2: float,
) -> tuple[torch.Tensor, dict[str, Any]]:
    if config is None:
        raise ValueError("GPPO needs verl's actor config (clip_ratio_low, clip_ratio_high, clip_ratio_c)")
    clip_ratio = config.get("clip_ratio", 0.2)
    eps_low = config.get("clip_ratio_low")
    eps_high = config.get("clip_ratio_high")
    out = gppo_loss_matrix(
        log_prob,
        old_log_prob,
        advantages,
        eps_low=float(eps_low if eps_low is not None else clip_ratio),
        eps_high=float(eps_high if eps_high is not None else clip_ratio),
        beta1=beta1,
        beta2=beta2,
        clip_ratio_c=config.get("clip_ratio_c", 3.0),
    )
    loss_mat = out["loss"]
    if rollout_is_weights is not None:
        loss_mat = loss_mat * rollout_is_weights
    global_batch_info = config.get("global_batch_info") or {}
    loss = agg_loss(loss_mat=loss_mat, loss_mask=response_mask, loss_agg_mode=loss_agg_mode, **global_batch_info)
    mask = response_mask.bool()
    with torch.no_grad():
        metrics = {
            # verl's names, so that dashboards keep working
            "actor/pg_clipfrac": float(masked_mean((out["low"] | out["high"]).float(), mask)),
            "actor/ppo_kl": float(masked_mean(-out["log_ratio"], mask)),
            "actor/pg_clipfrac_lower": float(masked_mean(out["dual"].float(), mask)),
            "actor/gppo_clipfrac_low": float(masked_mean(out["low"].float(), mask)),
            "actor/gppo_clipfrac_high": float(masked_mean(out["high"].float(), mask)),
        }
    return loss, metrics


def register_gppo(name: str, beta1: float, beta2: float) -> None:
    """Register GPPO with fixed β1, β2 under ``name`` (e.g. ``gppo_b05`` for β1 = 0.5)."""

    def loss_fn(
        old_log_prob: torch.Tensor,
        log_prob: torch.Tensor,
        advantages: torch.Tensor,
        response_mask: torch.Tensor,
        loss_agg_mode: str = "token-mean",
        config: Any = None,
        rollout_is_weights: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        return _gppo(
            old_log_prob, log_prob, advantages, response_mask, loss_agg_mode, config, rollout_is_weights, beta1, beta2
        )

    loss_fn.__name__ = f"compute_policy_loss_{name}"
    register_policy_loss(name)(loss_fn)


@register_policy_loss("gppo")
def compute_policy_loss_gppo(
    old_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "token-mean",
    config: Any = None,
    rollout_is_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """GPPO as published (β1 = β2 = 1)."""
    return _gppo(old_log_prob, log_prob, advantages, response_mask, loss_agg_mode, config, rollout_is_weights, 1.0, 1.0)


@register_policy_loss("gppo_general")
def compute_policy_loss_gppo_general(
    old_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "token-mean",
    config: Any = None,
    rollout_is_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """GPPO with β1 = $RLJUDGE_GPPO_BETA1 and β2 = $RLJUDGE_GPPO_BETA2 (each default 1)."""
    beta1 = float(os.environ.get(BETA1_ENV, "1.0"))
    beta2 = float(os.environ.get(BETA2_ENV, "1.0"))
    return _gppo(
        old_log_prob, log_prob, advantages, response_mask, loss_agg_mode, config, rollout_is_weights, beta1, beta2
    )


assert get_policy_loss_fn("gppo") is compute_policy_loss_gppo
