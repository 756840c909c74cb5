"""The gateway end to end for math: real uvicorn, real Redis, real RQ workers running math-verify."""

from __future__ import annotations

import asyncio
import random
import string
import time
import uuid
from typing import Any

import httpx
import pytest
from redis import Redis

from rljudge import BatchResult

from .conftest import ThreadedGateway, judge

POWER_TOWER = r"\boxed{9^{9^{9^{9^{9}}}}}"


def unique(text: str) -> str:
    """A response no other test (or earlier run) sent, so the verdict cache cannot answer it.
    The nonce is letters only: a digit would be extracted as an answer."""
    return f"{text} % {''.join(random.choices(string.ascii_letters, k=24))}"


def test_every_math_verdict_path(judge_url: str) -> None:
    items = [
        {"kind": "math", "id": "right", "response": unique(r"so \boxed{\frac{1}{2}}"), "gold": "0.5"},
        {"kind": "math", "id": "wrong", "response": unique(r"so \boxed{3}"), "gold": "4"},
        {"kind": "math", "id": "none", "response": unique("no idea"), "gold": r"\frac{1}{2}"},
        {"kind": "math", "id": "think", "response": unique(r"<think>\boxed{5}</think> \boxed{4}"), "gold": "4"},
        {"kind": "math", "id": "bad-latex", "response": unique(r"\boxed{\frac{1}{"), "gold": "1"},
        {"kind": "math", "id": "tower", "response": POWER_TOWER, "gold": "1", "timeout_s": 1},
    ]
    batch = judge(judge_url, items)
    by_id = {r.id: r for r in batch.results}
    assert batch.done and [r.id for r in batch.results] == [i["id"] for i in items]
    assert (by_id["right"].verdict, by_id["right"].reward) == ("correct", 1.0)
    assert (by_id["wrong"].verdict, by_id["wrong"].reward) == ("wrong_answer", 0.0)
    assert by_id["none"].verdict == "no_answer"
    assert by_id["think"].verdict == "correct"
    assert by_id["bad-latex"].status == "scored" and by_id["bad-latex"].verdict != "correct"
    assert (by_id["tower"].status, by_id["tower"].verdict) == ("scored", "time_limit")
    assert all(r.grader and r.grader.startswith("math-verify") for r in batch.results)


def test_think_is_kept_when_not_stripped(judge_url: str) -> None:
    response = unique(r"<think>\boxed{4}</think> I am unsure")
    stripped, kept = judge(
        judge_url,
        [
            {"kind": "math", "response": response, "gold": "4"},
            {"kind": "math", "response": response, "gold": "4", "strip_think": False},
        ],
    ).results
    assert stripped.verdict != "correct"
    assert kept.verdict == "correct"


def test_reward_schemes(judge_url: str) -> None:
    items = [
        {"kind": "math", "response": unique(r"<think>ok</think>\boxed{4}"), "gold": "4"},
        {"kind": "math", "response": unique(r"<think>ok</think>\boxed{5}"), "gold": "4"},
        {"kind": "math", "response": unique(r"\boxed{4}"), "gold": "4", "require_think": True},
        {"kind": "math", "response": unique(r"<think> \boxed{4}"), "gold": "4", "require_think": True},
    ]
    binary = [r.reward for r in judge(judge_url, items, reward_scheme="binary").results]
    klear = [r.reward for r in judge(judge_url, items, reward_scheme="klear").results]
    assert binary == [1.0, 0.0, 0.0, 0.0]
    assert klear == [1.0, -1.0, -2.0, -0.5]


def test_repeated_answers_hit_the_verdict_cache(judge_url: str) -> None:
    gold = str(uuid.uuid4().int % 10_000_000)
    items = [{"kind": "math", "response": f"reasoning {i} ... \\boxed{{{gold}}}", "gold": gold} for i in range(16)]
    first = judge(judge_url, items).results
    assert all(r.verdict == "correct" for r in first)
    assert sum(not r.cached for r in first) == 1  # identical judged answers inside a chunk: judged once
    second = judge(judge_url, items).results
    assert all(r.cached and r.verdict == "correct" and r.reward == 1.0 for r in second)


def test_malformed_items_are_rejected_with_the_field_named(judge_url: str) -> None:
    items = [
        {"kind": "math", "response": unique(r"\boxed{2}"), "gold": "2"},
        {"kind": "math", "response": "x"},
        {"kind": "chemistry", "response": "x"},
        {"kind": "math", "response": "x", "gold": "1", "timeout_s": -1},
        "not an object",
    ]
    results = judge(judge_url, items).results
    assert results[0].status == "scored"
    assert [r.status for r in results[1:]] == ["rejected"] * 4
    assert "items[1].math.gold" in (results[1].detail or "") or "items[1].gold" in (results[1].detail or "")
    assert "kind" in (results[2].detail or "") or "tag" in (results[2].detail or "")
    assert "timeout_s" in (results[3].detail or "")
    assert all(r.reward is None and r.verdict == "invalid_item" for r in results[1:])


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 422, "JSON"),
        (b'{"items": []}', 422, "items"),
        (b'{"items": "x"}', 422, "items"),
        (b'{"items": [{"kind": "math", "response": "", "gold": "1"}], "deadline_s": -1}', 422, "deadline_s"),
        (b'{"items": [{"kind": "math", "response": "", "gold": "1"}], "reward_scheme": "best"}', 422, "reward_scheme"),
        (b'{"items": [{"kind": "math", "response": "", "gold": "1"}], "surprise": 1}', 422, "surprise"),
    ],
)
def test_bad_bodies_get_a_4xx_naming_the_problem(judge_url: str, body: bytes, status: int, message: str) -> None:
    response = httpx.post(f"{judge_url}/v1/judge", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert message in response.json()["detail"]


def test_oversized_body_is_413(make_gateway) -> None:
    small = make_gateway(max_body_bytes=2048)
    body = {"items": [{"kind": "math", "response": "x" * 4096, "gold": "1"}]}
    response = httpx.post(f"{small.url}/v1/judge", json=body)
    assert response.status_code == 413
    assert "2048" in response.json()["detail"]


def test_too_many_items_is_413(make_gateway) -> None:
    small = make_gateway(max_batch_items=3)
    body = {"items": [{"kind": "math", "response": "x", "gold": "1"}] * 4}
    response = httpx.post(f"{small.url}/v1/judge", json=body)
    assert response.status_code == 413
    assert "limit is 3" in response.json()["detail"]


def test_deadline_leaves_slow_items_unscored(judge_url: str) -> None:
    items = [
        {"kind": "math", "id": "slow", "response": POWER_TOWER + f"% {uuid.uuid4().hex}", "gold": "2", "timeout_s": 5},
    ]
    started = time.monotonic()
    batch = judge(judge_url, items, deadline_s=0.5)
    assert time.monotonic() - started < 4
    assert batch.done
    assert (batch.results[0].status, batch.results[0].verdict, batch.results[0].reward) == (
        "unscored",
        "deadline",
        None,
    )


def test_async_batch_long_poll(judge_url: str) -> None:
    items = [{"kind": "math", "response": unique(rf"\boxed{{{i}}}"), "gold": str(i)} for i in range(40)]
    accepted = httpx.post(f"{judge_url}/v1/batches", json={"items": items})
    assert accepted.status_code == 202
    batch_id = accepted.json()["batch_id"]
    polled = httpx.get(f"{judge_url}/v1/batches/{batch_id}", params={"wait_s": 30}, timeout=40)
    batch = BatchResult.model_validate_json(polled.content)
    assert batch.done and batch.completed == batch.total == 40
    assert [r.index for r in batch.results] == list(range(40))
    assert all(r.verdict == "correct" for r in batch.results)


def test_unknown_batch_is_404(judge_url: str) -> None:
    response = httpx.get(f"{judge_url}/v1/batches/{uuid.uuid4().hex}")
    assert response.status_code == 404
    assert "does not exist" in response.json()["detail"]


def test_idempotency_key_judges_once(judge_url: str, redis: Redis) -> None:
    def judged() -> int:
        return sum(int(v) for k, v in redis.hgetall("rljudge:stats").items() if k.startswith(b"items|"))

    before = judged()
    key = uuid.uuid4().hex
    body = {"items": [{"kind": "math", "response": unique(r"\boxed{1}"), "gold": "1"}]}
    first = httpx.post(f"{judge_url}/v1/batches", json=body, headers={"Idempotency-Key": key}).json()
    second = httpx.post(f"{judge_url}/v1/batches", json=body, headers={"Idempotency-Key": key}).json()
    assert first["batch_id"] == second["batch_id"]
    done = httpx.get(f"{judge_url}/v1/batches/{first['batch_id']}", params={"wait_s": 30}, timeout=40).json()
    assert done["done"] and done["completed"] == 1
    assert judged() - before == 1


def test_health_ready_metrics_docs(judge_url: str) -> None:
    assert httpx.get(f"{judge_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{judge_url}/readyz")
    assert ready.status_code == 200 and ready.json()["workers"]["idle"] + ready.json()["workers"]["busy"] >= 2
    judge(judge_url, [{"kind": "math", "response": unique(r"\boxed{1}"), "gold": "1"}])
    text = httpx.get(f"{judge_url}/metrics").text
    for name in (
        'rljudge_http_requests_total{method="POST",route="/v1/judge",status="200"}',
        "rljudge_queue_depth{",
        'rljudge_judged_items_total{kind="math",status="scored",verdict="correct"}',
        'rljudge_judge_seconds_bucket{kind="math",le="+Inf"}',
        "rljudge_queue_wait_seconds_count",
    ):
        assert name in text, name
    schema = httpx.get(f"{judge_url}/openapi.json").json()
    assert "MathItem" in schema["components"]["schemas"]
    assert httpx.get(f"{judge_url}/docs").status_code == 200


def test_readyz_without_workers_is_503(make_gateway, redis_url: str) -> None:
    lonely = make_gateway(redis_url=redis_url.rsplit("/", 1)[0] + "/5")
    response = httpx.get(f"{lonely.url}/readyz")
    assert response.status_code == 503
    assert "no judge workers" in response.json()["detail"]


def test_full_queue_answers_429_with_retry_after(make_gateway, redis_url: str) -> None:
    # database 6 has no workers, so its queue only grows
    unserved: ThreadedGateway = make_gateway(redis_url=redis_url.rsplit("/", 1)[0] + "/6", max_queue_depth=1)
    body = {"items": [{"kind": "math", "response": "x", "gold": "1"}]}
    assert httpx.post(f"{unserved.url}/v1/batches", json=body).status_code == 202
    refused = httpx.post(f"{unserved.url}/v1/batches", json=body)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "2"
    assert "retry later" in refused.json()["detail"]


def test_redis_down_is_503_with_retry_after(make_gateway) -> None:
    from rljudge_cli.stack import free_port

    nowhere = make_gateway(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    body = {"items": [{"kind": "math", "response": "x", "gold": "1"}]}
    response = httpx.post(f"{nowhere.url}/v1/judge", json=body)
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "Redis" in response.json()["detail"]


async def test_a_result_announced_while_the_gateway_reads_wakes_it_at_once(redis_url: str) -> None:
    """The worker's result lands and is announced while the waiter's read is in flight (the read
    sees no result): the announcement must still wake it, not the slow safety re-check."""
    from redis import Redis as SyncRedis
    from redis.asyncio import Redis as AsyncRedis

    from rljudge_service import keys
    from rljudge_service.batches import Batch, BatchService
    from rljudge_service.notifier import SAFETY_RECHECK_S, Notifier
    from rljudge_service.settings import Settings

    redis = AsyncRedis.from_url(redis_url)
    notifier = Notifier(redis)
    await notifier.start()
    service = BatchService(redis, SyncRedis.from_url(redis_url), notifier, Settings(redis_url=redis_url))
    batch = Batch(uuid.uuid4().hex, total=1, deadline=time.time() + 60)
    await redis.hset(keys.batch_meta(batch.batch_id), mapping={"total": 1, "deadline": batch.deadline})
    pipeline = redis.pipeline
    reads = 0

    def racing_pipeline(transaction: bool = True) -> Any:
        pipe = pipeline(transaction=transaction)
        execute = pipe.execute

        async def read_then_announce(raise_on_error: bool = True) -> list[Any]:
            nonlocal reads
            reads += 1
            stale = await execute(raise_on_error)
            if reads == 1:  # the worker writes and announces right after this read
                await redis.hset(keys.batch_results(batch.batch_id), "0", b"{}")
                await redis.publish(keys.batch_events(batch.batch_id), b"1")
                (event,) = notifier._waiters[batch.batch_id]
                await asyncio.wait_for(event.wait(), 5)  # delivered before the read "returns"
            return stale

        pipe.execute = read_then_announce  # type: ignore[method-assign]
        return pipe

    service.redis.pipeline = racing_pipeline  # type: ignore[method-assign]
    try:
        started = time.monotonic()
        results = await service.wait(batch, until=time.time() + 10)
        assert time.monotonic() - started < SAFETY_RECHECK_S / 2
        assert results is not None and list(results) == [b"0"]
    finally:
        await notifier.stop()
        await redis.delete(keys.batch_meta(batch.batch_id), keys.batch_results(batch.batch_id))
        await redis.aclose()
