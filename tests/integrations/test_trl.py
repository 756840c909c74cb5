"""``RLJudgeReward`` as a TRL reward function, inside a real ``trl.GRPOTrainer`` (trl 1.16, CPU).

The trainer trains a tiny Llama built from a config with a character tokenizer made here (nothing
is downloaded) for two steps; its rewards must come from the running rljudge service.
"""

from __future__ import annotations

import pickle
import string
import uuid

import pytest

pytest.importorskip("trl", reason="needs `pip install trl==1.16.0` (the integrations extra)")

from datasets import Dataset
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from trl import GRPOConfig, GRPOTrainer

from rljudge.integrations import RLJudgeReward

from ..conftest import metric_total

SUM_TESTS = {"type": "stdio", "cases": [{"input": "2 3\n", "output": "5\n"}]}


def char_tokenizer() -> PreTrainedTokenizerFast:
    chars = [c for c in string.printable if c not in "\t\r\x0b\x0c"]
    backend = Tokenizer(models.WordLevel({t: i for i, t in enumerate(["<pad>", "<eos>", "<unk>", *chars])}, "<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )
    tokenizer.padding_side = "left"
    return tokenizer


def test_reward_function_contract_strings_chats_and_none(judge_url: str) -> None:
    reward = RLJudgeReward(judge_url, retries=0)
    assert reward.__name__ == "rljudge"
    rewards = reward(
        prompts=["p"] * 3,
        completions=[
            "\\boxed{4}",
            [{"role": "assistant", "content": "it is \\boxed{5}"}],
            [{"role": "user", "content": "\\boxed{4}"}, {"role": "assistant", "content": "<think>4</think>\\boxed{4}"}],
        ],
        answer=["4", "4", "4"],
        trainer_state=object(),  # TRL's extra keyword arguments are accepted and ignored
    )
    assert rewards == [1.0, 0.0, 1.0]

    logged: dict[str, float] = {}
    program = f"```python\na, b = map(int, input().split())\nprint(a + b)  # {uuid.uuid4().hex}\n```"
    rewards = reward(
        prompts=["p", "p"],
        completions=[program, program],
        tests=[SUM_TESTS, '{"inputs": ["1"], "outputs": []}'],
        log_metric=lambda name, value: logged.__setitem__(name, value),
    )
    assert rewards == [1.0, None]  # a malformed test suite is not a reward of 0
    assert logged == {"rljudge/scored_fraction": 0.5}
    assert reward.last_results[1].status == "rejected"
    reward.close()


def test_reference_column_per_row_and_problem_ids(judge_url: str) -> None:
    problem_id = f"trl-{uuid.uuid4().hex[:8]}"
    reward = RLJudgeReward(judge_url, name="judge")
    reward.client.register_problem(problem_id, {"tests": SUM_TESTS})
    program = f"```python\na, b = map(int, input().split())\nprint(a + b)  # {uuid.uuid4().hex}\n```"
    ids = [problem_id, problem_id]
    assert reward(prompts=["p", "p"], completions=[program, "no code"], problem_id=ids) == [1.0, 0.0]
    # MATH-style rows: `problem` is the question's text, `solution` holds the boxed gold answer
    assert reward(
        prompts=["p"], completions=["\\boxed{6}"], problem=["What is 2+4?"], solution=["2+4 = \\boxed{6}"]
    ) == [1.0]
    assert reward(prompts=["p", "p"], completions=["\\boxed{4}", "\\boxed{3}"], answer=["4", "4"]) == [1.0, 0.0]
    with pytest.raises(ValueError, match="no reference column"):
        reward(prompts=["p"], completions=["x"], question=["q"])
    # picklable (TRL may copy reward functions to other processes): the client is not carried
    copy = pickle.loads(pickle.dumps(reward))
    assert copy._client is None and copy.url == judge_url
    reward.close()


def test_grpo_trainer_two_steps_rewards_come_from_rljudge(judge_url: str, tmp_path) -> None:
    tokenizer = char_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    model = LlamaForCausalLM(config)
    dataset = Dataset.from_list([{"prompt": f"{a}+{a}=", "answer": str(2 * a)} for a in range(1, 9)])
    reward = RLJudgeReward(judge_url)
    args = GRPOConfig(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=6,
        learning_rate=1e-3,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        seed=0,
        dataloader_num_workers=0,
    )
    before = metric_total(judge_url, "rljudge_items_submitted_total", kind="math")
    trainer = GRPOTrainer(
        model=model, reward_funcs=[reward], args=args, train_dataset=dataset, processing_class=tokenizer
    )
    trainer.train()
    submitted = metric_total(judge_url, "rljudge_items_submitted_total", kind="math") - before
    assert submitted == 2 * 4  # two steps of 4 completions, each judged by the service
    logged = [entry for entry in trainer.state.log_history if "rewards/rljudge/mean" in entry]
    assert len(logged) == 2
    assert all(entry["rljudge/scored_fraction"] == 1.0 for entry in logged)
    assert len(reward.last_results) == 4 and all(r.status == "scored" for r in reward.last_results)
    reward.close()
