"""Request dependencies: the app state, settings and the caller's identity.

They are ``async def`` although they never await: FastAPI runs a plain ``def`` dependency in its
thread pool, a thread hop (~0.3 ms, more under load) per dependency per request for a few
attribute reads."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis

from ..batches import BatchService
from ..errors import ServiceError, Unauthorized
from ..settings import Settings


class Forbidden(ServiceError):
    status_code = 403


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_redis(request: Request) -> Redis:
    return request.app.state.redis


async def get_batches(request: Request) -> BatchService:
    return request.app.state.batches


async def get_caller(request: Request) -> str:
    """The caller's id (a key-hash prefix) when API keys are configured, else ``"anonymous"``."""
    keyring = request.app.state.keyring
    if not keyring.enabled:
        return "anonymous"
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Unauthorized("missing API key: send `Authorization: Bearer <key>`")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("malformed Authorization header: expected `Bearer <key>`")
    caller = keyring.identify(token.strip())
    if caller is None:
        raise Forbidden("API key not recognised")
    return caller


SettingsDep = Annotated[Settings, Depends(get_settings)]
RedisDep = Annotated[Redis, Depends(get_redis)]
BatchesDep = Annotated[BatchService, Depends(get_batches)]
CallerDep = Annotated[str, Depends(get_caller)]
