"""SiSEC-style evaluation: separate or load estimates, score with BSS Eval v4, report."""

from wavesep.evaluation.runner import *  # noqa: F401,F403
from wavesep.evaluation.runner import __all__  # noqa: F401
