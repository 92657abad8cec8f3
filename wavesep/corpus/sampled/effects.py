"""Mixing effects of the sampled renderer: a seeded room, shelving EQ, active-level meter.

All functions are pure: audio in, audio out, float32 ``(T, 2)`` unless stated, T samples at
``sample_rate`` Hz. Randomness comes only from the generator passed in.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sp_fft
from scipy.signal import lfilter, sosfilt


def room_ir(rng, sample_rate: int) -> tuple:
    """A stereo room impulse response (2, L) and its RT60: decaying, darkened noise."""
    rt60 = float(rng.uniform(0.3, 1.6))
    length = int(min(rt60, 1.2) * sample_rate)
    t = np.arange(length) / sample_rate
    env = np.exp(-6.9 * t / rt60)
    predelay = int(rng.uniform(0.005, 0.03) * sample_rate)
    env[:predelay] = 0.0
    noise = rng.standard_normal((2, length))
    pole = float(rng.uniform(0.3, 0.85))  # one-pole low-pass: darker rooms for larger poles
    noise = lfilter([1 - pole], [1, -pole], noise, axis=1)
    ir = (noise * env).astype(np.float32)
    ir /= np.sqrt(np.sum(ir ** 2, axis=1, keepdims=True)) + 1e-12
    return ir, rt60


def room_spectrum(ir: np.ndarray, num_samples: int) -> tuple:
    """(spectrum (2, n_fft // 2 + 1), n_fft) of a room for signals of ``num_samples``."""
    n_fft = sp_fft.next_fast_len(num_samples + ir.shape[1] - 1, real=True)
    return sp_fft.rfft(ir, n_fft, axis=1), n_fft


def apply_room(x: np.ndarray, ir_f: np.ndarray, n_fft: int, wet: float) -> np.ndarray:
    """x (T, 2) plus ``wet`` times its convolution with the room, cut to T samples.

    ``ir_f`` is the room's spectrum (2, n_fft // 2 + 1), n_fft >= T + len(ir) - 1 so the
    circular convolution equals the linear one; single precision halves the FFT cost.
    """
    if wet <= 0 or not np.any(x):
        return x
    spec = sp_fft.rfft(x.T, n_fft, axis=1)
    tail = sp_fft.irfft(spec * ir_f, n_fft, axis=1)[:, : len(x)]
    return (x + wet * tail.T).astype(np.float32)


def active_rms(x: np.ndarray, sample_rate: int) -> float:
    """RMS over the 100 ms frames louder than -40 dB below the loudest frame."""
    hop = max(1, sample_rate // 10)
    n = len(x) // hop
    if n == 0:
        return float(np.sqrt(np.mean(x ** 2))) if x.size else 0.0
    frames = np.mean(x[: n * hop].reshape(n, hop, -1) ** 2, axis=(1, 2))
    if frames.max() <= 0:
        return 0.0
    active = frames > frames.max() * 1e-4
    return float(np.sqrt(frames[active].mean()))


def shelf_sos(kind: str, corner_hz: float, gain_db: float, sample_rate: int) -> np.ndarray:
    """Second-order shelving filter (RBJ audio-EQ cookbook, shelf slope 1) as one SOS row.

    ``kind`` is "low" or "high": frequencies below (above) ``corner_hz`` are raised by
    ``gain_db``; the far side is left at 0 dB.
    """
    a = 10 ** (gain_db / 40)
    w0 = 2 * math.pi * corner_hz / sample_rate
    cos_w, alpha = math.cos(w0), math.sin(w0) / 2 * math.sqrt(2)
    sq = 2 * math.sqrt(a) * alpha
    if kind == "low":
        b = [a * ((a + 1) - (a - 1) * cos_w + sq), 2 * a * ((a - 1) - (a + 1) * cos_w),
             a * ((a + 1) - (a - 1) * cos_w - sq)]
        den = [(a + 1) + (a - 1) * cos_w + sq, -2 * ((a - 1) + (a + 1) * cos_w),
               (a + 1) + (a - 1) * cos_w - sq]
    elif kind == "high":
        b = [a * ((a + 1) + (a - 1) * cos_w + sq), -2 * a * ((a - 1) + (a + 1) * cos_w),
             a * ((a + 1) + (a - 1) * cos_w - sq)]
        den = [(a + 1) - (a - 1) * cos_w + sq, 2 * ((a - 1) - (a + 1) * cos_w),
               (a + 1) - (a - 1) * cos_w - sq]
    else:
        raise ValueError(f"shelf kind must be 'low' or 'high', got {kind!r}")
    return np.array([b + den]) / den[0]


def random_eq(x: np.ndarray, rng: np.random.Generator, sample_rate: int) -> tuple:
    """x (T, 2) through a random low shelf (80-250 Hz, +-3 dB) and high shelf (2.5-7 kHz,
    +-4 dB): the tonal differences between recordings. Returns (y, settings dict)."""
    low_hz, low_db = float(rng.uniform(80, 250)), float(rng.uniform(-3, 3))
    high_hz = float(min(rng.uniform(2500, 7000), 0.4 * sample_rate))
    high_db = float(rng.uniform(-4, 4))
    sos = np.vstack([shelf_sos("low", low_hz, low_db, sample_rate),
                     shelf_sos("high", high_hz, high_db, sample_rate)])
    y = sosfilt(sos, x, axis=0).astype(np.float32)
    return y, {"low_hz": round(low_hz), "low_db": round(low_db, 2), "high_hz": round(high_hz),
               "high_db": round(high_db, 2)}
