"""Domain errors and their HTTP mapping, in one place.

Every error body is ``{"detail": "..."}`` with a message that says what is wrong. Redis being
unreachable is a 503 with ``Retry-After`` (the client retries), never a 500.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("rljudge.service.errors")


class ServiceError(Exception):
    status_code = 400
    retry_after: int | None = None

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    status_code = 409
    retry_after = 1


class BatchTooLarge(ServiceError):
    status_code = 413


class QueueFull(ServiceError):
    status_code = 429
    retry_after = 2


class RateLimited(ServiceError):
    status_code = 429

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class BatchLost(ServiceError):
    """The batch's state vanished from Redis (restarted without persistence): resubmit it."""

    status_code = 503
    retry_after = 1


class Unauthorized(ServiceError):
    status_code = 401


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            at = err.get("loc", ("body", "?"))[-1]
            parts.append(f"body is not valid JSON: {err.get('ctx', {}).get('error', 'decode error')} at byte {at}")
            continue
        loc = [p for p in err.get("loc", ()) if p != "body"]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "body"
        parts.append(f"{where}: {err.get('msg')}")
    return "; ".join(parts)


def install(app: FastAPI, retry_after_s: int) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        headers = {}
        if exc.retry_after is not None:
            headers["Retry-After"] = str(retry_after_s if isinstance(exc, QueueFull) else exc.retry_after)
        if exc.status_code == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail
        if isinstance(exc.__cause__, UnicodeDecodeError):  # FastAPI's generic "error parsing the body"
            detail = f"request body is not valid UTF-8: {exc.__cause__.reason} at byte {exc.__cause__.start}"
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _describe(exc)}, status_code=422)

    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisTimeoutError)
    async def _redis_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("Redis unavailable: %s", exc)
        return JSONResponse(
            {"detail": "the judge's Redis is unavailable; retry shortly"},
            status_code=503,
            headers={"Retry-After": str(retry_after_s)},
        )
