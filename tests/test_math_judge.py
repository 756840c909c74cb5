"""Math judging as pure functions: extraction, verification verdicts, agreement with labelled data."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st
from latex2sympy2_extended.latex2sympy2 import _Latex2Sympy
from math_verify import LatexExtractionConfig
from math_verify import parser as mv_parser
from math_verify.parser import parse_latex_cached

from rljudge.extract import answer_source, last_boxed, trimmed_response
from rljudge_service.judged import MATH_GRADER, MEMO_CHARS, _short_math_input, gold_source, math_input
from rljudge_workers import math_judge
from rljudge_workers.math_judge import WARM_UP, verify_answer, verify_many

from .conftest import DATA


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"so \boxed{4}.", "4"),
        (r"\boxed{1} then \boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"nested \boxed{\{1, 2\} \cup \{3\}}", r"\{1, 2\} \cup \{3\}"),
        (r"\fbox{7}", "7"),
        (r"\boxed{3} and an unclosed \boxed{4", "3"),
        ("no box here", None),
    ],
)
def test_last_boxed(text: str, expected: str | None) -> None:
    assert last_boxed(text) == expected


def _last_boxed_by_characters(text: str) -> str | None:
    """The reference: the last marker whose braces balance, matched one character at a time."""
    for start in sorted(
        {m.start() for marker in ("\\boxed", "\\fbox") for m in re.finditer(re.escape(marker), text)}, reverse=True
    ):
        brace = text.find("{", start)
        if brace == -1 or text[start:brace].strip() not in ("\\boxed", "\\fbox"):
            continue
        depth = 0
        for pos in range(brace, len(text)):
            depth += {"{": 1, "}": -1}.get(text[pos], 0)
            if depth == 0:
                return text[brace + 1 : pos]
    return None


@given(st.lists(st.sampled_from(["\\boxed", "\\fbox", "{", "}", " ", "x", "\\frac", "12", "\\{"]), max_size=30))
def test_last_boxed_matches_a_character_by_character_scan(parts: list[str]) -> None:
    text = "".join(parts)
    assert last_boxed(text) == _last_boxed_by_characters(text)


@given(
    st.lists(
        st.sampled_from(["\\boxed", "\\fbox", "{", "}", " ", "x", "12", "<think>", "</think>", "\n", "so"]),
        max_size=30,
    ),
    st.booleans(),
)
def test_a_trimmed_response_is_judged_as_the_whole_one(parts: list[str], strip_think: bool) -> None:
    """What the client sends instead of a math response gives the server the same judged input."""
    response = "".join(parts)
    item = {"response": response, "gold": "12", "strip_think": strip_think}
    trimmed = trimmed_response(response, strip_think)
    assert len(trimmed) <= len(response)
    assert math_input({**item, "response": trimmed}) == math_input(item)


def test_a_short_item_is_keyed_once_and_like_a_long_one() -> None:
    item = {"response": r"so \boxed{\frac{1}{2}}", "gold": r"\frac{2}{4} (memo test)", "strip_think": True}
    long_item = {**item, "response": "x" * MEMO_CHARS + item["response"]}  # the same answer, not memoised
    before = _short_math_input.cache_info()
    assert math_input(item) == math_input(dict(item)) == math_input(long_item)
    after = _short_math_input.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 1)
    assert math_input({**item, "gold": "0.5"})[0] != math_input(item)[0]  # what is judged is in the key


def test_a_long_rollout_is_trimmed_to_its_boxed_answer() -> None:
    rollout = "<think>try 3, then \\boxed{3}?</think>Step 1 ... " * 40 + "so \\boxed{\\frac{1}{2}}."
    assert trimmed_response(rollout, strip_think=True) == "\\boxed{\\frac{1}{2}}"
    assert trimmed_response("no box, just 42", strip_think=True) == "no box, just 42"  # nothing shorter to send


def test_answer_source_strips_think_only_when_asked() -> None:
    response = r"<think>maybe \boxed{5}</think> final: \boxed{4}"
    assert answer_source(response, strip_think=True) == r"\boxed{4}"
    assert answer_source(r"<think>only \boxed{5}</think> no box", strip_think=True) == " no box"
    assert answer_source(r"<think>only \boxed{5}</think> no box", strip_think=False) == r"\boxed{5}"


def judge(response: str, gold: str, strip_think: bool = True) -> str:
    return verify_answer(answer_source(response, strip_think), gold_source(gold))["verdict"]


@pytest.mark.parametrize(
    ("response", "gold"),
    [
        (r"The answer is \boxed{\frac{1}{2}}", "0.5"),
        (r"\boxed{\dfrac{3}{6}}", r"\frac12"),
        ("The answer is 42", "42"),
        (r"$x = \boxed{2\sqrt{2}}$", r"\sqrt{8}"),
        (r"\boxed{(1, 2)}", "(1,2)"),
    ],
)
def test_equivalent_answers_are_correct(response: str, gold: str) -> None:
    assert judge(response, gold) == "correct"


def test_wrong_answer() -> None:
    assert judge(r"\boxed{3}", "4") == "wrong_answer"


def test_no_answer_when_nothing_extractable() -> None:
    assert judge("I give up.", r"\frac{1}{2}") == "no_answer"


def test_malformed_latex_is_not_a_crash() -> None:
    assert judge(r"\boxed{\frac{1}{", "1") in {"no_answer", "wrong_answer"}


def test_unparseable_gold_raises_value_error() -> None:
    with pytest.raises(ValueError, match="gold"):
        verify_answer(r"\boxed{1}", gold_source(""))


def test_agrees_with_labelled_rollouts() -> None:
    """Real Qwen2.5-Math responses whose labels come from Qwen's rule grader (see data/LICENSES.md)."""
    rows = [json.loads(line) for line in (DATA / "math" / "qwen25math_labelled_subset.jsonl").open()]
    pairs = [
        (resp, row["gt"], label) for row in rows for resp, label in zip(row["responses"], row["labels"], strict=True)
    ]
    agree = sum((judge(resp, gold) == "correct") == label for resp, gold, label in pairs)
    assert len(pairs) == 80
    assert agree >= 78, f"only {agree}/80 verdicts agree with the labels"


def test_grader_names_its_version() -> None:
    assert MATH_GRADER.startswith("math-verify 0.")


def test_the_warm_up_pairs_exercise_both_verdicts_without_errors() -> None:
    """``WARM_UP`` (judged before the worker forks) stays valid input for the installed math-verify:
    no pair raises or fails to parse, and both the equal and the unequal paths are taken."""
    pairs = [(f"\\boxed{{{answer}}}", f"\\boxed{{{gold}}}") for answer, gold in WARM_UP]
    outcomes = [judgement for judgement, _ms in verify_many(pairs)]
    assert not [o for o in outcomes if "error" in o]
    verdicts = {o["verdict"] for o in outcomes}
    assert {"correct", "wrong_answer"} <= verdicts


@pytest.fixture
def number_memo() -> Iterator[dict[tuple[str, bool], Any]]:
    """The number memo installed afresh (empty), and latex2sympy's own method put back afterwards."""
    math_judge.memoise_number_parsing(False)
    assert math_judge.memoise_number_parsing(True)
    yield _Latex2Sympy.parse_number.memo
    math_judge.memoise_number_parsing(False)


NUMBER_TOKENS = ["0", "7", "007", "1,000", "3.14159", "0.50", "2.", ".5", "1e5", "2.5E-3", "12345678901234567890"]


def test_the_number_memo_returns_what_latex2sympy_builds(number_memo: dict[tuple[str, bool], Any]) -> None:
    original = _Latex2Sympy.parse_number.original
    for text in NUMBER_TOKENS:
        expected = original(None, text)
        for _ in range(2):  # built, then remembered
            number = _Latex2Sympy.parse_number(None, text)
            assert (type(number), number) == (type(expected), expected), text
            assert getattr(number, "_prec", None) == getattr(expected, "_prec", None), text  # a Float's precision
        assert number is number_memo[text, True]
    assert {text for text, _evaluate in number_memo} == set(NUMBER_TOKENS)
    with sympy.evaluate(False):  # sympy's switch is part of the key
        assert _Latex2Sympy.parse_number(None, "42") == 42
    assert ("42", False) in number_memo
    long_token = "1" * (math_judge.NUMBER_MEMO_CHARS + 1)
    assert _Latex2Sympy.parse_number(None, long_token) == int(long_token)
    assert (long_token, True) not in number_memo  # long tokens are not kept


def labelled_verdicts() -> list[str]:
    """The verdicts of the labelled rollouts and the warm-up pairs, math-verify's own parse cache
    emptied first (so that a pass parses everything itself)."""
    rows = [json.loads(line) for line in (DATA / "math" / "qwen25math_labelled_subset.jsonl").open()]
    pairs = [(answer_source(resp, True), gold_source(row["gt"])) for row in rows for resp in row["responses"]]
    pairs += [(f"\\boxed{{{answer}}}", f"\\boxed{{{gold}}}") for answer, gold in WARM_UP]
    parse_latex_cached.cache_clear()
    return [judgement.get("verdict", judgement.get("error", "")) for judgement, _ms in verify_many(pairs)]


@pytest.mark.usefixtures("number_memo")
def test_the_number_memo_changes_no_verdict() -> None:
    """The labelled rollouts and the warm-up pairs, judged with latex2sympy's own number parsing and
    then with the memo (math-verify's own parse cache emptied before each pass): the same verdicts."""
    math_judge.memoise_number_parsing(False)
    as_it_comes = labelled_verdicts()
    math_judge.memoise_number_parsing(True)
    number_memo = _Latex2Sympy.parse_number.memo
    memoised = labelled_verdicts()
    assert memoised == as_it_comes
    assert len(number_memo) >= 20  # the pass went through the memo
    assert {"correct", "wrong_answer"} <= set(memoised)


def test_judge_processes_start_with_the_number_memo() -> None:
    """What the worker runs before forking (``rljudge_workers.main.preload``) installs it."""
    math_judge.memoise_number_parsing(False)
    try:
        math_judge.preload()
        assert hasattr(_Latex2Sympy.parse_number, "memo")
    finally:
        math_judge.memoise_number_parsing(False)
    assert not hasattr(_Latex2Sympy.parse_number, "memo")


@pytest.fixture
def regex_cache() -> Iterator[None]:
    """The extraction-pattern cache installed afresh (empty); math-verify's own put back afterwards."""
    math_judge.cache_extraction_regexes(False)
    assert math_judge.cache_extraction_regexes(True)
    yield
    math_judge.cache_extraction_regexes(False)


def _patterns(built: list[tuple[re.Pattern[str], int]]) -> list[tuple[str, int, int]]:
    return [(pattern.pattern, pattern.flags, priority) for pattern, priority in built]


@pytest.mark.usefixtures("regex_cache")
def test_the_extraction_patterns_are_built_once_a_configuration() -> None:
    """``verify_answer`` alternates two LaTeX configurations (the gold's and the answer's): with the
    cache each one's patterns are built once, and they are what math-verify's own builder makes."""
    assert mv_parser.lazy_latex_regex.cache_info().maxsize == math_judge.REGEX_CACHE_SIZE
    for answer, gold in WARM_UP[:10]:
        verify_answer(f"\\boxed{{{answer}}}", f"\\boxed{{{gold}}}")
    info = mv_parser.lazy_latex_regex.cache_info()
    assert (info.misses, info.currsize) == (2, 2)
    assert info.hits >= 18
    build = mv_parser.lazy_latex_regex.original.__wrapped__
    for config in (LatexExtractionConfig(), LatexExtractionConfig(boxed_match_priority=0)):
        assert _patterns(mv_parser.lazy_latex_regex(config)) == _patterns(build(config))


def test_math_verify_alone_rebuilds_the_patterns_at_every_other_parse() -> None:
    """Why the cache exists: math-verify's own keeps one configuration's patterns, so the gold's and
    the answer's parses evict each other (if a release keeps more, the cache can go)."""
    math_judge.cache_extraction_regexes(False)
    mv_parser.lazy_latex_regex.cache_clear()
    for answer, gold in WARM_UP[:10]:
        verify_answer(f"\\boxed{{{answer}}}", f"\\boxed{{{gold}}}")
    assert mv_parser.lazy_latex_regex.cache_info().misses >= 19


def test_the_kept_patterns_change_no_verdict() -> None:
    """The labelled rollouts and the warm-up pairs judged with math-verify's own pattern cache and
    then with rljudge's (math-verify's parse cache emptied before each pass): the same verdicts."""
    try:
        math_judge.cache_extraction_regexes(False)
        as_it_comes = labelled_verdicts()
        assert math_judge.cache_extraction_regexes(True)
        kept = labelled_verdicts()
    finally:
        math_judge.cache_extraction_regexes(False)
    assert kept == as_it_comes
    assert {"correct", "wrong_answer"} <= set(kept)


def test_judge_processes_start_with_the_extraction_patterns_kept() -> None:
    """What the worker runs before forking (``rljudge_workers.main.preload``) installs the cache."""
    math_judge.cache_extraction_regexes(False)
    try:
        math_judge.preload()
        assert mv_parser.lazy_latex_regex.cache_info().maxsize == math_judge.REGEX_CACHE_SIZE
    finally:
        math_judge.cache_extraction_regexes(False)
        math_judge.memoise_number_parsing(False)
    assert mv_parser.lazy_latex_regex.cache_info().maxsize == 1


def test_without_the_builder_judging_goes_on_as_before(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A math-verify release without a cached ``lazy_latex_regex`` (faked: a real one cannot be
    installed for a test): no cache, a warning, and judging still works."""
    math_judge.cache_extraction_regexes(False)
    uncached = mv_parser.lazy_latex_regex.__wrapped__
    monkeypatch.setattr(mv_parser, "lazy_latex_regex", uncached)
    with caplog.at_level("WARNING", logger="rljudge.workers.math_judge"):
        assert not math_judge.cache_extraction_regexes(True)
    assert "lazy_latex_regex" in caplog.text
    assert mv_parser.lazy_latex_regex is uncached
    assert verify_answer("\\boxed{0.5}", "\\boxed{\\frac{1}{2}}")["verdict"] == "correct"
