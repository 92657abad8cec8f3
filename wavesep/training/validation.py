"""Validation of a model on fixed windows: loss, and BSS Eval SDR of whole validation tracks.

Shape legend: B batch, S sources, C audio channels, T time (samples). Under torch.distributed
each rank scores its share of the windows and the sums are reduced across ranks.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from ..interrupts import leave_stops_to_the_parent, stops_held
from ..model import WaveUNet
from .distributed import _dist_info


# ---------------------------------------------------------------------- validation


@torch.no_grad()
def evaluate(
    model: WaveUNet,
    valid_set,
    *,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    workers: int = 0,
) -> dict:
    """Validation loss and a simple global SDR of ``model`` on a fixed set of windows.

    ``valid_set[i]`` is ``(mix (C, T_in), targets (S, C, T_out))``. Under torch.distributed each
    rank scores its share of the windows and the sums are all-reduced, then broadcast from rank
    0, so every rank returns the same numbers.

    Returns a dict: "loss" (MSE over all windows, sources, channels and samples, as the training
    loss), "sdr" ({source: dB}: global SDR = 10 log10(sum target^2 / sum (target - estimate)^2)
    over all the validation windows, no clipping; a cheap progress figure, not BSS Eval), and
    "windows" (number of windows).
    """
    rank, world = _dist_info()
    device = torch.device(device)
    was_training = model.training
    model.eval()
    n = len(valid_set)
    loader = DataLoader(
        valid_set,
        batch_size=batch_size,
        sampler=list(range(rank, n, world)),
        num_workers=workers,
        pin_memory=device.type == "cuda",
        worker_init_fn=leave_stops_to_the_parent,
    )
    S = model.num_sources
    # float64 sums: [squared error, element count, per-source target energy, per-source error energy]
    sums = torch.zeros(2 + 2 * S, dtype=torch.float64, device=device)
    with stops_held():  # the workers start here; see interrupts
        batches = iter(loader)
    for mix, targets in batches:
        mix = mix.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        err = (model(mix) - targets).double()  # (B, S, C, T_out)
        sums[0] += err.square().sum()
        sums[1] += err.numel()
        sums[2 : 2 + S] += targets.double().square().sum(dim=(0, 2, 3))
        sums[2 + S :] += err.square().sum(dim=(0, 2, 3))
    if world > 1:
        dist.all_reduce(sums)
        dist.broadcast(sums, 0)  # decisions taken from these numbers must agree bit for bit
    model.train(was_training)
    sums = sums.cpu()
    loss = float(sums[0] / sums[1]) if sums[1] > 0 else float("nan")
    tiny = 1e-20
    sdr = {
        name: 10.0 * math.log10((float(sums[2 + s]) + tiny) / (float(sums[2 + S + s]) + tiny))
        for s, name in enumerate(model.sources)
    }
    return {"loss": loss, "sdr": sdr, "windows": n}
