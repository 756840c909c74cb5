"""A worker's warm shutdown is not held up by RQ's pub/sub thread."""

from __future__ import annotations

import time

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from rljudge_workers.main import JudgeWorker

from .conftest import wait_until


def test_unsubscribing_does_not_wait_for_the_pubsub_thread(redis: Redis) -> None:
    """The interleaving that held a stopping worker for a minute in the fleet test: the pub/sub thread
    has read the unsubscribe reply before it was told to stop, so it waits (RQ's ``sleep_time``, 60 s)
    for a subscription. RQ's ``unsubscribe`` would wait that long for it; the worker's returns."""
    worker = JudgeWorker([Queue("shutdown-test", connection=redis, serializer=JSONSerializer)], connection=redis)
    worker.subscribe()
    assert worker.pubsub is not None and worker.pubsub_thread is not None
    wait_until(lambda: worker.pubsub.subscribed, 5, "the worker's subscription")
    worker.pubsub.unsubscribe()  # the thread reads the reply and is left waiting for a subscription
    wait_until(lambda: not worker.pubsub.subscribed, 5, "the unsubscribe reply to be read")
    started = time.monotonic()
    worker.unsubscribe()
    assert time.monotonic() - started < 10, "unsubscribe waited for the pub/sub thread's 60 s"
