"""Old module path of :mod:`wavesep.training`, kept so that ``python -m wavesep.train``,
``wavesep-train`` and ``from wavesep.train import TrainConfig, train`` keep working.

It only re-exports names: to replace a function the loop calls (e.g. ``evaluate`` in a test),
patch :mod:`wavesep.training.loop`, not this module.
"""

from wavesep.training import *  # noqa: F401,F403
from wavesep.training import __all__, main  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
