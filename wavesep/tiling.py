"""Exact tiling of long signals for :mod:`wavesep.apply`, and the rolling resampling buffers.

Shape legend: S sources, C audio channels, T time (samples).

:func:`plan_tiles` cuts a track of T model-rate samples into output windows whose hop is a
multiple of ``model.stride``, each reading the model's context (or, for "same"-convolution
models, :func:`receptive_margin` samples) either side, so that the stitched windows equal one
pass over the whole track. :class:`_InputStream` serves one item's mixture at the model's rate
window by window and :class:`_OutputStream` resamples the estimates back, both through
:class:`wavesep.audio.ResampleStream` on rolling buffers whose size does not grow with T.

Imports :mod:`wavesep.audio` and :mod:`wavesep.model`; never :mod:`wavesep.apply`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from . import audio
from .model import WaveUNet

DEFAULT_SEGMENT_SECONDS = 10.0
# Input-rate samples resampled at once for the rolling input buffer.
_INPUT_BLOCK = 1 << 17


# ---------------------------------------------------------------------------------- tile plan


@dataclass(frozen=True)
class TilePlan:
    """How a signal of ``length`` samples (at the model's rate) is cut into model windows.

    Window i reads input samples ``[starts[i], starts[i] + input_length)`` of the signal
    (zeros outside ``[0, length)``) and its output sample k is signal sample
    ``starts[i] + lead + k``; it contributes its output samples ``keeps[i] = (k0, k1)``.
    Consecutive windows' kept ranges are contiguous and together cover ``[0, length)``.

    Attributes:
        length: signal length T (samples).
        input_length: window input length (a valid model input length).
        output_length: window output length.
        hop: distance between window starts, a multiple of the model's stride (interior windows).
        lead: offset of output sample 0 relative to input sample 0 (the left context, or 0 for
            "same"-convolution models).
        starts, keeps: per window, as above.
    """

    length: int
    input_length: int
    output_length: int
    hop: int
    lead: int
    starts: tuple
    keeps: tuple

    @property
    def num_windows(self) -> int:
        return len(self.starts)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def receptive_margin(model: WaveUNet) -> int:
    """Samples of input a "same"-convolution model's output sample depends on, each side.

    Taken from the context of the same network with valid convolutions (its receptive field),
    plus one stride for the decimation phases, rounded up to a multiple of the stride.
    """
    cfg = model.config.replace(conv_mode="valid")
    with torch.device("meta"):
        valid = WaveUNet(cfg)
    reach = max(valid.context) + model.stride
    return _ceil_div(reach, model.stride) * model.stride


def plan_tiles(model: WaveUNet, length: int, segment_seconds: float = DEFAULT_SEGMENT_SECONDS) -> TilePlan:
    """The windows :func:`separate` uses for a signal of ``length`` samples at the model's rate.

    ``segment_seconds`` bounds the output window (seconds at the model's rate); the input window
    adds the model's context. The hop is balanced so that all windows do similar work, and it is a
    multiple of ``model.stride``, which makes the tiled result equal one whole-signal pass.
    """
    length = int(length)
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    if not segment_seconds > 0 or not math.isfinite(segment_seconds):
        raise ValueError(f"segment_seconds must be finite and > 0, got {segment_seconds}")
    stride = model.stride
    segment = max(1, int(round(segment_seconds * model.sample_rate)))
    hop_max = max(stride, segment // stride * stride)
    if length == 0:
        w_in = model.input_length(1)
        return TilePlan(0, w_in, model.output_length(w_in), hop_max, 0, (), ())
    count = _ceil_div(length, hop_max)
    # Balanced hop: no window is left with a sliver of work. Still <= hop_max.
    hop = _ceil_div(_ceil_div(length, count), stride) * stride

    if model.config.conv_mode == "valid":
        lead = model.context[0]
        w_in = model.input_length(hop)
        starts = tuple(i * hop - lead for i in range(count))
        keeps = tuple((0, min(hop, length - i * hop)) for i in range(count))
        return TilePlan(length, w_in, model.output_length(w_in), hop, lead, starts, keeps)

    # "same" convolutions: the whole-signal pass runs over the signal zero-padded to a multiple
    # of the stride; each window reads `margin` more on both sides (clamped to that padded
    # signal, whose edges then coincide with the window's) and keeps its interior.
    margin = receptive_margin(model)
    padded = _ceil_div(length, stride) * stride
    width = hop + 2 * margin
    if padded <= width:
        return TilePlan(length, padded, padded, padded, 0, (0,), ((0, length),))
    starts, keeps = [], []
    for i in range(count):
        d0, d1 = i * hop, min((i + 1) * hop, length)
        a = min(max(d0 - margin, 0), padded - width)
        starts.append(a)
        keeps.append((d0 - a, d1 - a))
    return TilePlan(length, width, width, hop, 0, tuple(starts), tuple(keeps))


# ---------------------------------------------------------------------------------- resampling


class _InputStream:
    """One item's mixture at the model's rate, served window by window from a rolling buffer.

    The mixture goes through a :class:`wavesep.audio.ResampleStream` in order, so the model-rate
    signal is the same whatever the windows (the streamed resampler equals its one-shot call).
    """

    def __init__(self, mix: Tensor, sample_rate: int, model_rate: int, length: int):
        self.mix = mix  # (C_m, T) at the input rate
        self.length = length  # model-rate length
        self.resampler = None
        if sample_rate != model_rate:
            self.resampler = audio.ResampleStream(sample_rate, model_rate, mix.shape[0])
        self.fed = 0  # input-rate samples given to the resampler
        self.buf = mix.new_zeros(mix.shape[0], 0)
        self.b0 = 0

    def _ensure(self, lo: int, hi: int) -> None:
        """Makes the buffer hold model-rate samples [lo, hi); requests must not go backwards."""
        b1 = self.b0 + self.buf.shape[-1]
        if lo < self.b0:
            raise RuntimeError("windows must be requested in increasing order")
        pieces = [self.buf]
        while b1 < hi:
            if self.fed < self.mix.shape[-1]:
                chunk = self.mix[:, self.fed : self.fed + _INPUT_BLOCK]
                self.fed += chunk.shape[-1]
                new = self.resampler.process(chunk)
            else:
                new = self.resampler.flush()
                if b1 + new.shape[-1] < hi:
                    raise RuntimeError("the resampled mixture is shorter than planned")
            pieces.append(new)
            b1 += new.shape[-1]
        buf = torch.cat(pieces, dim=-1) if len(pieces) > 1 else self.buf  # samples [b0, b1)
        self.buf = buf[:, lo - self.b0 :]
        self.b0 = lo

    def fill(self, dst: Tensor, start: int) -> None:
        """Writes model-rate samples [start, start + W) into ``dst`` (C_m, W), zeros outside."""
        width = dst.shape[-1]
        lo, hi = max(start, 0), min(start + width, self.length)
        if hi <= lo:
            dst.zero_()
            return
        dst[:, : lo - start].zero_()
        dst[:, hi - start :].zero_()
        if self.resampler is None:
            dst[:, lo - start : hi - start].copy_(self.mix[:, lo:hi])
            return
        self._ensure(lo, hi)
        dst[:, lo - start : hi - start].copy_(self.buf[:, lo - self.b0 : hi - self.b0])

    def close(self) -> None:
        self.buf = self.mix[:, :0]


class _OutputStream:
    """One item's estimates: model-rate windows in, input-rate samples written to the output."""

    def __init__(self, write: Callable[[Tensor, int], None], model_rate: int, sample_rate: int,
                 model_length: int, length: int, sources: int, channels: int):
        self.write = write  # write(stems (S, C_m, L), t0) at the input rate
        self.model_length = model_length
        self.length = length
        self.shape = (sources, channels)
        self.resampler = None
        if model_rate != sample_rate:
            self.resampler = audio.ResampleStream(model_rate, sample_rate, sources * channels)
        self.r1 = 0  # model-rate samples received so far
        self.emitted = 0  # input-rate samples written so far

    def push(self, stems: Tensor, t0: int) -> None:
        """Model-rate estimates (S, C_m, L) for samples [t0, t0 + L), in order."""
        if t0 != self.r1:
            raise RuntimeError(f"windows out of order: got {t0}, expected {self.r1}")
        self.r1 = t0 + stems.shape[-1]
        if self.resampler is None:
            self.write(stems, t0)
            return
        new = [self.resampler.process(stems.reshape(-1, stems.shape[-1]))]  # (S * C_m, L')
        if self.r1 >= self.model_length:
            new.append(self.resampler.flush())
        for block in new:
            # Past the end of the resampled signal the output stays zero (one sample at most).
            block = block[:, : max(0, self.length - self.emitted)]
            if block.shape[-1]:
                self.write(block.reshape(*self.shape, -1), self.emitted)  # (S, C_m, L')
                self.emitted += block.shape[-1]
