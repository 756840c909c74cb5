"""The text of a math response that is judged: pure functions (standard library only) shared by
the server, which judges exactly this text and keys its verdict cache by it, and the client, which
sends only this text instead of the whole response (``JudgeClient(trim_math_responses=True)``).

The text after the last ``</think>`` when ``strip_think`` is set; within it, ``\\boxed{...}``
holding the content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) with balanced braces
when there is one, else the whole text (its last ``MAX_JUDGED_CHARS`` characters), which
math-verify's LaTeX and plain-expression extraction then searches. So two rollouts with the same
final boxed answer share one verification.
"""

from __future__ import annotations

__all__ = [
    "MAX_JUDGED_CHARS",
    "THINK_CLOSE",
    "THINK_OPEN",
    "after_think",
    "answer_source",
    "last_boxed",
    "think_format_error",
    "trimmed_response",
]

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

_BOXED_MARKERS = ("\\boxed", "\\fbox")
#: Longest text handed to math-verify; longer answers are judged on their tail.
MAX_JUDGED_CHARS = 20_000


def think_format_error(response: str) -> str | None:
    """Why the response's reasoning block is malformed, or None when it has a closing ``</think>``."""
    if THINK_CLOSE in response:
        return None
    if THINK_OPEN in response:
        return "missing </think>"
    return "missing <think>"


def after_think(response: str) -> str:
    """The text after the last ``</think>``, or the whole response when there is none."""
    end = response.rfind(THINK_CLOSE)  # not rpartition: no copy of the reasoning before it
    return response[end + len(THINK_CLOSE) :] if end != -1 else response


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}``/``\\fbox{...}`` with balanced braces, or None."""
    boxed = text.rfind("\\boxed")
    # only an \fbox after the last \boxed can be the last marker: no scan of the whole text for one
    start = max(boxed, text.rfind("\\fbox", boxed + 1))
    while start != -1:
        brace = text.find("{", start)
        if brace != -1 and text[start:brace].strip() in _BOXED_MARKERS:
            end = _closing_brace(text, brace)
            if end != -1:
                return text[brace + 1 : end]
        # unbalanced or not followed by a brace: try the previous marker
        start = max(text.rfind("\\boxed", 0, start), text.rfind("\\fbox", 0, start))
    return None


def _closing_brace(text: str, brace: int) -> int:
    """The position of the ``}`` that closes the ``{`` at ``brace``, or -1. Jumps from one closing
    brace to the next, counting the opening ones between them in C (``str.count``): a
    character-by-character loop in Python cost more than the rest of ``math_input`` together."""
    depth, pos = 1, brace + 1
    while True:
        close = text.find("}", pos)
        if close == -1:
            return -1
        depth += text.count("{", pos, close) - 1
        if depth == 0:
            return close
        pos = close + 1


def answer_source(response: str, strip_think: bool) -> str:
    """The text of ``response`` that math-verify will judge (see the module docstring)."""
    return _source_and_box(response, strip_think)[0]


def _source_and_box(response: str, strip_think: bool) -> tuple[str, str | None]:
    """``answer_source``'s text, and the stripped content of its box when it is one."""
    text = after_think(response) if strip_think else response
    boxed = last_boxed(text)
    if boxed is not None:
        inner = boxed.strip()
        return "\\boxed{" + inner + "}", inner
    return text[-MAX_JUDGED_CHARS:], None


def trimmed_response(response: str, strip_think: bool) -> str:
    """What a client can send instead of ``response`` with the same verdict: ``answer_source``'s
    text when the server, applying ``answer_source`` to it again, gets that same text back (always,
    for the shapes answers take), else ``response`` itself."""
    source, inner = _source_and_box(response, strip_think)
    if len(source) >= len(response):
        return response
    # the usual case, decided without judging the source again: a box with balanced braces (as
    # ``last_boxed`` returns them) and no marker or </think> inside, so ``answer_source(source)``
    # finds this same box
    if inner is not None and THINK_CLOSE not in inner and "\\boxed" not in inner and "\\fbox" not in inner:
        return source  # (the markers of ``_BOXED_MARKERS``, spelled out: no generator per response)
    return source if answer_source(source, strip_think) == source else response
