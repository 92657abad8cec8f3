"""Small helpers shared by the audio modules: the path type, the sample-rate check, the block
size that bounds scratch memory, and the blockwise finiteness check of (C, T) signals.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np
import torch

from wavesep.errors import AudioError

PathLike = Union[str, os.PathLike]
# Input frames per resampling block: bounds the scratch memory (tens of MB) whatever the length.
_BLOCK_FRAMES = 1 << 20


def _extension(path: Path) -> str:
    return path.suffix.lower().lstrip(".")


def _check_rate(value, name: str) -> int:
    try:
        as_int = int(value)
        ok = as_int == value and as_int > 0
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise AudioError(f"{name} must be a positive whole number of Hz, got {value!r}")
    return as_int


def _all_finite(wav) -> bool:
    """Whether a (C, T) tensor or array holds only finite values, checked in blocks (no
    temporary as large as the signal)."""
    check = torch.isfinite if isinstance(wav, torch.Tensor) else np.isfinite
    for t0 in range(0, wav.shape[-1], _BLOCK_FRAMES):
        if not bool(check(wav[..., t0 : t0 + _BLOCK_FRAMES]).all()):
            return False
    return True
