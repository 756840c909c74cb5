"""The client SDK against a real gateway: batching, order, retries, failures never scored as 0."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator

import httpx
import pytest

from rljudge import MAX_ID_CHARS, JudgeClient, JudgeRequestError, JudgeUnavailableError, MathItem, SyncJudgeClient
from rljudge_cli.stack import free_port

from .conftest import DATA


async def test_judges_a_thousand_items_in_one_call_in_order(judge_url: str) -> None:
    items = [
        MathItem(response=f"step {i}: \\boxed{{{i % 50}}}", gold=str(i % 50 if i % 3 else i % 50 + 1))
        for i in range(1000)
    ]
    async with JudgeClient(judge_url, batch_size=256, max_concurrency=4) as client:
        results = await client.judge(items)
    assert [r.index for r in results] == list(range(1000))
    assert [r.id for r in results] == [str(i) for i in range(1000)]
    assert all(r.status == "scored" for r in results)
    assert [r.reward for r in results] == [0.0 if i % 3 == 0 else 1.0 for i in range(1000)]


async def test_accepts_plain_dicts_and_keeps_given_ids(judge_url: str) -> None:
    """Given ids come back; a missing, null or empty one is the item's index in the call (not its
    position in the request that carried it)."""
    async with JudgeClient(judge_url, batch_size=2) as client:
        results = await client.judge(
            [
                {"kind": "math", "id": "a", "response": r"\boxed{2}", "gold": "2"},
                {"kind": "math", "response": "x", "gold": "3"},
                {"kind": "math", "id": None, "response": "y", "gold": "3"},
                {"kind": "math", "id": "", "response": "z", "gold": "3"},
            ]
        )
    assert [r.id for r in results] == ["a", "1", "2", "3"]


async def test_text_that_is_not_unicode_is_sent_and_judged(judge_url: str) -> None:
    """A lone surrogate cannot be UTF-8: the client sends it escaped, the gateway makes it U+FFFD."""
    async with JudgeClient(judge_url) as client:
        results = await client.judge(
            [
                {"kind": "math", "response": "cut emoji \ud83d, so \\boxed{4}", "gold": "4"},
                MathItem(response="\udc00 \\boxed{5}", gold="6"),
            ]
        )
    assert [(r.status, r.verdict) for r in results] == [("scored", "correct"), ("scored", "wrong_answer")]


def test_math_responses_are_sent_as_what_is_judged() -> None:
    client = JudgeClient("http://127.0.0.1:9")  # nothing is sent
    rollout = "<think>" + "reasoning " * 300 + "</think> so \\boxed{7}"
    sent = [
        client._prepare(MathItem(response=rollout, gold="7"), 0),
        client._prepare({"kind": "math", "response": rollout, "gold": "7", "require_think": True}, 1),
        client._prepare({"kind": "math", "response": 7, "gold": "7"}, 2),  # the server rejects it
        client._prepare({"kind": "code", "response": rollout, "tests": {"type": "run"}}, 3),
    ]
    assert [item["response"] for item in sent] == ["\\boxed{7}", rollout, 7, rollout]
    whole = JudgeClient("http://127.0.0.1:9", trim_math_responses=False)
    assert whole._prepare(MathItem(response=rollout, gold="7"), 0)["response"] == rollout


async def test_trimmed_rollouts_get_the_verdicts_of_whole_ones(judge_url: str) -> None:
    """The labelled Qwen2.5-Math rollouts, judged by the service sent whole and sent trimmed."""
    rows = [json.loads(line) for line in (DATA / "math" / "qwen25math_labelled_subset.jsonl").open()]
    items = [MathItem(response=resp, gold=row["gt"]) for row in rows for resp in row["responses"]]
    async with (
        JudgeClient(judge_url) as trimming,
        JudgeClient(judge_url, trim_math_responses=False) as whole,
    ):
        sizes = [len(trimming._prepare(item, 0)["response"]) for item in items]
        trimmed, sent_whole = await trimming.judge(items), await whole.judge(items)
    assert sum(sizes) * 10 < sum(len(item.response) for item in items)  # a tenth of the text, or less
    assert [(r.verdict, r.reward) for r in trimmed] == [(r.verdict, r.reward) for r in sent_whole]
    assert all(r.cached for r in sent_whole)  # the verdict cache knew every input: the same judged text
    assert sum(r.verdict == "correct" for r in trimmed) >= 40


class RecordingTransport(httpx.AsyncBaseTransport):
    """The real transport, keeping the items of every ``POST /v1/judge`` (what went over the wire)."""

    def __init__(self) -> None:
        self.real = httpx.AsyncHTTPTransport()
        self.sent: list[list[dict]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/judge":
            self.sent.append(json.loads(request.content)["items"])
        return await self.real.handle_async_request(request)

    async def aclose(self) -> None:
        await self.real.aclose()


async def test_identical_items_are_sent_once_and_copies_share_the_verdict(judge_url: str) -> None:
    """A GRPO-like step (4 prompts x 8 rollouts, answers repeating, reasoning differing): each
    distinct trimmed item goes once; every item gets the result it gets when all are sent, copies
    with their own id and index, cached and 0 ms."""
    base = random.randrange(10**9, 10**10)  # answers no earlier test has put in the verdict cache
    items = [
        MathItem(response=f"<think>rollout {p}.{k}</think> so \\boxed{{{base + p + k % 3}}}", gold=str(base + p))
        for p in range(4)
        for k in range(8)
    ]
    items.append(MathItem(id="mine", response=f"so \\boxed{{{base}}}", gold=str(base)))
    recording = RecordingTransport()
    async with (
        JudgeClient(judge_url, transport=recording, batch_size=5) as client,
        JudgeClient(judge_url, dedup=False) as every,
    ):
        results = await client.judge(items)
        expected = await every.judge(items)
    sent = [item for request in recording.sent for item in request]
    assert len(sent) == 4 * 3  # 3 distinct answers per prompt; "mine" repeats the first item
    assert len(recording.sent) == 3  # 12 distinct items in requests of 5
    assert [(r.id, r.index, r.status, r.verdict, r.reward) for r in results] == [
        (e.id, e.index, e.status, e.verdict, e.reward) for e in expected
    ]
    assert [r.id for r in results] == [*map(str, range(32)), "mine"]
    first = {(p, k % 3): p * 8 + k for p in range(4) for k in reversed(range(8))}  # first of each answer
    for result in results[:32]:
        p, k = divmod(result.index, 8)
        own = first[(p, k % 3)] == result.index
        assert (result.cached, result.elapsed_ms == 0) == (not own, not own), result
    assert results[32].cached and results[32].verdict == results[0].verdict == "correct"


async def test_a_rejection_names_the_item_by_its_index_in_the_call(judge_url: str) -> None:
    """The gateway names a malformed item by its position in its request; the client, which splits
    a call in requests and sends copies once, names it by its index in the call."""
    items = [{"kind": "math", "response": "\\boxed{1}", "gold": "1"} for _ in range(3)]
    items += [{"kind": "math", "response": f"\\boxed{{{i}}}"} for i in (1, 2, 1)]  # no gold; 5 repeats 3
    for dedup in (True, False):
        async with JudgeClient(judge_url, batch_size=2, dedup=dedup) as client:
            results = await client.judge(items)
        assert [r.status for r in results] == ["scored"] * 3 + ["rejected"] * 3
        assert not any(r.cached for r in results[3:])  # a rejection's copy shares no verdict
        assert results[1].cached and results[2].cached  # copies: the client's, or the gateway's
        for result in results[3:]:
            assert result.detail is not None and result.detail.startswith(f"items[{result.index}].math.gold"), result


async def test_code_items_and_items_with_invalid_ids_are_always_sent(judge_url: str) -> None:
    """Only math items are compared (the gateway groups math alone batch-wide), and only those whose
    id the gateway would keep: an item equal to another but for an id over the limit is refused on
    its own, not given its twin's verdict."""
    tests = {"type": "stdio", "cases": [{"input": "1", "output": "1"}]}
    code = {"kind": "code", "code": "print(input())", "tests": tests}
    math = {"kind": "math", "response": "\\boxed{1}", "gold": "1"}
    items = [code, dict(code), {**math, "id": "x" * (MAX_ID_CHARS + 1)}, {**math, "id": "ok"}]
    recording = RecordingTransport()
    async with JudgeClient(judge_url, transport=recording) as client:
        results = await client.judge(items)
    assert len(recording.sent[0]) == 4
    assert [(r.status, r.verdict) for r in results] == [
        ("scored", "correct"),
        ("scored", "correct"),
        ("rejected", "invalid_item"),
        ("scored", "correct"),
    ]


class FlakyTransport(httpx.AsyncBaseTransport):
    """Answers the first ``failures`` requests with 503 itself, then forwards to the real server.
    (A real gateway answers 503 only while Redis is down; this produces it on demand.)"""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.real = httpx.AsyncHTTPTransport()
        self.keys: list[str | None] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.keys.append(request.headers.get("idempotency-key"))
        if self.failures > 0:
            self.failures -= 1
            return httpx.Response(503, headers={"Retry-After": "0"}, json={"detail": "redis down"})
        return await self.real.handle_async_request(request)

    async def aclose(self) -> None:
        await self.real.aclose()


async def test_retries_a_503_with_the_same_idempotency_key(judge_url: str) -> None:
    transport = FlakyTransport(failures=2)
    async with JudgeClient(judge_url, transport=transport, backoff_s=0.01) as client:
        results = await client.judge([MathItem(response=r"\boxed{7}", gold="7")])
    assert results[0].reward == 1.0
    assert len(transport.keys) == 3
    assert len(set(transport.keys)) == 1 and transport.keys[0]


@contextlib.asynccontextmanager
async def dropping_proxy(target_port: int, drops: int) -> AsyncIterator[tuple[str, list[int]]]:
    """A real TCP proxy that closes its first ``drops`` connections without answering."""
    seen = [0]

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen[0] += 1
        if seen[0] <= drops:
            await reader.read(1)  # the request has started arriving: drop it mid-way
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", seen


async def test_retries_a_dropped_connection(judge_url: str) -> None:
    async with dropping_proxy(int(judge_url.rsplit(":", 1)[1]), drops=2) as (url, seen):
        async with JudgeClient(url, backoff_s=0.01) as client:
            results = await client.judge([MathItem(response=r"\boxed{8}", gold="8")])
    assert results[0].status == "scored" and results[0].reward == 1.0
    assert seen[0] >= 3


async def test_unreachable_service_is_infra_failed_never_zero() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with JudgeClient(url, retries=2, backoff_s=0.01) as client:
        results = await client.judge([MathItem(response=r"\boxed{1}", gold="1")] * 3)
    assert [r.status for r in results] == ["infra_failed"] * 3
    assert all(r.reward is None and r.verdict == "judge_error" for r in results)
    assert "unavailable" in (results[0].detail or "")


async def test_unreachable_service_can_raise_instead() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with JudgeClient(url, retries=1, backoff_s=0.01, on_failure="raise") as client:
        with pytest.raises(JudgeUnavailableError, match="2 attempts"):
            await client.judge([MathItem(response="x", gold="1")])


async def test_refused_request_raises_with_the_servers_message(make_gateway) -> None:
    locked = make_gateway(api_keys=["sekret"])
    async with JudgeClient(locked.url) as client:
        with pytest.raises(JudgeRequestError) as info:
            await client.judge([MathItem(response="x", gold="1")])
    assert info.value.status_code == 401
    assert "Bearer" in info.value.detail
    async with JudgeClient(locked.url, api_key="sekret") as client:
        results = await client.judge([MathItem(response=r"\boxed{1}", gold="1")])
    assert results[0].reward == 1.0


def test_sync_client(judge_url: str) -> None:
    with SyncJudgeClient(judge_url) as client:
        assert client.ready()
        results = client.judge([MathItem(response=r"\boxed{3}", gold="3")], reward_scheme="klear")
        accepted = client.submit([MathItem(response=r"\boxed{4}", gold="5")])
        batch = client.get_batch(accepted.batch_id, wait_s=30)
    assert results[0].reward == 1.0
    assert batch.done and batch.results[0].reward == 0.0
