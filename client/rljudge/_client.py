"""``JudgeClient``: the async client trainers use to score rollouts."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import ssl
import uuid
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Literal

import httpx
import pydantic_core

from ._copies import distinct, expand
from ._exceptions import JudgeRequestError, JudgeUnavailableError
from ._models import BatchAccepted, BatchResult, CodeItem, ItemResult, MathItem, ProblemRegistered, ProblemSuite
from .extract import trimmed_response

log = logging.getLogger("rljudge")

ItemLike = MathItem | CodeItem | Mapping[str, Any]

#: Statuses worth retrying: a batch still being created under our key (409), overload (429),
#: gateway/Redis trouble (502, 503, 504).
RETRY_STATUSES = frozenset({409, 429, 502, 503, 504})
#: Server-side default deadline; the HTTP read timeout of /v1/judge is the deadline plus a margin.
DEFAULT_DEADLINE_S = 300.0


def _json_body(body: Any) -> bytes:
    """``body`` as JSON: pydantic's serializer, faster than the standard library that httpx's
    ``json=`` uses (1.4 MB for a batch of 1,024 rollouts). Text that is not Unicode (a lone UTF-16
    surrogate, e.g. half of an emoji cut off by a token limit) cannot be UTF-8: it goes as an ASCII
    escape instead, which the gateway replaces with U+FFFD."""
    try:
        return pydantic_core.to_json(body)
    except pydantic_core.PydanticSerializationError:
        return json.dumps(body).encode()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default TLS context, built once per process: building one loads the CA bundle
    (~30 ms), which a client created per training step (or per verl ``compute_score`` call) would
    otherwise pay every time."""
    return httpx.create_ssl_context()


class JudgeClient:
    """Async client of the rljudge HTTP API.

    ``await client.judge(items)`` returns one ``ItemResult`` per item, in order. Large inputs are
    split into batches of ``batch_size`` sent ``max_concurrency`` at a time. Connection errors,
    timeouts, 429 and 502-504 are retried ``retries`` times with exponential backoff and full
    jitter, honouring ``Retry-After``; every retry reuses the batch's ``Idempotency-Key``, so a
    batch is never judged twice. When retries run out the items come back ``infra_failed`` (or the
    call raises, with ``on_failure="raise"``): a transport failure never becomes a reward of 0.

    With ``trim_math_responses`` (the default) a math item's response is sent as only the text the
    server judges (``rljudge.extract.trimmed_response``: usually ``\\boxed{answer}``, a few bytes of
    a rollout's kilobytes), so verdicts, rewards and the verdict cache are the same; items with
    ``require_think`` go whole, since their format check reads the reasoning.

    With ``dedup`` (the default) ``judge`` sends identical math items once (every field but ``id``
    equal, after trimming: a GRPO group's repeated final answers) and gives each copy the result of
    the item it repeats, with its own id and index (a scored one ``cached`` and 0 ms), as the gateway
    does for identical inputs it finds in a batch (``rljudge._copies``).
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        batch_size: int = 512,
        max_concurrency: int = 8,
        retries: int = 6,
        backoff_s: float = 0.25,
        max_backoff_s: float = 10.0,
        connect_timeout_s: float = 10.0,
        on_failure: Literal["infra_failed", "raise"] = "infra_failed",
        trim_math_responses: bool = True,
        dedup: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            transport=transport,
            verify=_tls_context(),
            timeout=httpx.Timeout(connect_timeout_s, read=DEFAULT_DEADLINE_S + 60),
            limits=httpx.Limits(max_connections=max_concurrency * 2, max_keepalive_connections=max_concurrency),
        )
        self.batch_size = batch_size
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.on_failure = on_failure
        self.trim_math_responses = trim_math_responses
        self.dedup = dedup
        self._semaphore = asyncio.Semaphore(max_concurrency)

    async def __aenter__(self) -> JudgeClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------ judging

    async def judge(
        self,
        items: Sequence[ItemLike],
        *,
        reward_scheme: Literal["binary", "fraction", "klear"] = "binary",
        deadline_s: float | None = None,
    ) -> list[ItemResult]:
        """Judge ``items`` and return their results in order (ids default to the item's index)."""
        prepared = [self._prepare(item, index) for index, item in enumerate(items)]
        sent, position = distinct(prepared) if self.dedup else (prepared, list(range(len(prepared))))
        slices = [sent[i : i + self.batch_size] for i in range(0, len(sent), self.batch_size)]
        answers = await asyncio.gather(
            *(
                self._judge_slice(part, start * self.batch_size, reward_scheme, deadline_s)
                for start, part in enumerate(slices)
            )
        )
        return expand([result for part in answers for result in part], position, prepared, self.batch_size)

    def _prepare(self, item: ItemLike, index: int) -> dict[str, Any]:
        """Models are serialised; plain dicts go as they are (the server validates each item and
        answers a malformed one with a ``rejected`` result naming the field), math responses
        trimmed to what is judged (see the class)."""
        data = dict(item) if isinstance(item, Mapping) else item.model_dump(mode="json", exclude_none=True)
        if data.get("id") in (None, ""):  # the gateway would name it by its position in the request
            data["id"] = str(index)
        if self.trim_math_responses and data.get("kind") == "math" and not data.get("require_think"):
            response, strip_think = data.get("response"), data.get("strip_think", True)
            if isinstance(response, str) and isinstance(strip_think, bool):
                data["response"] = trimmed_response(response, strip_think)
        return data

    async def _judge_slice(
        self, items: list[dict[str, Any]], offset: int, scheme: str, deadline_s: float | None
    ) -> list[ItemResult]:
        body: dict[str, Any] = {"items": items, "reward_scheme": scheme}
        if deadline_s is not None:
            body["deadline_s"] = deadline_s
        read_timeout = (deadline_s or DEFAULT_DEADLINE_S) + 60
        async with self._semaphore:
            try:
                response = await self._request("POST", "/v1/judge", body=body, read_timeout=read_timeout)
            except JudgeUnavailableError as exc:
                if self.on_failure == "raise":
                    raise
                return [
                    ItemResult(
                        id=item["id"],
                        index=offset + i,
                        kind=item["kind"],
                        status="infra_failed",
                        verdict="judge_error",
                        detail=f"rljudge unavailable: {exc}",
                    )
                    for i, item in enumerate(items)
                ]
        batch = BatchResult.model_validate_json(response.content)
        results = batch.results
        if offset:
            for result in results:
                result.index += offset
        return results

    async def submit(
        self,
        items: Sequence[ItemLike],
        *,
        reward_scheme: Literal["binary", "fraction", "klear"] = "binary",
        deadline_s: float | None = None,
    ) -> BatchAccepted:
        """Queue one batch without waiting (``POST /v1/batches``); fetch it with ``get_batch``."""
        body: dict[str, Any] = {
            "items": [self._prepare(item, i) for i, item in enumerate(items)],
            "reward_scheme": reward_scheme,
        }
        if deadline_s is not None:
            body["deadline_s"] = deadline_s
        response = await self._request("POST", "/v1/batches", body=body)
        return BatchAccepted.model_validate_json(response.content)

    async def get_batch(self, batch_id: str, *, wait_s: float = 0.0) -> BatchResult:
        """The results known so far (long-polls up to ``wait_s`` for the batch to finish)."""
        response = await self._request(
            "GET", f"/v1/batches/{batch_id}", params={"wait_s": wait_s}, read_timeout=wait_s + 30
        )
        return BatchResult.model_validate_json(response.content)

    async def register_problem(self, problem_id: str, suite: ProblemSuite | Mapping[str, Any]) -> ProblemRegistered:
        """Store a code test suite once (``PUT /v1/problems/{id}``); items then use ``problem=id``."""
        model = suite if isinstance(suite, ProblemSuite) else ProblemSuite.model_validate(suite)
        response = await self._request(
            "PUT", f"/v1/problems/{problem_id}", body=model.model_dump(mode="json", exclude_none=True)
        )
        return ProblemRegistered.model_validate_json(response.content)

    async def ready(self) -> bool:
        """True when the service answers /readyz with 200 (Redis up, workers registered)."""
        try:
            response = await self._http.get("/readyz")
        except httpx.TransportError:
            return False
        return response.status_code == 200

    # ------------------------------------------------------------------ transport

    async def _request(
        self, method: str, url: str, *, read_timeout: float | None = None, body: Any = None, **kwargs: Any
    ) -> httpx.Response:
        """Send with retries (``body``: a JSON document, encoded once); POSTs carry one
        Idempotency-Key across all their attempts."""
        headers = {"Idempotency-Key": uuid.uuid4().hex} if method == "POST" else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
            kwargs["content"] = _json_body(body)
        timeout = (
            self._http.timeout if read_timeout is None else httpx.Timeout(self._http.timeout.connect, read=read_timeout)
        )
        last_error = "no attempt made"
        for attempt in range(self.retries + 1):
            retry_after: float | None = None
            try:
                response = await self._http.request(method, url, headers=headers, timeout=timeout, **kwargs)
            except httpx.TransportError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 400:
                    return response
                detail = _detail(response)
                if response.status_code not in RETRY_STATUSES:
                    raise JudgeRequestError(response.status_code, detail)
                last_error = f"HTTP {response.status_code}: {detail}"
                retry_after = _retry_after(response)
            if attempt == self.retries:
                break
            delay = random.uniform(0, min(self.max_backoff_s, self.backoff_s * 2**attempt))
            if retry_after is not None:
                delay = max(delay, retry_after)
            log.warning(
                "rljudge %s %s failed (%s); retry %d/%d in %.2fs",
                method,
                url,
                last_error,
                attempt + 1,
                self.retries,
                delay,
            )
            await asyncio.sleep(delay)
        raise JudgeUnavailableError(f"{method} {url} failed after {self.retries + 1} attempts: {last_error}")


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    return str(detail) if detail else response.text[:500]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return min(float(value), 60.0) if value is not None else None
    except ValueError:
        return None
