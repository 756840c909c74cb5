"""Math judging with HuggingFace math-verify: pure functions, no Redis.

``rljudge.extract.answer_source`` decides what text of a response is judged (cheap, run
where the item is prepared); ``verify_answer`` runs math-verify on it (expensive, run in a Pebble
process with a hard kill, because math-verify's own signal-based timeouts fail silently off the
main thread and some inputs, such as power towers, never finish).
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("rljudge.workers.math_judge")


#: Answers of the shapes models give, each against a gold it does or does not equal: judged once
#: by ``warm_up``. Written for rljudge (no dataset's answers), so they teach math-verify's parsers
#: the forms, not any benchmark's solutions.
WARM_UP: tuple[tuple[str, str], ...] = (
    ("42", "42"), ("-7", "7"), ("3.5", "\\frac{7}{2}"), ("0.25", "25\\%"), ("\\frac{1}{2}", "0.5"),
    ("\\dfrac{3}{4}", "\\tfrac34"), ("-\\frac{5}{3}", "\\frac{-5}{3}"), ("2\\frac{1}{3}", "\\frac{7}{3}"),
    ("7/3", "\\frac{7}{3}"), ("\\sqrt{2}", "2^{1/2}"), ("2\\sqrt{3}", "\\sqrt{12}"), ("\\sqrt[3]{27}", "3"),
    ("\\frac{\\sqrt{3}}{2}", "\\sin 60^\\circ"), ("3\\pi", "3\\pi"), ("\\frac{\\pi}{4}", "45^\\circ"),
    ("e^{2}", "e^2"), ("\\ln 2", "\\log 2"), ("\\log_{2} 8", "3"), ("2^{10}", "1024"), ("10^{-3}", "0.001"),
    ("1.2 \\times 10^{5}", "120000"), ("x^2 + 2x + 1", "(x+1)^2"), ("\\frac{x+1}{x-1}", "\\frac{x-1}{x+1}"),
    ("a+b", "b+a"), ("\\cos^2\\theta + \\sin^2\\theta", "1"), ("x = 3", "3"), ("y = 2x + 1", "y = 1 + 2x"),
    ("x < 2", "x \\leq 2"), ("x \\geq -1", "[-1, \\infty)"), ("[0, 1)", "[0,1)"),
    ("(-\\infty, 2) \\cup (3, \\infty)", "(-\\infty,2)\\cup(3,\\infty)"), ("\\{1, 2, 3\\}", "\\{3,2,1\\}"),
    ("(1, 2)", "(1,2)"), ("(3, -4)", "(-4, 3)"), ("1, 2", "2, 1"), ("\\pm 2", "2, -2"), ("\\infty", "\\infty"),
    ("3 + 4i", "4i + 3"), ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
    ("\\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}", "\\begin{pmatrix} 1 & 0 \\\\ 0 & 2 \\end{pmatrix}"),
    ("\\text{(B)}", "B"), ("\\text{yes}", "\\text{Yes}"), ("12 \\text{ cm}", "12"), ("90^\\circ", "90"),
    ("\\$5.00", "5"), ("\\binom{5}{2}", "10"), ("5!", "120"), ("\\left|x\\right|", "|x|"),
    ("\\lfloor 3.7 \\rfloor", "3"), ("\\sum_{k=1}^{n} k", "\\frac{n(n+1)}{2}"), ("\\tan^{-1}(1)", "\\frac{\\pi}{4}"),
    ("\\overline{AB}", "AB"), ("4\\sqrt{2} - 1", "4\\sqrt2-1"), ("\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}"),
    ("1{,}000", "1000"),
)  # fmt: skip


def _swap(owner: Any, name: str, enabled: bool, replace: Callable[[Any], Any]) -> bool:
    """Put ``replace(original)`` in place of ``owner.name`` (once: an installed replacement keeps
    the original as its ``original``), or, when not ``enabled``, the original back. Returns whether
    the replacement is installed. Shared by the judge processes' patches over math-verify."""
    current = getattr(owner, name)
    original = getattr(current, "original", current)
    if not enabled:
        setattr(owner, name, original)
        return False
    if current is not original:
        return True
    replacement = replace(original)
    replacement.original = original
    setattr(owner, name, replacement)
    return True


#: Number tokens remembered per judge process by ``memoise_number_parsing`` (each a few hundred
#: bytes; only tokens up to ``NUMBER_MEMO_CHARS`` long are kept).
NUMBER_MEMO_SIZE = 8192
NUMBER_MEMO_CHARS = 40


def memoise_number_parsing(enabled: bool = True) -> bool:
    """Remember the sympy number that latex2sympy (math-verify's LaTeX parser) builds for each
    number token, per process (``enabled=False`` puts latex2sympy's own method back). It builds
    every one with ``sympy.Number(text)``, which runs the text through sympy's whole expression
    parser (tokenizer, transformations, ``eval``): about a quarter of the CPU of judging a new
    answer (``python -m loadtests.bench_memos``), spent on the same few tokens ("1", "2", "10",
    "0.5") over and over. The number depends on the text alone (and on sympy's ``evaluate``
    switch, part of the key); sympy numbers are immutable, so sharing one is what sympy's own cache
    does. A token that raises is not remembered. Returns whether the memo is installed (False, with
    a warning, when latex2sympy no longer has the method: judging is then as before)."""
    from latex2sympy2_extended import latex2sympy2
    from sympy.core.parameters import global_parameters

    parser = getattr(latex2sympy2, "_Latex2Sympy", None)
    current = getattr(parser, "parse_number", None)
    if current is None:
        log.warning("latex2sympy has no _Latex2Sympy.parse_number: number tokens are not memoised")
        return False

    def memoised(original: Any) -> Any:
        memo: dict[tuple[str, bool], Any] = {}

        def parse_number(self: Any, text: str) -> Any:
            key = (text, bool(global_parameters.evaluate))
            number = memo.get(key)
            if number is None:
                number = original(self, text)
                if len(text) <= NUMBER_MEMO_CHARS and len(memo) < NUMBER_MEMO_SIZE:
                    memo[key] = number
            return number

        parse_number.memo = memo  # type: ignore[attr-defined]
        return parse_number

    return _swap(parser, "parse_number", enabled, memoised)


#: LaTeX extraction configurations whose compiled patterns ``cache_extraction_regexes`` keeps.
REGEX_CACHE_SIZE = 8


def cache_extraction_regexes(enabled: bool = True) -> bool:
    """Keep the LaTeX extraction patterns of several configurations, per process, instead of one
    (``enabled=False`` puts math-verify's own cache back). math-verify builds them in
    ``parser.lazy_latex_regex`` (it assembles seven long patterns from many alternatives, then
    compiles each through re's own cache), which remembers the last configuration only
    (``lru_cache(maxsize=1)``). ``verify_answer`` parses the gold with the default configuration
    and the answer with boxed answers first, so every parse rebuilt the patterns the previous one
    had replaced: about 0.05 ms a parse, a quarter of the CPU of judging a batch item by item, a
    seventh of judging a GRPO step's distinct inputs (``python -m loadtests.bench_memos --memo
    regexes``). The patterns depend on the configuration alone (a frozen dataclass, the cache's
    key) and are never modified. Returns whether the cache is installed (False, with a warning,
    when math-verify no longer has that function: judging is then as before)."""
    from math_verify import parser

    current = getattr(parser, "lazy_latex_regex", None)
    original = getattr(current, "original", current)
    build = getattr(original, "__wrapped__", None)
    if build is None:
        log.warning("math-verify has no cached parser.lazy_latex_regex: extraction patterns are rebuilt as before")
        return False
    return _swap(
        parser, "lazy_latex_regex", enabled, lambda _original: functools.lru_cache(maxsize=REGEX_CACHE_SIZE)(build)
    )


#: The LaTeX strings ``shortcut_plain_numbers`` hands straight to latex2sympy's number parser: an
#: optionally negative integer or decimal in ASCII digits, nothing else (no spaces, commas, exponents).
PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")

#: The keyword arguments math-verify passes latex2sympy (``parser.parse_latex_cached``); a call with
#: any other goes to latex2sympy as it comes.
_MATH_VERIFY_ARGUMENTS = frozenset({"is_real", "convert_degrees", "normalization_config"})


def shortcut_plain_numbers(enabled: bool = True) -> bool:
    """Build the sympy number of a LaTeX string that is a plain number ("42", "-7", "0.25") with
    latex2sympy's own number parser, skipping its ANTLR grammar (``enabled=False`` puts math-verify's
    call back). math-verify parses every extracted answer and every gold with latex2sympy, whose
    generated ANTLR parser walks some 20 grammar rules to reach a lone number token and ends up in
    ``_Latex2Sympy.parse_number(text)`` (negated by its unary-minus rule). Most answers and golds of
    MATH, and all of AIME, are integers: with the other memos in place, the shortcut saves 38% of
    the CPU of judging the benchmark's one-item answers (0.56 to 0.35 ms), 20% of a GRPO step's
    distinct inputs, 11% of 1,024-item batches of real responses (``python -m loadtests.bench_memos
    --memo plain``). Taken
    only for math-verify's call (no normalisation, its keyword arguments) on a string that
    ``PLAIN_NUMBER`` matches whole, where the grammar builds exactly that (structure and a Float's
    precision alike: ``tests/test_math_judge.py`` checks it against the grammar). Returns whether
    the shortcut is installed (False, with a warning, when math-verify or latex2sympy no longer has
    the names it relies on: judging is then as before)."""
    from latex2sympy2_extended import latex2sympy2
    from math_verify import parser

    current = getattr(parser, "latex2sympy", None)
    numbers = getattr(latex2sympy2, "_Latex2Sympy", None)
    if current is None or not hasattr(numbers, "parse_number"):
        log.warning("math-verify or latex2sympy changed: plain numbers go through latex2sympy's grammar")
        return False

    def shortcut(original: Any) -> Any:
        def latex2sympy(latex_str: str, *args: Any, **kwargs: Any) -> Any:
            if (
                not args
                and kwargs.get("normalization_config", False) is None
                and kwargs.keys() <= _MATH_VERIFY_ARGUMENTS
                and PLAIN_NUMBER.fullmatch(latex_str)
            ):
                if latex_str[0] == "-":  # the grammar's unary minus: the number token's, negated
                    return -numbers.parse_number(None, latex_str[1:])  # type: ignore[union-attr]
                return numbers.parse_number(None, latex_str)  # type: ignore[union-attr]
            return original(latex_str, *args, **kwargs)

        return latex2sympy

    return _swap(parser, "latex2sympy", enabled, shortcut)


def preload(memoise_numbers: bool = True, cache_regexes: bool = True, plain_numbers: bool = True) -> None:
    """Import math-verify (its logging quietened; number tokens memoised unless not
    ``memoise_numbers``, extraction patterns kept unless not ``cache_regexes``), so forked processes
    start with it loaded; plain numbers parsed without latex2sympy's grammar unless not
    ``plain_numbers``."""
    # math-verify warns on every call that its own timeouts are disabled: we enforce our own.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    memoise_number_parsing(memoise_numbers)
    cache_extraction_regexes(cache_regexes)
    shortcut_plain_numbers(plain_numbers)
    verify_answer("\\boxed{1}", "\\boxed{\\frac{1}{2}}")


def warm_up(memoise_numbers: bool = True, cache_regexes: bool = True, plain_numbers: bool = True) -> None:
    """Judge ``WARM_UP`` once (a second or two). math-verify imports
    parts of sympy and builds its LaTeX parser's prediction tables lazily, on first use, so a fresh
    process judges its first answers about twice as slowly as a warm one. The worker warms up before
    forking: every worker, and every Pebble process that replaces one killed at a time limit,
    starts warm (the benchmark's "fresh judge process" rows measure it). ``memoise_numbers``,
    ``cache_regexes`` and ``plain_numbers``: see ``preload``."""
    preload(memoise_numbers, cache_regexes, plain_numbers)
    verify_many([("\\boxed{" + answer + "}", "\\boxed{" + gold + "}") for answer, gold in WARM_UP])


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
