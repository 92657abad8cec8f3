"""Training and validation data: MUSDB18 / MUSDB18-HQ, the synthetic corpus, folders of stems.

Shape legend: S targets (the model's sources), S_all raw stems of a track (bass, drums, other,
vocals for MUSDB), C channels, T samples; T_in / T_out the model's input / output window.

Typical use (the contract with :mod:`wavesep.training`)::

    train_set, valid_set = build_datasets("musdb", "~/MUSDB18-HQ", "vocals", model, is_wav=True)
    mix, targets = train_set[i]   # (C, T_in), (S, C, T_out) float32, a pure function of (seed, i)

Datasets (see :mod:`wavesep.data.tracks`): ``"musdb"`` (musdb's official train/valid split, and
the test subset), ``"synthetic"`` (the :mod:`wavesep.synth` corpus, split by its splits.json) and
``"stems"`` (one folder per track, one file per source, optional mixture).

Every track is decoded, converted to the model's channel count and resampled to its rate once,
then kept on disk as a memory-mapped float32 array (see :mod:`wavesep.data.cache`), so later
epochs and runs never decode again.

Targets: task "vocals" gives (accompaniment, vocals) with accompaniment = sum of every stem but
vocals; task "multi" gives (bass, drums, other, vocals). The target order is ``model.sources``;
a model built for another task is refused.

Windows: the output window (T_out = ``model.output_length(T_in)`` samples) is drawn uniformly
over the whole track, and the input window extends it by ``model.context`` on each side. Samples
outside the track are zeros, as :mod:`wavesep.apply` pads at inference, so the first and last
seconds of a track are trained on too and tracks shorter than a window are zero-padded.

Mixture: with any augmentation switched on, the mixture of a training window is the sum of its
(augmented) stems, exactly. Without augmentation, and in validation, it is the track's mixture
file when there is one (the real mix), else the sum of the stems.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from . import augment as aug
from . import production
from .augment import AugmentConfig
from .cache import CACHE_DTYPES, CachedTrack, cache_track, default_cache_dir, is_cached
from .tracks import DATASETS, MUSDB_STEMS, SUBSETS, AudioRef, TrackSpec, aligned_tracks, list_subsets, list_tracks
from ..errors import DataError
from ..model import MULTI_TASK, VOCALS_TASK

__all__ = [
    "AugmentConfig",
    "AudioRef",
    "CachedTrack",
    "DATASETS",
    "DEFAULT_OUTPUT_SAMPLES",
    "MUSDB_STEMS",
    "SONG_STEMS",
    "SUBSETS",
    "TASKS",
    "TrackSpec",
    "TrainWindows",
    "VIRTUAL_LENGTH",
    "ValidationSet",
    "WindowSpec",
    "build_datasets",
    "cache_tracks",
    "default_cache_dir",
    "list_subsets",
    "list_tracks",
    "load_tracks",
    "target_stems",
    "task_sources",
]

TASKS = {"vocals": VOCALS_TASK, "multi": MULTI_TASK}
# Length reported by TrainWindows: large enough never to run out, small enough for int32 indices.
VIRTUAL_LENGTH = 2**31 - 1
# The stems of a rendered song (wavesep.corpus.command.SOURCES; this wing does not import it).
SONG_STEMS = ("vocals", "drums", "bass", "other")
# Output samples per training window in the Wave-U-Net paper (16384 requested, 16389 produced).
DEFAULT_OUTPUT_SAMPLES = 16384


# ---------------------------------------------------------------------- windows and targets


@dataclass(frozen=True)
class WindowSpec:
    """Lengths of a training window, in samples at the model's rate.

    Attributes:
        input_samples: T_in, a valid input length of the model.
        output_samples: T_out = ``model.output_length(T_in)``.
        offset: ``model.context[0]``: output sample j is aligned with input sample j + offset.
    """

    input_samples: int
    output_samples: int
    offset: int

    @classmethod
    def from_model(cls, model, output_samples: int = DEFAULT_OUTPUT_SAMPLES) -> "WindowSpec":
        """The smallest window whose output has at least ``output_samples`` samples."""
        if int(output_samples) < 1:
            raise ValueError(f"output_samples must be >= 1, got {output_samples}")
        n_in = model.input_length(int(output_samples))
        return cls(n_in, model.output_length(n_in), int(model.context[0]))


def task_sources(task: Optional[str], model) -> tuple:
    """The target names of ``task``, checked against ``model.sources`` (same names, same order).

    ``task=None`` takes the model's sources as they are (for folders of custom stems).
    """
    if task is None:
        return tuple(model.sources)
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    expected = TASKS[task]
    if tuple(model.sources) != expected:
        raise DataError(
            f"the model separates {', '.join(model.sources)}, but task {task!r} needs a model with the "
            f"sources {', '.join(expected)} in that order; pick the matching task or a model built for "
            f"it (e.g. preset {'M4' if task == 'vocals' else 'M6'})"
        )
    return expected


def target_stems(target_names: Sequence[str], stem_names: Sequence[str]) -> tuple:
    """For each target, the indices of the stems that sum to it.

    A target is the stem of the same name; "accompaniment", when there is no such stem, is the
    sum of every stem except "vocals".

    Returns:
        tuple of S tuples of stem indices (into ``stem_names``).
    """
    stem_names = list(stem_names)
    out = []
    for name in target_names:
        if name in stem_names:
            out.append((stem_names.index(name),))
        elif name == "accompaniment" and "vocals" in stem_names and len(stem_names) > 1:
            out.append(tuple(k for k, s in enumerate(stem_names) if s != "vocals"))
        else:
            raise DataError(
                f"the model's source {name!r} is not among the dataset's stems ({', '.join(stem_names)}); "
                "'accompaniment' can be built from a 'vocals' stem and the others"
            )
    return tuple(out)


def _read_window(array: np.ndarray, rows, start: int, length: int) -> np.ndarray:
    """Rows of a (K, C, T) array over samples [start, start + length), zeros outside [0, T).

    Returns a new float32 array (len(rows), C, length).
    """
    block = array[rows]  # (k, C, T), a view of the memory map
    out = np.zeros((block.shape[0], block.shape[1], length), dtype=np.float32)
    lo, hi = max(start, 0), min(start + length, block.shape[2])
    if hi > lo:
        out[:, :, lo - start : hi - start] = block[:, :, lo:hi]
    return out


def _targets(stems: np.ndarray, groups: tuple, window: WindowSpec) -> np.ndarray:
    """(S_all, C, T_in) stems -> (S, C, T_out) targets aligned with the model output."""
    cropped = stems[:, :, window.offset : window.offset + window.output_samples]  # (S_all, C, T_out)
    return np.stack([cropped[list(g)].sum(axis=0) for g in groups])


def _augment(stems: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig, vocals: Optional[int],
             sample_rate: int, stem_names: Sequence[str]) -> None:
    """The augmentation every training window ends with, in place on its (S_all, C, T_in) stems:
    :func:`wavesep.data.augment.apply`, then the vocal EQ, then the production chain (the order
    of the RNG draws is part of the determinism contract)."""
    aug.apply(stems, rng, cfg)
    if cfg.vocal_eq and rng.random() < cfg.vocal_eq_prob:
        stems[vocals] = production.brighten(stems[vocals], rng, sample_rate)
    if cfg.production and rng.random() < cfg.production_prob:
        production.produce(stems, rng, sample_rate, stem_names)


def _check_tracks(tracks: Sequence[CachedTrack], what: str) -> None:
    if not tracks:
        raise DataError(f"the {what} set has no tracks")
    names = {t.stem_names for t in tracks}
    if len(names) > 1:
        raise DataError(f"the {what} tracks do not all have the same stems: {sorted(names)}")
    shapes = {(t.sample_rate, t.channels) for t in tracks}
    if len(shapes) > 1:
        raise DataError(f"the {what} tracks differ in (sample rate, channels): {sorted(shapes)}")


# ---------------------------------------------------------------------- datasets


class _TrackSet(Dataset):
    """What TrainWindows and ValidationSet share: cached tracks of one rate and channel count."""

    cached_tracks: list

    @property
    def track_names(self) -> list:
        return [t.name for t in self.cached_tracks]

    @property
    def sample_rate(self) -> int:
        return self.cached_tracks[0].sample_rate

    @property
    def channels(self) -> int:
        return self.cached_tracks[0].channels


class TrainWindows(_TrackSet):
    """Random training windows, as a map-style dataset of virtual length.

    ``self[i]`` -> ``(mix (C, T_in), targets (S, C, T_out))`` float32 tensors. Everything random
    about window i (track, position, augmentation) comes from ``numpy.random.default_rng((seed, i))``
    and nothing else, so window i is the same in every process, worker and run: resume training
    by continuing the index sequence, and give DDP ranks disjoint indices. Iterate the indices in
    order (``shuffle=False``; a RandomSampler over the virtual length would allocate a permutation
    of 2**31 indices): the randomness is already inside each window.

    Tracks are drawn with probability proportional to their length, then the output window
    uniformly over the track (see the module docstring for padding and the mixture).

    Args:
        tracks: cached tracks, all with the same stems, rate and channels (the model's).
        target_names: the model's sources, in order (see :func:`target_stems`).
        window: window lengths (:meth:`WindowSpec.from_model`).
        seed: non-negative int.
        augment: an :class:`~wavesep.data.augment.AugmentConfig`, True (its defaults), False, or a dict.
        length: the virtual length reported by ``len()``.
        backing: cached one-stem tracks of voice-free recordings (same rate and channels), drawn
            in proportion to their length when ``augment.backing`` replaces a window's
            accompaniment (:func:`wavesep.data.augment.replace_backing`); needed then, and only then.
        voices: cached one-stem tracks (``vocals``) named like the training tracks, each the same
            song's vocal line sung again (:mod:`wavesep.corpus.revoice`), aligned sample for
            sample; ``augment.voices`` takes a window's vocal stem from them at the same position.
            Needed then, and only then, with one per training track.
    """

    def __init__(
        self,
        tracks: Sequence[CachedTrack],
        target_names: Sequence[str],
        window: WindowSpec,
        *,
        seed: int = 0,
        augment=True,
        length: int = VIRTUAL_LENGTH,
        backing: Optional[Sequence[CachedTrack]] = None,
        voices: Optional[Sequence[CachedTrack]] = None,
    ):
        _check_tracks(tracks, "training")
        if int(seed) < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.cached_tracks = list(tracks)
        self.target_names = tuple(target_names)
        self.groups = target_stems(self.target_names, self.cached_tracks[0].stem_names)
        self.window = window
        self.seed = int(seed)
        self.augment = AugmentConfig.from_value(augment)
        self.length = int(length)
        self.num_stems = self.cached_tracks[0].num_stems
        # Cumulative track lengths: a uniform sample position picks a track in proportion to its length.
        self._cumulative = np.cumsum([t.length for t in self.cached_tracks])
        self.backing_tracks = list(backing or [])
        names = self.cached_tracks[0].stem_names
        self._vocals = names.index("vocals") if "vocals" in names else None  # for backing and vocal_eq
        if self.augment.backing:
            self._check_backing()
            self._backing_cumulative = np.cumsum([t.length for t in self.backing_tracks])
        elif self.backing_tracks:
            raise DataError("backing tracks were given, but the augmentation does not use them (augment.backing)")
        self.voice_tracks = {t.name: t for t in (voices or [])}
        if self.augment.voices:
            self._check_voices()
        elif self.voice_tracks:
            raise DataError("voice tracks were given, but the augmentation does not use them (augment.voices)")
        if self.augment.vocal_eq and self._vocals is None:
            raise DataError(f"augment.vocal_eq needs a 'vocals' stem; the tracks have "
                            f"{', '.join(self.cached_tracks[0].stem_names)}")

    def _check_backing(self) -> None:
        names = self.cached_tracks[0].stem_names
        if "vocals" not in names or len(names) < 2:
            raise DataError(f"backing replaces the accompaniment of a vocals track, but the tracks' stems are "
                            f"{', '.join(names)} (a 'vocals' stem and at least one other are needed)")
        if not self.backing_tracks:
            raise DataError("augment.backing is on, but no backing tracks were given (a folder of voice-free "
                            "recordings, see build_datasets(backing_root=...))")
        for t in self.backing_tracks:
            if (t.sample_rate, t.channels) != (self.sample_rate, self.channels):
                raise DataError(f"backing track {t.name} is at ({t.sample_rate} Hz, {t.channels} channels), "
                                f"the training tracks at ({self.sample_rate} Hz, {self.channels} channels)")

    def _check_voices(self) -> None:
        if self._vocals is None:
            raise DataError(f"augment.voices replaces the vocal stem, but the tracks' stems are "
                            f"{', '.join(self.cached_tracks[0].stem_names)}")
        missing = [t.name for t in self.cached_tracks if t.name not in self.voice_tracks]
        if missing:
            raise DataError(f"augment.voices needs a re-sung vocals track for every training track; "
                            f"{len(missing)} have none (e.g. {', '.join(missing[:3])}); build them with "
                            f"python -m wavesep.corpus.revoice")
        for t in self.cached_tracks:
            v = self.voice_tracks[t.name]
            if (v.sample_rate, v.channels) != (t.sample_rate, t.channels) or abs(v.length - t.length) > 64:
                raise DataError(f"voice track {v.name} ({v.sample_rate} Hz, {v.channels} channels, {v.length} "
                                f"samples) does not match its training track ({t.sample_rate} Hz, {t.channels} "
                                f"channels, {t.length} samples)")

    def _draw_backing(self, rng: np.random.Generator) -> np.ndarray:
        """A (C, T_in) window of a backing track, drawn like a training window."""
        track, start = self._draw_position(rng, self.backing_tracks, self._backing_cumulative)
        return _read_window(track.array, slice(0, 1), start, self.window.input_samples)[0]

    def __len__(self) -> int:
        return self.length

    def _draw_position(self, rng: np.random.Generator, tracks=None, cumulative=None):
        """(track, input start sample) of a random window of ``tracks`` (default: the training
        tracks; ``cumulative``: their cumulative lengths); the start may be negative (padding)."""
        if tracks is None:
            tracks, cumulative = self.cached_tracks, self._cumulative
        t = int(np.searchsorted(cumulative, rng.integers(cumulative[-1]), side="right"))
        track = tracks[t]
        out_start = int(rng.integers(max(track.length - self.window.output_samples, 0) + 1))
        return track, out_start - self.window.offset

    def _draw_stem(self, rng: np.random.Generator, k: int, voice: bool = False) -> np.ndarray:
        track, start = self._draw_position(rng)
        if voice and k == self._vocals:
            return self._voice_window(track, start)
        return _read_window(track.array, slice(k, k + 1), start, self.window.input_samples)[0]  # (C, T_in)

    def _voice_window(self, track: CachedTrack, start: int) -> np.ndarray:
        """(C, T_in) window of ``track``'s re-sung vocals at input start ``start``."""
        return _read_window(self.voice_tracks[track.name].array, slice(0, 1), start, self.window.input_samples)[0]

    def __getitem__(self, index: int):
        i = int(index)
        if not 0 <= i < self.length:
            raise IndexError(f"window index {i} out of range [0, {self.length})")
        rng = np.random.default_rng((self.seed, i))
        cfg = self.augment
        mix = None
        # its own stream, so a window with re-sung vocals is otherwise the window without them
        voice = bool(cfg.voices and np.random.default_rng((self.seed, i, 1)).random() < cfg.voices_prob)
        if cfg.remix and rng.random() < cfg.remix_prob:
            stems = aug.remix(rng, self.num_stems, lambda r, k: self._draw_stem(r, k, voice))  # (S_all, C, T_in)
        else:
            track, start = self._draw_position(rng)
            stems = _read_window(track.array, slice(0, self.num_stems), start, self.window.input_samples)
            if not cfg.enabled and track.has_mixture:
                mix = _read_window(track.array, slice(self.num_stems, None), start, self.window.input_samples)[0]
            if voice:
                stems[self._vocals] = self._voice_window(track, start)
        if cfg.backing and rng.random() < cfg.backing_prob:
            aug.replace_backing(stems, rng, self._vocals, self._draw_backing(rng), cfg.backing_spread_db)
        _augment(stems, rng, cfg, self._vocals, self.cached_tracks[0].sample_rate, self.cached_tracks[0].stem_names)
        if mix is None:
            mix = stems.sum(axis=0)  # (C, T_in)
        targets = _targets(stems, self.groups, self.window)  # (S, C, T_out)
        return torch.from_numpy(mix), torch.from_numpy(targets)


class ValidationSet(_TrackSet):
    """Fixed validation windows tiling the validation tracks, identical in every run.

    Each track is covered by consecutive, non-overlapping output windows starting at sample 0
    (the last one zero-padded past the end); ``max_windows`` keeps that many of them, evenly
    spread over the list. ``self[i]`` -> ``(mix (C, T_in), targets (S, C, T_out))`` float32, the
    mixture being the track's mixture file when it has one.

    Args:
        tracks: cached validation tracks.
        target_names: the model's sources, in order.
        window: window lengths.
        max_windows: cap on the number of windows (None: all).
    """

    def __init__(
        self,
        tracks: Sequence[CachedTrack],
        target_names: Sequence[str],
        window: WindowSpec,
        *,
        max_windows: Optional[int] = None,
    ):
        _check_tracks(tracks, "validation")
        self.cached_tracks = list(tracks)
        self.target_names = tuple(target_names)
        self.groups = target_stems(self.target_names, self.cached_tracks[0].stem_names)
        self.window = window
        self.num_stems = self.cached_tracks[0].num_stems
        windows = [
            (t, out_start)
            for t, track in enumerate(self.cached_tracks)
            for out_start in range(0, max(track.length, 1), window.output_samples)
        ]
        if max_windows is not None and int(max_windows) < len(windows):
            if int(max_windows) < 1:
                raise ValueError(f"max_windows must be >= 1 or None, got {max_windows}")
            keep = np.unique(np.linspace(0, len(windows) - 1, int(max_windows)).round().astype(int))
            windows = [windows[k] for k in keep]
        self.windows = windows

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int):
        t, out_start = self.windows[index]
        track = self.cached_tracks[t]
        start = out_start - self.window.offset
        rows = slice(0, self.num_stems + 1) if track.has_mixture else slice(0, self.num_stems)
        block = _read_window(track.array, rows, start, self.window.input_samples)  # (K, C, T_in)
        stems = block[: self.num_stems]
        mix = block[self.num_stems] if track.has_mixture else stems.sum(axis=0)
        return torch.from_numpy(np.ascontiguousarray(mix)), torch.from_numpy(_targets(stems, self.groups, self.window))

    def tracks(self, limit: Optional[int] = None) -> list:
        """Whole validation tracks, for a full-length separation and SDR.

        Returns:
            list of (name, mix (C, T) float32 tensor, targets (S, C, T) float32 tensor), the first
            ``limit`` tracks (all when None), in name order.
        """
        out = []
        for track in self.cached_tracks[:limit]:
            stems = track.stems()  # (S_all, C, T)
            targets = np.stack([stems[list(g)].sum(axis=0) for g in self.groups])  # (S, C, T)
            out.append((track.name, torch.from_numpy(track.mixture()), torch.from_numpy(targets)))
        return out


# ---------------------------------------------------------------------- building


def load_tracks(
    dataset: str,
    root,
    subset: str,
    *,
    sample_rate: Optional[int] = None,
    channels: Optional[int] = None,
    is_wav: bool = False,
    sources: Optional[Sequence[str]] = None,
    cache_dir=None,
    cache_dtype: str = "float32",
    progress: bool = False,
) -> list:
    """The tracks of a subset, decoded (once, through the cache) at ``sample_rate`` and ``channels``.

    Args:
        dataset, root, subset, is_wav, sources: as :func:`wavesep.data.tracks.list_tracks`.
        sample_rate: Hz to resample to (None: the files' own rate).
        channels: 1 or 2 (stereo -> mono by the mean, mono -> stereo by duplication); None: as stored.
        cache_dir: decoded-track cache (default :func:`wavesep.data.cache.default_cache_dir`).
        cache_dtype: "float32" or "float16" (half the disk; see :mod:`wavesep.data.cache`).
        progress: show a progress bar while tracks are decoded (cache misses only).

    Returns:
        list of :class:`CachedTrack` (sorted by name, or in splits.json order).
    """
    specs = list_tracks(dataset, root, subset, is_wav=is_wav, sources=sources)
    return cache_tracks(specs, sample_rate=sample_rate, channels=channels, cache_dir=cache_dir,
                        cache_dtype=cache_dtype, progress=progress)


def cache_tracks(
    specs: Sequence[TrackSpec],
    *,
    sample_rate: Optional[int] = None,
    channels: Optional[int] = None,
    cache_dir=None,
    cache_dtype: str = "float32",
    progress: bool = False,
) -> list:
    """:func:`wavesep.data.cache.cache_track` over ``specs``, with an optional progress bar over
    the tracks that need decoding. Returns a list of :class:`CachedTrack` in the order of ``specs``."""
    if cache_dtype not in CACHE_DTYPES:
        raise DataError(f"cache_dtype must be one of {CACHE_DTYPES}, got {cache_dtype!r}")
    missing = [s for s in specs if not is_cached(s, sample_rate, channels, cache_dir, cache_dtype)]
    bar = None
    if progress and missing:
        from tqdm import tqdm

        bar = tqdm(total=len(missing), desc=f"decoding {specs[0].subset} tracks", unit="track")
    out = []
    for spec in specs:
        out.append(cache_track(spec, sample_rate, channels, cache_dir, cache_dtype))
        if bar is not None and spec in missing:
            bar.update(1)
    if bar is not None:
        bar.close()
    return out


def build_datasets(
    dataset: str,
    root,
    task: Optional[str],
    model,
    *,
    is_wav: bool = False,
    seed: int = 0,
    cache_dir=None,
    augment=True,
    valid_windows: Optional[int] = None,
    output_samples: int = DEFAULT_OUTPUT_SAMPLES,
    sources: Optional[Sequence[str]] = None,
    cache_dtype: str = "float32",
    length: int = VIRTUAL_LENGTH,
    progress: bool = True,
    backing_root=None,
    voices_root=None,
    songs=None,
    songs_at_once: int = 8,
    windows_per_song: int = 16,
):
    """Training windows and validation set of a dataset, shaped for ``model``.

    Args:
        dataset: "musdb", "synthetic" or "stems".
        root: dataset root.
        task: "vocals" or "multi" (checked against ``model.sources``); None takes the model's
            sources as they are (stems datasets with other names).
        model: a :class:`~wavesep.model.WaveUNet` (only its sources, channels, sample rate and
            length arithmetic are used).
        is_wav: MUSDB18-HQ wav folders instead of MUSDB18 .stem.mp4.
        seed: seed of the training windows (see :class:`TrainWindows`).
        cache_dir: decoded-track cache folder (default ``~/.cache/wavesep`` or ``$WAVESEP_CACHE``).
        augment: an AugmentConfig, True (defaults: gain, channel swap, sign flip), False, or a dict.
        valid_windows: cap on the number of validation windows (None: every window of every track).
        output_samples: requested output samples per window (T_out >= this; the paper used 16384).
        sources: "stems" datasets: the stem file names of each track folder (default: the model's
            sources).
        cache_dtype: "float32" or "float16".
        length: virtual length of the training set.
        progress: progress bar while decoding tracks for the first time.
        backing_root: with ``augment.backing``: a "stems" folder whose tracks each hold one file,
            ``accompaniment.*``, of voice-free music (its training subset is used; decoded into the
            cache as float16, half the disk).
        voices_root: with ``augment.voices``: a folder holding ``<track>/vocals.*`` (or
            ``train/<track>/vocals.*``) for every training track, the track's vocal line sung again
            (``python -m wavesep.corpus.revoice`` writes one); decoded into the cache as float16.
        songs: instead of the dataset's training tracks, windows of songs rendered on the fly
            (:class:`~wavesep.data.rendered.RenderedWindows`): a callable, song index -> dict of
            the :data:`SONG_STEMS` as float32 (T, 2) arrays at the model's rate
            (:class:`wavesep.corpus.command.SongStream`); the dataset then gives only the
            validation set, and its training tracks are not decoded.
        songs_at_once, windows_per_song: with ``songs``, see :class:`~wavesep.data.rendered.RenderedWindows`.

    Returns:
        (:class:`TrainWindows` or :class:`~wavesep.data.rendered.RenderedWindows`, :class:`ValidationSet`).
    """
    target_names = task_sources(task, model)
    if dataset == "stems" and sources is None:
        sources = tuple(model.sources)
    window = WindowSpec.from_model(model, output_samples)
    wanted = ("valid",) if songs is not None else ("train", "valid")
    specs = list_subsets(dataset, root, wanted, is_wav=is_wav, sources=sources)
    common = dict(
        sample_rate=model.sample_rate,
        channels=model.channels,
        cache_dir=cache_dir,
        cache_dtype=cache_dtype,
        progress=progress,
    )
    valid_tracks = cache_tracks(specs["valid"], **common)
    if songs is not None:
        if backing_root is not None or voices_root is not None:
            raise DataError("songs rendered on the fly take no backing or voices folder")
        from .rendered import RenderedWindows  # it imports this module: imported here, not at the top

        train = RenderedWindows(songs, SONG_STEMS, target_names, window, model.sample_rate, model.channels,
                                seed=seed, augment=augment, songs_at_once=songs_at_once,
                                windows_per_song=windows_per_song, length=length)
        return train, ValidationSet(valid_tracks, target_names, window, max_windows=valid_windows)
    train_tracks = cache_tracks(specs["train"], **common)
    overlap = {t.name for t in train_tracks} & {t.name for t in valid_tracks}
    if overlap:
        warnings.warn(f"{len(overlap)} track(s) are in both the training and validation sets: {sorted(overlap)[:3]}")
    backing = None
    if backing_root is not None:
        backing_specs = list_tracks("stems", backing_root, "train", sources=("accompaniment",))
        backing = cache_tracks(backing_specs, **dict(common, cache_dtype="float16"))
    voices = None
    if voices_root is not None:
        voice_specs = aligned_tracks(voices_root, [t.name for t in train_tracks], "vocals")
        voices = cache_tracks(voice_specs, **dict(common, cache_dtype="float16"))
    train = TrainWindows(train_tracks, target_names, window, seed=seed, augment=augment, length=length,
                         backing=backing, voices=voices)
    valid = ValidationSet(valid_tracks, target_names, window, max_windows=valid_windows)
    return train, valid
