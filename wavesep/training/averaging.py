"""Weight averaging of trained checkpoints: model soups and WiSE-FT interpolation.

A weighted mean of the weights of networks of one architecture, e.g. the last epochs of a run
(a uniform soup), or a fine-tuned network and the weights it started from
(``(1 - a) * start + a * tuned``, "WiSE-FT", which keeps much of a fine-tune's gain on the new
data while staying closer to the start on everything else).

May import: wavesep.checkpoint, wavesep.errors; torch.
"""

from __future__ import annotations

import os
from typing import Sequence, Union

import torch

from ..checkpoint import load, model_from_checkpoint
from ..errors import WavesepError


class AveragingError(WavesepError):
    """Checkpoints that cannot be averaged (other architectures, bad weights)."""


def average_checkpoints(paths: Sequence[Union[str, os.PathLike]], weights: Sequence[float] = ()):
    """The weighted mean of the weights of ``paths`` (same network config).

    Args:
        paths: checkpoint files or run folders (their best.pt), at least one.
        weights: one non-negative factor per path, normalised to sum 1; empty: uniform.

    Returns:
        (model, metadata): the first checkpoint's network (a :class:`wavesep.model.WaveUNet`)
        holding the mean (each tensor computed in float64, stored in its own dtype), and the
        first checkpoint's metadata plus ``averaged_from``: [[path, weight], ...].

    Raises:
        AveragingError: no paths, a weight count or sign that does not fit, weights summing to 0,
            or a checkpoint whose network config or tensor names/shapes differ from the first's.
    """
    paths = [str(p) for p in paths]
    if not paths:
        raise AveragingError("no checkpoints to average")
    weights = [1.0] * len(paths) if not weights else [float(w) for w in weights]
    if len(weights) != len(paths):
        raise AveragingError(f"{len(weights)} weights for {len(paths)} checkpoints")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise AveragingError(f"weights must be >= 0 with a positive sum, got {weights}")
    total = sum(weights)
    weights = [w / total for w in weights]
    first = load(paths[0])
    model = model_from_checkpoint(first, paths[0])
    ref = model.state_dict()
    acc = {k: torch.zeros(v.shape, dtype=torch.float64) for k, v in ref.items()}
    for path, w in zip(paths, weights):
        ckpt = first if path == paths[0] else load(path)
        if ckpt.get("config") != first.get("config"):
            raise AveragingError(f"{path}: another network config than {paths[0]}")
        state = model_from_checkpoint(ckpt, path).state_dict()
        if state.keys() != ref.keys() or any(state[k].shape != ref[k].shape for k in ref):
            raise AveragingError(f"{path}: other tensors than {paths[0]}")
        for k in acc:
            acc[k] += w * state[k].double()
    model.load_state_dict({k: acc[k].to(ref[k].dtype) for k in ref})
    metadata = dict(first.get("metadata") or {})
    metadata["averaged_from"] = [[p, w] for p, w in zip(paths, weights)]
    return model, metadata
