"""Training data: track discovery, the decoded-track cache, augmentation and the datasets."""

from wavesep.data.datasets import *  # noqa: F401,F403
from wavesep.data.datasets import __all__  # noqa: F401
