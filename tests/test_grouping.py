"""Identical judged inputs in one batch: the gateway queues each once, its copies share the verdict."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st
from redis import Redis

from rljudge import ItemResult
from rljudge_service import keys
from rljudge_service.batches import group_identical_math, judged_key
from rljudge_service.results import Written, results_of, stat_counts, stat_fields
from rljudge_workers import pools
from rljudge_workers.jobs import ChunkJudge, load_chunk
from rljudge_workers.settings import WorkerSettings

from .conftest import judge, metric_total, wait_until


def entry(index: int, response: str, gold: str = "4", **item: Any) -> dict[str, Any]:
    return {
        "index": index,
        "id": f"r{index}",
        "item": {"kind": "math", "response": response, "gold": gold, "timeout_s": 5.0, "strip_think": True, **item},
    }


def grouped(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return group_identical_math(entries, {e["index"]: judged_key(e["item"]) for e in entries})


def test_items_with_the_same_final_answer_are_queued_once() -> None:
    entries = [
        entry(0, "First I add: \\boxed{4}"),
        entry(1, "Another way entirely, still \\boxed{ 4 }"),  # same judged input once stripped
        entry(2, "Wrong: \\boxed{5}"),
        entry(3, "<think>maybe \\boxed{5}</think> so \\boxed{4}"),  # judged after </think>: 4
        entry(4, "\\boxed{4}", gold="5"),  # another gold: another input
        entry(5, "\\boxed{4}", timeout_s=1.0),  # another time limit: judged on its own
    ]
    queued = grouped(entries)
    assert [e["index"] for e in queued] == [0, 2, 4, 5]
    assert queued[0]["copies"] == [[1, "r1"], [3, "r3"]]
    assert all("copies" not in e for e in queued[1:])


def test_items_failing_the_think_check_are_never_grouped() -> None:
    entries = [entry(i, "no tags \\boxed{4}", require_think=True) for i in range(3)]
    assert [e["index"] for e in grouped(entries)] == [0, 1, 2]


def test_copies_get_their_own_results(judge_url: str) -> None:
    nonce = uuid.uuid4().hex  # a gold no cache has seen
    gold = f"{int(nonce[:8], 16)}"
    items = [
        {"kind": "math", "id": f"r{k}", "response": f"Attempt {k}: the answer is \\boxed{{{gold}}}", "gold": gold}
        for k in range(6)
    ] + [{"kind": "math", "id": "wrong", "response": "\\boxed{0}", "gold": gold}]
    submitted = metric_total(judge_url, "rljudge_items_submitted_total", kind="math")
    results = judge(judge_url, items).results
    assert metric_total(judge_url, "rljudge_items_submitted_total", kind="math") == submitted + 7  # copies count
    assert [(r.id, r.index) for r in results] == [(item["id"], i) for i, item in enumerate(items)]
    assert [r.verdict for r in results] == ["correct"] * 6 + ["wrong_answer"]
    assert [r.cached for r in results[:6]] == [False] + [True] * 5  # one judged, five shared its verdict
    assert all(r.reward == 1.0 for r in results[:6]) and results[6].reward == 0.0


def test_a_rerun_chunk_judges_an_entry_again_when_a_copy_lacks_its_result(redis: Redis) -> None:
    batch_id = uuid.uuid4().hex
    first = {**entry(0, "\\boxed{4}"), "copies": [[1, "r1"], [2, "r2"]]}
    alone = entry(3, "\\boxed{5}")
    chunk = {"batch_id": batch_id, "deadline": 1e12, "reward_scheme": "binary", "items": [first, alone]}
    # a worker died after writing the first entry's own result and one copy's, and the other entry's
    redis.hset(keys.batch_results(batch_id), mapping={"0": "{}", "1": "{}", "3": "{}"})
    judge_ = ChunkJudge(redis, chunk, WorkerSettings(redis_url="redis://unused"))
    assert judge_._unresolved(chunk["items"]) == [first]
    assert judge_.counts["skipped"] == 1


def test_results_already_written_are_kept_and_not_counted_again(redis: Redis) -> None:
    """The first final result wins: a result the gateway wrote at the deadline (or an earlier run of
    the chunk) stays as it is, and only the results written now are counted, in the fleet's stats too."""
    batch_id = uuid.uuid4().hex
    first = {**entry(0, "\\boxed{4}"), "copies": [[1, "r1"], [2, "r2"]]}
    chunk = {"batch_id": batch_id, "deadline": 1e12, "reward_scheme": "binary", "items": [first]}
    redis.hset(keys.batch_results(batch_id), "1", b'{"status": "unscored"}')
    before = redis.hmget(keys.STATS, [keys.stat_items("math", "scored", "correct"), keys.stat_cache_hits("math")])
    judge_ = ChunkJudge(redis, chunk, WorkerSettings(redis_url="redis://unused", cache_enabled=False))
    judge_._write(first, {"verdict": "correct", "detail": None, "grader": "test"})
    stored = redis.hgetall(keys.batch_results(batch_id))
    assert stored[b"1"] == b'{"status": "unscored"}'
    assert [orjson.loads(stored[field])["verdict"] for field in (b"0", b"2")] == ["correct", "correct"]
    assert judge_.counts["scored"] == 2 and judge_.counts["cached"] == 1  # copy 2; copy 1 was not written
    after = redis.hmget(keys.STATS, [keys.stat_items("math", "scored", "correct"), keys.stat_cache_hits("math")])
    assert [int(a or 0) - int(b or 0) for a, b in zip(after, before, strict=True)] == [2, 1]


def test_a_flush_of_results_with_different_verdicts_counts_each_under_its_own(redis: Redis) -> None:
    """Results are grouped by what they count before the one HSETNX_MANY call: each verdict, and
    the copies (cache hits) apart from the items judged, adds to its own counters."""
    batch_id = uuid.uuid4().hex
    right = {**entry(0, "\\boxed{4}"), "copies": [[1, "r1"], [2, "r2"]]}
    wrong = {**entry(3, "\\boxed{5}"), "copies": [[4, "r4"]]}
    chunk = {"batch_id": batch_id, "deadline": 1e12, "reward_scheme": "binary", "items": [right, wrong]}
    fields = [
        keys.stat_items("math", "scored", "correct"),
        keys.stat_items("math", "scored", "wrong_answer"),
        keys.stat_cache_hits("math"),
    ]
    before = redis.hmget(keys.STATS, fields)
    judge_ = ChunkJudge(redis, chunk, WorkerSettings(redis_url="redis://unused", cache_enabled=False))
    judge_._buffered = True
    judge_._write(wrong, {"verdict": "wrong_answer", "detail": None, "grader": "test"})
    judge_._write(right, {"verdict": "correct", "detail": None, "grader": "test"})
    judge_._flush()
    stored = redis.hgetall(keys.batch_results(batch_id))
    assert {int(k): orjson.loads(v)["verdict"] for k, v in stored.items()} == {
        0: "correct",
        1: "correct",
        2: "correct",
        3: "wrong_answer",
        4: "wrong_answer",
    }
    after = redis.hmget(keys.STATS, fields)
    assert [int(a or 0) - int(b or 0) for a, b in zip(after, before, strict=True)] == [3, 2, 3]
    assert judge_.counts["scored"] == 5 and judge_.counts["cached"] == 3


@given(
    results=st.lists(
        st.tuples(
            st.sampled_from(["math", "code"]),
            st.sampled_from(["scored", "rejected"]),
            st.sampled_from(["correct", "wrong_answer", "none"]),
            st.booleans(),
        ),
        max_size=30,
    )
)
def test_stat_counts_adds_one_per_result_to_each_of_its_counters(results: list[tuple[str, str, str, bool]]) -> None:
    written = [Written(str(i), b"{}", *fields) for i, fields in enumerate(results)]
    expected: dict[str, int] = {}
    for result in written:
        for stat in stat_fields(result).split():
            expected[stat] = expected.get(stat, 0) + 1
    assert stat_counts(written) == expected


def test_a_rerun_skips_what_is_written_and_deletes_its_stored_chunk(redis: Redis) -> None:
    """A re-run (attempt 2) of a chunk whose items all have results judges nothing, and the stored
    chunk goes once the run succeeded."""
    batch_id = uuid.uuid4().hex
    items = [entry(0, "\\boxed{4}"), entry(1, "\\boxed{5}")]
    chunk = {"batch_id": batch_id, "deadline": 1e12, "reward_scheme": "binary", "items": items, "attempt": 2}
    redis.hset(keys.batch_results(batch_id), mapping={"0": "{}", "1": "{}"})
    stored = keys.chunk_payload(batch_id, 0)
    redis.set(stored, orjson.dumps(chunk))
    counts = ChunkJudge(redis, chunk, WorkerSettings(redis_url="redis://unused")).run(delete=[stored])
    assert counts["skipped"] == 2 and counts["scored"] == 0
    assert redis.exists(stored) == 0


def test_a_worker_judges_again_what_the_cache_holds_malformed(redis: Redis) -> None:
    """A verdict-cache entry no worker wrote (not JSON, or without a verdict) is a miss: the item is
    judged, not failed."""
    from rljudge import ItemResult
    from rljudge_service import judged

    batch_id = uuid.uuid4().hex
    item = entry(0, f"so \\boxed{{{int(batch_id[:6], 16)}}}", gold=str(int(batch_id[:6], 16)))
    redis.set(keys.verdict_cache(judged.math_input(item["item"])[0]), b'{"detail": "no verdict"}')
    chunk = {"batch_id": batch_id, "deadline": 1e12, "reward_scheme": "binary", "items": [item]}
    try:
        counts = ChunkJudge(redis, chunk, WorkerSettings(redis_url="redis://unused")).run()
    finally:
        pools.shutdown()  # the judge process this test started
    assert counts["scored"] == 1 and counts["cached"] == 0
    result = ItemResult.model_validate_json(redis.hget(keys.batch_results(batch_id), "0") or b"")
    assert (result.verdict, result.cached) == ("correct", False)


def test_a_worker_reads_the_cache_unless_the_gateway_just_did(redis: Redis) -> None:
    """A chunk the gateway looked up (``cache_read``) and queued less than ``FRESH_LOOKUP_S`` ago is
    judged without reading the verdict cache again; one that waited longer, a re-run, or one the
    gateway did not look up reads it. The cache here holds a verdict no judge would give (the
    answer is right), so which way each chunk went shows in its result."""
    from rljudge_service import judged
    from rljudge_workers.jobs import FRESH_LOOKUP_S

    gold = str(int(uuid.uuid4().hex[:8], 16))  # a gold no cache has seen
    item = entry(0, f"so \\boxed{{{gold}}}", gold=gold)
    planted = {"verdict": "wrong_answer", "detail": None, "grader": judged.MATH_GRADER}
    # (the chunk's fields, how long before its run the gateway queued it, the result expected)
    cases = [
        ({"cache_read": True}, 0.0, ("correct", False)),
        ({"cache_read": True}, FRESH_LOOKUP_S + 1, ("wrong_answer", True)),
        ({"cache_read": True, "attempt": 2}, 0.0, ("wrong_answer", True)),
        ({}, 0.0, ("wrong_answer", True)),
    ]
    try:
        for extra, queued_ago, expected in cases:
            # planted again each time: a chunk that judges the item stores the right verdict
            redis.set(keys.verdict_cache(judged.math_input(item["item"])[0]), orjson.dumps(planted), ex=60)
            batch_id = uuid.uuid4().hex
            chunk = {"batch_id": batch_id, "deadline": 1e12, "reward_scheme": "binary", "items": [item], **extra}
            chunk["enqueued"] = time.time() - queued_ago
            ChunkJudge(redis, chunk, WorkerSettings(redis_url="redis://unused")).run()
            result = ItemResult.model_validate_json(redis.hget(keys.batch_results(batch_id), "0") or b"")
            assert (result.verdict, result.cached) == expected, extra
    finally:
        pools.shutdown()  # the judge process this test started


async def test_large_chunks_are_stored_once_and_small_ones_travel_inline(redis_url: str) -> None:
    """The gateway's side, on a Redis database no worker reads (the queued jobs stay as queued)."""
    from redis import Redis as SyncRedis
    from redis.asyncio import Redis as AsyncRedis
    from rq import Queue
    from rq.serializers import JSONSerializer

    from rljudge import BatchRequest
    from rljudge_service.batches import INLINE_CHUNK_BYTES, BatchService
    from rljudge_service.notifier import Notifier
    from rljudge_service.settings import Settings

    url = redis_url.rsplit("/", 1)[0] + "/15"
    redis, sync = AsyncRedis.from_url(url), SyncRedis.from_url(url)
    service = BatchService(redis, sync, Notifier(redis), Settings(redis_url=url))
    long_text = "Let us reason. " * (INLINE_CHUNK_BYTES // 8)
    try:
        for text, stored in ((f"{long_text} \\boxed{{1}}", True), ("\\boxed{1}", False)):
            raw = [{"kind": "math", "response": text, "gold": "1"}]
            batch = await service.submit(BatchRequest.model_validate({"items": raw}), raw, None)
            (job,) = Queue(keys.QUEUE_MATH, connection=sync, serializer=JSONSerializer).get_jobs()
            arg = job.args[0]
            assert ("payload" in arg) is stored
            assert bool(list(sync.scan_iter(match=f"rljudge:batch:{batch.batch_id}:chunk:*"))) is stored
            assert (load_chunk(sync, arg) or {}).get("items", [{}])[0].get("item", {}).get("response") == text
            sync.flushdb()
    finally:
        sync.flushdb()
        await redis.aclose()
        sync.close()


def test_stored_chunks_are_deleted_once_judged(judge_url: str, redis: Redis) -> None:
    long_text = "Let us reason. " * 2000  # ~30 KB a rollout: the chunk is stored, its job refers to it
    items = [{"kind": "math", "response": f"{long_text} so \\boxed{{{k}}}", "gold": str(k)} for k in range(4)]
    batch = judge(judge_url, items)
    assert [r.verdict for r in batch.results] == ["correct"] * 4
    pattern = f"rljudge:batch:{batch.batch_id}:chunk:*"
    wait_until(lambda: not list(redis.scan_iter(match=pattern)), 10, "the stored chunks to be deleted")


async def test_the_gateway_answers_cached_verdicts_without_queueing(redis_url: str) -> None:
    """The gateway's side, on a Redis database no worker reads: items whose judged input has a cached
    verdict get their results at submission (copies too, under the request's reward scheme, counted
    as cache hits); only the others are queued. With the cache off, everything is queued."""
    import orjson
    from redis import Redis as SyncRedis
    from redis.asyncio import Redis as AsyncRedis
    from rq import Queue
    from rq.serializers import JSONSerializer

    from rljudge import BatchRequest, ItemResult
    from rljudge_service import judged
    from rljudge_service.batches import BatchService
    from rljudge_service.notifier import Notifier
    from rljudge_service.settings import Settings

    url = redis_url.rsplit("/", 1)[0] + "/15"
    redis, sync = AsyncRedis.from_url(url), SyncRedis.from_url(url)
    queue = Queue(keys.QUEUE_MATH, connection=sync, serializer=JSONSerializer)
    raw = [{"kind": "math", "response": f"Try {k}: so \\boxed{{7}}", "gold": "7"} for k in range(3)]
    raw.append({"kind": "math", "response": "\\boxed{8}", "gold": "7"})
    cached = {"verdict": "correct", "detail": None, "grader": judged.MATH_GRADER}
    try:
        for cache_enabled, queued in ((True, [3]), (False, [0, 3])):
            sync.set(keys.verdict_cache(judged.math_input(raw[0])[0]), orjson.dumps(cached))
            service = BatchService(redis, sync, Notifier(redis), Settings(redis_url=url, cache_enabled=cache_enabled))
            request = BatchRequest.model_validate({"items": raw, "reward_scheme": "klear"})
            batch = await service.submit(request, raw, None)
            assert [e["index"] for job in queue.get_jobs() for e in job.args[0]["items"]] == queued
            # a worker does not read the cache again for what the gateway just looked up
            assert [job.args[0].get("cache_read", False) for job in queue.get_jobs()] == [cache_enabled]
            stored = sync.hgetall(keys.batch_results(batch.batch_id))
            results = sorted((ItemResult.model_validate_json(v) for v in stored.values()), key=lambda r: r.index)
            if cache_enabled:
                assert [(r.index, r.id, r.verdict, r.reward, r.cached) for r in results] == [
                    (k, str(k), "correct", 1.0, True) for k in range(3)
                ]
                assert all(r.elapsed_ms == 0 and r.grader == judged.MATH_GRADER for r in results)
                assert sync.hget(keys.STATS, keys.stat_cache_hits("math")) == b"3"
            else:
                assert results == [] and sync.hget(keys.STATS, keys.stat_cache_hits("math")) is None
            sync.flushdb()
        # an entry the workers never wrote (not JSON, not a judgement) is a miss, not a server error
        service = BatchService(redis, sync, Notifier(redis), Settings(redis_url=url))
        junk_values = [b"not json", b"[1]", b'{"detail": "no verdict"}', b'{"verdict": "bogus"}']
        junk_values.append(b'{"verdict": "correct", "passed": 1, "total": "x"}')  # fails the fraction reward
        for junk in junk_values:
            sync.set(keys.verdict_cache(judged.math_input(raw[0])[0]), junk)
            batch = await service.submit(BatchRequest.model_validate({"items": raw}), raw, None)
            assert [e["index"] for job in queue.get_jobs() for e in job.args[0]["items"]] == [0, 3]
            assert sync.hlen(keys.batch_results(batch.batch_id)) == 0
            sync.flushdb()
    finally:
        sync.flushdb()
        await redis.aclose()
        sync.close()


def test_a_revisited_prompt_is_answered_from_the_cache(judge_url: str) -> None:
    """A later epoch: new rollout texts with the same final answers get the verdicts judged before,
    from the gateway, without a chunk going through the queue."""
    gold = str(int(uuid.uuid4().hex[:8], 16))  # a gold no cache has seen
    answers = [gold, gold, "0", gold]

    def step(epoch: int) -> list[Any]:
        items = [
            {"kind": "math", "response": f"Epoch {epoch}, rollout {k}: \\boxed{{{answer}}}", "gold": gold}
            for k, answer in enumerate(answers)
        ]
        return judge(judge_url, items, reward_scheme="klear").results

    first = step(0)
    hits = metric_total(judge_url, "rljudge_cache_hits_total", kind="math")
    chunks = metric_total(judge_url, "rljudge_queue_wait_seconds_count", kind="math")  # one per chunk run
    again = step(1)
    assert [r.reward for r in first] == [r.reward for r in again] == [1.0, 1.0, -1.0, 1.0]
    assert [r.cached for r in first] == [False, True, False, True]  # copies share their first's verdict
    assert all(r.cached and r.elapsed_ms == 0 for r in again)
    assert metric_total(judge_url, "rljudge_cache_hits_total", kind="math") == hits + 4
    assert metric_total(judge_url, "rljudge_queue_wait_seconds_count", kind="math") == chunks  # no job queued


@given(
    ids=st.lists(st.text(max_size=12), min_size=1, max_size=5),
    judgement=st.sampled_from(
        [
            {"verdict": "correct", "grader": "math-verify"},
            {"verdict": "wrong_answer", "detail": 'said "5" \\ not 4', "grader": "math-verify"},
            {"status": "infra_failed", "verdict": "judge_error", "detail": "judge process died"},
            {
                "verdict": "wrong_answer",
                "passed": 1,
                "total": 2,
                "grader": "sandbox",
                "tests": [{"status": "passed", "time_ms": 1.5}, {"status": "wrong_answer", "detail": "got 3"}],
            },
        ]
    ),
    scheme=st.sampled_from(["binary", "fraction", "klear"]),
)
def test_a_copys_result_is_the_result_of_its_own_item(ids: list[str], judgement: dict[str, Any], scheme: str) -> None:
    """Copies' results are assembled from one encoding of the fields they share: each must read
    exactly as its own ``ItemResult`` would, with its id and index, cached and 0 ms."""
    first = {**entry(0, "\\boxed{4}"), "copies": [[i + 1, item_id] for i, item_id in enumerate(ids)]}
    written = results_of(first, dict(judgement), scheme, elapsed_ms=12.5)
    own = ItemResult.model_validate_json(written[0].payload)
    assert (own.id, own.index, own.cached, own.elapsed_ms) == ("r0", 0, False, 12.5)
    for (index, item_id), result in zip(first["copies"], written[1:], strict=True):
        expected = own.model_copy(update={"id": item_id, "index": index, "cached": True, "elapsed_ms": 0.0})
        assert result.field == str(index) and result.cached
        assert orjson.loads(result.payload) == expected.model_dump(mode="json", exclude_none=True)
        assert ItemResult.model_validate_json(result.payload) == expected
