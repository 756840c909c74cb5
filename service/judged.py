"""What exactly is judged for an item, and the content key of that input.

Pure functions shared by the gateway, which groups a batch's items that would be judged on the
same input (so each distinct input is queued once), and the workers, which judge those inputs and
key the verdict cache by them.

Math: the text of the response that ``rljudge.extract.answer_source`` picks (the last boxed answer
after the reasoning; the client package holds it, so that clients can send only that text), against
the gold as a boxed answer, keyed with the grader's version.
"""

from __future__ import annotations

import functools
import hashlib
from importlib.metadata import version

from rljudge.extract import answer_source, last_boxed

#: Bumped whenever judging semantics change, so old cache entries stop matching.
JUDGE_VERSION = "1"
MATH_GRADER = f"math-verify {version('math-verify')}"


def digest(*parts: str) -> str:
    """A content hash of ``parts`` (and ``JUDGE_VERSION``), NUL-separated."""
    return hashlib.sha256("\x00".join((JUDGE_VERSION, *parts)).encode("utf-8", "surrogatepass")).hexdigest()


@functools.lru_cache(maxsize=256)  # a GRPO group shares its gold: computed once a group
def gold_source(gold: str) -> str:
    """Golds are bare answers (``"\\frac{1}{2}"``, ``"420"``); judge them as a boxed answer."""
    boxed = last_boxed(gold)
    return "\\boxed{" + (boxed if boxed is not None else gold).strip() + "}"


#: Items whose response and gold together are up to this long (as ``JudgeClient`` sends them: the
#: response trimmed to its answer) have their ``math_input`` memoised: a GRPO group's rollouts
#: repeat a few final answers, so the gateway, which keys every item of a step, computes each
#: distinct one once (0.25 instead of 1.8 ms for a step of 1,024). Longer ones are not kept.
MEMO_CHARS = 512


def math_input(item: dict) -> tuple[str, str, str]:
    """``(key, source, gold)`` of a validated math item: what math-verify judges and its key."""
    response, strip_think, gold = item.get("response") or "", item.get("strip_think", True), item["gold"]
    if len(response) + len(gold) <= MEMO_CHARS:
        return _short_math_input(response, strip_think, gold)
    return _math_input(response, strip_think, gold)


def _math_input(response: str, strip_think: bool, gold: str) -> tuple[str, str, str]:
    source = answer_source(response, strip_think)
    judged_gold = gold_source(gold)
    return digest("math", MATH_GRADER, source, judged_gold), source, judged_gold


_short_math_input = functools.lru_cache(maxsize=4096)(_math_input)
