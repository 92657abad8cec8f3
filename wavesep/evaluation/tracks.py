"""Which tracks to evaluate, and reading a track's mixture and stems as (T, C) float arrays."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from wavesep import audio
from wavesep.data import list_tracks
from wavesep.data.tracks import TrackSpec
from wavesep.errors import AudioError, DataError
from wavesep.evaluation.scoring import TARGET_STEMS


# ---------------------------------------------------------------------- tracks and targets


def select_tracks(
    dataset: str,
    root,
    *,
    is_wav: bool = False,
    subset: Optional[str] = None,
    split: Optional[str] = None,
    tracks: Optional[Sequence[str]] = None,
    exclude: Optional[Sequence[str]] = None,
) -> Tuple[List[TrackSpec], str]:
    """The tracks to evaluate and the MUSDB folder ("test" or "train") they live in.

    Args:
        dataset: "musdb" or "synthetic".
        root: dataset root.
        is_wav: MUSDB18-HQ wav folders (musdb only; the synthetic corpus is always wav).
        subset: MUSDB folder, "test" or "train" ("train" holds the train and valid splits).
        split: "train", "valid" or "test" (musdb's official split, or splits.json). Default:
            every track of ``subset``; with neither given, "test".
        tracks: keep only these track names (each must exist).
        exclude: leave these track names out.

    Returns:
        ``(tracks sorted by name, folder subset)``.

    Raises:
        DataError: inconsistent subset and split, unknown track names, no track left.
    """
    if dataset not in ("musdb", "synthetic"):
        raise DataError(f"unknown dataset {dataset!r}; choose musdb or synthetic")
    if subset not in (None, "train", "test"):
        raise DataError(f"unknown subset {subset!r}; choose train or test")
    if split not in (None, "train", "valid", "test"):
        raise DataError(f"unknown split {split!r}; choose train, valid or test")
    if split is not None:
        folder = "test" if split == "test" else "train"
        if subset is not None and subset != folder:
            raise DataError(f"--split {split} lives in the {folder!r} subset, not in --subset {subset}")
        splits = [split]
    else:
        folder = subset or "test"
        splits = ["test"] if folder == "test" else ["train", "valid"]
    found: List[TrackSpec] = []
    for i, name in enumerate(splits):
        try:
            found += list_tracks(dataset, root, name, is_wav=is_wav)
        except DataError:
            # the train folder's tracks: an empty valid split is fine once train has tracks
            if i == 0 or not found:
                raise
    by_name = {t.name: t for t in found}
    if tracks:
        unknown = [t for t in tracks if t not in by_name]
        if unknown:
            known = ", ".join(sorted(by_name)[:5])
            raise DataError(
                f"no track named {unknown[0]!r} in the {'/'.join(splits)} split(s) of {root} "
                f"(tracks there include: {known})"
            )
        by_name = {t: by_name[t] for t in tracks}
    for name in exclude or ():
        by_name.pop(name, None)
    if not by_name:
        raise DataError(f"no track left to evaluate in {root} after --tracks/--exclude")
    return [by_name[n] for n in sorted(by_name)], folder


# ---------------------------------------------------------------------- reading a track


def _read(ref) -> Tuple[np.ndarray, int]:
    wav, rate = audio.read(ref.path, dtype=torch.float64, stream=ref.stream or 0)
    return np.ascontiguousarray(wav.numpy().T), rate  # (C, T) -> (T, C)


def _read_stems(track: TrackSpec) -> Tuple[Dict[str, np.ndarray], int, Optional[np.ndarray]]:
    """The raw stems (T, C) float64 by name, their sample rate, and the mixture file (or None)."""
    refs = list(zip(track.stem_names, track.stems))
    if track.mixture is not None:
        refs.append(("mixture", track.mixture))
    arrays, rates = {}, {}
    for name, ref in refs:
        arrays[name], rates[name] = _read(ref)
    first = refs[0][1].path
    for name, ref in refs:
        if rates[name] != rates[refs[0][0]]:
            raise AudioError(
                f"{ref.path} is at {rates[name]} Hz but {first} is at {rates[refs[0][0]]} Hz: the stems of "
                f"track {track.name!r} must share one sample rate"
            )
        if arrays[name].shape[1] != arrays[refs[0][0]].shape[1]:
            raise AudioError(
                f"{ref.path} has {arrays[name].shape[1]} channels but {first} has "
                f"{arrays[refs[0][0]].shape[1]}: the stems of track {track.name!r} must match"
            )
    lengths = {name: a.shape[0] for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        one_container = len({ref.path for _, ref in refs}) == 1
        if not one_container:
            longest = max(lengths, key=lengths.get)
            shortest = min(lengths, key=lengths.get)
            raise AudioError(
                f"the stems of track {track.name!r} differ in length: {dict(refs)[longest].path} has "
                f"{lengths[longest]} samples, {dict(refs)[shortest].path} {lengths[shortest]}; fix the files"
            )
        # streams of one .stem.mp4 may decode to slightly different lengths (codec padding)
        common = min(lengths.values())
        arrays = {name: a[:common] for name, a in arrays.items()}
    mixture = arrays.pop("mixture", None)
    return arrays, rates[refs[0][0]], mixture


def _stem_files(track: TrackSpec, target: str) -> str:
    paths = {ref.path for name, ref in zip(track.stem_names, track.stems) if name in TARGET_STEMS[target]}
    return ", ".join(sorted(paths))
