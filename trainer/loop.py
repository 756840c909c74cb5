"""The GPPO trainer loop: sample G responses per prompt, judge them through rljudge, update. One file.

How this departs from GRPO (DeepSeekMath), following Klear-Reasoner:

1. The policy loss is GPPO by default: a token whose ratio is clipped keeps a bounded gradient
   β(1 ± ε)·A·∇logπ instead of none (``algorithm.policy_loss`` picks any loss in ``losses.py``).
2. Asymmetric clipping (ε_l = 0.2, ε_h = 0.28, clip-higher) and a dual clip c = 10 for A < 0.
3. Token-mean aggregation over the batch, not a mean of per-sequence means.
4. No KL penalty and no reference model.
5. Groups whose rewards are all equal are dropped (zero advantage), and so are responses that hit the
   length limit without an EOS (overlong filtering).
6. An SFT term alpha·NLL on fully correct responses (alpha = 0.1).
7. Rewards come from the rljudge service; a response the judge failed to score (``infra_failed``,
   ``unscored``, ``rejected``) is dropped from the update and counted, never scored 0.

One step::

    P prompts -> G samples each -> judge -> group advantages -> keep mask -> old log-probs
              -> ppo_epochs x mini_batches optimizer steps with the policy loss (+ SFT term)
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from .advantages import get_advantage_estimator, overlong_filter, sft_loss, zero_advantage_filter
from .config import TrainConfig
from .losses import get_policy_loss
from .models import load_policy, pick_device
from .reward import JudgeScorer, ScoreBatch, Scorer
from .tasks import Problem, load_task

__all__ = ["Rollouts", "generate", "response_log_probs", "sft_warmup", "train"]

log = logging.getLogger("rljudge_trainer")


# ----------------------------------------------------------------------------- rollouts


@dataclass
class Rollouts:
    input_ids: torch.Tensor  # [N, prompt_len + R]: left-padded prompt, then the response
    attention_mask: torch.Tensor  # [N, prompt_len + R]
    prompt_len: int
    response_mask: torch.Tensor  # [N, R]: response tokens up to and including EOS
    truncated: torch.Tensor  # [N]: hit max_new_tokens without an EOS
    texts: list[str]  # decoded responses (EOS and padding removed)


def format_prompt(tokenizer: Any, problem: Problem, template: str, chat: bool) -> str:
    text = template.format(prompt=problem.prompt)
    if chat:
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
    return text


def _position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


@torch.no_grad()
def generate(
    model: torch.nn.Module,
    tokenizer: Any,
    prompts: list[str],
    *,
    group_size: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    greedy: bool = False,
) -> Rollouts:
    """``group_size`` responses for each prompt, grouped consecutively (prompt i owns rows i*G .. i*G+G-1)."""
    device = next(model.parameters()).device
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    ids = enc["input_ids"].repeat_interleave(group_size, dim=0).to(device)
    mask = enc["attention_mask"].repeat_interleave(group_size, dim=0).to(device)
    prompt_len = ids.shape[1]
    was_training = model.training
    model.eval()
    sampling: dict[str, Any] = (
        {"do_sample": False}
        if greedy
        else {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": top_k}
    )
    out = model.generate(
        input_ids=ids,
        attention_mask=mask,
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **sampling,
    )
    model.train(was_training)
    response = out[:, prompt_len:]
    is_eos = response == tokenizer.eos_token_id
    has_eos = is_eos.any(dim=1)
    # position of the first EOS (or the full length): tokens up to and including it count
    first_eos = torch.where(
        has_eos, is_eos.float().argmax(dim=1), torch.full_like(has_eos, response.shape[1], dtype=torch.long)
    )
    positions = torch.arange(response.shape[1], device=device).unsqueeze(0)
    response_mask = positions <= first_eos.unsqueeze(1)
    response_mask &= positions < response.shape[1]
    response = torch.where(response_mask, response, torch.full_like(response, tokenizer.pad_token_id))
    texts = []
    for row, n in zip(response.tolist(), response_mask.sum(dim=1).tolist(), strict=True):
        texts.append(tokenizer.decode(row[:n], skip_special_tokens=True))
    return Rollouts(
        input_ids=torch.cat([ids, response], dim=1),
        attention_mask=torch.cat([mask, response_mask.long()], dim=1),
        prompt_len=prompt_len,
        response_mask=response_mask,
        truncated=~has_eos,
        texts=texts,
    )


def response_log_probs(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    prompt_len: int,
    *,
    temperature: float = 1.0,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log π(response token | prefix) for every response position, [N, R] (and the entropy, [N, R])."""
    logits = model(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=_position_ids(attention_mask), use_cache=False
    ).logits
    logits = logits[:, prompt_len - 1 : -1].float() / temperature
    logp_all = torch.log_softmax(logits, dim=-1)
    targets = input_ids[:, prompt_len:]
    log_prob = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = -(logp_all.exp() * logp_all).sum(-1)
    return log_prob, entropy


# ----------------------------------------------------------------------------- supervised warm-up


def sft_warmup(
    model: torch.nn.Module, tokenizer: Any, problems: list[Problem], cfg: TrainConfig, *, progress: bool = False
) -> list[float]:
    """``cfg.warmup.steps`` supervised steps on prompt + reference solution + EOS (response tokens only)."""
    device = next(model.parameters()).device
    with_solution = [p for p in problems if p.solution]
    if not with_solution:
        raise ValueError("warm-up needs problems with a reference `solution`")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.warmup.lr)
    rng = random.Random(cfg.run.seed)
    losses: list[float] = []
    model.train()
    for _ in tqdm(range(cfg.warmup.steps), desc="warm-up", disable=not progress):
        batch = [rng.choice(with_solution) for _ in range(cfg.warmup.batch_size)]
        prompts = [format_prompt(tokenizer, p, cfg.task.prompt_template, cfg.task.chat_template) for p in batch]
        enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        answers = [
            tokenizer(p.solution, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for p in batch
        ]
        width = max(len(a) for a in answers)
        resp = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
        resp_mask = torch.zeros((len(batch), width), dtype=torch.bool)
        for i, a in enumerate(answers):
            resp[i, : len(a)] = torch.tensor(a)
            resp_mask[i, : len(a)] = True
        ids = torch.cat([enc["input_ids"], resp], dim=1).to(device)
        mask = torch.cat([enc["attention_mask"], resp_mask.long()], dim=1).to(device)
        log_prob, _ = response_log_probs(model, ids, mask, enc["input_ids"].shape[1])
        resp_mask = resp_mask.to(device)
        loss = -(log_prob * resp_mask).sum() / resp_mask.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(
    out: Path, step: int, model: Any, tokenizer: Any, optimizer: torch.optim.Optimizer, keep: int
) -> Path:
    root = out / "checkpoints"
    path = root / f"step_{step:06d}"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    torch.save(
        {"step": step, "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state()},
        path / "trainer_state.pt",
    )
    (root / "latest").write_text(path.name)
    old = sorted(p for p in root.glob("step_*") if p.is_dir())
    for stale in old[: max(0, len(old) - keep)]:
        shutil.rmtree(stale)
    return path


def latest_checkpoint(out: Path) -> Path | None:
    marker = out / "checkpoints" / "latest"
    if not marker.exists():
        return None
    path = out / "checkpoints" / marker.read_text().strip()
    return path if path.is_dir() else None


# ----------------------------------------------------------------------------- the loop


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def evaluate(model: Any, tokenizer: Any, problems: list[Problem], cfg: TrainConfig, scorer: Scorer) -> dict[str, Any]:
    """Greedy decoding on held-out problems, judged by the service: mean reward over scored responses."""
    if not problems:
        return {}
    prompts = [format_prompt(tokenizer, p, cfg.task.prompt_template, cfg.task.chat_template) for p in problems]
    ro = generate(model, tokenizer, prompts, group_size=1, max_new_tokens=cfg.rollout.max_new_tokens, greedy=True)
    scores = scorer(ro.texts, [p.gold for p in problems])
    scored = [r for r in scores.rewards if r is not None]
    return {"eval/reward": _mean(scored), "eval/scored": len(scored), "eval/judge_failed": scores.failed}


def train(
    cfg: TrainConfig,
    scorer: Scorer | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run ``cfg.run.steps`` RL steps (resuming from the latest checkpoint); returns the metric records.

    ``scorer`` defaults to a ``JudgeScorer`` on ``cfg.judge.url``.
    """
    out = Path(cfg.run.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(cfg.run.device)
    random.seed(cfg.run.seed)
    torch.manual_seed(cfg.run.seed)

    resume_from = latest_checkpoint(out) if cfg.run.resume else None
    model, tokenizer = load_policy(
        str(resume_from) if resume_from else cfg.model.path, cfg.model.tiny, dtype=cfg.model.dtype, device=device
    )
    train_set, eval_set = load_task(
        cfg.task.name,
        path=cfg.task.path,
        num_problems=cfg.task.num_problems,
        eval_problems=cfg.task.eval_problems,
        max_operand=cfg.task.max_operand,
        ops=cfg.task.ops,
        seed=cfg.task.seed,
    )
    a = cfg.algorithm
    loss_fn = get_policy_loss(a.policy_loss)
    advantage_fn = get_advantage_estimator(a.advantage)
    loss_cfg = cfg.loss_config()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.optim.lr, betas=cfg.optim.betas, weight_decay=cfg.optim.weight_decay
    )
    start = 0
    if resume_from is not None:
        state = torch.load(resume_from / "trainer_state.pt", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        start = int(state["step"])
        log.info("resumed from %s at step %d", resume_from, start)
    elif cfg.warmup.steps > 0:
        warm = sft_warmup(model, tokenizer, train_set, cfg, progress=cfg.run.progress)
        log.info("warm-up: NLL %.3f -> %.3f", warm[0], warm[-1])

    own_scorer = scorer is None
    if scorer is None:
        scorer = JudgeScorer(cfg.judge)
    records: list[dict[str, Any]] = []
    metrics_file = (out / "metrics.jsonl").open("a", encoding="utf-8")
    try:
        if start == 0 and eval_set:
            rec = {"step": 0, **evaluate(model, tokenizer, eval_set, cfg, scorer)}
            records.append(rec)
            metrics_file.write(json.dumps(rec) + "\n")
        bar = tqdm(
            range(start, cfg.run.steps),
            initial=start,
            total=cfg.run.steps,
            desc=a.policy_loss,
            disable=not cfg.run.progress,
        )
        for step in bar:
            rec = rl_step(step, model, tokenizer, optimizer, train_set, cfg, scorer, loss_fn, advantage_fn, loss_cfg)
            done = step + 1
            final = done == cfg.run.steps
            if eval_set and (final or (cfg.run.eval_every and done % cfg.run.eval_every == 0)):
                rec.update(evaluate(model, tokenizer, eval_set, cfg, scorer))
            if final or (cfg.run.save_every and done % cfg.run.save_every == 0):
                save_checkpoint(out, done, model, tokenizer, optimizer, cfg.run.keep_checkpoints)
            records.append(rec)
            metrics_file.write(json.dumps(rec) + "\n")
            metrics_file.flush()
            bar.set_postfix(
                reward=f"{rec['reward_mean']:.3f}" if rec["reward_mean"] is not None else "n/a",
                kept=rec["responses_kept"],
            )
            if on_step is not None:
                on_step(rec)
    finally:
        metrics_file.close()
        if own_scorer:
            scorer.close()  # type: ignore[attr-defined]
    return records


def rl_step(
    step: int,
    model: Any,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    train_set: list[Problem],
    cfg: TrainConfig,
    scorer: Scorer,
    loss_fn: Callable[..., tuple[torch.Tensor, dict[str, float]]],
    advantage_fn: Callable[..., tuple[torch.Tensor, dict[str, float]]],
    loss_cfg: dict[str, Any],
) -> dict[str, Any]:
    """One RL step; returns its metrics record."""
    a, r = cfg.algorithm, cfg.rollout
    device = next(model.parameters()).device
    rec: dict[str, Any] = {"step": step + 1}

    # 1. sample: the same seed and step give the same prompts and samples whatever the loss
    t0 = time.perf_counter()
    problems = random.Random(cfg.run.seed * 1_000_003 + step).sample(train_set, min(r.prompts_per_step, len(train_set)))
    torch.manual_seed(cfg.run.seed * 1_000_003 + step)
    prompts = [format_prompt(tokenizer, p, cfg.task.prompt_template, cfg.task.chat_template) for p in problems]
    ro = generate(
        model,
        tokenizer,
        prompts,
        group_size=r.group_size,
        max_new_tokens=r.max_new_tokens,
        temperature=r.temperature,
        top_p=r.top_p,
        top_k=r.top_k,
    )
    rec["time/generate_s"] = time.perf_counter() - t0

    # 2. judge through the service; None = the judge failed, not the model
    t0 = time.perf_counter()
    golds = [p.gold for p in problems for _ in range(r.group_size)]
    scores: ScoreBatch = scorer(ro.texts, golds)
    rec["time/judge_s"] = time.perf_counter() - t0
    scored = torch.tensor([x is not None for x in scores.rewards])
    rewards = torch.tensor([x if x is not None else 0.0 for x in scores.rewards])
    group_index = torch.arange(len(problems)).repeat_interleave(r.group_size)
    scored_rewards = rewards[scored].tolist()
    rec.update(
        {
            "reward_mean": _mean(scored_rewards),
            "accuracy": _mean([float(x >= a.correct_reward) for x in scored_rewards]),
            "responses": len(ro.texts),
            "judge_failed": scores.failed,
            "judge_cached": scores.cached,
            "judge_statuses": dict(scores.statuses),
            "response_len": float(ro.response_mask.sum(dim=1).float().mean()),
            "truncated_frac": float(ro.truncated.float().mean()),
        }
    )
    if scores.failed:
        log.warning(
            "step %d: %d of %d responses not scored by the judge (%s); dropped from the update",
            step + 1,
            scores.failed,
            len(ro.texts),
            dict(scores.statuses),
        )

    # 3. advantages over the scored responses, then the keep mask
    keep = scored.clone()
    advantages = torch.zeros(len(ro.texts))
    if scored.any():
        adv, m = advantage_fn(rewards[scored], group_index[scored])
        advantages[scored] = adv
        rec.update(m)
        if a.filter_zero_adv_groups:
            informative, m = zero_advantage_filter(rewards[scored], group_index[scored])
            keep[scored.clone()] = informative
            rec.update(m)
    if a.filter_overlong:
        not_overlong, m = overlong_filter(ro.truncated.cpu())
        keep &= not_overlong
        rec.update(m)
    rec["responses_kept"] = int(keep.sum())

    # 4. old log-probs, then mini-batch updates
    t0 = time.perf_counter()
    idx = keep.nonzero().squeeze(1)
    rec["updates"] = 0
    if idx.numel() > 0:
        idx_d = idx.to(device)
        ids, attn = ro.input_ids[idx_d], ro.attention_mask[idx_d]
        resp_mask = ro.response_mask[idx_d]
        adv = advantages[idx].to(device)
        rew = rewards[idx].to(device)
        mb_size = cfg.optim.micro_batch_size
        with torch.no_grad():
            old_log_prob = torch.cat(
                [
                    response_log_probs(
                        model, ids[i : i + mb_size], attn[i : i + mb_size], ro.prompt_len, temperature=r.temperature
                    )[0]
                    for i in range(0, len(idx), mb_size)
                ]
            )
        step_metrics: list[dict[str, float]] = []
        gen = torch.Generator().manual_seed(cfg.run.seed * 1_000_003 + step)
        model.train()
        for _ in range(a.ppo_epochs):
            order = torch.randperm(len(idx), generator=gen).to(device)
            for mb in order.chunk(max(1, min(a.mini_batches, len(idx)))):
                optimizer.zero_grad(set_to_none=True)
                tokens = resp_mask[mb].sum().clamp(min=1)
                merged: dict[str, float] = {}
                for micro in mb.split(mb_size):
                    # weight micro-batches so that their sum is the mini-batch's token mean
                    weight = (
                        (resp_mask[micro].sum() / tokens) if a.loss_agg_mode == "token-mean" else len(micro) / len(mb)
                    )
                    log_prob, entropy = response_log_probs(
                        model, ids[micro], attn[micro], ro.prompt_len, temperature=r.temperature, with_entropy=True
                    )
                    loss, m = loss_fn(
                        log_prob, old_log_prob[micro], adv[micro], resp_mask[micro], {**loss_cfg, "entropy": entropy}
                    )
                    if a.sft_alpha > 0:
                        s_loss, sm = sft_loss(
                            log_prob,
                            resp_mask[micro],
                            rew[micro],
                            alpha=a.sft_alpha,
                            correct_reward=a.correct_reward,
                            loss_agg_mode=a.loss_agg_mode,
                        )
                        loss = loss + s_loss
                        m.update(sm)
                    (loss * weight).backward()
                    for k, v in m.items():
                        merged[k] = merged.get(k, 0.0) + v * float(weight)
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
                optimizer.step()
                merged["grad_norm"] = float(grad_norm)
                step_metrics.append(merged)
        rec["updates"] = len(step_metrics)
        for k in step_metrics[0]:
            rec[f"actor/{k}"] = sum(s[k] for s in step_metrics) / len(step_metrics)
    rec["time/update_s"] = time.perf_counter() - t0
    return rec
