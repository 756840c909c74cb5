"""``python -m rljudge_trainer --config FILE``."""

import sys

from .cli import main

sys.exit(main())
