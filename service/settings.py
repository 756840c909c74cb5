"""Gateway settings, read from ``RLJUDGE_*`` environment variables (see the README's table)."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RLJUDGE_", extra="ignore")

    redis_url: str = "redis://127.0.0.1:6379/0"

    #: Request bodies larger than this are refused with 413.
    max_body_bytes: int = 64 * 1024 * 1024
    #: Items per request; larger batches are refused with 413 (the client splits them).
    max_batch_items: int = 10_000
    #: Deadline of a batch that gives none, and the largest one accepted (seconds).
    default_deadline_s: float = 300.0
    max_deadline_s: float = 86_400.0
    #: How long batch results stay fetchable after submission (seconds).
    results_ttl_s: int = 3600
    #: Longest a GET /v1/batches/{id}?wait_s= long-poll holds the connection.
    max_long_poll_s: float = 60.0

    #: Items per queued job (math items cost ~1 ms, code items a few ms to seconds each; a job costs
    #: a few ms of queue bookkeeping). A batch is cut into about 4 chunks per worker registered on
    #: the kind's queue, of these sizes, as many as a multiple of the worker count, evenly (see
    #: ``batches.split``): a large batch keeps the fleet busy with few jobs. With at least 32 math
    #: items a chunk, a GRPO step of 1,024 rollouts (~70 distinct answers) is 2 chunks on 2 workers,
    #: not 4: each worker pays the job bookkeeping and the results' write once, and the step took 5%
    #: less time on average (16 vs 32 side by side, 60 steps each).
    math_chunk_items: int = 32
    code_chunk_items: int = 2
    math_chunk_max_items: int = 64
    code_chunk_max_items: int = 8
    #: Queue each distinct judged math input of a batch once; the batch's other items with the same
    #: input (GRPO groups repeat final answers) get its verdict. Workers read the same variable to
    #: de-duplicate inside a chunk. Off only for benchmarks that measure its effect.
    dedup_enabled: bool = True
    #: Answer math items whose judged input has a verdict in the verdict cache at submission, without
    #: queueing them (the workers read and write the cache; the same variable turns both off).
    cache_enabled: bool = True
    #: Queued jobs above which submissions get 429 + Retry-After (0 disables).
    max_queue_depth: int = 5000
    retry_after_s: int = 2

    #: Bearer API keys (comma-separated; an entry ``sha256:<hex>`` is a key's hash). Empty: no auth.
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: File with one key (or ``sha256:<hex>``) per line, e.g. a mounted Kubernetes Secret.
    api_keys_file: str | None = None
    #: Items each caller (API key, or everyone when keys are off) may submit per minute (0: no limit).
    rate_limit_items_per_minute: int = 0
    #: Whether /metrics needs a key too when keys are configured.
    metrics_require_auth: bool = False

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
