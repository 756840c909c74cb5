"""The FastAPI application: ``create_app()`` wires settings, Redis, the notifier and the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from rljudge import BatchRequest, __version__

from . import errors
from .api import batches as batches_api
from .api import compat, health, problems
from .auth import KeyRing
from .batches import BatchService
from .gc_freeze import freeze_startup_objects
from .middleware import BodyLimitMiddleware, MetricsMiddleware
from .notifier import Notifier
from .settings import Settings, get_settings

DESCRIPTION = """Reward verification for RL training: math answers checked with math-verify, programs
run against their tests in Firejail. Every item gets exactly one result whose `status` tells a
verdict (`scored`) from a judge failure (`infra_failed`), a deadline (`unscored`) and bad input
(`rejected`)."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = Redis.from_url(settings.redis_url, max_connections=512, health_check_interval=30)
        sync_redis = SyncRedis.from_url(settings.redis_url, max_connections=64)
        notifier = Notifier(redis)
        await notifier.start()
        freeze_startup_objects()
        app.state.redis = redis
        app.state.sync_redis = sync_redis
        app.state.batches = BatchService(redis, sync_redis, notifier, settings)
        try:
            yield
        finally:
            await notifier.stop()
            await redis.aclose()
            sync_redis.close()

    app = FastAPI(title="rljudge", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.keyring = KeyRing.from_settings(settings)
    app.include_router(batches_api.router)
    app.include_router(problems.router)
    app.include_router(health.router)
    app.include_router(compat.router)
    errors.install(app, settings.retry_after_s)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the strict ``BatchRequest`` model that the batch routes document."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        _, extra = models_json_schema([(BatchRequest, "validation")], ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, model_schema in extra.get("$defs", {}).items():
            components.setdefault(name, model_schema)
        components.pop("BatchSubmission", None)
        app.openapi_schema = schema
    return app.openapi_schema
