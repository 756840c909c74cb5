"""rljudge's verl reward functions, run through verl 0.9.1's own loader and reward managers.

- The reward loop (verl's default since 0.6): ``get_custom_reward_fn`` loads ``compute_score_async``
  from ``pkg://rljudge.integrations.verl`` with its ``reward_kwargs``, and the registered ``naive``
  manager's ``run_single`` awaits it once per rollout.
- The legacy ``BatchRewardManager`` calls ``compute_score_batch`` once per batch.
"""

from __future__ import annotations

import asyncio
import json
import string
import uuid

import pytest

pytest.importorskip("verl.experimental.reward_loop", reason="needs verl==0.9.1 and aiohttp (the integrations extra)")

import numpy as np
import torch
from omegaconf import OmegaConf
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast
from verl import DataProto
from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls
from verl.trainer.ppo.reward import get_custom_reward_fn
from verl.workers.reward_manager.batch import BatchRewardManager

from rljudge.integrations import verl as rljudge_verl

from ..conftest import metric_total

PROGRAM = "a, b = map(int, input().split())\nprint(a + b)\n"


def char_tokenizer() -> PreTrainedTokenizerFast:
    chars = [c for c in string.printable if c not in "\t\r\x0b\x0c"]
    backend = Tokenizer(models.WordLevel({t: i for i, t in enumerate(["<pad>", "<eos>", "<unk>", *chars])}, "<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")


def batch(tokenizer: PreTrainedTokenizerFast, rows: list[tuple[str, str, object]]) -> DataProto:
    """A rollout batch as verl builds it: left-padded prompts, right-padded responses."""
    prompt_len, response_len = 4, max(len(response) for _, response, _ in rows) + 2
    prompts, responses, masks = [], [], []
    for _, response, _ in rows:
        ids = tokenizer(response, add_special_tokens=False)["input_ids"]
        prompts.append([tokenizer.pad_token_id] * (prompt_len - 1) + [tokenizer.convert_tokens_to_ids("Q")])
        responses.append(ids + [tokenizer.pad_token_id] * (response_len - len(ids)))
        masks.append([0] * (prompt_len - 1) + [1] + [1] * len(ids) + [0] * (response_len - len(ids)))
    return DataProto.from_dict(
        tensors={
            "prompts": torch.tensor(prompts),
            "responses": torch.tensor(responses),
            "attention_mask": torch.tensor(masks),
        },
        non_tensors={
            "data_source": np.array([source for source, _, _ in rows], dtype=object),
            "reward_model": np.array([{"ground_truth": truth} for _, _, truth in rows], dtype=object),
            "extra_info": np.array([{"index": i} for i in range(len(rows))], dtype=object),
        },
    )


def rows() -> list[tuple[str, str, object]]:
    tag = uuid.uuid4().hex[:8]
    code = f"```python\n{PROGRAM}# {tag}\n```"
    return [
        ("openai/gsm8k", "6 times 7 is 42.\n#### 42", "42"),
        ("DigitalLearningGmbH/MATH-lighteval", "so $\\boxed{\\frac{1}{2}}$", "\\frac{1}{2}"),
        ("math_dapo", "Answer: \\boxed{7}", "8"),
        ("math_longcot_math_verify", "<think>hm</think>\\boxed{3}", "3"),
        ("taco", code, json.dumps({"inputs": ["1 2\n", "2 2\n"], "outputs": ["3\n", "4\n"]})),
        ("livecodebench", code, json.dumps([{"input": "1 1\n", "output": "2\n", "testtype": "stdin"}])),
        (
            "coder1_longcot",
            f"```python\ndef add(a, b):\n    return a + b\n# {tag}\n```",
            '{"functional": "assert add(2, 3) == 5"}',
        ),
        ("apps", code, json.dumps({"inputs": ["1 2\n"], "outputs": ["4\n"]})),
    ]


EXPECTED = [1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0]


async def test_reward_loop_naive_manager_awaits_compute_score_async(judge_url: str) -> None:
    config = OmegaConf.create(
        {
            "reward": {
                "custom_reward_function": {
                    "path": "pkg://rljudge.integrations.verl",
                    "name": "compute_score_async",
                    "reward_kwargs": {"url": judge_url},
                }
            }
        }
    )
    compute_score = get_custom_reward_fn(config)
    tokenizer = char_tokenizer()
    manager = get_reward_manager_cls("naive")(config, tokenizer, compute_score)
    data = batch(tokenizer, rows())
    before = metric_total(judge_url, "rljudge_http_requests_total", route="/v1/judge")
    # verl's RewardLoopWorker.compute_score_batch: one task per rollout, gathered.
    outputs = await asyncio.gather(*(manager.run_single(data[i : i + 1]) for i in range(len(data))))
    assert [o["reward_score"] for o in outputs] == EXPECTED
    assert [o["reward_extra_info"]["rljudge_scored"] for o in outputs] == [1.0] * len(EXPECTED)
    assert [o["reward_extra_info"]["acc"] for o in outputs] == EXPECTED
    # 8 concurrent per-rollout calls were coalesced: far fewer HTTP requests than rollouts.
    requests_made = metric_total(judge_url, "rljudge_http_requests_total", route="/v1/judge") - before
    assert 1 <= requests_made <= 2


def test_legacy_batch_reward_manager_calls_compute_score_batch(judge_url: str) -> None:
    tokenizer = char_tokenizer()
    manager = BatchRewardManager(tokenizer, 0, rljudge_verl.compute_score_batch, url=judge_url)
    data = batch(tokenizer, rows())
    out = manager(data, return_dict=True)
    lengths = data.batch["attention_mask"][:, 4:].sum(-1)
    placed = [out["reward_tensor"][i, int(lengths[i]) - 1].item() for i in range(len(data))]
    assert placed == EXPECTED
    assert out["reward_tensor"].sum().item() == sum(EXPECTED)
    assert out["reward_extra_info"]["rljudge_scored"] == [1.0] * len(EXPECTED)


def test_unscorable_rollouts_get_unscored_score_and_a_zero_flag(judge_url: str) -> None:
    scores = rljudge_verl.compute_score_batch(
        ["taco", "my_source", "my_source", "openai/gsm8k"],
        ["```python\nprint(1)\n```", "```python\nprint(1)\n```", "\\boxed{2}", "#### 2"],
        ['{"inputs": ["1"], "outputs": []}', "problem:never-registered", "2", None],
        [{}, {}, {}, {}],
        url=judge_url,
        unscored_score=-1.0,
    )
    assert scores == [
        {"score": -1.0, "acc": 0.0, "rljudge_scored": 0.0},  # malformed ground truth: refused client-side
        {"score": -1.0, "acc": 0.0, "rljudge_scored": 0.0},  # unknown problem: rejected by the service
        {"score": 1.0, "acc": 1.0, "rljudge_scored": 1.0},  # unknown source, math ground truth
        {"score": -1.0, "acc": 0.0, "rljudge_scored": 0.0},  # no gold answer: rejected
    ]


def test_sync_compute_score_and_url_from_environment(judge_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLJUDGE_URL", judge_url)
    assert rljudge_verl.compute_score("lighteval/MATH", "\\boxed{4}", "4", None, return_dict=False) == 1.0
    result = rljudge_verl.compute_score("aime24", "<think>x</think>\\boxed{4}", "5", None, reward_scheme="klear")
    assert result == {"score": -1.0, "acc": 0.0, "rljudge_scored": 1.0}


def test_unreachable_service_is_unscored_not_zero() -> None:
    result = rljudge_verl.compute_score(
        "openai/gsm8k", "#### 4", "4", url="http://127.0.0.1:9", retries=0, unscored_score=float("nan")
    )
    assert isinstance(result, dict) and result["rljudge_scored"] == 0.0 and np.isnan(result["score"])
