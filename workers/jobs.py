"""The RQ job: judge one chunk of a batch and write each item's final result to Redis.

A chunk is ``{"batch_id", "deadline", "reward_scheme", "items": [{"index", "id", "item"}, ...]}``.
For every item the job writes exactly one result with ``HSETNX`` (the first final result wins, so
a chunk re-run after a worker died, or a deadline the gateway already enforced, never produces a
second one) and announces it on the batch's pub/sub channel.

Order of work: items that already have a result are skipped (re-runs); items past the deadline are
``unscored``; format errors and missing programs are decided without a judge; the verdict cache is
read for the rest in one round trip; identical judged inputs inside the chunk are judged once.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import orjson
from pebble import ProcessExpired
from redis import Redis
from rq import get_current_job

from rljudge import ItemResult
from rljudge_service import keys

from . import lease, math_judge, pools
from .rewards import compute_reward, think_format_error
from .settings import WorkerSettings, get_settings

log = logging.getLogger("rljudge.workers.jobs")

#: Bumped whenever judging semantics change, so old cache entries stop matching.
JUDGE_VERSION = "1"


def judge_chunk(chunk: dict[str, Any]) -> dict[str, int]:
    """RQ entry point (enqueued by the gateway as ``rljudge_workers.jobs.judge_chunk``)."""
    job = get_current_job()
    if job is None:  # called directly (tests, tools)
        return ChunkJudge(Redis.from_url(get_settings().redis_url), chunk, get_settings()).run()
    with lease.held(job.connection, job.id, get_settings().lease_ttl_s):
        return ChunkJudge(job.connection, chunk, get_settings()).run()


def give_up(redis: Redis, chunk: dict[str, Any], reason: str) -> dict[str, int]:
    """Give every unfinished item of ``chunk`` an ``infra_failed`` result (the reaper's last resort)."""
    judge = ChunkJudge(redis, chunk, get_settings())
    for entry in judge._unresolved(judge.entries):
        judge._write(entry, {"status": "infra_failed", "verdict": "judge_error", "detail": reason})
    return judge.counts


class ChunkJudge:
    def __init__(self, redis: Redis, chunk: dict[str, Any], settings: WorkerSettings) -> None:
        self.redis = redis
        self.settings = settings
        self.chunk = chunk
        self.batch_id: str = chunk["batch_id"]
        self.deadline: float = float(chunk["deadline"])
        self.scheme: str = chunk.get("reward_scheme", "binary")
        self.entries: list[dict[str, Any]] = chunk["items"]
        self.results_ttl = int(chunk.get("results_ttl", 3600))
        self.counts = {"scored": 0, "cached": 0, "unscored": 0, "rejected": 0, "infra_failed": 0, "skipped": 0}

    # ------------------------------------------------------------------ driver

    def run(self) -> dict[str, int]:
        kind = self.entries[0]["item"]["kind"] if self.entries else "math"
        if "enqueued" in self.chunk:
            self._observe("wait", kind, max(0.0, time.time() - float(self.chunk["enqueued"])))
        pending = self._unresolved(self.entries)
        if time.time() >= self.deadline:
            self._finish_unscored(pending)
            return self.counts

        tasks: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
        for entry in pending:
            decided, task = self._prepare(entry)
            if decided is not None:
                self._write(entry, decided)
            elif task is not None:
                tasks.setdefault(task["key"], []).append((entry, task))

        hits = self._cache_get(list(tasks))
        for key, judgement in hits.items():
            for entry, _task in tasks.pop(key):
                self._write(entry, judgement, cached=True)

        for key, group in tasks.items():
            if time.time() >= self.deadline:
                self._finish_unscored([entry for entry, _ in group])
                continue
            started = time.perf_counter()
            judgement = self._judge(group[0][1])
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            self._observe("judge", group[0][1]["kind"], elapsed_ms / 1000.0)
            if judgement.get("status", "scored") == "scored" and judgement["verdict"] != "time_limit":
                self._cache_put(key, judgement)
            first, *duplicates = group
            self._write(first[0], judgement, elapsed_ms=elapsed_ms)
            for entry, _task in duplicates:  # the same judged input: shares the verdict, like a cache hit
                self._write(entry, judgement, cached=True)
        return self.counts

    # ------------------------------------------------------------------ preparing

    def _prepare(self, entry: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """Either a judgement decided without a judge, or a task ``{"key", "kind", ...}`` to judge."""
        item = entry["item"]
        kind = item["kind"]
        text = item.get("response")
        if item.get("require_think") and text is not None:
            reason = think_format_error(text)
            if reason is not None:
                return {"verdict": "format_error", "format_error": reason, "detail": reason}, None
        if kind == "math":
            source = math_judge.answer_source(text or "", item.get("strip_think", True))
            gold = math_judge.gold_source(item["gold"])
            key = _digest("math", math_judge.GRADER, source, gold)
            return None, {"key": key, "kind": "math", "source": source, "gold": gold, "timeout": item["timeout_s"]}
        return self._prepare_code(item)

    def _prepare_code(self, item: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        from rljudge_sandbox import extract_program

        program = item.get("code")
        if program is None:
            program = extract_program(item["response"], item.get("strip_think", True))
            if program is None:
                return {"verdict": "no_code", "detail": "no fenced code block in the response"}, None
        limits = item.get("limits")
        if item.get("problem") is not None:
            stored = self.redis.get(keys.problem(item["problem"]))
            if stored is None:
                return _rejected(f"problem {item['problem']!r} is not registered (PUT /v1/problems/{{id}})"), None
            problem = orjson.loads(stored)
            suite, suite_hash = problem["tests"], problem["hash"]
            limits = limits or problem.get("limits")
        else:
            suite = item["tests"]
            suite_hash = _digest("suite", orjson.dumps(suite, option=orjson.OPT_SORT_KEYS).decode())
        from rljudge import Limits

        limits = Limits.model_validate(limits or {}).model_dump()
        mode = item.get("mode", "all")
        key = _digest("code", "sandbox", program, suite_hash, orjson.dumps(limits).decode(), mode)
        return None, {"key": key, "kind": "code", "program": program, "suite": suite, "limits": limits, "mode": mode}

    # ------------------------------------------------------------------ judging

    def _judge(self, task: dict[str, Any]) -> dict[str, Any]:
        if task["kind"] == "math":
            return self._judge_math(task)
        judgement = pools.code_judge().judge(task["program"], task["suite"], task["limits"], task["mode"])
        judgement["grader"] = "rljudge-sandbox firejail"
        if judgement["verdict"] == "sandbox_error":
            judgement["status"] = "infra_failed"
        return judgement

    def _judge_math(self, task: dict[str, Any]) -> dict[str, Any]:
        future = pools.math_pool().schedule(
            math_judge.verify_answer, args=(task["source"], task["gold"]), timeout=task["timeout"]
        )
        try:
            judgement = future.result()
        except FutureTimeout:
            judgement = {"verdict": "time_limit", "detail": f"math-verify ran over {task['timeout']} s; killed"}
        except ValueError as exc:
            judgement = _rejected(str(exc))
        except ProcessExpired as exc:
            judgement = {"status": "infra_failed", "verdict": "judge_error", "detail": f"judge process died: {exc}"}
        except Exception as exc:  # math-verify raised: the judge failed, not the model
            log.exception("math-verify raised")
            judgement = {"status": "infra_failed", "verdict": "judge_error", "detail": f"{type(exc).__name__}: {exc}"}
        judgement["grader"] = math_judge.GRADER
        return judgement

    # ------------------------------------------------------------------ Redis I/O

    def _unresolved(self, entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        entries = list(entries)
        fields = [str(entry["index"]) for entry in entries]
        present = self.redis.hmget(keys.batch_results(self.batch_id), fields) if fields else []
        todo = [entry for entry, value in zip(entries, present, strict=True) if value is None]
        self.counts["skipped"] += len(entries) - len(todo)
        return todo

    def _cache_get(self, digests: list[str]) -> dict[str, dict[str, Any]]:
        if not digests or not self.settings.cache_enabled:
            return {}
        values = self.redis.mget([keys.verdict_cache(d) for d in digests])
        return {d: orjson.loads(v) for d, v in zip(digests, values, strict=True) if v is not None}

    def _cache_put(self, digest: str, judgement: dict[str, Any]) -> None:
        if self.settings.cache_enabled:
            self.redis.set(keys.verdict_cache(digest), orjson.dumps(judgement), ex=self.settings.cache_ttl_s)

    def _finish_unscored(self, entries: Iterable[dict[str, Any]]) -> None:
        for entry in entries:
            self._write(entry, {"status": "unscored", "verdict": "deadline", "detail": "batch deadline passed"})

    def _write(
        self, entry: dict[str, Any], judgement: dict[str, Any], *, cached: bool = False, elapsed_ms: float = 0.0
    ) -> None:
        status = judgement.get("status", "scored")
        item = entry["item"]
        reward = compute_reward(self.scheme, judgement) if status == "scored" else None
        result = ItemResult(
            id=entry["id"],
            index=entry["index"],
            kind=item["kind"],
            status=status,
            reward=reward,
            verdict=judgement.get("verdict"),
            cached=cached,
            elapsed_ms=round(elapsed_ms, 3),
            detail=judgement.get("detail"),
            passed=judgement.get("passed"),
            total=judgement.get("total"),
            tests=judgement.get("tests"),
            grader=judgement.get("grader"),
        )
        pipe = self.redis.pipeline(transaction=False)
        pipe.hsetnx(keys.batch_results(self.batch_id), str(entry["index"]), result.model_dump_json(exclude_none=True))
        pipe.expire(keys.batch_results(self.batch_id), self.results_ttl)
        pipe.publish(keys.batch_events(self.batch_id), b"1")
        written = pipe.execute()[0]
        if written:
            self.counts[status] += 1
            stats = self.redis.pipeline(transaction=False)
            stats.hincrby(keys.STATS, keys.stat_items(item["kind"], status, result.verdict or "none"), 1)
            if cached:
                self.counts["cached"] += 1
                stats.hincrby(keys.STATS, keys.stat_cache_hits(item["kind"]), 1)
            stats.execute()

    def _observe(self, histogram: str, kind: str, seconds: float) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for field, amount in keys.stat_time(histogram, kind, seconds):
            pipe.hincrbyfloat(keys.STATS, field, amount)
        pipe.execute()


def _digest(*parts: str) -> str:
    h = hashlib.sha256(JUDGE_VERSION.encode())
    for part in parts:
        h.update(b"\x00")
        h.update(part.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def _rejected(detail: str) -> dict[str, Any]:
    return {"status": "rejected", "verdict": "invalid_item", "detail": detail}
