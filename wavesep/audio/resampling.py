"""Band-limited resampling of (..., T) signals between sample rates in Hz.

Two filters: a Kaiser-windowed sinc FIR through ``scipy.signal.resample_poly`` (the default of
:func:`resample`, used by the training data and its decode cache) and libsoxr at its "VHQ" recipe
(``backend="soxr"`` and the streaming :class:`ResampleStream`, the separation path's resampler).
Output lengths are exact: :func:`resampled_length` samples, the FIR's reach
:func:`resample_reach` input samples either side.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from scipy.signal import firwin, resample_poly

from wavesep.errors import DependencyError
from .common import _BLOCK_FRAMES, _check_rate

__all__ = ["RESAMPLE_BACKENDS", "ResampleStream", "resample", "resample_reach", "resampled_length"]

# Resampling filter: a Kaiser-windowed sinc with _ZERO_CROSSINGS zero crossings of the lower
# Nyquist frequency on each side. Measured response: passband flat within 0.0001 dB up to 0.9 x
# the lower Nyquist, stopband below -99 dB from the lower Nyquist up (no audible aliasing).
_ZERO_CROSSINGS = 64
_ROLLOFF = 0.95
_KAISER_BETA = 10.0
# The separation path's resampler: libsoxr (python-soxr) at its "VHQ" recipe, whose streamed output
# equals its one-shot output sample for sample whatever the block sizes (tested), and which is
# about 40x faster than the FIR above (benchmarks/bench_audio.py measures both filters' response).
SOXR_QUALITY = "VHQ"
RESAMPLE_BACKENDS = ("fir", "soxr")
_SOXR_BLOCK = 1 << 18


def resampled_length(frames: int, orig_sr: int, new_sr: int) -> int:
    """Number of samples :func:`resample` returns: ``round(frames * new_sr / orig_sr)``.

    Exact rational arithmetic, with halves rounded up (``floor(x + 1/2)``).
    """
    orig_sr = _check_rate(orig_sr, "orig_sr")
    new_sr = _check_rate(new_sr, "new_sr")
    return (2 * int(frames) * new_sr + orig_sr) // (2 * orig_sr)


def resample_reach(orig_sr: int, new_sr: int) -> int:
    """How far the :func:`resample` filter sees, in input samples at ``orig_sr``.

    Output sample n (at time ``n / new_sr``) depends only on the input samples i with
    ``|i / orig_sr - n / new_sr| <= reach / orig_sr``. A block resampled with ``reach`` input
    samples of context on each side therefore equals the whole-signal result. 0 when the rates
    are equal.
    """
    orig_sr = _check_rate(orig_sr, "orig_sr")
    new_sr = _check_rate(new_sr, "new_sr")
    if orig_sr == new_sr:
        return 0
    g = math.gcd(orig_sr, new_sr)
    up, down = new_sr // g, orig_sr // g
    return -(-(_ZERO_CROSSINGS * max(up, down)) // up)  # ceil(half filter length / up)


@functools.lru_cache(maxsize=16)
def _lowpass_taps(up: int, down: int) -> np.ndarray:
    """Anti-aliasing / anti-imaging FIR at the upsampled rate (odd length, centred)."""
    max_rate = max(up, down)
    taps = firwin(2 * _ZERO_CROSSINGS * max_rate + 1, _ROLLOFF / max_rate,
                  window=("kaiser", _KAISER_BETA))
    taps.setflags(write=False)
    return taps


class ResampleStream:
    """Streaming band-limited resampling of a (C, T) signal with libsoxr (quality "VHQ").

    ``process(block)`` takes the next (C, n) input samples (any n >= 0) and returns the (C, m)
    output samples that can be computed so far; ``flush()`` ends the stream and returns the rest.
    Whatever the block sizes, the concatenated output is the same, sample for sample, as
    ``resample(whole, orig_sr, new_sr, backend="soxr")``, and its length is exactly
    :func:`resampled_length` of the total input length. The filter is linear phase and centred
    (output sample n sits at time ``n / new_sr``); it holds back a few milliseconds of output
    until the input it needs has arrived (the stream's delay), and takes the signal as zero
    beyond its ends. Equal rates pass the samples through.

    Args:
        orig_sr, new_sr: input and output sample rates (Hz).
        channels: C.

    Blocks are float tensors on any device; outputs are float32 on the CPU.
    """

    def __init__(self, orig_sr: int, new_sr: int, channels: int):
        self.orig_sr = _check_rate(orig_sr, "orig_sr")
        self.new_sr = _check_rate(new_sr, "new_sr")
        self.channels = int(channels)
        self.consumed = 0  # input samples received
        self.produced = 0  # output samples returned
        self._held = np.zeros((0, self.channels), np.float32)  # (m, C): produced beyond the cap
        self._done = False
        self._soxr = None
        if self.orig_sr != self.new_sr:
            try:
                import soxr
            except ImportError:  # pragma: no cover - install_requires has it
                raise DependencyError("resampling needs python-soxr: `pip install soxr`") from None
            self._soxr = soxr.ResampleStream(self.orig_sr, self.new_sr, self.channels,
                                             dtype="float32", quality=SOXR_QUALITY)

    def _emit(self, y: np.ndarray, cap: int) -> torch.Tensor:
        # Never more than resampled_length(consumed) so far: the total is exact at flush.
        if len(self._held):
            y = np.concatenate([self._held, y])
        take = max(0, min(len(y), cap - self.produced))
        self._held = y[take:]
        self.produced += take
        return torch.from_numpy(np.ascontiguousarray(y[:take].T))  # (C, take)

    def process(self, block: torch.Tensor) -> torch.Tensor:
        """The next (C, n) input samples -> the (C, m) output samples now computable."""
        if self._done:
            raise RuntimeError("ResampleStream.process after flush")
        if block.dim() != 2 or block.shape[0] != self.channels:
            raise ValueError(f"expected a block of shape ({self.channels}, n), got {tuple(block.shape)}")
        x = block.detach().to("cpu", torch.float32)
        self.consumed += x.shape[-1]
        if self._soxr is None:
            self.produced += x.shape[-1]
            return x.clone()
        y = self._soxr.resample_chunk(np.ascontiguousarray(x.numpy().T))  # (m, C)
        return self._emit(y, resampled_length(self.consumed, self.orig_sr, self.new_sr))

    def flush(self) -> torch.Tensor:
        """Ends the stream: the remaining (C, m) output samples."""
        if self._done:
            raise RuntimeError("ResampleStream.flush called twice")
        self._done = True
        if self._soxr is None:
            return torch.zeros(self.channels, 0)
        total = resampled_length(self.consumed, self.orig_sr, self.new_sr)
        y = self._soxr.resample_chunk(np.zeros((0, self.channels), np.float32), last=True)
        out = self._emit(y, total)
        if self.produced < total:  # soxr returns exactly `total` (tested); this is a safety net
            out = torch.cat([out, torch.zeros(self.channels, total - self.produced)], dim=-1)
            self.produced = total
        return out


def _resample_soxr(wav: torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    lead, length = wav.shape[:-1], wav.shape[-1]
    rows = wav.detach().to("cpu", torch.float32).reshape(math.prod(lead), length)  # (rows, T)
    stream = ResampleStream(orig_sr, new_sr, rows.shape[0])
    out = torch.empty(rows.shape[0], resampled_length(length, orig_sr, new_sr))  # (rows, T_out)
    done = 0
    # Blocks of 2**18 frames: bounded scratch memory, and faster than one call (measured).
    for t0 in range(0, length, _SOXR_BLOCK):
        y = stream.process(rows[:, t0 : t0 + _SOXR_BLOCK])
        out[:, done : done + y.shape[-1]] = y
        done += y.shape[-1]
    out[:, done:] = stream.flush()
    return out.reshape(*lead, out.shape[-1]).to(wav.dtype).to(wav.device)


def resample(wav: torch.Tensor, orig_sr: int, new_sr: int, backend: str = "fir") -> torch.Tensor:
    """Band-limited resampling of a (..., T) signal from ``orig_sr`` to ``new_sr`` Hz.

    ``backend="soxr"`` uses libsoxr ("VHQ"), the resampler of the separation path
    (:class:`ResampleStream`, whose streamed output this equals); it computes in float32. The
    rest of this docstring describes the default ``backend="fir"``, which the training data
    (and its decode cache) uses.

    Polyphase filtering (``scipy.signal.resample_poly``) by the reduced ratio
    ``new_sr/g : orig_sr/g`` with ``g = gcd(orig_sr, new_sr)``, through a linear-phase
    Kaiser-windowed sinc (64 zero crossings each side, cut-off at 0.95 x the lower Nyquist): flat
    within 0.0001 dB up to 0.9 x the lower Nyquist, below -99 dB from the lower Nyquist up. The
    filter is centred, so output sample n sits at time ``n / new_sr`` exactly like input
    sample i at ``i / orig_sr`` (no delay); the signal is taken as zero outside [0, T).

    Output length: exactly ``round(T * new_sr / orig_sr)``, halves rounded up (see
    :func:`resampled_length`). Long signals are processed in blocks of about 2**20 input
    frames, so the scratch memory stays some tens of MB over the output itself (a 10-minute stereo
    track needs no more than its result).

    Args:
        wav: float tensor (..., T) (float32 or float64), any device; computed on the CPU in the
            tensor's dtype and returned on its device. Not differentiable.
        orig_sr: sample rate of ``wav`` (Hz).
        new_sr: wanted sample rate (Hz).
        backend: "fir" (default, described here) or "soxr" (libsoxr "VHQ", float32).

    Returns:
        Tensor (..., round(T * new_sr / orig_sr)). When ``orig_sr == new_sr``, ``wav`` itself.
    """
    orig_sr = _check_rate(orig_sr, "orig_sr")
    new_sr = _check_rate(new_sr, "new_sr")
    if backend not in RESAMPLE_BACKENDS:
        raise ValueError(f"backend must be one of {RESAMPLE_BACKENDS}, got {backend!r}")
    if orig_sr == new_sr:
        return wav
    if not torch.is_floating_point(wav) or wav.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"resample needs a float32 or float64 tensor, got {wav.dtype}")
    if backend == "soxr":
        return _resample_soxr(wav, orig_sr, new_sr)
    g = math.gcd(orig_sr, new_sr)
    up, down = new_sr // g, orig_sr // g
    lead, length = wav.shape[:-1], wav.shape[-1]
    n_out = resampled_length(length, orig_sr, new_sr)
    x = wav.detach().to("cpu").reshape(math.prod(lead), length).numpy()  # (rows, T)
    out = np.empty((x.shape[0], n_out), dtype=x.dtype)  # (rows, T_out)
    taps = _lowpass_taps(up, down).astype(x.dtype)
    half_len = (len(taps) - 1) // 2
    # Output n is the dot product of the taps with the inputs i where |n*down - i*up| <= half_len.
    # A block that starts at input a = m*down starts at output m*up, so with `context` input
    # samples either side (a multiple of `down`, keeping segment starts on that grid) each block
    # gives exactly the samples that one call over the whole signal would.
    context = down * -(-(half_len // up + 2) // down)
    step_in = down * max(1, _BLOCK_FRAMES // down)
    step_out = step_in // down * up
    for block_start in range(0, length, step_in):
        n0 = block_start // down * up
        n1 = min(n0 + step_out, n_out)
        if n0 >= n1:
            break
        seg_start = max(block_start - context, 0)
        seg_end = min(block_start + step_in + context, length)
        y = resample_poly(x[:, seg_start:seg_end], up, down, axis=-1, window=taps,
                          padtype="constant")  # (rows, T_seg_out)
        k0 = n0 - seg_start // down * up
        out[:, n0:n1] = y[:, k0 : k0 + n1 - n0]
    return torch.from_numpy(out).reshape(*lead, n_out).to(wav.device)
