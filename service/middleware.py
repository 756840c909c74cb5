"""ASGI middleware: the request body size limit and per-route HTTP metrics."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import metrics


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Answer 413 when a body exceeds ``limit`` bytes, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(send)
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = f'{{"detail":"request body is larger than the limit of {self.limit} bytes"}}'.encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class MetricsMiddleware:
    """Count requests and observe latency by route template (never by raw path: ids are unbounded)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        recorded = False
        started = time.perf_counter()

        def record() -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                # the router records the matched route in the scope; label by its template
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                metrics.HTTP_REQUESTS.labels(route, scope["method"], str(status)).inc()
                metrics.HTTP_LATENCY.labels(route, scope["method"]).observe(time.perf_counter() - started)

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                record()  # before the last byte leaves: a client that reads /metrics next sees it
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            record()
