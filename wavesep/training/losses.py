"""Training losses: plain MSE (the paper's) and a level-weighted MSE.

Shape legend: B batch, S sources, C audio channels, T time (samples).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

REFERENCE_POWER = 10.0 ** (-20.0 / 10.0)  # mean square of a -20 dBFS RMS signal
POWER_FLOOR = 10.0 ** (-60.0 / 10.0)  # -60 dBFS: windows quieter than this are weighed as if at it


def training_loss(estimates: Tensor, targets: Tensor, kind: str = "mse") -> Tensor:
    """The training loss of ``estimates`` against ``targets``, both (B, S, C, T), as a scalar.

    "mse": the mean squared error over every element. "level-mse": each window's MSE times
    REFERENCE_POWER / P_b, where P_b is the mean square of the window's mixture (the sum of its
    targets over S, i.e. the mixture when the sources cover it), floored at POWER_FLOOR: every
    window weighs as if it were at -20 dBFS RMS, so quiet windows are not drowned by loud ones.
    Equal to "mse" when every window is at -20 dBFS.
    """
    if kind == "mse":
        return F.mse_loss(estimates, targets)
    if kind == "level-mse":
        per_window = (estimates - targets).pow(2).flatten(1).mean(dim=1)  # (B,)
        power = targets.detach().sum(dim=1).pow(2).flatten(1).mean(dim=1)  # (B,)
        return (per_window * (REFERENCE_POWER / power.clamp_min(POWER_FLOOR))).mean()
    raise ValueError(f"unknown loss {kind!r}; known: mse, level-mse")
