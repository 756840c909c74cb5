"""Prompt sets with gold answers: a generated arithmetic task, or a JSONL file.

A ``Problem`` carries the prompt text, the gold answer the math judge verifies against, and
optionally a reference solution (used only by the supervised warm-up).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Problem", "arithmetic_problems", "load_jsonl_problems", "load_task"]


@dataclass(frozen=True)
class Problem:
    prompt: str
    gold: str
    solution: str | None = None


_OPS = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
}


def arithmetic_problems(n: int, *, max_operand: int = 20, ops: str = "+", seed: int = 0) -> list[Problem]:
    """``n`` distinct problems "a+b=" with 0 <= a, b < max_operand; the answer is ``\\boxed{a+b}``.

    The prompt is kept terse so that a character-level model sees short sequences.
    """
    for op in ops:
        if op not in _OPS:
            raise ValueError(f"unknown operator {op!r}; known: {sorted(_OPS)}")
    space = [(a, op, b) for a in range(max_operand) for b in range(max_operand) for op in ops]
    if n > len(space):
        raise ValueError(f"only {len(space)} distinct problems with max_operand={max_operand}, ops={ops!r}")
    rng = random.Random(seed)
    picked = rng.sample(space, n)
    problems = []
    for a, op, b in picked:
        answer = str(_OPS[op](a, b))
        problems.append(Problem(prompt=f"{a}{op}{b}=", gold=answer, solution=f"\\boxed{{{answer}}}"))
    return problems


def load_jsonl_problems(path: str | Path) -> list[Problem]:
    """One JSON object per line with ``prompt`` and ``gold`` (and an optional ``solution``)."""
    problems = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if "prompt" not in row or "gold" not in row:
                raise ValueError(f"{path}:{lineno}: each line needs `prompt` and `gold`")
            problems.append(Problem(prompt=str(row["prompt"]), gold=str(row["gold"]), solution=row.get("solution")))
    if not problems:
        raise ValueError(f"{path}: no problems")
    return problems


def load_task(
    name: str,
    *,
    path: str | None = None,
    num_problems: int = 256,
    eval_problems: int = 64,
    max_operand: int = 20,
    ops: str = "+",
    seed: int = 0,
) -> tuple[list[Problem], list[Problem]]:
    """(train, eval) problems of the named task: ``arithmetic`` or ``jsonl``."""
    if name == "arithmetic":
        every = arithmetic_problems(num_problems + eval_problems, max_operand=max_operand, ops=ops, seed=seed)
        return every[:num_problems], every[num_problems:]
    if name == "jsonl":
        if not path:
            raise ValueError("task `jsonl` needs task.path")
        every = load_jsonl_problems(path)
        k = min(eval_problems, len(every) // 4)
        return every[k:], every[:k]
    raise ValueError(f"unknown task {name!r}; known: ['arithmetic', 'jsonl']")
