"""What exactly is judged for an item, and the content key of that input.

Pure functions shared by the gateway, which groups a batch's items that would be judged on the
same input (so each distinct input is queued once), and the workers, which judge those inputs and
key the verdict cache by them.

Math: the text after the last ``</think>`` when ``strip_think`` is set; within it the content of
the last ``\\boxed{...}`` (or ``\\fbox{...}``) when there is one, else the whole text (its tail)
through math-verify's LaTeX and plain-expression extraction. So two rollouts with the same final
boxed answer share one verification.
"""

from __future__ import annotations

import functools
import hashlib
from importlib.metadata import version

#: Bumped whenever judging semantics change, so old cache entries stop matching.
JUDGE_VERSION = "1"
MATH_GRADER = f"math-verify {version('math-verify')}"

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

_BOXED_MARKERS = ("\\boxed", "\\fbox")
#: Longest text handed to math-verify; longer answers are judged on their tail.
MAX_JUDGED_CHARS = 20_000


def digest(*parts: str) -> str:
    """A content hash of ``parts`` (and ``JUDGE_VERSION``), NUL-separated."""
    return hashlib.sha256("\x00".join((JUDGE_VERSION, *parts)).encode("utf-8", "surrogatepass")).hexdigest()


def think_format_error(response: str) -> str | None:
    """Why the response's reasoning block is malformed, or None when it has a closing ``</think>``."""
    if THINK_CLOSE in response:
        return None
    if THINK_OPEN in response:
        return "missing </think>"
    return "missing <think>"


def after_think(response: str) -> str:
    """The text after the last ``</think>``, or the whole response when there is none."""
    _head, sep, tail = response.rpartition(THINK_CLOSE)
    return tail if sep else response


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}``/``\\fbox{...}`` with balanced braces, or None."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
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
    text = after_think(response) if strip_think else response
    boxed = last_boxed(text)
    if boxed is not None:
        return "\\boxed{" + boxed.strip() + "}"
    return text[-MAX_JUDGED_CHARS:]


@functools.lru_cache(maxsize=256)  # a GRPO group shares its gold: computed once a group
def gold_source(gold: str) -> str:
    """Golds are bare answers (``"\\frac{1}{2}"``, ``"420"``); judge them as a boxed answer."""
    boxed = last_boxed(gold)
    return "\\boxed{" + (boxed if boxed is not None else gold).strip() + "}"


def math_input(item: dict) -> tuple[str, str, str]:
    """``(key, source, gold)`` of a validated math item: what math-verify judges and its key."""
    source = answer_source(item.get("response") or "", item.get("strip_think", True))
    gold = gold_source(item["gold"])
    return digest("math", MATH_GRADER, source, gold), source, gold
