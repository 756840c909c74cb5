"""Taking the program out of a model's response."""

from __future__ import annotations

import re

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[^\n`]*\n(.*?)```", re.DOTALL)
_PYTHON_TAGS = frozenset({"", "python", "py", "python3", "py3"})
THINK_END = "</think>"


def extract_program(response: str, strip_think: bool = True) -> str | None:
    """The last fenced code block tagged ```python, ```py (or untagged) in ``response``.

    With ``strip_think`` and a ``</think>`` in the response, only the text after the last
    ``</think>`` is searched. Returns None when there is no such block.
    """
    text = response
    if strip_think and THINK_END in text:
        text = text.rsplit(THINK_END, 1)[1]
    blocks = [m.group(2) for m in _FENCE.finditer(text) if m.group(1).lower() in _PYTHON_TAGS]
    return blocks[-1] if blocks else None
