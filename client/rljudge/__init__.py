"""rljudge: the client SDK of the rljudge reward service."""
from ._models import *  # noqa: F403
from ._models import __all__ as _models_all

__all__ = [*_models_all]
__version__ = "0.1.0"
