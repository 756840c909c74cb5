"""Wake waiting requests when workers publish results, without polling Redis.

One pub/sub connection per gateway process listens to every batch's channel; a request waiting
for a batch registers an ``asyncio.Event`` and sleeps on it. Waiters also re-check Redis at a slow
safety interval, so a lost message (Redis restarted) delays an answer by at most that interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterator

from redis.asyncio import Redis
from redis.exceptions import RedisError

from . import keys

log = logging.getLogger("rljudge.service.notifier")

#: Longest a waiter sleeps without re-reading Redis (a safety net, not the wake-up path).
SAFETY_RECHECK_S = 1.0


class Notifier:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="rljudge-notifier")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @contextlib.contextmanager
    def watch(self, batch_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever a result of ``batch_id`` is published, for the ``with`` block."""
        event = asyncio.Event()
        self._waiters[batch_id].add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(batch_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[batch_id]

    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.psubscribe(keys.EVENTS_PATTERN)
                    backoff = 0.1
                    async for message in pubsub.listen():
                        if message["type"] != "pmessage":
                            continue
                        channel = message["channel"]
                        if isinstance(channel, bytes):
                            channel = channel.decode()
                        for event in self._waiters.get(keys.batch_id_from_channel(channel), ()):
                            event.set()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("pub/sub connection lost (%s); reconnecting in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
