"""GET /healthz (the process is up), /readyz (Redis reachable, workers alive), /metrics."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from rq import Queue, Worker

from .. import keys, metrics
from .deps import get_caller

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: answers while the process serves, whatever Redis does."""
    return {"status": "ok"}


def _workers(request: Request) -> dict[str, int]:
    workers = Worker.all(connection=request.app.state.sync_redis)
    states = {"busy": 0, "idle": 0}
    for worker in workers:
        states["busy" if worker.get_state() == "busy" else "idle"] += 1
    return states


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Readiness: Redis answers and at least one worker is registered."""
    try:
        await request.app.state.redis.ping()
        workers = await anyio.to_thread.run_sync(_workers, request)
    except (RedisError, OSError) as exc:
        return JSONResponse({"status": "unready", "detail": f"Redis unreachable: {exc}"}, status_code=503)
    if sum(workers.values()) == 0:
        return JSONResponse({"status": "unready", "detail": "no judge workers registered"}, status_code=503)
    return JSONResponse({"status": "ready", "workers": workers})


@router.get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request) -> Response:
    if request.app.state.settings.metrics_require_auth:
        await get_caller(request)
    redis = request.app.state.redis
    pipe = redis.pipeline(transaction=False)
    for queue in keys.QUEUES:
        pipe.llen(Queue.redis_queue_namespace_prefix + queue)
    pipe.hgetall(keys.STATS)
    *depths, stats = await pipe.execute()
    workers = await anyio.to_thread.run_sync(_workers, request)
    snapshot = metrics.FleetSnapshot(dict(zip(keys.QUEUES, depths, strict=True)), workers, stats)
    return Response(metrics.render(snapshot), media_type="text/plain; version=0.0.4; charset=utf-8")
