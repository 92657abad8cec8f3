"""Checkpoints as plain data: save, load and rebuild models.

A checkpoint file is a ``torch.save`` of a dict holding only tensors and plain Python data
(str, int, float, bool, None, list, dict), so it loads with ``torch.load(weights_only=True)`` and
never runs code:

    {"format": "wavesep-checkpoint", "format_version": 1,
     "config": WaveUNetConfig.to_dict(),
     "state_dict": {name: Tensor},
     "metadata": {"sources": [...], "sample_rate": int, "preset": str | None,
                  "wavesep_version": str, "torch_version": str, ...},
     "training": {...}  # optional: optimiser, stage, counters, RNG states (plain data + tensors)}

Every write goes to a temporary file in the destination folder and is renamed over the target,
so a process killed at any moment leaves the previous file intact; the temporary such a kill
leaves is removed by the next save of that file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from .atomic import atomic_open, remove_stale
from .errors import CheckpointError
from .model import WaveUNet, WaveUNetConfig

FORMAT = "wavesep-checkpoint"
FORMAT_VERSION = 1
BEST_NAME = "best.pt"
LAST_NAME = "last.pt"


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` through a temporary file and a rename. Temporaries of
    ``path`` that a killed process left (older than this process) are removed first."""
    path = Path(path)
    remove_stale(path.parent, name=path.name)
    with atomic_open(path, "wb") as f:
        torch.save(obj, f)
    return path


_SCALARS = (str, int, float, bool, type(None), torch.Tensor, torch.dtype)


def plain(obj: Any, where: str = "checkpoint") -> Any:
    """``obj`` as plain data that ``torch.load(weights_only=True)`` accepts: tuples become lists,
    paths strings; anything else that is not a tensor, number, string, list or dict is a TypeError
    naming where it sits (so a bad value fails when saving, not when loading)."""
    if isinstance(obj, _SCALARS):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (list, tuple)):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        return {plain(k, where): plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    raise TypeError(f"{where}: {type(obj).__name__} is not plain data and cannot go into a checkpoint")


def make_checkpoint(
    model: WaveUNet,
    metadata: Optional[Mapping[str, Any]] = None,
    training: Optional[Mapping[str, Any]] = None,
) -> dict:
    """The plain-data checkpoint dict of ``model`` (weights copied to CPU)."""
    from . import __version__

    meta = {
        "sources": list(model.sources),
        "sample_rate": model.sample_rate,
        "preset": None,
        "wavesep_version": __version__,
        "torch_version": str(torch.__version__),
    }
    meta.update(plain(dict(metadata or {}), "metadata"))
    ckpt = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "metadata": meta,
    }
    if training is not None:
        ckpt["training"] = plain(dict(training), "training")
    return ckpt


def save(
    path: str | os.PathLike,
    model: WaveUNet,
    metadata: Optional[Mapping[str, Any]] = None,
    training: Optional[Mapping[str, Any]] = None,
) -> Path:
    """Writes ``model`` (config + weights + metadata, optionally a training state) to ``path``
    atomically. ``metadata`` and ``training`` must hold only plain data and tensors."""
    return atomic_torch_save(make_checkpoint(model, metadata, training), path)


def resolve(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run directory meaning its best checkpoint (else its last)."""
    path = Path(path)
    if path.is_dir():
        for name in (BEST_NAME, LAST_NAME):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"{path}: no {BEST_NAME} or {LAST_NAME} checkpoint in this run directory")
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    return path


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Loads a checkpoint dict with ``weights_only=True``; CheckpointError if it is not one."""
    path = resolve(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        text = str(exc)
        if text.startswith("Weights only load failed"):
            # torch's message goes on to advise weights_only=False, which would run the code.
            found = re.search(r"GLOBAL ([\w.]+)", text)
            what = f"a reference to {found.group(1)}" if found else "pickled Python objects"
            raise CheckpointError(
                f"{path}: refused: it holds {what}, not only tensors and plain data, and loading "
                "it could run code. A wavesep checkpoint never needs that: use the file's own "
                "software to export its weights, or re-save the model with wavesep.checkpoint.save"
            ) from None
        first = text.strip().splitlines()[0] if text.strip() else ""
        raise CheckpointError(f"{path}: not a readable wavesep checkpoint ({type(exc).__name__}: {first})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a wavesep checkpoint (no '{FORMAT}' marker)")
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {ckpt['format_version']} is newer than this wavesep reads "
            f"({FORMAT_VERSION}); upgrade wavesep"
        )
    return ckpt


def model_from_checkpoint(ckpt: Mapping[str, Any], source: str = "checkpoint") -> WaveUNet:
    """Rebuilds the model of a loaded checkpoint dict (in eval mode)."""
    try:
        config = WaveUNetConfig.from_dict(ckpt["config"])
        model = WaveUNet(config)
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise CheckpointError(f"{source}: cannot rebuild the model ({exc})") from None
    return model.eval()


def weights_digest(model: WaveUNet) -> str:
    """SHA-256 (64 hex digits) of a model's configuration and weights: the same for the same
    network and values, whatever file, device or name they came from; another for a retrained one."""
    digest = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}:{flat.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> WaveUNet:
    """Rebuilds a model from a checkpoint alone.

    ``path``: a checkpoint file, or a training run directory (its best checkpoint). The model is
    returned in eval mode, with ``model.metadata`` set to the checkpoint's metadata dict.
    """
    path = resolve(path)
    ckpt = load(path, map_location)
    model = model_from_checkpoint(ckpt, str(path))
    model.metadata = dict(ckpt.get("metadata", {}))
    return model
