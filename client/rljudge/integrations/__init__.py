"""Drop-in reward functions for RL frameworks, backed by an rljudge service.

- :mod:`rljudge.integrations.trl`: ``RLJudgeReward``, a ``GRPOTrainer(reward_funcs=[...])`` function.
- :mod:`rljudge.integrations.verl`: ``compute_score`` / ``compute_score_async`` /
  ``compute_score_batch`` for verl's ``custom_reward_function``.
- OpenRLHF and SandboxFusion users need no client code: the gateway serves ``POST /get_reward``
  (OpenRLHF's ``--remote_rm_url``) and ``POST /run_code`` (SandboxFusion's API).

None of them imports its framework; each needs only this package (httpx + pydantic).
"""

from ._items import completion_text, make_item, suite_from_reference
from .trl import RLJudgeReward

__all__ = ["RLJudgeReward", "completion_text", "make_item", "suite_from_reference"]
