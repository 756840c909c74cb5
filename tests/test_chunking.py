"""How a batch is cut into queued chunks: sized by cost, spread over the live workers, balanced."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from redis import Redis as SyncRedis
from redis.asyncio import Redis as AsyncRedis
from rq import Queue
from rq.serializers import JSONSerializer
from rq.worker_registration import WORKERS_BY_QUEUE_KEY

from rljudge import BatchRequest
from rljudge_service import keys
from rljudge_service.batches import UNKNOWN_FLEET, BatchService, split
from rljudge_service.notifier import Notifier
from rljudge_service.settings import Settings
from rljudge_workers.jobs import load_chunk


def test_chunks_fill_every_worker_evenly() -> None:
    assert split(72, 2, 16, 64) == [18] * 4  # 5 chunks of 16 would leave one worker a third alone
    assert split(1024, 2, 16, 64) == [64] * 16
    defaults = Settings()
    # a GRPO step's ~70 distinct answers: a chunk for each of 2 workers
    assert split(72, 2, defaults.math_chunk_items, defaults.math_chunk_max_items) == [36] * 2
    assert split(1024, 32, 16, 64) == [16] * 64  # a fleet: every worker gets chunks, not just 16 of them
    assert split(64, 2, 16, 64) == [16] * 4
    assert split(20, 2, 16, 64) == [10, 10]  # fewer items than a chunk each worker: halves
    assert split(3, 2, 2, 8) == [2, 1]
    assert split(1, 8, 16, 64) == [1]
    assert split(0, 2, 16, 64) == []
    assert split(5, 0, 2, 8) == split(5, 2, 2, 8) == [3, 2]  # no worker registered yet: cut as for two
    assert split(3, 2, 1, 1) == [1, 1, 1]  # never an empty chunk to round up to the fleet
    assert len(split(8192, 3, 16, 64)) == 129 and max(split(8192, 3, 16, 64)) == 64


@given(
    total=st.integers(0, 20_000),
    workers=st.integers(0, 64),
    smallest=st.integers(1, 64),
    extra=st.integers(0, 256),
)
def test_split_keeps_every_item_within_the_sizes(total: int, workers: int, smallest: int, extra: int) -> None:
    largest = smallest + extra
    lengths = split(total, workers, smallest, largest)
    assert sum(lengths) == total
    if lengths:
        assert min(lengths) >= 1
        assert max(lengths) - min(lengths) <= 1
        assert max(lengths) <= largest
        fleet = workers or UNKNOWN_FLEET
        count = len(lengths)
        if count > fleet and count % fleet:  # only when neither rounding fits the sizes and the items
            fewer = count - count % fleet
            assert -(-total // fewer) > largest and fewer + fleet > total


async def test_the_gateway_cuts_batches_for_the_registered_fleet(redis_url: str) -> None:
    """The gateway's side, on a Redis database no worker reads: the registered workers of the math
    queue (RQ's registry, as ``rq worker`` writes it) decide how many chunks a batch becomes; with
    none registered yet, it is cut as for two."""
    url = redis_url.rsplit("/", 1)[0] + "/15"
    redis, sync = AsyncRedis.from_url(url), SyncRedis.from_url(url)
    service = BatchService(redis, sync, Notifier(redis), Settings(redis_url=url, math_chunk_items=16))
    queue = Queue(keys.QUEUE_MATH, connection=sync, serializer=JSONSerializer)
    raw = [{"kind": "math", "response": f"\\boxed{{{k}}}", "gold": str(k)} for k in range(256)]
    try:
        for fleet, chunks in ((1, 4), (8, 16), (0, 8)):
            if fleet:
                sync.sadd(WORKERS_BY_QUEUE_KEY % keys.QUEUE_MATH, *[f"rq:worker:w{i}" for i in range(fleet)])
            await service.submit(BatchRequest.model_validate({"items": raw}), raw, None)
            jobs = queue.get_jobs()
            assert len(jobs) == chunks
            sizes = [len((load_chunk(sync, job.args[0]) or {})["items"]) for job in jobs]
            assert sorted(sizes) == [256 // chunks] * chunks
            sync.flushdb()
    finally:
        sync.flushdb()
        await redis.aclose()
        sync.close()
