"""Devices and torch.distributed set-up: the device of this process, its rank and world size.

Under torchrun (WORLD_SIZE > 1) :func:`setup_distributed` creates the process group: NCCL on
GPUs, Gloo on CPUs. Without it every function answers for a single process (rank 0 of 1).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """The torch device for ``name`` ("auto", "cpu", "cuda", "cuda:K"); under DDP "cuda" means
    the GPU of this process's local rank."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available; use --device cpu")
        if name == "cuda":
            return torch.device("cuda", local_rank % torch.cuda.device_count())
    try:
        return torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None


def _dist_info() -> tuple:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def setup_distributed(device: str = "auto") -> bool:
    """Initialises torch.distributed from the torchrun environment (WORLD_SIZE > 1): NCCL on
    GPUs, Gloo on CPUs. Returns True when this call created the process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available() or dist.is_initialized():
        return False
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
    return True
