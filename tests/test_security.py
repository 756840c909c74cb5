"""Authentication, per-key rate limits and backpressure, against real gateways and workers."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

import httpx
import pytest

from rljudge import JudgeClient, MathItem

ITEM = {"kind": "math", "response": r"\boxed{1}", "gold": "1"}


def judge(url: str, key: str | None = None, items: list[dict] | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{url}/v1/judge", json={"items": items or [ITEM]}, headers=headers, timeout=60)


def test_keys_from_env_list_file_and_hashes(make_gateway, tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("# one key per line\nfrom-file\n")
    hashed = "sha256:" + hashlib.sha256(b"only-the-hash-is-stored").hexdigest()
    gateway = make_gateway(api_keys=["plain", hashed], api_keys_file=str(key_file))
    for key in ("plain", "from-file", "only-the-hash-is-stored"):
        response = judge(gateway.url, key)
        assert response.status_code == 200, (key, response.text)
        assert response.json()["results"][0]["reward"] == 1.0


def test_env_variable_is_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    from rljudge_service.settings import Settings

    monkeypatch.setenv("RLJUDGE_API_KEYS", "a, b,,c")
    assert Settings().api_keys == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("header", "status", "message"),
    [
        (None, 401, "missing API key"),
        ("Basic dXNlcjpwdw==", 401, "malformed Authorization"),
        ("Bearer", 401, "malformed Authorization"),
        ("Bearer wrong", 403, "not recognised"),
    ],
)
def test_refusals_say_why(make_gateway, header: str | None, status: int, message: str) -> None:
    gateway = make_gateway(api_keys=["right"])
    headers = {"Authorization": header} if header else {}
    response = httpx.post(f"{gateway.url}/v1/judge", json={"items": [ITEM]}, headers=headers)
    assert response.status_code == status
    assert message in response.json()["detail"]
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_health_open_metrics_configurable(make_gateway) -> None:
    open_metrics = make_gateway(api_keys=["k"])
    assert httpx.get(f"{open_metrics.url}/healthz").status_code == 200
    assert httpx.get(f"{open_metrics.url}/metrics").status_code == 200
    closed = make_gateway(api_keys=["k"], metrics_require_auth=True)
    assert httpx.get(f"{closed.url}/metrics").status_code == 401
    assert httpx.get(f"{closed.url}/metrics", headers={"Authorization": "Bearer k"}).status_code == 200
    assert httpx.get(f"{closed.url}/healthz").status_code == 200


def test_keys_never_reach_the_logs(make_gateway, caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-never-log-me-0123456789"
    gateway = make_gateway(api_keys=[secret])
    with caplog.at_level(logging.DEBUG):
        assert judge(gateway.url, secret).status_code == 200
        assert judge(gateway.url, secret + "x").status_code == 403
    assert caplog.records, "nothing was logged: the check would be vacuous"
    assert secret not in caplog.text


def test_per_key_rate_limit(make_gateway) -> None:
    gateway = make_gateway(api_keys=["a", "b"], rate_limit_items_per_minute=5)
    assert judge(gateway.url, "a", [ITEM] * 4).status_code == 200
    refused = judge(gateway.url, "a", [ITEM] * 2)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "5 items per minute" in refused.json()["detail"]
    assert judge(gateway.url, "a", [ITEM]).status_code == 200  # the refused batch used no quota
    assert judge(gateway.url, "b", [ITEM] * 5).status_code == 200  # another key has its own


async def test_client_backs_off_under_backpressure_and_the_load_completes(make_gateway) -> None:
    gateway = make_gateway(max_queue_depth=2, retry_after_s=1, math_chunk_items=1)
    # fill the queue: 8 one-item jobs that each take 0.5 s (power towers killed at their limit)
    filler = [
        {"kind": "math", "response": rf"\boxed{{9^{{9^{{9^{{9^{{{i + 2}}}}}}}}}}}", "gold": "1", "timeout_s": 0.5}
        for i in range(8)
    ]
    assert httpx.post(f"{gateway.url}/v1/batches", json={"items": filler}).status_code == 202
    statuses: list[int] = []

    async def record(response: httpx.Response) -> None:
        statuses.append(response.status_code)

    batches = [
        [MathItem(response=rf"\boxed{{{b * 100 + i}}}", gold=str(b * 100 + i)) for i in range(3)] for b in range(4)
    ]
    async with JudgeClient(gateway.url, backoff_s=0.05, retries=30) as client:
        client._http.event_hooks["response"].append(record)
        results = await asyncio.gather(*(client.judge(batch) for batch in batches))
    assert 429 in statuses  # the queue really was full, and the client was told so
    assert all(r.status == "scored" and r.reward == 1.0 for batch in results for r in batch)
    assert sum(len(batch) for batch in results) == 12
