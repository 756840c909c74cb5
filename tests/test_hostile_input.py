"""Hostile and malformed input: never a 5xx, always a precise error or a verdict, workers survive.

The schemathesis run generates requests from the gateway's own OpenAPI schema against a live stack.
"""

from __future__ import annotations

import json

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings

from rljudge import BatchResult


def test_no_generated_request_gets_a_server_error(judge_url: str) -> None:
    """Every operation of the OpenAPI schema, fuzzed by schemathesis (its pytest plugin is not used)."""
    schema = schemathesis.openapi.from_url(f"{judge_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/judge", "/v1/batches", "/v1/problems/{problem_id}"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def check(case: schemathesis.Case) -> None:
            if case.path in ("/v1/judge", "/v1/batches") and isinstance(case.body, dict):
                case.body["deadline_s"] = 5  # generated batches must not hold the shared workers for long
            response = case.call(timeout=60)
            assert response.status_code < 500, (case.method, case.path, case.body, response.text[:500])

        check()


def post(url: str, content: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/judge", content=content, headers={"content-type": "application/json", **headers}, timeout=120
    )


def test_deeply_nested_json_is_a_4xx(judge_url: str) -> None:
    body = b'{"items": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
    response = post(judge_url, body)
    assert 400 <= response.status_code < 500
    assert response.json()["detail"]


def test_invalid_utf8_is_a_4xx(judge_url: str) -> None:
    response = post(judge_url, b'{"items": [{"kind": "math", "response": "\xff\xfe", "gold": "1"}]}')
    assert response.status_code == 400
    assert "not valid UTF-8" in response.json()["detail"]


def test_nul_bytes_are_judged_not_crashed(judge_url: str) -> None:
    items = [
        {"kind": "math", "response": "a\x00b \\boxed{2}\x00", "gold": "2"},
        {
            "kind": "code",
            "code": "print('x')\x00",
            "tests": {"type": "stdio", "cases": [{"input": "\x00", "output": "x"}]},
        },
    ]
    response = post(judge_url, json.dumps({"items": items}).encode())
    assert response.status_code == 200
    results = BatchResult.model_validate_json(response.content).results
    assert results[0].verdict == "correct"
    assert results[1].status in ("scored", "rejected") and results[1].verdict != "correct"


def test_megabyte_latex_and_power_towers_get_verdicts(judge_url: str) -> None:
    items = [
        {"kind": "math", "response": "\\boxed{" + "\\frac{1}{2}+" * 80_000 + "1}", "gold": "1", "timeout_s": 2},
        {"kind": "math", "response": r"\boxed{9^{9^{9^{9^{9^{9}}}}}}", "gold": "1", "timeout_s": 1},
        {"kind": "math", "response": "{" * 50_000 + "\\boxed{3}", "gold": "3", "timeout_s": 2},
    ]
    response = post(judge_url, json.dumps({"items": items}).encode())
    assert response.status_code == 200
    results = BatchResult.model_validate_json(response.content).results
    assert all(r.status == "scored" for r in results)
    assert results[1].verdict == "time_limit"
    assert results[2].verdict == "correct"
    healthy = post(judge_url, json.dumps({"items": [{"kind": "math", "response": r"\boxed{5}", "gold": "5"}]}).encode())
    assert healthy.json()["results"][0]["reward"] == 1.0


def test_ten_thousand_item_batch(judge_url: str) -> None:
    items = [{"kind": "math", "response": f"\\boxed{{{i % 100}}}", "gold": str(i % 100)} for i in range(10_000)]
    response = post(judge_url, json.dumps({"items": items}).encode())
    assert response.status_code == 200
    batch = BatchResult.model_validate_json(response.content)
    assert batch.done and batch.completed == 10_000
    assert all(r.reward == 1.0 for r in batch.results)
    too_many = post(judge_url, json.dumps({"items": items + items[:1]}).encode())
    assert too_many.status_code == 413


def test_wrong_content_type_and_methods(judge_url: str) -> None:
    assert (
        httpx.post(f"{judge_url}/v1/judge", content=b"items=1", headers={"content-type": "text/plain"}).status_code
        == 422
    )
    assert httpx.get(f"{judge_url}/v1/judge").status_code == 405
    assert httpx.delete(f"{judge_url}/v1/problems/x").status_code == 405
