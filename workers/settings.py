"""Worker settings, read from ``RLJUDGE_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RLJUDGE_", extra="ignore")

    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Verdict cache on/off (off only for benchmarks that measure its effect).
    cache_enabled: bool = True
    cache_ttl_s: int = 24 * 3600
    #: Judge identical inputs inside a chunk once (off only for benchmarks that measure its effect).
    dedup_enabled: bool = True
    #: Code submissions of one chunk judged at once by a worker (each pool process keeps a warm
    #: jail for the batch): overlaps one submission's I/O waits with another's run.
    code_concurrency: int = 2
    #: A chunk whose worker stopped refreshing its lease this long ago is re-queued.
    lease_ttl_s: int = 15
    #: Each worker (its RQ process and its math judge process) on a CPU of its own: ``auto`` when
    #: every CPU gets as many workers and no CFS quota shares them with other pods (``affinity.py``),
    #: ``on``, ``off``.
    pin_workers: Literal["auto", "on", "off"] = "auto"


@lru_cache
def get_settings() -> WorkerSettings:
    return WorkerSettings()
