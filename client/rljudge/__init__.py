"""rljudge: the client SDK of the rljudge reward service (httpx + pydantic only).

from rljudge import JudgeClient, MathItem
async with JudgeClient("http://127.0.0.1:8000") as client:
    results = await client.judge([MathItem(response=r"... \\boxed{4}", gold="4")])
"""

from ._client import JudgeClient
from ._exceptions import JudgeRequestError, JudgeUnavailableError, RLJudgeError
from ._models import *  # noqa: F403
from ._models import __all__ as _models_all
from ._sync import SyncJudgeClient

__version__ = "0.1.0"

__all__ = [
    "JudgeClient",
    "JudgeRequestError",
    "JudgeUnavailableError",
    "RLJudgeError",
    "SyncJudgeClient",
    *_models_all,
]
