"""Math judging with HuggingFace math-verify: pure functions, no Redis.

``rljudge_service.judged.answer_source`` decides what text of a response is judged (cheap, run
where the item is prepared); ``verify_answer`` runs math-verify on it (expensive, run in a Pebble
process with a hard kill, because math-verify's own signal-based timeouts fail silently off the
main thread and some inputs, such as power towers, never finish).
"""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger("rljudge.workers.math_judge")


def preload() -> None:
    """Import math-verify and warm its parsers, so forked processes start ready."""
    # math-verify warns on every call that its own timeouts are disabled: we enforce our own.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    verify_answer("\\boxed{1}", "\\boxed{\\frac{1}{2}}")


def verify_answer(source: str, gold: str) -> dict[str, Any]:
    """Judge ``source`` against ``gold`` (from ``rljudge_service.judged``). Runs in a pool process.

    Returns a judgement ``{"verdict": "correct"|"wrong_answer"|"no_answer", "detail": str|None}``;
    raises ``ValueError`` when the gold itself cannot be parsed (a bad item, not a wrong answer).
    """
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    gold_parsed = parse(gold, [LatexExtractionConfig(), ExprExtractionConfig()], parsing_timeout=None)
    if not gold_parsed:
        raise ValueError("the gold answer could not be parsed")
    answer = parse(
        source,
        [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()],
        parsing_timeout=None,
    )
    if not answer:
        return {"verdict": "no_answer", "detail": "no answer could be extracted"}
    if verify(gold_parsed, answer, timeout_seconds=None):
        return {"verdict": "correct", "detail": None}
    return {"verdict": "wrong_answer", "detail": None}


def verify_many(pairs: list[tuple[str, str]]) -> list[tuple[dict[str, Any], float]]:
    """``verify_answer`` over several ``(source, gold)`` pairs in one call (one round trip to the
    judge process), each with its judging time in ms. A pair whose gold cannot be parsed gives
    ``{"error": "value", "detail"}``; one where math-verify raised ``{"error": "exception", "detail"}``."""
    out: list[tuple[dict[str, Any], float]] = []
    for source, gold in pairs:
        started = time.perf_counter()
        try:
            judgement = verify_answer(source, gold)
        except ValueError as exc:
            judgement = {"error": "value", "detail": str(exc)}
        except Exception as exc:  # math-verify raised: the judge failed, not the model
            log.exception("math-verify raised")
            judgement = {"error": "exception", "detail": f"{type(exc).__name__}: {exc}"}
        out.append((judgement, (time.perf_counter() - started) * 1000.0))
    return out
