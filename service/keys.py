"""Redis key layout and queue names: the contract between the gateway and the workers.

The gateway never imports worker code: it enqueues ``JUDGE_CHUNK`` by dotted path, and both sides
read and write batch state under the keys below. Everything expires (see the TTLs in settings).
"""

from __future__ import annotations

PREFIX = "rljudge"

#: RQ queues, one lane per kind so slow code never starves fast math.
QUEUE_MATH = "rljudge-math"
QUEUE_CODE = "rljudge-code"
QUEUES = (QUEUE_MATH, QUEUE_CODE)

#: The worker's entry point, enqueued by dotted path.
JUDGE_CHUNK = "rljudge_workers.jobs.judge_chunk"

#: Pub/sub pattern the gateway listens on; a worker publishes after writing results.
EVENTS_PATTERN = f"{PREFIX}:events:*"


def batch_meta(batch_id: str) -> str:
    """Hash: total, deadline, reward_scheme, created, ids (JSON list)."""
    return f"{PREFIX}:batch:{batch_id}"


def batch_results(batch_id: str) -> str:
    """Hash: item index -> result JSON. Written with HSETNX: the first final result wins."""
    return f"{PREFIX}:batch:{batch_id}:results"


def chunk_payload(batch_id: str, number: int) -> str:
    """String: one large chunk's JSON (``{"batch_id", "deadline", "reward_scheme", "items": [...]}``).
    The queued RQ job carries only a reference to it (see ``jobs.load_chunk``): the items are encoded
    once with orjson, never repr'd, zlib-compressed and JSON-encoded again by RQ (a small chunk
    travels inside its job). The worker deletes
    it once every item of the chunk has a result; a chunk whose worker died keeps it for the re-run."""
    return f"{PREFIX}:batch:{batch_id}:chunk:{number}"


def batch_events(batch_id: str) -> str:
    """Pub/sub channel announcing new results of one batch."""
    return f"{PREFIX}:events:{batch_id}"


def batch_id_from_channel(channel: str) -> str:
    return channel.rsplit(":", 1)[-1]


def idempotency(key_hash: str) -> str:
    """String: idempotency key hash -> batch id."""
    return f"{PREFIX}:idem:{key_hash}"


def verdict_cache(digest: str) -> str:
    """String: content hash of (kind, judged input, tests, limits, grader) -> judgement JSON."""
    return f"{PREFIX}:cache:{digest}"


def problem(problem_id: str) -> str:
    """String: a registered test suite, JSON ``{"hash", "tests", "limits"}``."""
    return f"{PREFIX}:problem:{problem_id}"


# ---------------------------------------------------------------------------- fleet statistics
# Workers on any host add to one Redis hash; the gateway renders it on /metrics, so the fleet's
# verdict counters and judging-time histograms are scraped from one place.

STATS = f"{PREFIX}:stats"

#: Upper bounds (seconds) of the queue-wait and judge-time histograms. Workers increment the
#: first bucket that holds a value (non-cumulative); the gateway accumulates when rendering.
TIME_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, float("inf"))


def stat_items(kind: str, status: str, verdict: str) -> str:
    return f"items|{kind}|{status}|{verdict}"


def stat_cache_hits(kind: str) -> str:
    return f"cache_hits|{kind}"


def stat_time(histogram: str, kind: str, seconds: float) -> list[tuple[str, float]]:
    """The fields to increment for one observation of ``histogram`` ("judge" or "wait")."""
    bound = next(b for b in TIME_BUCKETS if seconds <= b)
    return [
        (f"{histogram}_bucket|{kind}|{bound}", 1),
        (f"{histogram}_count|{kind}", 1),
        (f"{histogram}_sum|{kind}", seconds),
    ]


def lease(job_id: str) -> str:
    """String with a short TTL: present while a live worker runs chunk ``job_id``."""
    return f"{PREFIX}:lease:{job_id}"


def reap_lock(job_id: str) -> str:
    """String: held by the one reaper that re-queues a dead chunk."""
    return f"{PREFIX}:reap:{job_id}"


def rate(caller: str, window: int) -> str:
    """Counter: items ``caller`` submitted in minute ``window`` (epoch // 60)."""
    return f"{PREFIX}:rate:{caller}:{window}"
