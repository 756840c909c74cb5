"""Policy losses for RL on verifiable rewards: PPO clip, DAPO clip-higher and GPPO.

Every loss is a pure function of [batch, tokens] tensors::

    loss, metrics = fn(log_prob, old_log_prob, advantages, response_mask, config)

``config`` is a plain mapping that uses verl's key names (missing keys take the defaults in
``DEFAULTS``):

- ``clip_ratio``: the symmetric ε of ``ppo_clip`` (0.2).
- ``clip_ratio_low`` / ``clip_ratio_high``: ε_l / ε_h of the asymmetric losses (0.2 / 0.28).
- ``clip_ratio_c``: the dual-clip bound c for negative advantages (None: no dual clip; Klear uses 10,
  verl's default is 3).
- ``beta1`` / ``beta2``: GPPO's gradient scales for low- and high-clipped tokens (``gppo_general`` only).
- ``loss_agg_mode``: ``token-mean`` (default) or ``seq-mean-token-mean``.
- ``entropy``: an optional [batch, tokens] tensor, reported as a metric only.

GPPO (Klear-Reasoner, arXiv 2508.07629), per token with δ = exp(logπθ - logπold) and sg = stop-gradient::

    A < 0 and δ < 1 - ε_l:  loss = -β1 · (1 - ε_l) · δ / sg(δ) · A
    A > 0 and δ > 1 + ε_h:  loss = -β2 · (1 + ε_h) · δ / sg(δ) · A
    otherwise:              loss = -δ · A
    dual clip (A < 0):      loss = min(loss, -c · A)

With β1 = β2 = 1 its forward value equals clip-higher's, but a clipped token keeps the gradient
β(1 ± ε) · A · ∇logπ where clip-higher's is zero.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

__all__ = [
    "DEFAULTS",
    "LOSS_AGG_MODES",
    "POLICY_LOSSES",
    "PolicyLossFn",
    "agg_loss",
    "dapo_clip_higher_loss",
    "get_policy_loss",
    "gppo_general_loss",
    "gppo_loss",
    "gppo_loss_matrix",
    "masked_mean",
    "ppo_clip_loss",
    "register_policy_loss",
]

PolicyLossFn = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, Mapping[str, Any]],
    tuple[torch.Tensor, dict[str, float]],
]

DEFAULTS: dict[str, Any] = {
    "clip_ratio": 0.2,
    "clip_ratio_low": 0.2,
    "clip_ratio_high": 0.28,
    "clip_ratio_c": None,
    "beta1": 1.0,
    "beta2": 1.0,
    "loss_agg_mode": "token-mean",
}

LOSS_AGG_MODES = ("token-mean", "seq-mean-token-mean")

# log-ratios are clamped before exp() so that no ratio (nor its gradient) can overflow.
_LOG_RATIO_CLAMP = 20.0

POLICY_LOSSES: dict[str, PolicyLossFn] = {}


def register_policy_loss(name: str) -> Callable[[PolicyLossFn], PolicyLossFn]:
    """Decorator adding a policy loss to the registry under ``name``."""

    def decorator(fn: PolicyLossFn) -> PolicyLossFn:
        POLICY_LOSSES[name] = fn
        return fn

    return decorator


def get_policy_loss(name: str) -> PolicyLossFn:
    """The policy loss registered as ``name``; an unknown name raises with the known ones."""
    try:
        return POLICY_LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown policy loss {name!r}; known: {sorted(POLICY_LOSSES)}") from None


# ----------------------------------------------------------------------------- helpers


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is true (0 when the mask is empty)."""
    mask = mask.bool()
    return torch.where(mask, values, torch.zeros_like(values)).sum() / mask.sum().clamp(min=1)


def agg_loss(loss_mat: torch.Tensor, mask: torch.Tensor, mode: str = "token-mean") -> torch.Tensor:
    """Aggregate a [batch, tokens] loss matrix over the tokens where ``mask`` is true.

    ``token-mean`` weighs every token equally (DAPO, Klear); ``seq-mean-token-mean`` averages each
    sequence first, then the sequences that have at least one token (GRPO's original form).
    Masked entries never reach the result, nor the gradient, even when they are NaN.
    """
    mask = mask.bool()
    zeros = torch.zeros_like(loss_mat)
    masked = torch.where(mask, loss_mat, zeros)
    if mode == "token-mean":
        return masked.sum() / mask.sum().clamp(min=1)
    if mode == "seq-mean-token-mean":
        tokens = mask.sum(dim=-1)
        seq_loss = masked.sum(dim=-1) / tokens.clamp(min=1)
        present = tokens > 0
        return torch.where(present, seq_loss, torch.zeros_like(seq_loss)).sum() / present.sum().clamp(min=1)
    raise ValueError(f"unknown loss_agg_mode {mode!r}; known: {list(LOSS_AGG_MODES)}")


def _settings(config: Mapping[str, Any] | None) -> dict[str, Any]:
    cfg = dict(DEFAULTS)
    if config:
        cfg.update({k: v for k, v in config.items() if v is not None or k == "clip_ratio_c"})
    c = cfg["clip_ratio_c"]
    if c is not None and c <= 1.0:
        raise ValueError(f"clip_ratio_c must be > 1 (dual clip), got {c}")
    if cfg["loss_agg_mode"] not in LOSS_AGG_MODES:
        raise ValueError(f"unknown loss_agg_mode {cfg['loss_agg_mode']!r}; known: {list(LOSS_AGG_MODES)}")
    return cfg


def _prepare(
    log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor, response_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Broadcast per-sequence advantages to tokens; return (log_ratio, advantages, bool mask)."""
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(-1)
    advantages = advantages.expand_as(log_prob).to(log_prob.dtype)
    log_ratio = torch.clamp(log_prob - old_log_prob.detach(), -_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)
    return log_ratio, advantages.detach(), response_mask.bool()


def _dual_clip(loss: torch.Tensor, advantages: torch.Tensor, c: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """min(loss, -c·A) for A < 0; returns the loss and where the bound was hit."""
    if c is None:
        return loss, torch.zeros_like(loss, dtype=torch.bool)
    bound = -advantages * c
    hit = (advantages < 0) & (loss > bound)
    return torch.where(hit, bound, loss), hit


def _metrics(
    cfg: Mapping[str, Any],
    log_ratio: torch.Tensor,
    mask: torch.Tensor,
    low: torch.Tensor,
    high: torch.Tensor,
    dual: torch.Tensor,
    loss: torch.Tensor,
) -> dict[str, float]:
    with torch.no_grad():
        metrics = {
            "pg_loss": float(loss.detach()),
            "clipfrac_low": float(masked_mean(low.float(), mask)),
            "clipfrac_high": float(masked_mean(high.float(), mask)),
            "clipfrac_dual": float(masked_mean(dual.float(), mask)),
            # k1 and k3 estimators of KL(old || new) on the sampled tokens
            "approx_kl": float(masked_mean(-log_ratio, mask)),
            "approx_kl_k3": float(masked_mean(torch.exp(log_ratio) - 1 - log_ratio, mask)),
            "ratio_mean": float(masked_mean(torch.exp(log_ratio), mask)),
        }
        entropy = cfg.get("entropy")
        if entropy is not None:
            metrics["entropy"] = float(masked_mean(entropy.detach(), mask))
    return metrics


def _clip_higher(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    cfg: Mapping[str, Any],
    eps_low: float,
    eps_high: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """max(-δA, -clip(δ, 1-ε_l, 1+ε_h)A) with the optional dual clip: PPO's form, asymmetric ε."""
    log_ratio, adv, mask = _prepare(log_prob, old_log_prob, advantages, response_mask)
    ratio = torch.exp(log_ratio)
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high)
    loss_mat = torch.maximum(unclipped, clipped)
    loss_mat, dual = _dual_clip(loss_mat, adv, cfg["clip_ratio_c"])
    loss = agg_loss(loss_mat, mask, cfg["loss_agg_mode"])
    low = (adv < 0) & (ratio < 1.0 - eps_low)
    high = (adv > 0) & (ratio > 1.0 + eps_high)
    return loss, _metrics(cfg, log_ratio, mask, low, high, dual, loss)


def gppo_loss_matrix(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    *,
    eps_low: float,
    eps_high: float,
    beta1: float = 1.0,
    beta2: float = 1.0,
    clip_ratio_c: float | None = None,
) -> dict[str, torch.Tensor]:
    """GPPO's per-token loss (before aggregation) and where each clip applied.

    Returns ``loss`` [batch, tokens] and the boolean maps ``low`` (A < 0, δ < 1 - ε_l), ``high``
    (A > 0, δ > 1 + ε_h) and ``dual`` (the dual-clip bound -c·A was hit), plus ``log_ratio``.
    Shared by the trainer's loss and by the verl registration.
    """
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(-1)
    adv = advantages.expand_as(log_prob).to(log_prob.dtype).detach()
    log_ratio = torch.clamp(log_prob - old_log_prob.detach(), -_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)
    ratio = torch.exp(log_ratio)
    # δ / sg(δ): equals 1 in the forward pass, carries ∇logπ in the backward pass.
    grad_carrier = ratio / ratio.detach()
    low = (adv < 0) & (ratio < 1.0 - eps_low)
    high = (adv > 0) & (ratio > 1.0 + eps_high)
    loss = torch.where(
        low,
        -beta1 * (1.0 - eps_low) * grad_carrier * adv,
        torch.where(high, -beta2 * (1.0 + eps_high) * grad_carrier * adv, -ratio * adv),
    )
    loss, dual = _dual_clip(loss, adv, clip_ratio_c)
    return {"loss": loss, "low": low, "high": high, "dual": dual, "log_ratio": log_ratio}


def _gppo(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    cfg: Mapping[str, Any],
    beta1: float,
    beta2: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    out = gppo_loss_matrix(
        log_prob,
        old_log_prob,
        advantages,
        eps_low=float(cfg["clip_ratio_low"]),
        eps_high=float(cfg["clip_ratio_high"]),
        beta1=beta1,
        beta2=beta2,
        clip_ratio_c=cfg["clip_ratio_c"],
    )
    mask = response_mask.bool()
    loss = agg_loss(out["loss"], mask, cfg["loss_agg_mode"])
    return loss, _metrics(cfg, out["log_ratio"], mask, out["low"], out["high"], out["dual"], loss)


# ----------------------------------------------------------------------------- the registry


@register_policy_loss("ppo_clip")
def ppo_clip_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    config: Mapping[str, Any] | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO's clipped surrogate with the symmetric ``clip_ratio`` ε (plus the optional dual clip)."""
    cfg = _settings(config)
    eps = float(cfg["clip_ratio"])
    return _clip_higher(log_prob, old_log_prob, advantages, response_mask, cfg, eps, eps)


@register_policy_loss("dapo_clip_higher")
def dapo_clip_higher_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    config: Mapping[str, Any] | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """DAPO's clip-higher: PPO's clip with ε_l = ``clip_ratio_low``, ε_h = ``clip_ratio_high``."""
    cfg = _settings(config)
    return _clip_higher(
        log_prob,
        old_log_prob,
        advantages,
        response_mask,
        cfg,
        float(cfg["clip_ratio_low"]),
        float(cfg["clip_ratio_high"]),
    )


@register_policy_loss("gppo")
def gppo_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    config: Mapping[str, Any] | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """GPPO as published (β1 = β2 = 1): clip-higher's values, clipped tokens keep (1 ± ε)·A·∇logπ."""
    cfg = _settings(config)
    return _gppo(log_prob, old_log_prob, advantages, response_mask, cfg, 1.0, 1.0)


@register_policy_loss("gppo_general")
def gppo_general_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    config: Mapping[str, Any] | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """GPPO with the config's ``beta1`` (low-clipped, A < 0) and ``beta2`` (high-clipped, A > 0)."""
    cfg = _settings(config)
    return _gppo(log_prob, old_log_prob, advantages, response_mask, cfg, float(cfg["beta1"]), float(cfg["beta2"]))
