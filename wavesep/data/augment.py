"""Data augmentation of training windows, as small composable functions.

Shape legend: S_all raw stems of a track (e.g. bass, drums, other, vocals), C channels, T samples.

Every function works on the raw stems ``(S_all, C, T)`` *before* the mixture is built and takes
an explicit :class:`numpy.random.Generator`, so a training window is a pure function of its RNG
(see :class:`wavesep.data.TrainWindows`). The caller then builds the mixture as the sum of the
augmented stems, so the mixture always equals the sum of the targets.

- :func:`random_gain`: each stem scaled by a factor drawn from U(low, high); U(0.7, 1.0) is the
  augmentation of the Wave-U-Net paper.
- :func:`swap_channels`: each stem's left and right channels exchanged with probability p.
- :func:`flip_sign`: each stem multiplied by -1 with probability p.
- :func:`remix`: each stem taken from an independently drawn track and position.
- :func:`random_level`: all stems scaled by one factor that brings the mixture to an RMS level
  drawn from U(low, high) dBFS (released songs range from about -35 to -8 dBFS RMS; a network
  trained at one level is level-dependent).
- :func:`make_mono`: with probability p every stem's channels replaced by their mean (mono
  records, where panning is no cue to which source is which).
- :func:`replace_backing`: the window's accompaniment stems replaced by a recording of real,
  voice-free music at the same level (to within a random spread), so that the network hears real
  instruments, mixes and masters beside the rendered vocals.

:class:`AugmentConfig` switches them on and off; :func:`apply` runs the enabled in-place ones in a
fixed order (the order of the RNG draws is part of the determinism contract).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations a training window gets, and their parameters.

    Attributes:
        gain: scale each stem by U(gain_low, gain_high) (the paper's augmentation).
        gain_low, gain_high: range of the linear gain factor (not dB).
        channel_swap: exchange left/right of each stem with probability ``channel_swap_prob``
            (no effect on mono data).
        sign_flip: multiply each stem by -1 with probability ``sign_flip_prob``.
        remix: with probability ``remix_prob`` build the window from stems of independently drawn
            tracks and positions (each stem from its own random track) instead of one track.
        level: scale the whole window (all stems by one factor) so that the mixture's RMS level is
            drawn from U(``level_low_db``, ``level_high_db``) dBFS; windows with a silent mixture
            are left as they are.
        mono: with probability ``mono_prob`` make the whole window mono (every stem's channels set
            to their mean; after the level, so the level is that of the stereo window).
        production: with probability ``production_prob`` run the production chain of
            :mod:`wavesep.data.production` (vocal chain, instrument colour, bus compression, limiting
            and loudness) on the window's stems, after the other augmentations.
        backing: with probability ``backing_prob`` replace the window's accompaniment by a window of
            a backing recording (:func:`replace_backing`; the dataset needs backing tracks), before
            the other augmentations.
        backing_spread_db: the backing's level is the replaced accompaniment's level times a gain
            drawn from U(-spread, +spread) dB.
        vocal_eq: with probability ``vocal_eq_prob`` give the vocal stem the spectral balance of a
            produced voice (:func:`wavesep.data.production.brighten`), after the other augmentations
            and before the production chain.
        voices: with probability ``voices_prob`` take the window's vocal stem from the track's
            re-sung vocals (the same song, melody and position sung with a recorded voice; see
            :mod:`wavesep.corpus.revoice`; the dataset needs voice tracks), before the other
            augmentations.
    """

    gain: bool = True
    gain_low: float = 0.7
    gain_high: float = 1.0
    channel_swap: bool = True
    channel_swap_prob: float = 0.5
    sign_flip: bool = True
    sign_flip_prob: float = 0.5
    remix: bool = False
    remix_prob: float = 1.0
    level: bool = False
    level_low_db: float = -40.0
    level_high_db: float = -10.0
    mono: bool = False
    mono_prob: float = 0.2
    production: bool = False
    production_prob: float = 0.75
    backing: bool = False
    backing_prob: float = 0.5
    backing_spread_db: float = 3.0
    vocal_eq: bool = False
    vocal_eq_prob: float = 0.5
    voices: bool = False
    voices_prob: float = 0.5

    def __post_init__(self):
        problems = []
        if not self.level_low_db <= self.level_high_db <= 0.0:
            problems.append(f"need level_low_db <= level_high_db <= 0 dBFS, got {self.level_low_db}, "
                            f"{self.level_high_db}")
        if not 0.0 <= self.gain_low <= self.gain_high:
            problems.append(f"need 0 <= gain_low <= gain_high, got {self.gain_low}, {self.gain_high}")
        if not 0.0 <= self.backing_spread_db <= 40.0:
            problems.append(f"backing_spread_db must be in [0, 40] dB, got {self.backing_spread_db}")
        for name in ("channel_swap_prob", "sign_flip_prob", "remix_prob", "mono_prob", "production_prob",
                     "backing_prob", "vocal_eq_prob", "voices_prob"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                problems.append(f"{name} must be in [0, 1], got {p}")
        if problems:
            raise ValueError("invalid AugmentConfig: " + "; ".join(problems))

    @classmethod
    def none(cls) -> "AugmentConfig":
        """No augmentation at all (the mixture file is then used where a track has one)."""
        return cls(gain=False, channel_swap=False, sign_flip=False, remix=False, level=False, mono=False,
                   production=False, backing=False, vocal_eq=False, voices=False)

    @classmethod
    def paper(cls) -> "AugmentConfig":
        """Only the Wave-U-Net paper's augmentation: per-source gain U(0.7, 1.0)."""
        return cls(channel_swap=False, sign_flip=False, remix=False)

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is switched on."""
        return (self.gain or self.channel_swap or self.sign_flip or self.remix or self.level or self.mono
                or self.production or self.backing or self.vocal_eq or self.voices)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_value(cls, value: Any) -> "AugmentConfig":
        """Accepts an AugmentConfig, True (defaults), False/None (none) or a dict of fields."""
        if isinstance(value, cls):
            return value
        if value is True:
            return cls()
        if value is False or value is None:
            return cls.none()
        if isinstance(value, Mapping):
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = set(value) - known
            if unknown:
                raise ValueError(f"unknown augmentation options {sorted(unknown)}; known: {sorted(known)}")
            return cls(**dict(value))
        raise TypeError(f"augment must be a bool, a dict or an AugmentConfig, got {type(value).__name__}")


def random_gain(stems: np.ndarray, rng: np.random.Generator, low: float = 0.7, high: float = 1.0) -> np.ndarray:
    """Scales each stem by its own factor drawn from U(low, high), in place.

    Args:
        stems: (S_all, C, T) float array, modified in place and returned.
        rng: source of the S_all factors (one draw of size S_all).
    """
    gains = rng.uniform(low, high, size=stems.shape[0]).astype(stems.dtype)
    stems *= gains[:, None, None]
    return stems


def swap_channels(stems: np.ndarray, rng: np.random.Generator, prob: float = 0.5) -> np.ndarray:
    """Reverses the channel order of each stem with probability ``prob``, in place.

    For stereo this exchanges left and right. The RNG is drawn (S_all values) even for mono input,
    so the later draws of a window do not depend on the channel count.

    Args:
        stems: (S_all, C, T) float array, modified in place and returned.
    """
    swap = rng.random(stems.shape[0]) < prob
    if stems.shape[1] > 1:
        for k in np.flatnonzero(swap):
            stems[k] = stems[k, ::-1].copy()
    return stems


def flip_sign(stems: np.ndarray, rng: np.random.Generator, prob: float = 0.5) -> np.ndarray:
    """Multiplies each stem by -1 with probability ``prob``, in place.

    Args:
        stems: (S_all, C, T) float array, modified in place and returned.
    """
    flip = rng.random(stems.shape[0]) < prob
    stems[flip] *= -1
    return stems


def random_level(stems: np.ndarray, rng: np.random.Generator, low_db: float = -40.0,
                 high_db: float = -10.0) -> np.ndarray:
    """Scales all stems by one factor so that their sum (the mixture) has an RMS level drawn from
    U(low_db, high_db) dBFS (0 dBFS: RMS 1), in place. The RNG is drawn (one value) even when
    the mixture is silent, which is then left unchanged.

    Args:
        stems: (S_all, C, T) float array, modified in place and returned.
    """
    target_db = rng.uniform(low_db, high_db)
    rms = float(np.sqrt(np.mean(np.square(stems.sum(axis=0), dtype=np.float64))))
    if rms > 1e-7:
        stems *= np.asarray(10.0 ** (target_db / 20.0) / rms, dtype=stems.dtype)
    return stems


def make_mono(stems: np.ndarray, rng: np.random.Generator, prob: float = 0.2) -> np.ndarray:
    """With probability ``prob`` sets every channel of every stem to the stem's channel mean, in
    place (one draw, also for mono input).

    Args:
        stems: (S_all, C, T) float array, modified in place and returned.
    """
    if rng.random() < prob and stems.shape[1] > 1:
        stems[:] = stems.mean(axis=1, keepdims=True)
    return stems


def remix(rng: np.random.Generator, num_stems: int, draw_stem: Callable[[np.random.Generator, int], np.ndarray]) -> np.ndarray:
    """Builds a window whose stems come from independently drawn tracks and positions.

    Args:
        rng: passed on to ``draw_stem``, which draws the track and position from it.
        num_stems: S_all.
        draw_stem: ``draw_stem(rng, k)`` returns stem k, shape (C, T), of a random track at a random
            position (the dataset knows its tracks and window length).

    Returns:
        (S_all, C, T) float array, a new array.
    """
    return np.stack([draw_stem(rng, k) for k in range(num_stems)])


def replace_backing(stems: np.ndarray, rng: np.random.Generator, vocals: int, backing: np.ndarray,
                    spread_db: float = 3.0) -> np.ndarray:
    """Replaces the accompaniment of a window by a backing recording, in place.

    Every stem but ``vocals`` is set to zero except the first of them, which becomes ``backing``
    scaled to the RMS level of the accompaniment it replaces (the sum of the non-vocal stems)
    times a gain drawn from U(-spread_db, spread_db) dB, so the vocals-to-accompaniment ratio
    keeps the corpus's distribution. When the replaced accompaniment is silent the backing is
    brought to the vocals' level instead; when both are silent, or the backing is, it keeps its
    own level. One RNG draw in every case.

    Args:
        stems: (S_all, C, T) float array with S_all >= 2, modified in place and returned.
        rng: source of the level draw.
        vocals: index of the vocals stem in ``stems``.
        backing: (C, T) float array, a window of a voice-free recording.
        spread_db: half-width of the level draw (dB).
    """
    if stems.shape[0] < 2 or not 0 <= vocals < stems.shape[0]:
        raise ValueError(f"replace_backing needs a vocals stem and another one, got {stems.shape[0]} stems, "
                         f"vocals index {vocals}")
    if backing.shape != stems.shape[1:]:
        raise ValueError(f"backing shape {backing.shape} differs from a stem's {stems.shape[1:]}")
    gain_db = rng.uniform(-spread_db, spread_db)
    others = [k for k in range(stems.shape[0]) if k != vocals]

    def rms(x):
        return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))

    reference = rms(stems[others].sum(axis=0))
    if reference <= 1e-7:
        reference = rms(stems[vocals])
    own = rms(backing)
    scale = 10.0 ** (gain_db / 20.0) * reference / own if reference > 1e-7 and own > 1e-7 else 1.0
    stems[others] = 0.0
    stems[others[0]] = backing * np.asarray(scale, dtype=stems.dtype)
    return stems


def apply(stems: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Runs the enabled in-place augmentations of ``config`` (gain, channel swap, sign flip, level,
    mono).

    :func:`remix` is not run here: it decides where the stems are read from, so the dataset calls
    it before reading (see :meth:`wavesep.data.TrainWindows.__getitem__`).

    Args:
        stems: (S_all, C, T) float array, modified in place and returned.
    """
    if config.gain:
        random_gain(stems, rng, config.gain_low, config.gain_high)
    if config.channel_swap:
        swap_channels(stems, rng, config.channel_swap_prob)
    if config.sign_flip:
        flip_sign(stems, rng, config.sign_flip_prob)
    if config.level:
        random_level(stems, rng, config.level_low_db, config.level_high_db)
    if config.mono:
        make_mono(stems, rng, config.mono_prob)
    return stems
