"""Training windows cut from songs rendered on the fly: a training set with no end and no disk.

Shape legend: S targets (the model's sources), S_all the songs' stems, C channels, T samples;
T_in / T_out the model's input / output window.

A corpus on disk caps the songs a model ever hears (700 songs of the 10-hour corpus fill 29 GB
as wavs and 24 GB more in the decode cache). Here each window comes from a song rendered when it
is first needed, so a long training run keeps hearing new songs, arrangements, instruments and
singers. Songs come from a ``songs`` callable, index -> {stem name: (T, 2) float32} at the
model's rate (:class:`wavesep.corpus.command.SongStream`; the training command builds it, since
this wing does not import the corpus wing).

Window ``i`` reads song ``(i // (P * W)) * P + i % P`` (P = ``songs_at_once``, W =
``windows_per_song``): consecutive windows, and so every batch, spread over P songs, each song
serves W windows, and a block of P * W consecutive windows needs only its P songs (remixed
windows too: they take each stem from one of them). Each process keeps the last P songs it
rendered, so rendering costs one song per W windows. Everything random
about a window (position, augmentation) comes from ``numpy.random.default_rng((seed, i))``, and
the song is a pure function of its index, so window i is the same in every process and run:
resume and DDP work as with :class:`~wavesep.data.TrainWindows`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from . import augment as aug
from .augment import AugmentConfig
from .datasets import VIRTUAL_LENGTH, WindowSpec, _augment, _read_window, _targets, target_stems
from ..errors import DataError

__all__ = ["RenderedWindows"]


class RenderedWindows(Dataset):
    """Random training windows of songs rendered on demand, as a map-style dataset of virtual length.

    ``self[i]`` -> ``(mix (C, T_in), targets (S, C, T_out))`` float32 tensors, the contract of
    :class:`~wavesep.data.TrainWindows`; iterate the indices in order (``shuffle=False``).
    The output window is drawn uniformly over the song; samples outside it are zeros. The
    mixture is the sum of the (augmented) stems.

    Args:
        songs: callable, song index (int >= 0) -> dict mapping each of ``stem_names`` to a
            float32 ``(T, 2)`` array at ``sample_rate`` Hz (T may differ between songs); a pure
            function of the index, picklable for DataLoader workers.
        stem_names: the songs' stems, e.g. ("vocals", "drums", "bass", "other").
        target_names: the model's sources, in order (see :func:`~wavesep.data.target_stems`).
        window: window lengths (:meth:`WindowSpec.from_model`).
        sample_rate: Hz of the songs (the model's).
        channels: the model's channels: 1 takes each stem's channel mean, 2 keeps the stereo.
        seed: non-negative int: the windows' positions and augmentation.
        augment: an :class:`AugmentConfig`, True (its defaults), False, or a dict. Remix draws
            each stem from one of the P songs of the window's block (the songs in memory);
            backing and voices are refused: they need a fixed set of tracks.
        songs_at_once: P, songs that consecutive windows spread over (>= 1).
        windows_per_song: W, windows each song serves (>= 1).
        length: the virtual length reported by ``len()``.
    """

    def __init__(
        self,
        songs: Callable[[int], dict],
        stem_names: Sequence[str],
        target_names: Sequence[str],
        window: WindowSpec,
        sample_rate: int,
        channels: int,
        *,
        seed: int = 0,
        augment=True,
        songs_at_once: int = 8,
        windows_per_song: int = 16,
        length: int = VIRTUAL_LENGTH,
    ):
        if int(seed) < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if int(songs_at_once) < 1 or int(windows_per_song) < 1:
            raise DataError(f"songs_at_once and windows_per_song must be >= 1, got {songs_at_once} and "
                            f"{windows_per_song}")
        if int(channels) not in (1, 2):
            raise DataError(f"channels must be 1 or 2, got {channels}")
        self.songs = songs
        self.stem_names = tuple(stem_names)
        self.target_names = tuple(target_names)
        self.groups = target_stems(self.target_names, self.stem_names)
        self.window = window
        self.sample_rate, self.channels = int(sample_rate), int(channels)
        self.seed = int(seed)
        self.augment = AugmentConfig.from_value(augment)
        self.songs_at_once, self.windows_per_song = int(songs_at_once), int(windows_per_song)
        self.length = int(length)
        self._vocals = self.stem_names.index("vocals") if "vocals" in self.stem_names else None
        cfg = self.augment
        refused = [name for name, on in (("backing", cfg.backing), ("voices", cfg.voices)) if on]
        if refused:
            raise DataError(f"songs rendered on the fly do not take the augmentation(s) {', '.join(refused)}: "
                            "they draw from a fixed set of tracks (train on a corpus folder for them)")
        if cfg.vocal_eq and self._vocals is None:
            raise DataError(f"augment.vocal_eq needs a 'vocals' stem; the songs have {', '.join(self.stem_names)}")
        self._cache: OrderedDict = OrderedDict()  # song index -> (S_all, C, T) float32, per process

    def __len__(self) -> int:
        return self.length

    def song_index(self, index: int) -> int:
        """The song that window ``index`` is cut from."""
        block = index // (self.songs_at_once * self.windows_per_song)
        return block * self.songs_at_once + index % self.songs_at_once

    def song(self, song_index: int) -> np.ndarray:
        """Song ``song_index`` as a (S_all, C, T) float32 array, rendered or from this process's cache."""
        cached = self._cache.get(song_index)
        if cached is not None:
            self._cache.move_to_end(song_index)
            return cached
        stems = self.songs(song_index)
        missing = [s for s in self.stem_names if s not in stems]
        if missing:
            raise DataError(f"song {song_index} of the stream has no stem(s) {', '.join(missing)}")
        array = np.stack([np.asarray(stems[s], dtype=np.float32).T for s in self.stem_names])  # (S_all, 2, T)
        if self.channels == 1:
            array = array.mean(axis=1, keepdims=True, dtype=np.float32)  # (S_all, 1, T)
        self._cache[song_index] = array
        while len(self._cache) > self.songs_at_once:
            self._cache.popitem(last=False)
        return array

    def _read(self, song: np.ndarray, rows, rng: np.random.Generator) -> np.ndarray:
        """Rows of a window of ``song`` whose output part is drawn uniformly inside the song."""
        out_start = int(rng.integers(max(song.shape[-1] - self.window.output_samples, 0) + 1))
        return _read_window(song, rows, out_start - self.window.offset, self.window.input_samples)

    def __getitem__(self, index: int):
        i = int(index)
        if not 0 <= i < self.length:
            raise IndexError(f"window index {i} out of range [0, {self.length})")
        rng = np.random.default_rng((self.seed, i))
        cfg = self.augment
        if cfg.remix and rng.random() < cfg.remix_prob:
            first = i // (self.songs_at_once * self.windows_per_song) * self.songs_at_once  # the block's songs

            def draw_stem(r, k):
                song = self.song(first + int(r.integers(self.songs_at_once)))
                return self._read(song, slice(k, k + 1), r)[0]  # (C, T_in)

            stems = aug.remix(rng, len(self.stem_names), draw_stem)  # (S_all, C, T_in)
        else:
            stems = self._read(self.song(self.song_index(i)), slice(None), rng)  # (S_all, C, T_in)
        _augment(stems, rng, cfg, self._vocals, self.sample_rate, self.stem_names)
        mix = stems.sum(axis=0)  # (C, T_in)
        targets = _targets(stems, self.groups, self.window)  # (S, C, T_out)
        return torch.from_numpy(mix), torch.from_numpy(targets)
