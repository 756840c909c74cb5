"""Math judging with HuggingFace math-verify: pure functions, no Redis.

``answer_source`` decides what text of a response is judged (cheap, run in the worker);
``verify_answer`` runs math-verify on it (expensive, run in a Pebble process with a hard kill,
because math-verify's own signal-based timeouts fail silently off the main thread and some inputs,
such as power towers, never finish).

What is judged: the text after the last ``</think>`` when ``strip_think`` is set; within it the
content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) when there is one, else the whole text
through math-verify's LaTeX and plain-expression extraction. The judged text is also the verdict
cache's key, so two rollouts with the same final boxed answer share one verification.
"""

from __future__ import annotations

import logging
import time
from importlib.metadata import version
from typing import Any

from .rewards import THINK_CLOSE

log = logging.getLogger("rljudge.workers.math_judge")

GRADER = f"math-verify {version('math-verify')}"

_BOXED_MARKERS = ("\\boxed", "\\fbox")
#: Longest text handed to math-verify; longer answers are judged on their tail.
MAX_JUDGED_CHARS = 20_000


def after_think(response: str) -> str:
    """The text after the last ``</think>``, or the whole response when there is none."""
    _head, sep, tail = response.rpartition(THINK_CLOSE)
    return tail if sep else response


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}``/``\\fbox{...}`` with balanced braces, or None."""
    start = max(text.rfind(marker) for marker in _BOXED_MARKERS)
    while start != -1:
        brace = text.find("{", start)
        if brace != -1 and text[start:brace].strip() in _BOXED_MARKERS:
            depth = 0
            for pos in range(brace, len(text)):
                char = text[pos]
                if char == "{":
                    depth += 1
                elif char == "}":
                    depth -= 1
                    if depth == 0:
                        return text[brace + 1 : pos]
        # unbalanced or not followed by a brace: try the previous marker
        start = max(text.rfind(marker, 0, start) for marker in _BOXED_MARKERS)
    return None


def answer_source(response: str, strip_think: bool) -> str:
    """The text of ``response`` that math-verify will judge (see the module docstring)."""
    text = after_think(response) if strip_think else response
    boxed = last_boxed(text)
    if boxed is not None:
        return "\\boxed{" + boxed.strip() + "}"
    return text[-MAX_JUDGED_CHARS:]


def gold_source(gold: str) -> str:
    """Golds are bare answers (``"\\frac{1}{2}"``, ``"420"``); judge them as a boxed answer."""
    boxed = last_boxed(gold)
    return "\\boxed{" + (boxed if boxed is not None else gold).strip() + "}"


def preload() -> None:
    """Import math-verify and warm its parsers, so forked processes start ready."""
    # math-verify warns on every call that its own timeouts are disabled: we enforce our own.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    verify_answer("\\boxed{1}", "\\boxed{\\frac{1}{2}}")


def verify_answer(source: str, gold: str) -> dict[str, Any]:
    """Judge ``source`` against ``gold`` (both from the functions above). Runs in a pool process.

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
