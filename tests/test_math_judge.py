"""Math judging as pure functions: extraction, verification verdicts, agreement with labelled data."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
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


@contextlib.contextmanager
def _installed_afresh(install: Callable[[bool], bool]) -> Iterator[None]:
    """One of ``math_judge``'s patches over math-verify taken off, installed anew (its memo empty)
    for the test, and taken off again afterwards."""
    install(False)
    assert install(True)
    try:
        yield
    finally:
        install(False)


@pytest.fixture
def number_memo() -> Iterator[dict[tuple[str, bool], Any]]:
    """The number memo installed afresh (empty), and latex2sympy's own method put back afterwards."""
    with _installed_afresh(math_judge.memoise_number_parsing):
        yield _Latex2Sympy.parse_number.memo


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


@pytest.fixture
def regex_cache() -> Iterator[None]:
    """The extraction-pattern cache installed afresh (empty); math-verify's own put back afterwards."""
    with _installed_afresh(math_judge.cache_extraction_regexes):
        yield


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


def verdicts_without_and_with(
    install: Callable[[bool], bool], between: Callable[[], None] = lambda: None
) -> tuple[list[str], list[str]]:
    """``labelled_verdicts`` with one of ``math_judge``'s patches taken off, then (after
    ``between``) with it installed; taken off again afterwards."""
    try:
        install(False)
        without = labelled_verdicts()
        between()
        assert install(True)
        with_it = labelled_verdicts()
    finally:
        install(False)
    assert {"correct", "wrong_answer"} <= set(with_it)
    return without, with_it


def test_the_kept_patterns_change_no_verdict() -> None:
    """The labelled rollouts and the warm-up pairs judged with math-verify's own pattern cache and
    then with rljudge's (math-verify's parse cache emptied before each pass): the same verdicts."""
    as_it_comes, kept = verdicts_without_and_with(math_judge.cache_extraction_regexes)
    assert kept == as_it_comes


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


@pytest.fixture
def plain_shortcut() -> Iterator[None]:
    """The plain-number shortcut installed; math-verify's own call of latex2sympy put back afterwards."""
    with _installed_afresh(math_judge.shortcut_plain_numbers):
        yield


def _grammar(text: str, is_real: bool) -> Any:
    """What latex2sympy's grammar builds for ``text``, called as math-verify calls it."""
    return mv_parser.latex2sympy.original(text, is_real=is_real, convert_degrees=False, normalization_config=None)


def _same_number(a: Any, b: Any) -> bool:
    return (type(a), sympy.srepr(a), getattr(a, "_prec", None)) == (type(b), sympy.srepr(b), getattr(b, "_prec", None))


PLAIN_NUMBERS = [str(i) for i in range(0, 1200)] + [
    "-0", "-7", "-3969", "007", "-007", "0.5", "-0.25", "10.0", "1.5000", "0.000001", "6.50",
    "12345678901234567890123456789", "3.14159265358979323846264338327950288", "-2.718281828459045235360287",
]  # fmt: skip


@pytest.fixture
def grammar_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The strings latex2sympy's ANTLR parser is built for (its ``create_parser``, counted)."""
    calls: list[str] = []
    create = _Latex2Sympy.create_parser

    def counted(self: Any, latex_str: str) -> Any:
        calls.append(latex_str)
        return create(self, latex_str)

    monkeypatch.setattr(_Latex2Sympy, "create_parser", counted)
    return calls


@pytest.mark.usefixtures("plain_shortcut")
def test_plain_numbers_get_what_the_grammar_builds_without_it(grammar_calls: list[str]) -> None:
    """Every plain number, real or complex: the same sympy number (type, structure, a Float's
    precision) as latex2sympy's grammar builds, and the grammar is not run for it."""
    for text in PLAIN_NUMBERS:
        for is_real in (True, False):
            expected = _grammar(text, is_real)
            grammar_calls.clear()
            got = mv_parser.latex2sympy(text, is_real=is_real, convert_degrees=False, normalization_config=None)
            assert _same_number(got, expected), text
            assert grammar_calls == [], text


@pytest.mark.usefixtures("plain_shortcut")
@given(st.from_regex(math_judge.PLAIN_NUMBER, fullmatch=True))
def test_any_plain_number_gets_what_the_grammar_builds(text: str) -> None:
    got = mv_parser.latex2sympy(text, is_real=True, convert_degrees=False, normalization_config=None)
    assert _same_number(got, _grammar(text, True))


@pytest.mark.usefixtures("plain_shortcut")
@pytest.mark.parametrize(
    "text",
    ["1,000", "1e5", "2.", ".5", " 42", "42 ", "4a", "\\frac{1}{2}", "-\\frac12", "3\\%", "\u0663", "42\n", "--4"],
)
def test_anything_else_goes_through_the_grammar(text: str, grammar_calls: list[str]) -> None:
    """Strings that are not plain ASCII numbers (commas, exponents, spaces, other digits) are parsed
    by latex2sympy as they come: the same result (or the same failure), the grammar run."""
    try:
        expected: Any = _grammar(text, True)
    except Exception as exc:  # latex2sympy rejects some of them: the shortcut must too, alike
        expected = type(exc)
    grammar_calls.clear()
    try:
        got: Any = mv_parser.latex2sympy(text, is_real=True, convert_degrees=False, normalization_config=None)
    except Exception as exc:
        got = type(exc)
    assert got == expected
    assert grammar_calls, text


@pytest.mark.usefixtures("plain_shortcut")
def test_other_callers_of_latex2sympy_get_it_as_it_comes(grammar_calls: list[str]) -> None:
    """Only math-verify's call (no normalisation, its keyword arguments) takes the shortcut."""
    assert mv_parser.latex2sympy("42") == 42  # latex2sympy's default normalisation
    assert mv_parser.latex2sympy("42", variable_values={}, normalization_config=None) == 42
    assert len(grammar_calls) == 2


def test_the_plain_shortcut_changes_no_verdict(grammar_calls: list[str]) -> None:
    """The labelled rollouts and the warm-up pairs judged with the grammar for every number and
    then with the shortcut (math-verify's parse cache emptied before each pass): the same verdicts,
    and the grammar run fewer times."""
    grammar_runs: list[int] = []

    def count_and_restart() -> None:
        grammar_runs.append(len(grammar_calls))
        grammar_calls.clear()

    as_it_comes, shortcut = verdicts_without_and_with(math_judge.shortcut_plain_numbers, count_and_restart)
    assert shortcut == as_it_comes
    assert 0 < len(grammar_calls) < grammar_runs[0] * 0.8


def test_without_latex2sympy_in_math_verify_judging_goes_on_as_before(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A math-verify release that no longer calls latex2sympy by that name (faked: a real one cannot
    be installed for a test): no shortcut, a warning, and judging still works."""
    math_judge.shortcut_plain_numbers(False)
    monkeypatch.delattr(mv_parser, "latex2sympy")
    with caplog.at_level("WARNING", logger="rljudge.workers.math_judge"):
        assert not math_judge.shortcut_plain_numbers(True)
    assert "plain numbers" in caplog.text
    assert not hasattr(mv_parser, "latex2sympy")
    monkeypatch.undo()
    assert verify_answer("\\boxed{0.5}", "\\boxed{\\frac{1}{2}}")["verdict"] == "correct"


def test_judge_processes_start_with_the_memos_and_the_shortcut() -> None:
    """What the worker runs before forking (``rljudge_workers.main.preload``) installs the number
    memo, the kept extraction patterns and the plain-number shortcut; each can be taken off again."""
    patches = (
        math_judge.memoise_number_parsing,
        math_judge.cache_extraction_regexes,
        math_judge.shortcut_plain_numbers,
    )
    for take_off in patches:
        take_off(False)
    try:
        math_judge.preload()
        assert hasattr(_Latex2Sympy.parse_number, "memo")
        assert mv_parser.lazy_latex_regex.cache_info().maxsize == math_judge.REGEX_CACHE_SIZE
        assert hasattr(mv_parser.latex2sympy, "original")
    finally:
        for take_off in patches:
            take_off(False)
    assert not hasattr(_Latex2Sympy.parse_number, "memo")
    assert mv_parser.lazy_latex_regex.cache_info().maxsize == 1
    assert not hasattr(mv_parser.latex2sympy, "original")
