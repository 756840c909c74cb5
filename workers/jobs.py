"""The RQ job: judge one chunk of a batch and write each item's final result to Redis.

A chunk is ``{"batch_id", "deadline", "reward_scheme", "items": [{"index", "id", "item", "copies"?},
...]}``, inside its job or, when large, stored by the gateway under ``keys.chunk_payload`` (the
job's argument then refers to it). An entry's ``copies`` (``[[index, id], ...]``) are the batch's
other items that the gateway found to have the same judged input: each gets the entry's verdict as
its own result.
For every item the job writes exactly one result with ``HSETNX`` semantics (the first final result
wins, so a chunk re-run after a worker died, or a deadline the gateway already enforced, never
produces a second one) and announces it on the batch's pub/sub channel.

Order of work: items that already have a result are skipped (re-runs); items past the deadline are
``unscored``; format errors and missing programs are decided without a judge; the verdict cache is
read for the rest in one round trip (not for math the gateway looked up just before: ``cache_read``);
identical judged inputs inside the chunk are judged once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import as_completed
from typing import Any

import orjson
from pebble import ProcessExpired
from redis import Redis
from rq import get_current_job

from rljudge import Limits
from rljudge.extract import think_format_error
from rljudge_sandbox import extract_program
from rljudge_service import judged, keys
from rljudge_service.results import Written, by_counters, cached_judgement, results_of, stat_fields

from . import math_judge, pools
from .settings import WorkerSettings, get_settings

log = logging.getLogger("rljudge.workers.jobs")

#: ``HSETNX`` of many fields in one command, counting what it wrote: ``KEYS[1]`` the results hash,
#: ``KEYS[2]`` the fleet's stats hash (``keys.STATS``); ``ARGV`` is groups of results that add to
#: the same counters: the counters' fields, space-separated (``results.stat_fields``), the number
#: of results n, then n field-value pairs. Returns, in ``ARGV``'s order, 1 for each field written
#: and 0 for one already there (left as it is, and not counted again). One call instead of a
#: pipelined HSETNX per result and a second round trip for the counters: less CPU in the worker, a
#: little more in Redis (``python -m loadtests.bench_writes`` measures both). Sent with EVAL, not
#: EVALSHA: Redis keeps the compiled script by its hash either way, and a restarted Redis (which
#: forgets its scripts) needs no reload round trip.
HSETNX_MANY = """
local written, i = {}, 1
while i <= #ARGV do
  local n, new = tonumber(ARGV[i + 1]), 0
  for j = i + 2, i + 2 * n, 2 do
    local w = redis.call('HSETNX', KEYS[1], ARGV[j], ARGV[j + 1])
    written[#written + 1] = w
    new = new + w
  end
  if new > 0 then
    for stat in string.gmatch(ARGV[i], '%S+') do redis.call('HINCRBY', KEYS[2], stat, new) end
  end
  i = i + 2 + 2 * n
end
return written
"""


#: A chunk whose items the gateway looked up in the verdict cache at most this long before a worker
#: took it is not looked up again (``ChunkJudge._looked_up_at_submission``).
FRESH_LOOKUP_S = 1.0


def load_chunk(redis: Redis, ref: dict[str, Any]) -> dict[str, Any] | None:
    """The chunk a job refers to: ``{"batch_id", "payload": key}`` names its stored JSON (see
    ``keys.chunk_payload``; None once it expired with its batch); a dict with ``items`` is the chunk
    itself. A re-queued job's ``attempt`` is carried over."""
    if "items" in ref:
        return ref
    stored = redis.get(ref["payload"])
    if stored is None:
        return None
    chunk: dict[str, Any] = orjson.loads(stored)
    if "attempt" in ref:
        chunk["attempt"] = ref["attempt"]
    return chunk


def judge_chunk(ref: dict[str, Any]) -> dict[str, int]:
    """RQ entry point (enqueued by the gateway as ``rljudge_workers.jobs.judge_chunk``)."""
    job = get_current_job()
    redis = job.connection if job is not None else Redis.from_url(get_settings().redis_url)
    chunk = load_chunk(redis, ref)
    if chunk is None:
        log.warning("chunk %s expired with its batch %s: nothing to judge", ref.get("payload"), ref["batch_id"])
        return {}
    # a worker holds the chunk's lease meanwhile (``JudgeWorker``, ``lease.py``); once every item
    # has its result the stored chunk is not needed any more (deleted with the last results)
    return ChunkJudge(redis, chunk, get_settings()).run(delete=[ref["payload"]] if "payload" in ref else [])


def give_up(redis: Redis, ref: dict[str, Any], reason: str) -> dict[str, int]:
    """Give every unfinished item of a chunk an ``infra_failed`` result (the reaper's last resort)."""
    chunk = load_chunk(redis, ref)
    if chunk is None:
        return {}
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
        #: Results and timing observations not yet sent to Redis (see ``_flush``).
        self._buffered = False
        self._pending: list[Written] = []
        self._timings: dict[str, float] = {}
        self._cache_puts: list[tuple[str, bytes]] = []
        self._problems: dict[str, dict[str, Any] | None] = {}

    # ------------------------------------------------------------------ driver

    def run(self, delete: list[str] | None = None) -> dict[str, int]:
        """Judge the chunk. Results are written in few round trips: buffered, and flushed after the
        chunk's math batch when more is left to judge, after each item judged on its own (code, or
        math when alone), and at the end, together with deleting the keys ``delete`` (the stored
        chunk) when the chunk succeeded: a chunk of math items is one round trip."""
        self._buffered = True
        try:
            counts = self._run()
        except BaseException:
            self._flush()
            raise
        finally:
            self._buffered = False
        self._flush(delete or [])
        return counts

    def _run(self) -> dict[str, int]:
        kind = self.entries[0]["item"]["kind"] if self.entries else "math"
        waited = time.time() - float(self.chunk["enqueued"]) if "enqueued" in self.chunk else None
        if waited is not None:
            self._observe("wait", kind, max(0.0, waited))
        # a re-run (``attempt`` 2 and later) skips what an earlier run wrote; on the first run nothing
        # but the gateway's deadline can have written a result, and the deadline is checked below
        first_run = int(self.chunk.get("attempt", 1)) == 1
        pending = self.entries if first_run else self._unresolved(self.entries)
        if time.time() >= self.deadline:
            self._finish_unscored(pending)
            return self.counts

        tasks: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
        for entry in pending:
            decided, task = self._prepare(entry)
            if decided is not None:
                self._write(entry, decided)
            elif task is not None:
                group_key = task["key"] if self.settings.dedup_enabled else f"{task['key']}:{entry['index']}"
                tasks.setdefault(group_key, []).append((entry, task))

        hits: dict[str, dict[str, Any]] = {}
        if not (first_run and self._looked_up_at_submission(waited)):
            hits = self._cache_get(list(dict.fromkeys(group[0][1]["key"] for group in tasks.values())))
        for group_key in [k for k, group in tasks.items() if group[0][1]["key"] in hits]:
            for entry, task in tasks.pop(group_key):
                self._write(entry, hits[task["key"]], cached=True)

        groups = list(tasks.values())
        math_groups = [g for g in groups if g[0][1]["kind"] == "math"]
        if len(math_groups) > 1 and time.time() < self.deadline:
            # several math inputs: one round trip to the judge process for all of them
            outcomes = self._judge_math_many([g[0][1] for g in math_groups])
            if outcomes is not None:
                for group, (judgement, elapsed_ms) in zip(math_groups, outcomes, strict=True):
                    self._finish_group(group, judgement, elapsed_ms)
                groups = [g for g in groups if g[0][1]["kind"] != "math"]
                if groups:  # more to judge: announce these now (else ``run`` sends them with the last)
                    self._flush()
        code_groups = [g for g in groups if g[0][1]["kind"] == "code"]
        if len(code_groups) > 1 and self.settings.code_concurrency > 1:
            self._judge_code_concurrently(code_groups)
            groups = [g for g in groups if g[0][1]["kind"] != "code"]
        for group in groups:
            if time.time() >= self.deadline:
                self._finish_unscored([entry for entry, _ in group])
                continue
            started = time.perf_counter()
            judgement = self._judge(group[0][1])
            self._finish_group(group, judgement, (time.perf_counter() - started) * 1000.0)
            self._flush()  # judged one at a time (code, or math after a batch ran over): announce each
        return self.counts

    def _judge_code_concurrently(self, groups: list[list[tuple[dict[str, Any], dict[str, Any]]]]) -> None:
        """Several submissions in the code pool at once (each pool process has its own jail; each
        submission its own bound);
        each result is written as soon as its submission is judged."""
        if time.time() >= self.deadline:
            for group in groups:
                self._finish_unscored([entry for entry, _ in group])
            return
        judge = pools.code_judge()
        started = time.perf_counter()
        futures = {}
        for group in groups:
            task = group[0][1]
            futures[judge.submit(task["program"], task["suite"], task["limits"], task["mode"], self.batch_id)] = group
        for future in as_completed(futures):
            judgement = self._code_judgement(future.result())
            self._finish_group(futures[future], judgement, (time.perf_counter() - started) * 1000.0)
            self._flush()

    def _finish_group(
        self, group: list[tuple[dict[str, Any], dict[str, Any]]], judgement: dict[str, Any], elapsed_ms: float
    ) -> None:
        task = group[0][1]
        self._observe("judge", task["kind"], elapsed_ms / 1000.0)
        if judgement.get("status", "scored") == "scored" and judgement["verdict"] != "time_limit":
            self._cache_put(task["key"], judgement)
        first, *duplicates = group
        self._write(first[0], judgement, elapsed_ms=elapsed_ms)
        for entry, _task in duplicates:  # the same judged input: shares the verdict, like a cache hit
            self._write(entry, judgement, cached=True)

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
            key, source, gold = judged.math_input(item)
            return None, {"key": key, "kind": "math", "source": source, "gold": gold, "timeout": item["timeout_s"]}
        return self._prepare_code(item)

    def _prepare_code(self, item: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        program = item.get("code")
        if program is None:
            program = extract_program(item["response"], item.get("strip_think", True))
            if program is None:
                return {"verdict": "no_code", "detail": "no fenced code block in the response"}, None
        limits = item.get("limits")
        if item.get("problem") is not None:
            problem = self._problem(item["problem"])
            if problem is None:
                return _rejected(f"problem {item['problem']!r} is not registered (PUT /v1/problems/{{id}})"), None
            suite, suite_hash = problem["tests"], problem["hash"]
            limits = limits or problem.get("limits")
        else:
            suite = item["tests"]
            suite_hash = judged.digest("suite", orjson.dumps(suite, option=orjson.OPT_SORT_KEYS).decode())
        limits = Limits.model_validate(limits or {}).model_dump()
        mode = item.get("mode", "all")
        key = judged.digest("code", "sandbox", program, suite_hash, orjson.dumps(limits).decode(), mode)
        return None, {"key": key, "kind": "code", "program": program, "suite": suite, "limits": limits, "mode": mode}

    def _problem(self, problem_id: str) -> dict[str, Any] | None:
        """A registered suite, read from Redis once per chunk however many rollouts reference it."""
        if problem_id not in self._problems:
            stored = self.redis.get(keys.problem(problem_id))
            self._problems[problem_id] = orjson.loads(stored) if stored is not None else None
        return self._problems[problem_id]

    # ------------------------------------------------------------------ judging

    def _judge(self, task: dict[str, Any]) -> dict[str, Any]:
        if task["kind"] == "math":
            return self._judge_math(task)
        return self._code_judgement(
            pools.code_judge().judge(task["program"], task["suite"], task["limits"], task["mode"], self.batch_id)
        )

    @staticmethod
    def _code_judgement(judgement: dict[str, Any]) -> dict[str, Any]:
        judgement["grader"] = "rljudge-sandbox firejail"
        if judgement["verdict"] == "sandbox_error":
            judgement["status"] = "infra_failed"
        return judgement

    def _judge_math_many(self, tasks: list[dict[str, Any]]) -> list[tuple[dict[str, Any], float]] | None:
        """Judge several math tasks in one call to the judge process, bounded by the smallest of
        their time limits. None when that call did not finish (a slow item, a dead process): the
        caller then judges each on its own, under its own limit, as if this call never happened."""
        future = pools.math_pool().schedule(
            math_judge.verify_many,
            args=([(task["source"], task["gold"]) for task in tasks],),
            timeout=min(float(task["timeout"]) for task in tasks),
        )
        try:
            outcomes = future.result()
        except (FutureTimeout, ProcessExpired):
            return None
        except Exception:
            log.exception("math-verify batch failed; judging one by one")
            return None
        judgements = []
        for outcome, elapsed_ms in outcomes:
            if outcome.get("error") == "value":
                judgement = _rejected(outcome["detail"])
            elif outcome.get("error") == "exception":
                judgement = {"status": "infra_failed", "verdict": "judge_error", "detail": outcome["detail"]}
            else:
                judgement = outcome
            judgement["grader"] = judged.MATH_GRADER
            judgements.append((judgement, elapsed_ms))
        return judgements

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
        judgement["grader"] = judged.MATH_GRADER
        return judgement

    # ------------------------------------------------------------------ Redis I/O

    def _unresolved(self, entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """The entries of which some item (the entry's own or one of its ``copies``) has no result."""
        entries = list(entries)
        indices = [[entry["index"], *(index for index, _id in entry.get("copies", ()))] for entry in entries]
        fields = [str(index) for group in indices for index in group]
        present = iter(self.redis.hmget(keys.batch_results(self.batch_id), fields) if fields else [])
        todo = [entry for entry, group in zip(entries, indices, strict=True) if None in [next(present) for _ in group]]
        self.counts["skipped"] += len(entries) - len(todo)
        return todo

    def _looked_up_at_submission(self, waited: float | None) -> bool:
        """True when the gateway read the verdict cache for this chunk's items (``cache_read``) less
        than ``FRESH_LOOKUP_S`` ago: on its first run the worker's own read is skipped, a round
        trip on the path of every small batch. A verdict another batch stored in between is missed
        (the input is judged again); a re-run, or a chunk that waited in a queue longer, reads."""
        return bool(self.chunk.get("cache_read")) and waited is not None and waited < FRESH_LOOKUP_S

    def _cache_get(self, digests: list[str]) -> dict[str, dict[str, Any]]:
        if not digests or not self.settings.cache_enabled:
            return {}
        values = self.redis.mget([keys.verdict_cache(d) for d in digests])
        found = {d: cached_judgement(v) for d, v in zip(digests, values, strict=True)}
        return {d: judgement for d, judgement in found.items() if judgement is not None}

    def _cache_put(self, digest: str, judgement: dict[str, Any]) -> None:
        if self.settings.cache_enabled:
            self._cache_puts.append((keys.verdict_cache(digest), orjson.dumps(judgement)))
            if not self._buffered:
                self._flush()

    def _finish_unscored(self, entries: Iterable[dict[str, Any]]) -> None:
        for entry in entries:
            self._write(entry, {"status": "unscored", "verdict": "deadline", "detail": "batch deadline passed"})

    def _write(
        self, entry: dict[str, Any], judgement: dict[str, Any], *, cached: bool = False, elapsed_ms: float = 0.0
    ) -> None:
        self._pending += results_of(entry, judgement, self.scheme, cached=cached, elapsed_ms=elapsed_ms)
        if not self._buffered:
            self._flush()

    def _flush(self, delete: list[str] | None = None) -> None:
        """Send buffered results (``HSETNX_MANY``, which also counts them, one EXPIRE, one PUBLISH),
        cache entries and timings, and delete the keys ``delete``, in one round trip."""
        pending, self._pending = self._pending, []
        timings, self._timings = self._timings, {}
        puts, self._cache_puts = self._cache_puts, []
        if not (pending or timings or puts or delete):
            return
        pipe = self.redis.pipeline(transaction=False)
        for cache_key, value in puts:  # cached before the results are announced
            pipe.set(cache_key, value, ex=self.settings.cache_ttl_s)
        for field, amount in timings.items():
            pipe.hincrbyfloat(keys.STATS, field, amount)
        results = keys.batch_results(self.batch_id)
        if pending:
            groups = by_counters(pending)  # one counters string a group
            pending = [result for group in groups for result in group]  # in ARGV's order
            args: list[str | bytes | int] = []
            for group in groups:
                args += [stat_fields(group[0]), len(group)]
                for result in group:
                    args += (result.field, result.payload)
            pipe.eval(HSETNX_MANY, 2, results, keys.STATS, *args)
            pipe.expire(results, self.results_ttl)
            pipe.publish(keys.batch_events(self.batch_id), b"1")
        if delete:
            pipe.delete(*delete)
        answers = pipe.execute()
        written = answers[len(puts) + len(timings)] if pending else []
        for result, was_written in zip(pending, written, strict=True):
            if was_written:
                self.counts[result.status] += 1
                self.counts["cached"] += result.cached

    def _observe(self, histogram: str, kind: str, seconds: float) -> None:
        for field, amount in keys.stat_time(histogram, kind, seconds):
            self._timings[field] = self._timings.get(field, 0.0) + amount
        if not self._buffered:
            self._flush()


def _rejected(detail: str) -> dict[str, Any]:
    return {"status": "rejected", "verdict": "invalid_item", "detail": detail}
