"""Which tracks to evaluate, and reading a track's mixture and stems as (T, C) float arrays."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from wavesep import audio
from wavesep.data import list_tracks
from wavesep.data.tracks import AUDIO_EXTENSIONS, MIXTURE, AudioRef, TrackSpec
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
        dataset: "musdb", "synthetic" or "stems" (a folder of own tracks: :func:`stem_folder_tracks`;
            its tracks are all in the "test" subset and ``subset``/``split`` must be None).
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
    if dataset not in ("musdb", "synthetic", "stems"):
        raise DataError(f"unknown dataset {dataset!r}; choose musdb, synthetic or stems")
    if dataset == "stems" and (subset is not None or split is not None):
        raise DataError("--subset and --split do not apply to --stems: every track folder is evaluated")
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
    found: List[TrackSpec] = stem_folder_tracks(root) if dataset == "stems" else []
    for i, name in enumerate(splits if dataset != "stems" else ()):
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


def stem_folder_tracks(root) -> List[TrackSpec]:
    """The tracks of a folder in the own-stems layout (the one ``train.py --stems`` reads), for
    evaluation: every folder of ``root/test`` if there is one, else of ``root``, is a track, and
    every audio file in it is a stem named by its file stem (``vocals.flac`` -> "vocals",
    ``mixture.*`` the mixture). A target is scored from the stem of its own name, else from the
    sum of its MUSDB stems (:func:`target_stems`), so both ``vocals`` + ``accompaniment`` and
    ``vocals``, ``drums``, ``bass``, ``other`` folders work.

    Folders that hold no stem a target can be formed from (e.g. only ``notes.flac``) are skipped
    with a warning naming them; folders without audio are ignored.

    Raises:
        DataError: ``root`` is not a folder, or no track was found.
    """
    base = Path(root)
    if not base.is_dir():
        raise DataError(f"--stems {root}: no such folder")
    folder = base / "test" if (base / "test").is_dir() else base
    known = set(TARGET_STEMS) | {s for stems in TARGET_STEMS.values() for s in stems}
    specs = []
    for d in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        by_stem: Dict[str, Path] = {}
        for f in files:
            if f.stem in by_stem:
                raise DataError(f"track {d} has several files for {f.stem!r} ({by_stem[f.stem].name}, {f.name}); keep one")
            by_stem[f.stem] = f
        mixture = by_stem.pop(MIXTURE, None)
        if not files:
            continue
        if not known & set(by_stem):
            warnings.warn(f"skipping {d}: none of its files ({', '.join(f.name for f in files)}) is a stem named "
                          f"after a target ({', '.join(sorted(known))})")
            continue
        names = tuple(sorted(by_stem))
        specs.append(TrackSpec(d.name, "test", names, tuple(AudioRef(str(by_stem[n].absolute())) for n in names),
                               AudioRef(str(mixture.absolute())) if mixture is not None else None))
    if not specs:
        raise DataError(
            f"no tracks found in {folder}: expected one folder per track holding audio files named after the "
            f"targets (vocals.wav, accompaniment.wav or drums.wav, bass.wav, other.wav; mixture.wav optional)"
        )
    return specs


def target_stems(track: TrackSpec, target: str) -> Tuple[str, ...]:
    """The stems of ``track`` whose sum is the reference of ``target``: a stem of the target's
    own name, else the target's MUSDB stems (:data:`TARGET_STEMS`; accompaniment = bass + drums +
    other). DataError naming the track when it has neither."""
    if target in track.stem_names:
        return (target,)
    parts = TARGET_STEMS[target]
    missing = [s for s in parts if s not in track.stem_names]
    if missing:
        where = track.stems[0].path.rsplit("/", 1)[0] if track.stems else track.name
        raise DataError(
            f"track {track.name!r} ({where}) has no {target} stem: it needs a file {target}.* or "
            f"{', '.join(p + '.*' for p in parts)} (missing: {', '.join(missing)})"
        )
    return parts


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
    wanted = target_stems(track, target)
    paths = {ref.path for name, ref in zip(track.stem_names, track.stems) if name in wanted}
    return ", ".join(sorted(paths))
