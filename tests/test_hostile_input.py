"""Hostile and malformed input: never a 5xx, always a precise error or a verdict, workers survive.

The schemathesis run generates requests from the gateway's own OpenAPI schema against a live stack.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rljudge import BatchResult
from rljudge_service import batches, jsonbody


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


def test_lone_surrogates_are_replaced_and_judged(judge_url: str) -> None:
    """``\\ud83d`` without its pair (an emoji cut by a token limit) is not Unicode: it cannot be queued
    as UTF-8. It becomes U+FFFD; the rest of the text is judged as sent."""
    body = (
        b'{"items": [{"kind": "math", "response": "\\ud83d so \\\\boxed{7}", "gold": "7"},'
        b' {"kind": "math", "response": "\\ude00\\ud83d\\ude00 \\\\boxed{8}", "gold": "9"},'
        b' {"kind": "code", "code": "print(input()[::-1])",'
        b' "tests": {"type": "stdio", "cases": [{"input": "a\\udc00b", "output": "b\\ufffda"}]}}]}'
    )
    response = post(judge_url, body)
    assert response.status_code == 200, response.text
    results = BatchResult.model_validate_json(response.content).results
    assert [r.verdict for r in results] == ["correct", "wrong_answer", "correct"]


def test_parse_replaces_only_lone_surrogates() -> None:
    raw = b'{"a\\udc00": ["x\\ud83d", "\\ud83d\\ude00", 1.5, null, {"k": "\\udfff"}]}'
    assert jsonbody.parse(raw) == {"a\ufffd": ["x\ufffd", "\U0001f600", 1.5, None, {"k": "\ufffd"}]}
    assert jsonbody.parse(b'{"a": "\xc3\xa9"}') == {"a": "\u00e9"}
    with pytest.raises(json.JSONDecodeError):
        jsonbody.parse(b'{"a": "\\ud83d",')


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


@given(
    items=st.lists(
        st.one_of(
            st.fixed_dictionaries(
                {"kind": st.just("math"), "response": st.text(max_size=20), "gold": st.sampled_from(["1", "x"])},
                optional={"id": st.text(max_size=4), "timeout_s": st.floats(-1, 100), "require_think": st.booleans()},
            ),
            st.fixed_dictionaries(
                {"kind": st.just("code"), "code": st.text(max_size=10)},
                optional={"tests": st.just({"type": "stdio", "cases": [{"input": "", "output": "1"}]})},
            ),
            st.dictionaries(st.sampled_from(["kind", "gold", "response"]), st.text(max_size=5), max_size=3),
            st.integers(),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_a_batch_validated_whole_reads_as_its_items_validated_one_by_one(items: list[Any]) -> None:
    """The gateway validates a batch's items in one call and each item apart only when one is
    invalid: either way, each valid item is queued as validating it alone gives, each invalid one
    rejected with its own message."""
    ids, valid, rejected = batches.validated_entries(items)
    expected: dict[int, Any] = {}
    for index, raw in enumerate(items):
        try:
            expected[index] = batches.ITEM_ADAPTER.validate_python(raw).model_dump(exclude_none=True)
        except ValidationError as exc:
            expected[index] = batches.describe_errors(exc, f"items[{index}]")
    got = {entry["index"]: entry["item"] for entries in valid.values() for entry in entries}
    assert {**got, **rejected} == expected
    assert all(entry["item"]["kind"] == kind for kind, entries in valid.items() for entry in entries)
    assert len(ids) == len(items) and all(ids)
