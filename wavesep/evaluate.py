"""Old module path of :mod:`wavesep.evaluation`, kept so that ``python -m wavesep.evaluate``,
``wavesep-evaluate`` and ``from wavesep.evaluate import score_track`` keep working.

It only re-exports names (worker processes import the functions from :mod:`wavesep.evaluation`).
"""

import sys

from wavesep.evaluation import *  # noqa: F401,F403
from wavesep.evaluation import __all__, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
