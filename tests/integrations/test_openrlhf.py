"""OpenRLHF's remote reward protocol, ``POST /get_reward``, with requests shaped as OpenRLHF sends them.

OpenRLHF is not installed here (it needs DeepSpeed, vLLM and GPUs). The shapes are recorded from
its source (``openrlhf/utils/remote_rm_utils.py`` and ``trainer/ppo_utils/experience_maker.py``):
``requests.post(url, json={"query": queries, "prompts": prompts, "labels": labels},
headers={"Content-Type": "application/json"}, timeout=180)``, where each query is the prompt and
the response decoded together with special tokens kept; the answer must hold ``rewards`` and may
hold ``scores`` and ``extra_logs``, each read with ``torch.as_tensor(...)`` and split per sample.
:func:`openrlhf_reads` repeats that reading, so a ``None`` or a ragged list would fail here as it
would in OpenRLHF.
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
import requests

torch = pytest.importorskip("torch", reason="OpenRLHF reads the answer with torch.as_tensor")

from ..conftest import metric_total  # noqa: E402

PROMPT = "<|im_start|>user\nWhat is 6 times 7? Put the answer in \\boxed{}.<|im_end|>\n<|im_start|>assistant\n"
SUM_PROGRAM = "a, b = map(int, input().split())\nprint(a + b)\n"


def post(url: str, queries: list[str], prompts: list[str], labels: list, **params: object) -> dict:
    """OpenRLHF's request_api_wrapper: requests.post with a JSON body; raise_for_status; .json()."""
    response = requests.post(
        url=f"{url}/get_reward",
        params=params or None,
        json={"query": queries, "prompts": prompts, "labels": labels},
        headers={"Content-Type": "application/json"},
        timeout=180,
    )
    response.raise_for_status()
    return response.json()


def openrlhf_reads(info: dict, n: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """What OpenRLHF's update_samples_with_rewards reads from one server answer."""
    rewards = torch.as_tensor(info["rewards"])
    scores = torch.as_tensor(info["scores"]) if "scores" in info else rewards
    logs = {key: torch.as_tensor(values) for key, values in info.get("extra_logs", {}).items()}
    assert rewards.shape == scores.shape == (n,)
    assert all(v.shape == (n,) for v in logs.values())
    return rewards, scores, logs


def answer(text: str) -> str:
    return f"{PROMPT}<think>6*7</think>The answer is $\\boxed{{{text}}}$.<|im_end|><|endoftext|>"


def test_math_rewards_come_from_rljudge(judge_url: str) -> None:
    before = metric_total(judge_url, "rljudge_items_submitted_total", kind="math")
    queries = [answer("42"), answer("41"), f"{PROMPT}I do not know.<|im_end|>", answer("\\frac{84}{2}")]
    info = post(judge_url, queries, [PROMPT] * 4, ["42", "42", "42", "42"])
    rewards, scores, logs = openrlhf_reads(info, 4)
    assert rewards.tolist() == [1.0, 0.0, 0.0, 1.0]
    assert scores.tolist() == [1.0, 0.0, 0.0, 1.0]
    assert logs["rljudge_scored"].tolist() == [1.0] * 4
    assert [r["verdict"] for r in info["results"]] == ["correct", "wrong_answer", "no_answer", "correct"]
    assert metric_total(judge_url, "rljudge_items_submitted_total", kind="math") == before + 4


def test_prompt_is_cut_off_even_after_a_bos_token(judge_url: str) -> None:
    """The prompt itself contains a boxed 7: only the response's answer may be judged."""
    prompt = "Is \\boxed{7} right? Answer 8 in a box.\n"
    info = post(judge_url, [f"<s>{prompt}\\boxed{{8}}</s>"], [prompt], ["8"])
    assert info["rewards"] == [1.0]


def test_code_labels_json_suite_input_output_and_problem_reference(judge_url: str) -> None:
    problem_id = f"openrlhf-{uuid.uuid4().hex[:8]}"
    cases = [{"input": f"{i} {i}\n", "output": f"{2 * i}\n"} for i in range(3)]
    registered = httpx.put(
        f"{judge_url}/v1/problems/{problem_id}", json={"tests": {"type": "stdio", "cases": cases}}, timeout=30
    )
    assert registered.status_code in (200, 201), registered.text
    response = f"Here:\n```python\n{SUM_PROGRAM}# {uuid.uuid4().hex}\n```"
    labels = [
        json.dumps({"type": "stdio", "cases": cases}),
        json.dumps({"inputs": ["1 2\n", "5 5\n"], "outputs": ["3\n", "10\n"]}),
        f"problem:{problem_id}",
        json.dumps({"inputs": ["1 2\n"], "outputs": ["4\n"]}),
    ]
    info = post(judge_url, [f"Q{i}\n{response}" for i in range(4)], [f"Q{i}\n" for i in range(4)], labels)
    rewards, _, logs = openrlhf_reads(info, 4)
    assert rewards.tolist() == [1.0, 1.0, 1.0, 0.0]
    assert [r["kind"] for r in info["results"]] == ["code"] * 4
    assert logs["rljudge_correct"].tolist() == [1.0, 1.0, 1.0, 0.0]


def test_query_string_options_reward_scheme_and_require_think(judge_url: str) -> None:
    queries = [f"{PROMPT}\\boxed{{42}}", answer("41"), answer("42")]
    info = post(judge_url, queries, [PROMPT] * 3, ["42"] * 3, reward_scheme="klear", require_think="true")
    assert info["rewards"] == [-2.0, -1.0, 1.0]
    assert info["scores"] == [0.0, 0.0, 1.0]


def test_unscorable_items_get_the_unscored_reward_and_are_logged(judge_url: str) -> None:
    """An unknown problem is rejected by the judge: a number still comes back (OpenRLHF needs one)."""
    info = post(
        judge_url, [answer("42"), "```python\nprint(1)\n```"], ["", ""], ["42", "problem:no-such"], unscored_reward=-0.5
    )
    rewards, _, logs = openrlhf_reads(info, 2)
    assert rewards.tolist() == [1.0, -0.5]
    assert logs["rljudge_scored"].tolist() == [1.0, 0.0]
    assert info["results"][1]["status"] == "rejected" and "no-such" in info["results"][1]["detail"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"query": ["a", "b"], "prompts": ["", ""], "labels": ["1"]}, "labels has 1 entries but query has 2"),
        ({"query": ["a"], "prompts": ["", ""], "labels": ["1"]}, "prompts has 2 entries but query has 1"),
        ({"query": ["a"], "prompts": [""], "labels": [None]}, "labels[0] is empty: set OpenRLHF's --label_key"),
        ({"query": ["a"], "labels": ['{"inputs": ["1"], "outputs": []}']}, "labels[0]: 1 inputs but 0 outputs"),
        ({"query": [], "labels": []}, "query: List should have at least 1 item"),
    ],
)
def test_malformed_requests_are_422_with_a_precise_message(judge_url: str, body: dict, message: str) -> None:
    response = httpx.post(f"{judge_url}/get_reward", json=body, timeout=30)
    assert response.status_code == 422
    assert message in response.json()["detail"]
