"""Advantages and batch shaping for group-based RL (GRPO family), as pure functions.

Rollouts are flat: ``rewards[i]`` is response i's reward and ``group_index[i]`` the prompt it
answers (the G responses of one prompt share a group id). Each function returns ``(value, metrics)``.

- ``grpo_advantages``: (r - mean_g) / (std_g + ε), std unbiased (as verl and Klear); ``norm_by_std=False``
  gives the mean-only variant (Dr. GRPO). A group with one response gets advantage 0.
- ``zero_advantage_filter``: drops groups whose rewards are all equal (their advantages are all 0, so
  they only dilute the token mean).
- ``overlong_filter``: drops responses that hit the length limit without an EOS.
- ``sft_loss``: the SFT term on fully correct responses (Klear: alpha = 0.1), alpha · token-mean NLL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .losses import agg_loss

__all__ = [
    "ADVANTAGE_ESTIMATORS",
    "get_advantage_estimator",
    "grpo_advantages",
    "grpo_mean_only_advantages",
    "overlong_filter",
    "sft_loss",
    "zero_advantage_filter",
]

AdvantageFn = Callable[..., tuple[torch.Tensor, dict[str, float]]]


def _groups(group_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Dense ids 0..n-1 for arbitrary group labels, the size of each group, and n."""
    _, dense = torch.unique(group_index, return_inverse=True)
    n = int(dense.max()) + 1 if dense.numel() else 0
    counts = torch.bincount(dense, minlength=n)
    return dense, counts, n


def grpo_advantages(
    rewards: torch.Tensor, group_index: torch.Tensor, *, norm_by_std: bool = True, eps: float = 1e-6
) -> tuple[torch.Tensor, dict[str, float]]:
    """GRPO's per-group advantage of each response (one scalar per response)."""
    rewards = rewards.float()
    if rewards.numel() == 0:
        return rewards.clone(), {"adv_mean": 0.0, "adv_abs_mean": 0.0}
    dense, counts, n = _groups(group_index)
    sums = torch.zeros(n, dtype=rewards.dtype).index_add_(0, dense, rewards)
    mean = sums / counts.to(rewards.dtype)
    centred = rewards - mean[dense]
    advantages = centred
    if norm_by_std:
        sq = torch.zeros(n, dtype=rewards.dtype).index_add_(0, dense, centred * centred)
        std = torch.sqrt(sq / (counts - 1).clamp(min=1).to(rewards.dtype))
        advantages = centred / (std[dense] + eps)
    advantages = torch.where(counts[dense] > 1, advantages, torch.zeros_like(advantages))
    return advantages, {
        "adv_mean": float(advantages.mean()),
        "adv_abs_mean": float(advantages.abs().mean()),
    }


def grpo_mean_only_advantages(
    rewards: torch.Tensor, group_index: torch.Tensor, *, eps: float = 1e-6
) -> tuple[torch.Tensor, dict[str, float]]:
    """r - mean_g: GRPO without the std division (no up-weighting of near-uniform groups)."""
    return grpo_advantages(rewards, group_index, norm_by_std=False, eps=eps)


ADVANTAGE_ESTIMATORS: dict[str, AdvantageFn] = {
    "grpo": grpo_advantages,
    "grpo_mean_only": grpo_mean_only_advantages,
}


def get_advantage_estimator(name: str) -> AdvantageFn:
    """The advantage estimator registered as ``name``; an unknown name raises with the known ones."""
    try:
        return ADVANTAGE_ESTIMATORS[name]
    except KeyError:
        raise ValueError(f"unknown advantage estimator {name!r}; known: {sorted(ADVANTAGE_ESTIMATORS)}") from None


def zero_advantage_filter(rewards: torch.Tensor, group_index: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Keep-mask over responses: False for every response of a group whose rewards are all equal."""
    if rewards.numel() == 0:
        return torch.zeros(0, dtype=torch.bool), {"groups_total": 0.0, "groups_dropped_zero_adv": 0.0}
    dense, _, n = _groups(group_index)
    r = rewards.float()
    lo = torch.full((n,), float("inf")).scatter_reduce(0, dense, r, reduce="amin")
    hi = torch.full((n,), float("-inf")).scatter_reduce(0, dense, r, reduce="amax")
    uniform = hi == lo
    return ~uniform[dense], {"groups_total": float(n), "groups_dropped_zero_adv": float(uniform.sum())}


def overlong_filter(truncated: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Keep-mask over responses: False where the response hit the length limit without an EOS."""
    truncated = truncated.bool()
    return ~truncated, {"overlong_dropped": float(truncated.sum())}


def sft_loss(
    log_prob: torch.Tensor,
    response_mask: torch.Tensor,
    rewards: torch.Tensor,
    *,
    alpha: float = 0.1,
    correct_reward: float = 1.0,
    loss_agg_mode: str = "token-mean",
) -> tuple[torch.Tensor, dict[str, Any]]:
    """alpha · NLL of the responses whose reward reaches ``correct_reward`` (0 when there are none)."""
    correct = rewards.float() >= correct_reward
    mask = response_mask.bool() & correct.unsqueeze(-1)
    nll = agg_loss(-log_prob, mask, loss_agg_mode)
    return alpha * nll, {"sft_nll": float(nll.detach()), "sft_responses": float(correct.sum())}
