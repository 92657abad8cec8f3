"""Devices, precision and batch runners for :mod:`wavesep.apply` and :mod:`wavesep.streaming`.

Shape legend: B batch (windows), C audio channels, T time (samples).

:func:`resolve_device` and :func:`resolve_precision` turn the user's choices into a
``torch.device`` and an autocast dtype name (``None`` is float32); :func:`native_bfloat16` says
whether the CPU or GPU computes bfloat16 natively. ``_placed`` gives the model on a device in
eval mode and leaves the caller's model as it was, ``_autocast`` wraps the forward pass, and the
runners feed (B, C, T) batches of windows to the model: ``_CpuRunner`` synchronously,
``_CudaRunner`` double-buffered from pinned host buffers copied on their own stream, with a batch
size from ``_auto_cuda_batch`` (a fraction of the free memory).

Imports :mod:`wavesep.model`; never :mod:`wavesep.apply`.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor

from .model import WaveUNet

PRECISIONS = (None, "auto", "float32", "float16", "bfloat16")
# Fraction of the free CUDA memory an automatically sized batch may take.
_CUDA_MEMORY_FRACTION = 0.6
_CUDA_MAX_AUTO_BATCH = 64


def resolve_device(device) -> torch.device:
    """"auto" -> CUDA when available, else CPU; otherwise ``torch.device(device)``."""
    if device is None or device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu' or 'cuda' ({exc})") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not supported; use 'auto', 'cpu' or 'cuda'")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was asked for but CUDA is not available; use 'cpu' or 'auto'")
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def _cpu_flags() -> frozenset:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bfloat16(device) -> bool:
    """Whether ``device`` computes bfloat16 natively: a CPU with AVX-512 BF16 or AMX-BF16 (read
    from /proc/cpuinfo, so False off Linux), or a CUDA device that supports bfloat16."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if dev.type == "cpu":
        return bool({"avx512_bf16", "amx_bf16"} & _cpu_flags())
    return False


def resolve_precision(precision: Optional[str], device) -> Optional[str]:
    """The autocast dtype name :func:`separate` uses: None for float32 (None, "float32", or "auto"
    where bfloat16 is not native), "bfloat16" for "auto" on :func:`native_bfloat16` devices,
    otherwise ``precision`` itself. ValueError for unknown names.

    Why "auto" may take bfloat16: on CPUs with native bfloat16 the network runs about 1.7x
    faster and the vocals SDR changed by less than 0.05 dB on the measured songs
    (benchmarks/bench_precision.py, figures in benchmarks/RESULTS.md).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bfloat16" if native_bfloat16(device) else None
    return None if precision == "float32" else precision


@contextlib.contextmanager
def _placed(model: WaveUNet, device: torch.device):
    """The model on ``device`` in eval mode; the caller's model is left as it was."""
    params = list(model.parameters()) + list(model.buffers())
    on_device = all(p.device == device for p in params)
    if not on_device:
        yield copy.deepcopy(model).to(device).eval()
        return
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _autocast(device: torch.device, precision: Optional[str]):
    if precision in (None, "float32"):
        return contextlib.nullcontext()
    dtype = torch.float16 if precision == "float16" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


class _CpuRunner:
    """Runs batches synchronously on the CPU (with torch's own thread settings)."""

    def __init__(self, model, channels: int, width: int, batch_size: int, dtype, precision):
        self.model = model
        self.buf = torch.empty(batch_size, channels, width, dtype=dtype)  # (B, C_m, W_in)
        self.precision = precision

    def submit(self, fills: Sequence[Callable[[Tensor], None]]):
        for j, fill in enumerate(fills):
            fill(self.buf[j])
        with torch.inference_mode(), _autocast(torch.device("cpu"), self.precision):
            return self.model(self.buf[: len(fills)]).float()  # (B, S, C_m, W_out)

    def finish(self, handle) -> Tensor:
        return handle


class _CudaRunner:
    """Double-buffered CUDA pipeline.

    While the GPU computes batch k, the host fills the pinned buffer of batch k + 1, whose
    host-to-device copy runs on a separate stream, and scatters the results of batch k - 1.
    """

    def __init__(self, model, channels: int, width: int, out_width: int, sources: int,
                 batch_size: int, dtype, precision, device):
        self.model, self.device, self.precision = model, device, precision
        shape_in = (batch_size, channels, width)
        shape_out = (batch_size, sources, channels, out_width)
        self.host_in = [torch.empty(shape_in, dtype=dtype, pin_memory=True) for _ in range(2)]
        self.host_out = [torch.empty(shape_out, pin_memory=True) for _ in range(2)]
        self.dev_in = [torch.empty(shape_in, dtype=dtype, device=device) for _ in range(2)]
        self.copy_stream = torch.cuda.Stream(device)
        self.compute_stream = torch.cuda.current_stream(device)
        self.copied = [None, None]  # host_in[slot] -> dev_in[slot] done
        self.consumed = [None, None]  # the model has read dev_in[slot]
        self.slot = 0

    def submit(self, fills):
        slot, nb = self.slot, len(fills)
        self.slot = 1 - slot
        if self.copied[slot] is not None:
            self.copied[slot].synchronize()  # host_in[slot] may be overwritten
        for j, fill in enumerate(fills):
            fill(self.host_in[slot][j])
        with torch.cuda.stream(self.copy_stream):
            if self.consumed[slot] is not None:
                self.copy_stream.wait_event(self.consumed[slot])
            self.dev_in[slot][:nb].copy_(self.host_in[slot][:nb], non_blocking=True)
            self.copied[slot] = torch.cuda.Event()
            self.copied[slot].record(self.copy_stream)
        self.compute_stream.wait_event(self.copied[slot])
        with torch.inference_mode(), _autocast(self.device, self.precision):
            y = self.model(self.dev_in[slot][:nb])  # (B, S, C_m, W_out)
        self.consumed[slot] = torch.cuda.Event()
        self.consumed[slot].record(self.compute_stream)
        self.host_out[slot][:nb].copy_(y.float(), non_blocking=True)
        done = torch.cuda.Event()
        done.record(self.compute_stream)
        return slot, nb, done

    def finish(self, handle) -> Tensor:
        slot, nb, done = handle
        done.synchronize()
        return self.host_out[slot][:nb]


def _auto_cuda_batch(model, channels: int, width: int, dtype, precision, device, limit: int) -> int:
    """The largest batch that fits in a fraction of the free GPU memory, by measuring one window."""
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    probe = torch.zeros(1, channels, width, dtype=dtype, device=device)
    with torch.inference_mode(), _autocast(device, precision):
        model(probe)
    per_window = max(1, torch.cuda.max_memory_allocated(device) - base)
    del probe
    torch.cuda.empty_cache()
    free, _ = torch.cuda.mem_get_info(device)
    # The two pinned/device input buffers and outputs are included in the per-window figure.
    fit = int(_CUDA_MEMORY_FRACTION * free // per_window)
    return max(1, min(fit, limit, _CUDA_MAX_AUTO_BATCH))
