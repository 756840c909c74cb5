"""rljudge_trainer: a GPPO trainer whose rewards come from the rljudge service.

``losses`` and ``advantages`` are pure tensor functions (importable with torch alone);
``loop.train`` runs sampling, judging and updates; ``verl_gppo`` registers GPPO in verl.
"""

from .losses import POLICY_LOSSES, get_policy_loss

__all__ = ["POLICY_LOSSES", "get_policy_loss"]
