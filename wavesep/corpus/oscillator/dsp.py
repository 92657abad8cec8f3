"""Signal primitives of the oscillator renderer: band-limited wavetables, exact uint32 phase
accumulators, envelopes, filters, panning, level and a feedback-delay-network room.

Internal stereo signals are channel-first float32 (2, T); mono ones are (T,).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import signal


_TABLE_SIZE = 2048


# ------------------------------------------------------------------------------- primitives
# Internal stereo signals are channel-first float32 (2, T) so that each channel is contiguous;
# render() transposes the finished stems to (T, 2).


def _r(x: float, digits: int = 4) -> float:
    return round(float(x), digits)


def _midi_hz(m):
    return 440.0 * 2.0 ** ((np.asarray(m, dtype=np.float64) - 69.0) / 12.0)


class _Table(NamedTuple):
    """One cycle of a waveform, _TABLE_SIZE samples, with the slope to each next sample."""

    values: np.ndarray
    slopes: np.ndarray


def _table(amps, phases=None) -> _Table:
    """Wavetable of sum_k amps[k-1] * sin(2 pi k x + phases[k-1]), x in [0, 1)."""
    amps = np.asarray(amps, dtype=np.float64)
    k = amps.size
    if phases is None:
        phases = np.zeros(k)
    spec = np.zeros(_TABLE_SIZE // 2 + 1, dtype=np.complex128)
    # irfft of c_k gives sum Re(c_k e^{i 2 pi k x}) * 2/N, so -1j * e^{i phase} makes a sine.
    spec[1:k + 1] = amps * np.exp(1j * np.asarray(phases)) * (-1j) * (_TABLE_SIZE / 2)
    return _table_from_cycle(np.fft.irfft(spec, _TABLE_SIZE))


def _table_from_cycle(cycle: np.ndarray) -> _Table:
    wrapped = np.append(cycle, cycle[0])
    return _Table(cycle.astype(np.float32), np.diff(wrapped).astype(np.float32))


def _harmonics_below(f_max: float, sr: int, cap: int = 80) -> int:
    return int(max(1, min(cap, 0.45 * sr / max(f_max, 1.0))))


# Oscillator phases are uint32 fractions of a cycle: integer wrap-around keeps them exact over
# any song length, the top bits index the wavetable and the rest interpolate.
_FRAC_BITS = 32 - int(math.log2(_TABLE_SIZE))
_FRAC_MASK = np.uint32((1 << _FRAC_BITS) - 1)
_FRAC_SCALE = np.float32(2.0 ** -_FRAC_BITS)
_RADIANS_PER_UNIT = np.float32(2 * np.pi / 2.0 ** 32)


def _increment(freq: float, sr: int) -> np.uint32:
    return np.uint32(int(round(freq / sr * 2.0 ** 32)) % (1 << 32))


def _phase(freq: float, count: int, sr: int, start: float = 0.0) -> np.ndarray:
    """uint32 phase (count,) of a constant frequency, starting at `start` cycles."""
    return (np.arange(count, dtype=np.uint32) * _increment(freq, sr)
            + np.uint32(int(start * 2.0 ** 32) % (1 << 32)))


def _phase_track(freq: np.ndarray, sr: int) -> np.ndarray:
    """uint32 phase (n,) of a time-varying frequency (n,) in Hz (below sr/2)."""
    increments = np.round(np.asarray(freq, dtype=np.float64) * (2.0 ** 32 / sr))
    return np.cumsum(increments.astype(np.uint32), dtype=np.uint32)


def _lookup(table: _Table, phase: np.ndarray) -> np.ndarray:
    """Linear-interpolated wavetable read at uint32 `phase` -> float32."""
    i = (phase >> np.uint32(_FRAC_BITS)).astype(np.intp)
    frac = (phase & _FRAC_MASK).astype(np.float32) * _FRAC_SCALE
    return table.values[i] + frac * table.slopes[i]


def _sin(phase: np.ndarray) -> np.ndarray:
    """sin of a uint32 phase -> float32."""
    return np.sin(phase.astype(np.float32) * _RADIANS_PER_UNIT)


def _sin_cycles(phase_cycles: np.ndarray) -> np.ndarray:
    """sin(2 pi phase) of a float phase in cycles, wrapped in float64 before the float32 sine."""
    wrapped = (phase_cycles - np.floor(phase_cycles)).astype(np.float32)
    return np.sin(np.float32(2 * np.pi) * wrapped)


def _butter(kind: str, cutoff, sr: int, order: int = 2) -> np.ndarray:
    nyq = sr / 2
    if np.ndim(cutoff):
        wn = [min(max(c / nyq, 1e-4), 0.95) for c in cutoff]
    else:
        wn = min(max(cutoff / nyq, 1e-4), 0.95)
    return signal.butter(order, wn, btype=kind, output="sos")


def _place(out: np.ndarray, buf: np.ndarray, start: int) -> None:
    """Add `buf` into `out` from sample `start` on, cropped to out's bounds (last axis is time)."""
    n = out.shape[-1]
    length = buf.shape[-1]
    if start >= n or start + length <= 0:
        return
    b0 = max(0, -start)
    b1 = min(length, n - start)
    out[..., start + b0:start + b1] += buf[..., b0:b1]


def _pan(mono: np.ndarray, pan: float) -> np.ndarray:
    """Constant-power pan, pan in [-1, 1] (left .. right): (T,) -> (2, T)."""
    angle = (pan + 1) * np.pi / 4
    gains = np.array([math.cos(angle), math.sin(angle)], dtype=np.float32)
    return gains[:, None] * mono[None, :]


def _balance(x: np.ndarray, pan: float) -> np.ndarray:
    """Move a stereo (2, T) signal towards `pan` in [-1, 1], constant power."""
    angle = (pan + 1) * np.pi / 4
    gains = np.array([math.cos(angle), math.sin(angle)], dtype=np.float32) * np.float32(2 ** 0.5)
    return x * gains[:, None]


def _env(count: int, sr: int, attack: float, decay_tau: float, length: float,
         release: float) -> np.ndarray:
    """Note envelope: linear attack, exponential decay, held for `length` s, linear release.

    decay_tau = inf gives a sustained note. Returns float32 (count,).
    """
    t = np.arange(count, dtype=np.float32) * np.float32(1.0 / sr)
    env = np.minimum(t * np.float32(1.0 / max(attack, 1e-4)), np.float32(1))
    if np.isfinite(decay_tau):
        env *= np.exp(t * np.float32(-1.0 / decay_tau))
    env *= np.clip((np.float32(length + release) - t) * np.float32(1.0 / max(release, 1e-4)),
                   0, 1)
    return env


def _active_rms(x: np.ndarray, sr: int) -> float:
    """RMS over the 50 ms blocks within 40 dB of the loudest block; x is (T,) or (2, T)."""
    power = np.square(x, dtype=np.float32)
    if power.ndim == 2:
        power = power.mean(axis=0)
    block = max(1, int(0.05 * sr))
    n = power.shape[0] // block * block
    if n == 0:
        return float(np.sqrt(power.mean())) if power.size else 0.0
    power = power[:n].reshape(n // block, block).mean(axis=1, dtype=np.float64)
    top = power.max()
    if top <= 0:
        return 0.0
    return float(np.sqrt(power[power > top * 1e-4].mean()))


def _fdn_reverb(x: np.ndarray, sr: int, rt60: float, rng: np.random.Generator,
                predelay: float = 0.01, damping: float = 0.15) -> np.ndarray:
    """Stereo room of a mono signal: an 8-line feedback delay network, processed in blocks.

    Every delay is longer than the block, so each block only reads outputs of earlier blocks and
    the recursion runs block by block over vectors instead of sample by sample. A 3-tap smoothing
    filter in the loop makes high frequencies die away faster than low ones.
    (T,) -> (2, T) float32, about the input's energy.
    """
    if sr >= 32000:
        # The room's tail is dark anyway: run the network at half rate (pairs averaged on the
        # way in, linear interpolation on the way out) for half the cost.
        half = _fdn_reverb(0.5 * (x[0::2] + x[1::2]) if x.size % 2 == 0 else
                           0.5 * (x[0:-1:2] + x[1::2]), sr // 2, rt60, rng, predelay, damping)
        half = np.concatenate([half, half[:, -1:]], axis=1)
        out = np.empty((2, 2 * (half.shape[1] - 1)), dtype=np.float32)
        out[:, 0::2] = half[:, :-1]
        out[:, 1::2] = 0.5 * (half[:, :-1] + half[:, 1:])
        return np.pad(out, ((0, 0), (0, x.shape[0] - out.shape[1])))[:, :x.shape[0]]
    n = x.shape[0]
    lines = 8
    # Delays of 50-110 ms (mutually prime at 44.1 kHz): long enough for big blocks.
    base = np.array([2203, 2591, 2953, 3343, 3697, 4091, 4441, 4801], dtype=np.float64)
    delays = np.round(base * (sr / 44100.0) * rng.uniform(0.9, 1.2)).astype(np.int64)
    delays = np.maximum(delays, 16 + np.arange(lines))
    block = int(delays.min()) - 2
    gains = 10.0 ** (-3.0 * delays / (rt60 * sr))
    line_gains = gains.astype(np.float32)[:, None]  # (lines, 1)
    hist = int(delays.max()) + 2
    y = np.zeros((lines, hist + n), dtype=np.float32)  # line outputs after `hist` zeros
    inject = (rng.choice([-1.0, 1.0], size=lines) / lines).astype(np.float32)[:, None]
    xin = np.zeros(n, dtype=np.float32)
    pre = int(predelay * sr)
    if pre < n:
        xin[pre:] = x[:n - pre]
    h0, h1 = np.float32(damping), np.float32(1 - 2 * damping)
    taps = np.empty((lines, block + 2), dtype=np.float32)
    for start in range(0, n, block):
        width = min(n, start + block) - start
        for j in range(lines):
            a = hist + start - int(delays[j]) - 1
            taps[j, :width + 2] = y[j, a:a + width + 2]
        # Householder feedback (I - 2/N 11^T) diag(gains): a sum instead of a matrix product.
        u = line_gains * (h1 * taps[:, 1:width + 1] + h0 * (taps[:, :width] + taps[:, 2:width + 2]))
        u += inject * xin[start:start + width] - np.float32(2.0 / lines) * u.sum(axis=0)
        y[:, hist + start:hist + start + width] = u
    mix = rng.standard_normal((2, lines)).astype(np.float32) / np.float32(math.sqrt(lines))
    return mix @ y[:, hist:]


def _add_room(dry: np.ndarray, sr: int, rng: np.random.Generator, rt60: float,
              wet_db: float) -> np.ndarray:
    """dry (2, T) plus its room, the wet signal `wet_db` relative to the dry RMS."""
    if dry.shape[-1] == 0:
        return dry
    mono = dry.mean(axis=0)
    wet = _fdn_reverb(mono, sr, rt60, rng, predelay=float(rng.uniform(0.005, 0.03)))
    dry_rms = math.sqrt(float(np.mean(np.square(mono), dtype=np.float64))) + 1e-12
    wet_rms = math.sqrt(float(np.mean(np.square(wet), dtype=np.float64))) + 1e-12
    return dry + wet * np.float32(10 ** (wet_db / 20) * dry_rms / wet_rms)
