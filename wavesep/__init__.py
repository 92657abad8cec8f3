"""wavesep: time-domain music source separation with Wave-U-Net, in PyTorch.

Shape legend used throughout the package: B batch, S sources, C audio channels, T time (samples).
"""

__version__ = "0.1.0"

from .checkpoint import load_model  # noqa: E402
from .model import WaveUNet, WaveUNetConfig, presets  # noqa: E402
from .api import Separator  # noqa: E402

__all__ = ["WaveUNet", "WaveUNetConfig", "presets", "load_model", "Separator", "__version__"]
