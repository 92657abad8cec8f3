"""The random-number states of a run: seeding, and saving / restoring every generator a run uses
(torch, CUDA, numpy, Python) as plain data for ``last.pt`` (loadable with weights_only=True)."""

from __future__ import annotations

import random

import numpy as np
import torch


def _rng_state(device: torch.device) -> dict:
    keys = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        # numpy's state holds an ndarray, which weights_only loading refuses: store a tensor
        "numpy": {"keys": torch.from_numpy(keys[1].astype(np.int64)), "pos": int(keys[2]),
                  "has_gauss": int(keys[3]), "cached_gaussian": float(keys[4])},
        "python": _py_state_to_plain(random.getstate()),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _py_state_to_plain(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
