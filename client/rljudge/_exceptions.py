"""Exceptions raised by the rljudge client.

    RLJudgeError
    ├── JudgeRequestError      the service refused the request (4xx other than 429): fix the call
    └── JudgeUnavailableError  the service could not be reached or kept failing (connection errors,
                               timeouts, 429/5xx) after every retry

A judge failure is never turned into a reward of 0: with ``on_failure="infra_failed"`` (the default)
the affected items come back with ``status="infra_failed"``; with ``on_failure="raise"`` the call
raises ``JudgeUnavailableError``.
"""

from __future__ import annotations


class RLJudgeError(Exception):
    """Base class of every error this package raises."""


class JudgeRequestError(RLJudgeError):
    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"HTTP {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


class JudgeUnavailableError(RLJudgeError):
    pass
