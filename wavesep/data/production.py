"""Production augmentation: make rendered training windows sound more like mixed and mastered records.

Shape legend: S_all raw stems of a track (e.g. bass, drums, other, vocals), C channels, T samples.

The rendered corpora are clean General MIDI arrangements summed without processing, at about
-20 dBFS; released songs are produced: a dry voice is equalised, compressed, placed in the
centre and sent to reverb and delay, instruments are coloured and sometimes distorted, and the
whole mix is bus-compressed and limited to a loudness of about -16 to -8 dBFS RMS. A network
trained on the clean sums is level-dependent and has never heard a reverberant voice. Each
function here applies one of those steps to the stems of a training window, with every
parameter drawn from an explicit :class:`numpy.random.Generator`:

- :func:`vocal_chain`: high-pass, presence and air EQ, compression, centring, reverb and echo on
  the vocal stem. The target vocals are the processed ("wet") vocals, as in MUSDB18, where the
  vocal stem includes its reverb.
- :func:`brighten`: a strong high-pass, presence and air EQ on the vocal stem alone (the rendered
  voices have 5-15 dB less of their energy above 4 kHz than produced ones; ``train.py --vocal-eq P``).
- :func:`colour`: a random low/high shelf tilt, stereo width and (for some stems) saturation.
- :func:`master`: bus compression and, for "mastered" windows, limiting to a loudness drawn from
  the range of released music; otherwise a level drawn from a wide range (quiet recordings
  included). Both are one gain envelope applied to every stem, so the mixture is still exactly
  the sum of the stems.

:func:`produce` runs them in a fixed order (the order of the RNG draws is part of the
determinism contract of :class:`wavesep.data.TrainWindows`). Everything is a causal filter or
a convolution over the window alone, so it costs a few milliseconds per window.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import signal

__all__ = ["vocal_chain", "brighten", "colour", "master", "produce"]

_EPS = 1e-12


def _db(x: float) -> float:
    return 10.0 ** (x / 20.0)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + _EPS))


def _shelf(kind: str, freq: float, gain_db: float, sample_rate: int) -> np.ndarray:
    """Second-order shelving filter (RBJ audio EQ cookbook, slope 1) as one SOS row (1, 6)."""
    a = _db(gain_db / 2.0)
    w0 = 2.0 * math.pi * min(freq, 0.45 * sample_rate) / sample_rate
    cw, alpha = math.cos(w0), math.sin(w0) / math.sqrt(2.0)
    sq = 2.0 * math.sqrt(a) * alpha
    if kind == "low":
        b = [a * ((a + 1) - (a - 1) * cw + sq), 2 * a * ((a - 1) - (a + 1) * cw), a * ((a + 1) - (a - 1) * cw - sq)]
        den = [(a + 1) + (a - 1) * cw + sq, -2 * ((a - 1) + (a + 1) * cw), (a + 1) + (a - 1) * cw - sq]
    else:
        b = [a * ((a + 1) + (a - 1) * cw + sq), -2 * a * ((a - 1) + (a + 1) * cw), a * ((a + 1) + (a - 1) * cw - sq)]
        den = [(a + 1) - (a - 1) * cw + sq, 2 * ((a - 1) - (a + 1) * cw), (a + 1) - (a - 1) * cw - sq]
    return np.array([b + den]) / den[0]


def _peak(freq: float, gain_db: float, q: float, sample_rate: int) -> np.ndarray:
    """Second-order peaking EQ (RBJ cookbook) as one SOS row (1, 6)."""
    a = _db(gain_db / 2.0)
    w0 = 2.0 * math.pi * min(freq, 0.45 * sample_rate) / sample_rate
    alpha = math.sin(w0) / (2.0 * q)
    cw = math.cos(w0)
    b = [1 + alpha * a, -2 * cw, 1 - alpha * a]
    den = [1 + alpha / a, -2 * cw, 1 - alpha / a]
    return np.array([b + den]) / den[0]


def _envelope(power: np.ndarray, attack: float, release: float, sample_rate: int) -> np.ndarray:
    """Smoothed power envelope (T,) of ``power`` (T,): a one-pole follower whose time constant is
    the mean of attack and release (seconds), started at the first 10 ms' mean power."""
    tau = 0.5 * (attack + release)
    coef = math.exp(-1.0 / max(tau * sample_rate, 1.0))
    start = float(np.mean(power[: max(1, sample_rate // 100)]))
    env, _ = signal.lfilter([1.0 - coef], [1.0, -coef], power, zi=[coef * start])
    return np.maximum(env, _EPS)


def _compressor_gain(level_source: np.ndarray, rng: np.random.Generator, sample_rate: int,
                     ratio: tuple, depth_db: tuple, attack: tuple, release: tuple) -> np.ndarray:
    """Gain (T,) of a feed-forward RMS compressor driven by ``level_source`` (C, T).

    The threshold is drawn ``depth_db`` dB below the signal's RMS level, so every window is
    compressed by a comparable amount whatever its level."""
    r = rng.uniform(*ratio)
    depth = rng.uniform(*depth_db)
    att, rel = rng.uniform(*attack), rng.uniform(*release)
    power = np.mean(np.square(level_source, dtype=np.float64), axis=0)  # (T,)
    env_db = 10.0 * np.log10(_envelope(power, att, rel, sample_rate))
    threshold = 10.0 * math.log10(float(np.mean(power)) + _EPS) - depth
    over = np.maximum(env_db - threshold, 0.0)
    return 10.0 ** (-(over * (1.0 - 1.0 / r)) / 20.0)


def _reverb_ir(rng: np.random.Generator, channels: int, sample_rate: int) -> np.ndarray:
    """A synthetic room: exponentially decaying noise per channel (decorrelated), darker as it
    decays, RT60 drawn from 0.3-2.5 s, pre-delay 0-40 ms. Returns (C, L), unit energy per channel."""
    rt60 = rng.uniform(0.3, 2.5)
    predelay = int(rng.uniform(0.0, 0.04) * sample_rate)
    length = int(min(rt60, 1.0) * sample_rate)  # the tail past 1 s is below -17 dB even at 2.5 s
    t = np.arange(length) / sample_rate
    decay = np.exp(-6.9078 * t / rt60)  # -60 dB at rt60
    noise = rng.standard_normal((channels, length)) * decay
    cutoff = rng.uniform(2500.0, 0.45 * sample_rate)
    sos = signal.butter(1, cutoff, fs=sample_rate, output="sos")
    noise = signal.sosfilt(sos, noise, axis=-1)
    ir = np.concatenate([np.zeros((channels, predelay)), noise], axis=-1)
    return ir / np.sqrt(np.sum(ir ** 2, axis=-1, keepdims=True) + _EPS)


def vocal_chain(vocals: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A vocal production chain on one stem (C, T), returned as a new float32 array of the same
    shape and about the same RMS: high-pass 60-200 Hz, presence peak 0-6 dB at 2-5 kHz, air
    shelf -2..+6 dB at 6 kHz, compression (ratio 2-6, 0-12 dB below the RMS), the dry voice
    centred (with probability 0.7; pan within +-0.15), reverb (probability 0.8, wet 5-35% of the
    energy) and an echo (probability 0.3, 120-450 ms, feedback 0.1-0.4, four repeats)."""
    x = vocals.astype(np.float64)
    level = _rms(x)
    if level < 1e-7:
        return vocals.astype(np.float32, copy=True)
    channels = x.shape[0]
    sos = np.concatenate([
        signal.butter(2, rng.uniform(60.0, 200.0), btype="highpass", fs=sample_rate, output="sos"),
        _peak(rng.uniform(2000.0, 5000.0), rng.uniform(0.0, 6.0), 1.0, sample_rate),
        _shelf("high", 6000.0, rng.uniform(-2.0, 6.0), sample_rate),
    ])
    x = signal.sosfilt(sos, x, axis=-1)
    x *= _compressor_gain(x, rng, sample_rate, ratio=(2.0, 6.0), depth_db=(0.0, 12.0),
                          attack=(0.002, 0.015), release=(0.05, 0.2))[None]
    centre, pan = rng.random() < 0.7, rng.uniform(-0.15, 0.15)
    if centre and channels == 2:
        mono = x.mean(axis=0)
        x = np.stack([mono * math.sqrt(0.5 - pan), mono * math.sqrt(0.5 + pan)]) * math.sqrt(2.0)
    dry = x
    if rng.random() < 0.8:
        wet_share = rng.uniform(0.05, 0.35)
        ir = _reverb_ir(rng, channels, sample_rate)
        wet = signal.fftconvolve(dry, ir, axes=-1)[:, : dry.shape[-1]]
        x = math.sqrt(1.0 - wet_share) * dry + math.sqrt(wet_share) * wet * (_rms(dry) / (_rms(wet) + _EPS))
    if rng.random() < 0.3:
        x = x.copy() if x is dry else x
        delay = int(rng.uniform(0.12, 0.45) * sample_rate)
        feedback, echo_level = rng.uniform(0.1, 0.4), rng.uniform(0.05, 0.25)
        for k in range(1, 5):  # the first four repeats of a feedback delay
            if k * delay >= x.shape[-1]:
                break
            x[:, k * delay:] += echo_level * feedback ** (k - 1) * dry[:, : x.shape[-1] - k * delay]
    x *= level / _rms(x)
    return x.astype(np.float32)


def brighten(vocals: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """The spectral balance of a produced voice on one stem (C, T), returned as a new float32 array
    with the same RMS: high-pass (2nd order) at 60-150 Hz, a high shelf of +3..+15 dB at 2.5-5 kHz
    and an air shelf of 0..+10 dB at 7-10 kHz (capped at 0.45 of the sample rate).

    Rendered voices (Sinsy/WORLD, eSpeak NG, Festival diphones at 16 kHz, GM choirs) are dull: the
    median share of their energy in the 8-11 kHz band is -38 dB over 40 rendered songs, against
    -20 to -30 dB for four real produced voices, and -25 dB against -14 to -22 dB at 4-8 kHz
    (``benchmarks/bench_spectra.py``); a network trained on them leaves the presence and sibilance
    of real voices in the accompaniment. Five RNG draws, also for a silent stem (returned as it is).
    """
    hp, f1, g1, f2, g2 = (rng.uniform(60.0, 150.0), rng.uniform(2500.0, 5000.0), rng.uniform(3.0, 15.0),
                          rng.uniform(7000.0, 10000.0), rng.uniform(0.0, 10.0))
    x = vocals.astype(np.float64)
    level = _rms(x)
    if level < 1e-7:
        return vocals.astype(np.float32, copy=True)
    sos = np.concatenate([
        signal.butter(2, hp, btype="highpass", fs=sample_rate, output="sos"),
        _shelf("high", f1, g1, sample_rate),
        _shelf("high", f2, g2, sample_rate),
    ])
    x = signal.sosfilt(sos, x, axis=-1)
    x *= level / _rms(x)
    return x.astype(np.float32)


def colour(stem: np.ndarray, rng: np.random.Generator, sample_rate: int, distort_prob: float = 0.0,
           centre_prob: float = 0.0) -> np.ndarray:
    """A random tone and image for one accompaniment stem (C, T), returned as a new float32 array
    of the same RMS: low shelf +-4 dB at 200 Hz, high shelf +-6 dB at 4 kHz, stereo width
    0-1.5 (mid/side; 0 is mono in the centre, which it is with probability ``centre_prob``, as
    bass usually is), and with probability ``distort_prob`` tanh saturation with a drive of 2-10
    (distorted guitars and basses), low-passed at 4-9 kHz like a guitar cabinet."""
    x = stem.astype(np.float64)
    level = _rms(x)
    draws = rng.uniform(size=7)
    if level < 1e-7:
        return stem.astype(np.float32, copy=True)
    sos = np.concatenate([_shelf("low", 200.0, -4.0 + 8.0 * draws[0], sample_rate),
                          _shelf("high", 4000.0, -6.0 + 12.0 * draws[1], sample_rate)])
    x = signal.sosfilt(sos, x, axis=-1)
    if x.shape[0] == 2:
        width = 0.0 if draws[6] < centre_prob else 1.5 * draws[2]
        mid, side = 0.5 * (x[0] + x[1]), 0.5 * (x[0] - x[1]) * width
        x = np.stack([mid + side, mid - side])
    if draws[3] < distort_prob:
        drive = 2.0 + 8.0 * draws[4]
        x = np.tanh(drive * x / (_rms(x) * 3.0 + _EPS))
        cab = signal.butter(2, 4000.0 + 5000.0 * draws[5], fs=sample_rate, output="sos")
        x = signal.sosfilt(cab, x, axis=-1)
    x *= level / _rms(x)
    return x.astype(np.float32)


def _limiter_gain(mix: np.ndarray, ceiling: float, width: int) -> np.ndarray:
    """Smallest-change gain (T,) that keeps |mix| * gain <= ceiling: the required gain
    min(1, ceiling / |peak|) min-filtered over ``width`` samples, then averaged over the same
    width (each average is over values that are all <= the requirement at its centre, so the
    ceiling holds exactly, and the gain moves smoothly)."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    peak = np.max(np.abs(mix), axis=0)  # (T,)
    need = np.minimum(1.0, ceiling / np.maximum(peak, _EPS))
    return np.minimum(uniform_filter1d(minimum_filter1d(need, width, mode="nearest"), width, mode="nearest"), need)


def master(stems: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Bus processing of a window's stems (S_all, C, T), in place: one gain envelope (T,) applied
    to every stem, so the mixture stays their exact sum.

    With probability 0.6 the window is "mastered": bus compression (ratio 1.5-4, 0-8 dB below
    the RMS, attack 1-20 ms, release 50-300 ms), a level drawn from -16..-8 dBFS RMS and a
    limiter at a ceiling of 0.99 (1 ms look-around). Otherwise it is only brought to a level
    drawn from -36..-12 dBFS RMS (lowered if its peak would pass 0.99), which covers quiet
    recordings.
    """
    mix = stems.sum(axis=0)  # (C, T)
    level = _rms(mix)
    mastered = rng.random() < 0.6
    target_db = rng.uniform(-16.0, -8.0) if mastered else rng.uniform(-36.0, -12.0)
    if level < 1e-7:
        return stems
    gain = np.full(mix.shape[-1], _db(target_db) / level)
    if mastered:
        comp = _compressor_gain(mix, rng, sample_rate, ratio=(1.5, 4.0), depth_db=(0.0, 8.0),
                                attack=(0.001, 0.02), release=(0.05, 0.3))
        gain = comp * (_db(target_db) / _rms(mix * comp[None]))
        gain *= _limiter_gain(mix * gain[None], 0.99, max(3, int(0.001 * sample_rate)))
    else:
        gain *= min(1.0, 0.99 / (float(np.max(np.abs(mix))) * gain[0] + _EPS))  # never clipping
    stems *= gain.astype(stems.dtype)[None, None, :]
    return stems


def produce(stems: np.ndarray, rng: np.random.Generator, sample_rate: int, stem_names: Sequence[str],
            mono_prob: float = 0.2) -> np.ndarray:
    """The whole production chain on a window's raw stems (S_all, C, T), in place: the vocal chain
    on the stem named "vocals" (if any), :func:`colour` on every other stem (saturation with
    probability 0.25 on "other" and 0.15 on "bass"; bass centred with probability 0.7), then
    :func:`master`; with probability ``mono_prob`` every stem is then made mono (both channels
    their mean: mono and near-mono records, where the centred voice is no cue). Returns ``stems``."""
    distort = {"other": 0.25, "bass": 0.15}
    for k, name in enumerate(stem_names):
        if name == "vocals":
            stems[k] = vocal_chain(stems[k], rng, sample_rate)
        else:
            stems[k] = colour(stems[k], rng, sample_rate, distort.get(name, 0.0), 0.7 if name == "bass" else 0.0)
    if rng.random() < mono_prob and stems.shape[1] > 1:
        stems[:] = stems.mean(axis=1, keepdims=True)
    return master(stems, rng, sample_rate)
