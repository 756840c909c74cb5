"""The trainer's configuration: nested dataclasses read from YAML, with dotted command-line overrides.

Every key is documented in ``trainer/configs/tiny_arithmetic.yaml``; an unknown key is an error
(a typo must not silently fall back to a default).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "AlgorithmConfig",
    "JudgeConfig",
    "ModelConfig",
    "OptimConfig",
    "RolloutConfig",
    "RunConfig",
    "TaskConfig",
    "TrainConfig",
    "WarmupConfig",
    "apply_overrides",
    "from_dict",
    "load_config",
]


@dataclass
class ModelConfig:
    path: str | None = None  # a local Hugging Face folder (config, weights, tokenizer)
    tiny: dict[str, Any] | None = None  # or: build a tiny char-level Llama with these kwargs
    dtype: str = "float32"


@dataclass
class TaskConfig:
    name: str = "arithmetic"  # arithmetic | jsonl
    path: str | None = None  # jsonl: one {"prompt", "gold", "solution"?} per line
    num_problems: int = 256
    eval_problems: int = 64
    max_operand: int = 20
    ops: str = "+"
    seed: int = 0
    prompt_template: str = "{prompt}"
    chat_template: bool = False  # wrap prompts with the tokenizer's chat template


@dataclass
class RolloutConfig:
    prompts_per_step: int = 8
    group_size: int = 8  # G responses per prompt
    max_new_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0: no top-k truncation


@dataclass
class AlgorithmConfig:
    policy_loss: str = "gppo"  # ppo_clip | dapo_clip_higher | gppo | gppo_general
    advantage: str = "grpo"  # grpo | grpo_mean_only
    clip_ratio: float = 0.2
    clip_ratio_low: float = 0.2
    clip_ratio_high: float = 0.28
    clip_ratio_c: float | None = 10.0
    beta1: float = 1.0
    beta2: float = 1.0
    loss_agg_mode: str = "token-mean"
    filter_zero_adv_groups: bool = True
    filter_overlong: bool = True
    sft_alpha: float = 0.1  # 0 disables the SFT term on fully correct responses
    correct_reward: float = 1.0
    ppo_epochs: int = 1
    mini_batches: int = 2  # optimizer steps per epoch; the first is on-policy


@dataclass
class OptimConfig:
    lr: float = 1e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0
    micro_batch_size: int = 64  # sequences per forward pass (gradient accumulation above it)


@dataclass
class WarmupConfig:
    steps: int = 0  # supervised steps on the task's reference solutions before RL (fresh runs only)
    batch_size: int = 32
    lr: float = 1e-3


@dataclass
class JudgeConfig:
    url: str | None = None  # the rljudge service, e.g. http://127.0.0.1:8000
    api_key: str | None = None  # default: $RLJUDGE_API_KEY
    retries: int = 6  # transport retries before the items come back infra_failed
    deadline_s: float | None = None
    reward_scheme: str = "binary"
    strip_think: bool = True


@dataclass
class RunConfig:
    steps: int = 50
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:1 ...
    output_dir: str = "runs/gppo"
    save_every: int = 25  # 0: only at the end
    keep_checkpoints: int = 2
    resume: bool = True  # continue from output_dir/checkpoints/latest when there is one
    eval_every: int = 0  # greedy evaluation on the held-out problems; 0: only at start and end
    progress: bool = True


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    warmup: WarmupConfig = field(default_factory=WarmupConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def loss_config(self) -> dict[str, Any]:
        """The algorithm keys a policy loss reads (verl's names)."""
        a = self.algorithm
        return {
            "clip_ratio": a.clip_ratio,
            "clip_ratio_low": a.clip_ratio_low,
            "clip_ratio_high": a.clip_ratio_high,
            "clip_ratio_c": a.clip_ratio_c,
            "beta1": a.beta1,
            "beta2": a.beta2,
            "loss_agg_mode": a.loss_agg_mode,
        }


_SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "task": TaskConfig,
    "rollout": RolloutConfig,
    "algorithm": AlgorithmConfig,
    "optim": OptimConfig,
    "warmup": WarmupConfig,
    "judge": JudgeConfig,
    "run": RunConfig,
}


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"{where.rstrip('.') or 'config'}: unknown key(s) {unknown}; known: {sorted(known)}")
    kwargs = {}
    for name, value in data.items():
        if cls is TrainConfig:
            kwargs[name] = _build(_SECTIONS[name], value or {}, f"{name}.")
        elif name == "betas" and value is not None:
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def from_dict(data: dict[str, Any]) -> TrainConfig:
    """A ``TrainConfig`` from nested mappings; unknown keys raise."""
    return _build(TrainConfig, data or {}, "")


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (values parsed as YAML) to a nested mapping."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not of the form section.key=value")
        dotted, raw = item.split("=", 1)
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(raw)
    return data


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config (or start from the defaults when ``path`` is None) and apply overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    return from_dict(apply_overrides(data, overrides or []))
