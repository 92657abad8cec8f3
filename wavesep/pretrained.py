"""Registry of the named models shipped with wavesep.

``get_model(name)`` returns a ready model (eval mode) for a registered name, a checkpoint file or
a training run directory; ``names()`` lists the registered names.

A registered model is either built in code (``"tiny-untrained"``: the "tiny" preset with fixed
random weights, for fast tests of the command line and the API) or a checkpoint file shipped as
package data in ``wavesep/pretrained/`` and loaded with :func:`wavesep.checkpoint.load_model`.
Adding a bundled model is one entry in ``_REGISTRY``::

    "default": _Bundled("default.pt", "the bundled vocals model ..."),
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union

import torch

from .checkpoint import BEST_NAME, LAST_NAME, load_model
from .errors import CheckpointError
from .model import WaveUNet, presets

# Package data folder of the bundled checkpoints (a plain folder next to this module).
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
DEFAULT_MODEL = "default"
TINY_UNTRAINED_SEED = 20180615


@dataclass(frozen=True)
class _Built:
    """A model built in code."""

    build: Callable[[], WaveUNet]
    description: str


@dataclass(frozen=True)
class _Bundled:
    """A checkpoint file in :data:`PRETRAINED_DIR`; ``metadata`` entries (plain data) override the
    checkpoint's own, e.g. the post-filter a registered name applies to shared weights."""

    filename: str
    description: str
    metadata: tuple = ()  # ((key, value), ...): hashable, so the entry stays frozen


def _tiny_untrained() -> WaveUNet:
    # The initialisers draw from the global generator: fork it so that building this model
    # neither depends on nor disturbs the caller's random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_UNTRAINED_SEED)
        model = WaveUNet(presets.get("tiny"))
    # Without biases the network maps silence to silence (every layer is then zero at zero),
    # a property the command-line tests rely on.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
    return model.eval()


_REGISTRY = {
    "tiny-untrained": _Built(
        _tiny_untrained,
        f"the 'tiny' preset with random weights (seed {TINY_UNTRAINED_SEED}) and zero biases; "
        "separates nothing, for tests",
    ),
    DEFAULT_MODEL: _Bundled(
        "default.pt",
        "the bundled vocals model (`deep` preset, 22.05 kHz) with the ratio-mask-fullband post-filter: "
        "the vocals keep their part of the band above 11.025 kHz",
        (("postfilter", "ratio-mask-fullband"),),
    ),
    "default-v1": _Bundled(
        "default.pt",
        "the bundled vocals model as first released: the same weights with the ratio-mask post-filter "
        "(nothing above 11.025 kHz in the vocals); kept so that published results can be reproduced",
        (("postfilter", "ratio-mask"),),
    ),
}


def names() -> list:
    """Registered model names (whether or not their files are bundled in this installation)."""
    return list(_REGISTRY)


def available() -> list:
    """Registered names that can be loaded in this installation."""
    return [n for n, e in _REGISTRY.items() if not isinstance(e, _Bundled) or (PRETRAINED_DIR / e.filename).is_file()]


def describe(name: str) -> str:
    """One line describing a registered model."""
    if name not in _REGISTRY:
        raise CheckpointError(_unknown_message(name))
    return _REGISTRY[name].description


def _unknown_message(name: str) -> str:
    return (
        f"unknown model {name!r}: give a registered name ({', '.join(available())}), "
        "a checkpoint file (.pt) or a training run directory"
    )


def _missing_bundle_message(name: str, entry: _Bundled) -> str:
    others = [n for n in available() if n != name]
    if name == DEFAULT_MODEL:
        what = "the default model's file is missing from this wavesep installation"
    else:
        what = f"the model {name!r} is registered but its file is not installed"
    return (
        f"{what} (expected {PRETRAINED_DIR / entry.filename}); pass a checkpoint file or a training "
        f"run directory instead (e.g. runs/my-run/{BEST_NAME})"
        + (f", or one of the built-in models: {', '.join(others)}" if others else "")
    )


def get_model(name_or_path: Union[str, os.PathLike] = DEFAULT_MODEL) -> WaveUNet:
    """A model in eval mode on the CPU.

    Args:
        name_or_path: a registered name (:func:`names`), a checkpoint file, or a training run
            directory (its ``best.pt``, else ``last.pt``). A registered name wins over a file of
            the same name in the current folder; write ``./name`` for the file.

    Returns:
        The model, with ``model.name`` set to a short name for output folders (the registered
        name, or that of the checkpoint; see :func:`model_name`).

    Raises:
        CheckpointError: unknown name, bundled file missing, or an unreadable checkpoint.
    """
    key = os.fspath(name_or_path)
    entry = _REGISTRY.get(key)
    if isinstance(entry, _Built):
        model = entry.build()
    elif isinstance(entry, _Bundled):
        path = PRETRAINED_DIR / entry.filename
        if not path.is_file():
            raise CheckpointError(_missing_bundle_message(key, entry))
        model = load_model(path)
        model.metadata = {**getattr(model, "metadata", {}), **dict(entry.metadata)}
    elif Path(key).exists():
        model = load_model(key)
    else:
        raise CheckpointError(_unknown_message(key))
    model.name = model_name(key)
    return model.eval()


def model_name(name_or_path: Union[str, os.PathLike]) -> str:
    """Short name of a model for output folders.

    A registered name is itself; a run directory gives its folder name; a checkpoint file its
    stem, or its folder's name when the stem is the generic ``best``/``last``
    (``runs/vocals-small/best.pt`` -> ``vocals-small``).
    """
    key = os.fspath(name_or_path)
    if key in _REGISTRY:
        return key
    path = Path(key).resolve()
    if path.is_dir():
        return path.name
    if path.name in (BEST_NAME, LAST_NAME) and path.parent.name:
        return path.parent.name
    return path.stem


__all__ = ["DEFAULT_MODEL", "PRETRAINED_DIR", "available", "describe", "get_model", "model_name", "names"]
