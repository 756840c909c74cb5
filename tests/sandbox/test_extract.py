from rljudge_sandbox import extract_program


def test_last_python_block_wins():
    r = "a\n```python\nprint(1)\n```\nthen\n```py\nprint(2)\n```\n"
    assert extract_program(r) == "print(2)\n"


def test_untagged_block_accepted():
    assert extract_program("```\nx = 1\n```") == "x = 1\n"


def test_other_language_block_ignored():
    assert extract_program("```cpp\nint main(){}\n```") is None


def test_blocks_inside_think_are_ignored():
    r = "<think>```python\nprint('draft')\n```</think>no code here"
    assert extract_program(r) is None


def test_think_kept_when_not_stripping():
    r = "<think>```python\nprint('draft')\n```</think>done"
    assert extract_program(r, strip_think=False) == "print('draft')\n"


def test_no_block_is_none():
    assert extract_program("just text") is None
