"""The wire schema of rljudge's HTTP API, defined once.

The gateway imports these models to validate requests and to render OpenAPI; the client uses
them to build requests and to parse answers. Nothing else in the project defines a request or
result shape.

Shape of a batch::

    BatchRequest{items: [MathItem | CodeItem, ...], deadline_s?, reward_scheme?}
      -> BatchResult{batch_id, done, total, completed, results: [ItemResult, ...]}

Every item gets exactly one ``ItemResult`` whose ``status`` says whether the judge produced a
verdict (``scored``), failed (``infra_failed``), ran out of time (``unscored``) or refused the
item (``rejected``). Only ``scored`` results carry a ``reward``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "MAX_ID_CHARS",
    "AssertTests",
    "BatchAccepted",
    "BatchRequest",
    "BatchResult",
    "CallCase",
    "CallTests",
    "CodeItem",
    "ErrorBody",
    "Item",
    "ItemResult",
    "ItemStatus",
    "Limits",
    "MathItem",
    "ProblemRegistered",
    "ProblemSuite",
    "PytestTests",
    "RewardScheme",
    "RunTests",
    "StdioCase",
    "StdioTests",
    "TestResult",
    "TestStatus",
    "TestSuite",
    "Verdict",
]

MAX_ID_CHARS = 256

RewardScheme = Literal["binary", "fraction", "klear"]
"""How a verdict becomes a float reward.

- ``binary``: 1.0 when fully correct, else 0.0.
- ``fraction``: passed tests / total tests for code (the soft reward); same as ``binary`` for math.
- ``klear``: Klear-Reasoner's scheme: correct 1, wrong -1, format error -1; code is the mean of
  +1 (passed) / -1 (failed) over the tests.
"""

ItemStatus = Literal["scored", "infra_failed", "unscored", "rejected"]

Verdict = Literal[
    # math and code
    "correct",
    "wrong_answer",
    "time_limit",
    # math
    "no_answer",
    "format_error",
    # code (per item)
    "memory_limit",
    "runtime_error",
    "output_limit",
    "compile_error",
    "no_code",
    # the judge, not the model
    "sandbox_error",
    "judge_error",
    "invalid_item",
    "deadline",
]

TestStatus = Literal[
    "passed",
    "wrong_answer",
    "time_limit",
    "memory_limit",
    "runtime_error",
    "output_limit",
    "skipped",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ----------------------------------------------------------------------------- items


class MathItem(_Model):
    """A math rollout: the model's response and the reference answer."""

    kind: Literal["math"] = "math"
    id: str | None = Field(default=None, max_length=MAX_ID_CHARS, description="Echoed back; defaults to the index.")
    response: str = Field(description="The model's full response text.")
    gold: str = Field(min_length=1, description="The reference answer (LaTeX or plain).")
    strip_think: bool = Field(
        default=True, description="Judge only the text after the last `</think>` when there is one."
    )
    timeout_s: float = Field(default=5.0, gt=0, le=60, description="Hard per-item judging time limit.")
    require_think: bool = Field(
        default=False, description="A response without `</think>` is a `format_error` (Klear: -2 / -0.5)."
    )


class StdioCase(_Model):
    input: str = ""
    output: str


class StdioTests(_Model):
    """Programs read stdin and write stdout; output is compared after stripping trailing whitespace."""

    type: Literal["stdio"] = "stdio"
    cases: list[StdioCase] = Field(min_length=1)
    float_tolerance: float | None = Field(
        default=None, ge=0, description="Compare numeric tokens with this absolute/relative tolerance."
    )


class CallCase(_Model):
    args: list[Any] = Field(default_factory=list)
    expected: Any = None


class CallTests(_Model):
    """Call a function (or a method of LeetCode's `class Solution`) with JSON arguments."""

    type: Literal["call"] = "call"
    fn_name: str = Field(min_length=1, max_length=200)
    cases: list[CallCase] = Field(min_length=1)
    float_tolerance: float | None = Field(default=None, ge=0)


class AssertTests(_Model):
    """HumanEval (`test` + `entry_point`, one test) or MBPP (`asserts`, one test each)."""

    type: Literal["assert"] = "assert"
    test: str | None = None
    entry_point: str | None = None
    asserts: list[str] | None = None
    setup: str = Field(default="", description="Code run before the tests (e.g. MBPP's test_imports).")

    @model_validator(mode="after")
    def _one_form(self) -> AssertTests:
        if (self.test is None) == (self.asserts is None):
            raise ValueError("give exactly one of `test` (with `entry_point`) or `asserts`")
        if self.test is not None and not self.entry_point:
            raise ValueError("`entry_point` is required with `test`")
        if self.asserts is not None and not self.asserts:
            raise ValueError("`asserts` must not be empty")
        return self


class PytestTests(_Model):
    """A pytest file that imports the program as module `solution`."""

    type: Literal["pytest"] = "pytest"
    source: str = Field(min_length=1)


class RunTests(_Model):
    """Run the program once on `stdin` and report what it did (SandboxFusion's `run_code`).

    Nothing is compared: the one test is `passed` when the program exits with status 0, else
    `runtime_error`, `time_limit`, `memory_limit` or `output_limit`; its result carries the exit
    status, the (truncated) stdout, and the stderr tail in `detail`.
    """

    type: Literal["run"] = "run"
    stdin: str = ""


TestSuite = Annotated[Union[StdioTests, CallTests, AssertTests, PytestTests, RunTests], Field(discriminator="type")]


class Limits(_Model):
    """Per-test resource limits for code. Time limits are CPU seconds, capped by a wall clock."""

    time_s: float = Field(default=2.0, gt=0, le=60, description="CPU seconds per test.")
    wall_s: float | None = Field(
        default=None, gt=0, le=120, description="Wall seconds per test (default: 2 x time_s + 1)."
    )
    memory_mb: int = Field(default=512, ge=16, le=8192, description="Address-space limit per test.")
    processes: int = Field(default=8, ge=1, le=256, description="Processes/threads per test.")
    open_files: int = Field(default=64, ge=8, le=1024)
    file_size_kb: int = Field(default=1024, ge=0, le=1_048_576, description="Largest file a test may write.")
    output_kb: int = Field(default=1024, ge=1, le=65_536, description="Captured stdout+stderr per test.")


class CodeItem(_Model):
    """A code rollout: the program is the last fenced block of `response` (or `code` verbatim)."""

    kind: Literal["code"] = "code"
    id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    response: str | None = None
    code: str | None = Field(default=None, description="The program itself, instead of `response`.")
    language: Literal["python"] = "python"
    tests: TestSuite | None = None
    problem: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ID_CHARS,
        description="A suite registered with PUT /v1/problems/{id}.",
    )
    limits: Limits | None = Field(default=None, description="Overrides the problem's limits, else the defaults.")
    mode: Literal["all", "first_failure"] = "all"
    strip_think: bool = True
    require_think: bool = False

    @model_validator(mode="after")
    def _sources(self) -> CodeItem:
        if (self.response is None) == (self.code is None):
            raise ValueError("give exactly one of `response` or `code`")
        if (self.tests is None) == (self.problem is None):
            raise ValueError("give exactly one of `tests` or `problem`")
        return self


Item = Annotated[Union[MathItem, CodeItem], Field(discriminator="kind")]


# ----------------------------------------------------------------------------- batches


class BatchRequest(_Model):
    items: list[Item] = Field(min_length=1)
    deadline_s: float | None = Field(
        default=None, gt=0, le=86_400, description="Seconds from submission; unfinished items come back `unscored`."
    )
    reward_scheme: RewardScheme = "binary"


class TestResult(_Model):
    status: TestStatus
    time_ms: float | None = None
    detail: str | None = Field(default=None, description="Truncated stderr or the exception's last line.")
    stdout: str | None = Field(default=None, description="`run` tests only: the program's stdout (truncated).")
    exit_code: int | None = Field(
        default=None, description="`run` tests only: the exit status (negative: killed by that signal)."
    )


class ItemResult(_Model):
    id: str
    index: int
    kind: Literal["math", "code"] | None = None
    status: ItemStatus
    reward: float | None = None
    verdict: Verdict | None = None
    cached: bool = False
    elapsed_ms: float | None = Field(default=None, description="Judging time (0 for cache hits).")
    detail: str | None = None
    passed: int | None = None
    total: int | None = None
    tests: list[TestResult] | None = None
    grader: str | None = Field(default=None, description="Provenance: judge and version that produced the verdict.")

    @property
    def ok(self) -> bool:
        """True when the judge produced a verdict (the reward is meaningful)."""
        return self.status == "scored"


class BatchAccepted(_Model):
    batch_id: str
    total: int


class BatchResult(_Model):
    batch_id: str
    done: bool
    total: int
    completed: int
    results: list[ItemResult] = Field(description="Results known so far, in item order.")


# ----------------------------------------------------------------------------- problems


class ProblemSuite(_Model):
    """A test suite registered once and referenced by many code items."""

    tests: TestSuite
    limits: Limits | None = None


class ProblemRegistered(_Model):
    problem_id: str
    hash: str
    tests: int
    created: bool


class ErrorBody(_Model):
    detail: str | list[dict[str, Any]]
