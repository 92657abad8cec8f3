"""Finding the tracks of a dataset: which files hold which stems of which track, per subset.

Part of :mod:`wavesep.data` (which re-exports :func:`list_tracks`, :class:`TrackSpec` and
:class:`AudioRef`). Nothing here decodes audio; :mod:`wavesep.data.cache` does.

Datasets:

- ``"musdb"``: MUSDB18 (``root/{train,test}/<Artist - Title>.stem.mp4``) or, with ``is_wav=True``,
  MUSDB18-HQ (``root/{train,test}/<Artist - Title>/{mixture,drums,bass,other,vocals}.wav``),
  listed by the ``musdb`` package with its official 86/14 train/valid split of the train subset.
- ``"synthetic"``: the corpus of :mod:`wavesep.synth` (MUSDB18-HQ layout), listed by ``musdb``
  but split by ``root/splits.json`` (musdb's valid split only knows real MUSDB18 names).
- ``"stems"``: a folder of the user's own tracks, one folder per track, one file per stem named
  after the user's source list (``vocals.wav``, ``guitar.flac``, ...), ``mixture.*`` optional.
  The subsets come from the first layout that applies:

  1. ``root/splits.json`` ({"train": [...], "valid": [...], "test": [...]} folder names; the
     folders may sit in root, root/train or root/test);
  2. ``root/train/``, ``root/valid/`` and ``root/test/`` folders of tracks (without ``valid/``,
     validation tracks are held out of ``train/`` as in 3);
  3. track folders directly in root: about 10% of them (at least one) are held out for
     validation, chosen by a hash of their names (:func:`holdout_names`), the same on every run;
     there is no test subset.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from ..errors import AudioError, DataError, DependencyError

DATASETS = ("musdb", "synthetic", "stems")
SUBSETS = ("train", "valid", "test")
# Stem order of MUSDB18 tracks in wavesep (alphabetical, as the multi-instrument task).
MUSDB_STEMS = ("bass", "drums", "other", "vocals")
MIXTURE = "mixture"
# Extensions accepted for the stems of a "stems" folder (formats libsndfile reads).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3", ".w64", ".rf64", ".caf", ".au")
SPLITS_FILE = "splits.json"

_MUSDB_LAYOUT = (
    "a MUSDB18 root holds train/ and test/ with <Artist - Title>.stem.mp4 files (MUSDB18), or with "
    "<Artist - Title>/ folders of mixture.wav, drums.wav, bass.wav, other.wav, vocals.wav "
    "(MUSDB18-HQ, pass is_wav=True)"
)


@dataclass(frozen=True)
class AudioRef:
    """One audio signal on disk.

    Attributes:
        path: absolute path of the file.
        stream: index of the audio substream in a multi-stream file (.stem.mp4: 0 mixture,
            1 drums, 2 bass, 3 other, 4 vocals); None for a single-stream file.
    """

    path: str
    stream: Optional[int] = None


@dataclass(frozen=True)
class TrackSpec:
    """Where the stems of one track are.

    Attributes:
        name: track name (folder or file name without extension).
        subset: "train", "valid" or "test".
        stem_names: names of the raw stems S_all, in the order the data arrays use.
        stems: one :class:`AudioRef` per stem name.
        mixture: the mixture file, or None when the track has none (the mixture is then the sum
            of the stems).
    """

    name: str
    subset: str
    stem_names: tuple
    stems: tuple
    mixture: Optional[AudioRef] = None

    def refs(self) -> tuple:
        """All audio refs of the track: stems, then the mixture if there is one."""
        return self.stems + ((self.mixture,) if self.mixture is not None else ())


# ---------------------------------------------------------------------- dependencies


def require_ffmpeg(purpose: str) -> None:
    """Raises DependencyError unless ffmpeg and ffprobe are on the PATH."""
    missing = [cmd for cmd in ("ffmpeg", "ffprobe") if shutil.which(cmd) is None]
    if missing:
        raise DependencyError(
            f"{' and '.join(missing)} not found on the PATH, but {purpose} needs ffmpeg and ffprobe. "
            "Install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg; conda: conda install -c conda-forge "
            "ffmpeg; macOS: brew install ffmpeg) and check that `ffprobe -version` runs."
        )


def import_musdb():
    """The ``musdb`` module, or DependencyError saying what is missing."""
    require_ffmpeg("the musdb package (it probes every track with ffprobe and decodes .stem.mp4 with ffmpeg)")
    try:
        import musdb
    except ImportError as e:
        raise DependencyError(f"the musdb package is not installed ({e}): pip install musdb") from None
    except RuntimeError as e:  # stempeg's own ffmpeg check on import
        raise DependencyError(f"the musdb package cannot start: {e}. Install ffmpeg and ffprobe.") from None
    return musdb


# ---------------------------------------------------------------------- public entry


def list_tracks(
    dataset: str,
    root,
    subset: str,
    *,
    is_wav: bool = False,
    sources: Optional[Sequence[str]] = None,
) -> list:
    """The tracks of one subset of a dataset, sorted by name (splits.json order for "synthetic").

    Args:
        dataset: "musdb", "synthetic" or "stems" (see the module docstring).
        root: dataset root folder.
        subset: "train", "valid" (held-out part of the training data) or "test".
        is_wav: for "musdb", MUSDB18-HQ wav folders instead of .stem.mp4 files.
        sources: for "stems", the stem names every track folder must have (file stems).

    Returns:
        list of :class:`TrackSpec`, never empty.

    Raises:
        DataError: missing root, empty subset, a track missing a stem, an unknown split name.
        AudioError: a file that ffprobe cannot read (musdb probes every mixture).
        DependencyError: ffmpeg/ffprobe or musdb missing (datasets "musdb" and "synthetic").
    """
    return list_subsets(dataset, root, (subset,), is_wav=is_wav, sources=sources)[subset]


def list_subsets(
    dataset: str,
    root,
    subsets: Sequence[str] = ("train", "valid"),
    *,
    is_wav: bool = False,
    sources: Optional[Sequence[str]] = None,
) -> dict:
    """{subset: tracks} for several subsets, listing the dataset once (see :func:`list_tracks`)."""
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    for subset in subsets:
        if subset not in SUBSETS:
            raise DataError(f"unknown subset {subset!r}; choose one of {', '.join(SUBSETS)}")
    root = Path(os.path.expanduser(str(root))).absolute()
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a folder"
        hint = {
            "musdb": _MUSDB_LAYOUT,
            "synthetic": "build the synthetic corpus with `python -m wavesep.synth OUT`",
            "stems": "a stems root holds one folder per track with one audio file per source",
        }[dataset]
        raise DataError(f"dataset root {root} {what}: {hint}")
    if dataset == "stems" and not sources:
        raise DataError("the 'stems' dataset needs the list of source names (e.g. sources=['vocals', 'drums'])")
    dbs = {}  # musdb listings by musdb subset: musdb runs ffprobe on every track, so list once
    out = {}
    for subset in subsets:
        if dataset == "musdb":
            out[subset] = _musdb_tracks(root, subset, is_wav, dbs)
        elif dataset == "synthetic":
            out[subset] = _synthetic_tracks(root, subset, dbs)
        else:
            out[subset] = _stem_folder_tracks(root, subset, tuple(sources))
    return out


# ---------------------------------------------------------------------- musdb


def _musdb_db(root: Path, subset: str, is_wav: bool, dbs: dict):
    """musdb.DB over one musdb subset (memoised in ``dbs``), with musdb's errors turned into ours."""
    if (subset, is_wav) in dbs:
        return dbs[subset, is_wav]
    musdb = import_musdb()
    folder = root / subset
    if not folder.is_dir():
        raise DataError(f"{folder} does not exist: {_MUSDB_LAYOUT}")
    try:
        dbs[subset, is_wav] = musdb.DB(root=str(root), subsets=subset, is_wav=is_wav)
        return dbs[subset, is_wav]
    except Exception as e:  # ffprobe errors surface from inside stempeg without the file name
        bad = _first_unreadable(folder, is_wav)
        if bad is not None:
            raise AudioError(f"cannot read {bad[0]}: {bad[1]}. Replace or delete the file.") from None
        raise DataError(f"musdb could not list the tracks under {folder}: {type(e).__name__}: {e}") from None


def _first_unreadable(folder: Path, is_wav: bool):
    """(path, reason) of the first track file under ``folder`` that ffprobe rejects, or None."""
    import subprocess

    if is_wav:
        candidates = sorted(p / "mixture.wav" for p in folder.iterdir() if p.is_dir())
    else:
        candidates = sorted(folder.glob("*.stem.mp4"))
    for path in candidates:
        if not path.exists():
            continue
        run = subprocess.run(
            ["ffprobe", "-v", "error", "-show_streams", str(path)], capture_output=True, text=True
        )
        if run.returncode != 0:
            reason = run.stderr.strip().splitlines()[-1] if run.stderr.strip() else "ffprobe failed"
            return path, reason
    return None


def _musdb_tracks(root: Path, subset: str, is_wav: bool, dbs: dict) -> list:
    musdb_subset = "test" if subset == "test" else "train"
    db = _musdb_db(root, musdb_subset, is_wav, dbs)
    if subset != "test":
        # The same rule as musdb's split="train"/"valid" (its setup's validation_tracks), applied
        # to one listing: musdb probes every track with ffprobe, so listing twice costs seconds.
        valid_names = set(db.setup["validation_tracks"])
        chosen = [t for t in db.tracks if (t.name in valid_names) == (subset == "valid")]
    else:
        chosen = list(db.tracks)
    if not chosen:
        raise DataError(_empty_musdb_message(root / musdb_subset, subset, is_wav))
    stream_ids = db.setup["stem_ids"]
    specs = []
    for track in chosen:
        if is_wav:
            missing = [s for s in MUSDB_STEMS if s not in track.sources]
            if missing:
                folder = Path(track.path).parent
                raise DataError(
                    f"track {folder} is missing the stem file(s) "
                    f"{', '.join(s + '.wav' for s in missing)}: a MUSDB18-HQ track folder needs "
                    "mixture.wav, drums.wav, bass.wav, other.wav and vocals.wav"
                )
            stems = tuple(AudioRef(str(Path(track.sources[s].path).absolute())) for s in MUSDB_STEMS)
            mix_path = Path(track.path)
            mixture = AudioRef(str(mix_path.absolute())) if mix_path.exists() else None
        else:
            path = str(Path(track.path).absolute())
            stems = tuple(AudioRef(path, int(stream_ids[s])) for s in MUSDB_STEMS)
            mixture = AudioRef(path, int(stream_ids[MIXTURE]))
        specs.append(TrackSpec(track.name, subset, MUSDB_STEMS, stems, mixture))
    return sorted(specs, key=lambda t: t.name)


def _empty_musdb_message(folder: Path, subset: str, is_wav: bool) -> str:
    has_mp4 = any(folder.glob("*.stem.mp4"))
    has_wav_dirs = any(p.is_dir() and (p / "mixture.wav").exists() for p in folder.iterdir())
    if not is_wav and has_wav_dirs:
        hint = "it holds wav track folders (MUSDB18-HQ): pass is_wav=True"
    elif is_wav and has_mp4:
        hint = "it holds .stem.mp4 files (MUSDB18): pass is_wav=False"
    elif subset in ("train", "valid") and (has_mp4 or has_wav_dirs):
        hint = (
            f"none of its tracks is in musdb's official {subset!r} split, which names real MUSDB18 "
            "tracks; for the synthetic corpus use dataset='synthetic', for your own tracks dataset='stems'"
        )
    else:
        hint = _MUSDB_LAYOUT
    return f"no tracks of the {subset!r} subset found under {folder}: {hint}"


# ---------------------------------------------------------------------- synthetic corpus


def read_splits(root: Path) -> dict:
    """The {"train": [...], "valid": [...], "test": [...]} lists of ``root/splits.json``."""
    path = root / SPLITS_FILE
    if not path.exists():
        raise DataError(
            f"{path} does not exist: the synthetic corpus names its train/valid/test tracks there "
            "(build the corpus with `python -m wavesep.synth OUT`)"
        )
    try:
        with open(path) as f:
            splits = json.load(f)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {path}: {e}; rebuild the corpus or fix the file") from None
    if not isinstance(splits, dict) or not all(isinstance(v, list) for v in splits.values()):
        raise DataError(f"{path} must hold an object of lists of track names, e.g. {{\"train\": [...]}}")
    return splits


def _synthetic_tracks(root: Path, subset: str, dbs: dict) -> list:
    names = read_splits(root).get(subset, [])
    if not names:
        raise DataError(f"the {subset!r} split of {root / SPLITS_FILE} is empty; rebuild the corpus with tracks in it")
    musdb_subset = "test" if subset == "test" else "train"
    db = _musdb_db(root, musdb_subset, True, dbs)
    by_name = {t.name: t for t in db.tracks}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise DataError(
            f"{root / SPLITS_FILE} names {len(missing)} track(s) not found in {root / musdb_subset} "
            f"(first: {missing[0]!r}); rebuild the corpus"
        )
    specs = []
    for name in names:
        track = by_name[name]  # splits.json order is kept
        missing_stems = [s for s in MUSDB_STEMS if s not in track.sources]
        if missing_stems:
            raise DataError(
                f"track {Path(track.path).parent} is missing the stem file(s) "
                f"{', '.join(s + '.wav' for s in missing_stems)}; rebuild the corpus"
            )
        stems = tuple(AudioRef(str(Path(track.sources[s].path).absolute())) for s in MUSDB_STEMS)
        mix_path = Path(track.path)
        mixture = AudioRef(str(mix_path.absolute())) if mix_path.exists() else None
        specs.append(TrackSpec(name, subset, MUSDB_STEMS, stems, mixture))
    return specs


# ---------------------------------------------------------------------- folder of stems


def holdout_names(names: Sequence[str], fraction: float = 0.1) -> list:
    """The track names held out for validation when a stems root has no split.

    The choice depends only on the names (ranked by a hash), so it is the same on every run and
    machine, and adding a track rarely moves the others. At least one track when there are two
    or more; none from a single track.
    """
    names = sorted(names)
    if len(names) < 2:
        return []
    count = max(1, round(fraction * len(names)))
    ranked = sorted(names, key=lambda n: hashlib.sha1(n.encode("utf-8")).hexdigest())
    return sorted(ranked[:count])


def _track_dirs(folder: Path) -> list:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _stem_folder_tracks(root: Path, subset: str, sources: tuple) -> list:
    if len(set(sources)) != len(sources) or MIXTURE in sources:
        raise DataError(f"source names must be distinct and not {MIXTURE!r}, got {list(sources)}")
    if (root / SPLITS_FILE).exists():
        names = read_splits(root).get(subset, [])
        if not names:
            raise DataError(f"the {subset!r} list of {root / SPLITS_FILE} is empty; add track (folder) names to it")
        dirs = []
        for name in names:
            found = [d for d in (root / name, root / "train" / name, root / "test" / name) if d.is_dir()]
            if not found:
                raise DataError(f"{root / SPLITS_FILE} names track {name!r}, but no folder {root / name} exists")
            dirs.append(found[0])
        where = f"the {subset!r} list of {root / SPLITS_FILE}"
    elif (root / "train").is_dir():
        if subset == "valid" and (root / "valid").is_dir():
            dirs = _track_dirs(root / "valid")
        elif subset == "test":
            dirs = _track_dirs(root / "test") if (root / "test").is_dir() else []
        else:
            dirs = _train_or_holdout(_track_dirs(root / "train"), subset, (root / "valid").is_dir())
        where = f"{root} ({subset})"
    else:
        if subset == "test":
            raise DataError(
                f"{root} has no test/ folder: put test tracks in {root / 'test'} and training tracks in {root / 'train'}"
            )
        dirs = _train_or_holdout(_track_dirs(root), subset, False)
        where = f"{root} ({subset})"
    specs = []
    for d in dirs:
        spec = _stem_folder_track(d, subset, sources)
        if spec is not None:
            specs.append(spec)
    if not specs:
        hint = (
            "a held-out validation track needs at least 2 training tracks (or a valid/ folder)"
            if subset == "valid"
            else f"expected one folder per track holding {', '.join(s + '.wav' for s in sources)} (any audio extension)"
        )
        raise DataError(f"no tracks found in {where}: {hint}")
    return specs


def aligned_tracks(root, names: Sequence[str], stem: str) -> list:
    """One-stem tracks named like ``names``: ``root/<name>/<stem>.*`` or ``root/train/<name>/<stem>.*``.

    Used for material aligned with another dataset's tracks (re-sung vocals, see
    :mod:`wavesep.corpus.revoice`).

    Args:
        root: folder of track folders.
        names: the track names wanted, in order.
        stem: the file stem in each folder, e.g. "vocals".

    Returns:
        list of :class:`TrackSpec` (subset "train"), in the order of ``names``.

    Raises:
        DataError: a missing root, or a name with no folder or no such file (the first few named).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder")
    specs, missing = [], []
    for name in names:
        folder = next((d for d in (root / name, root / "train" / name) if d.is_dir()), None)
        spec = _stem_folder_track(folder, "train", (stem,)) if folder is not None and _find_audio(folder, stem) else None
        if spec is None:
            missing.append(name)
        else:
            specs.append(spec)
    if missing:
        raise DataError(f"{root} has no {stem} file for {len(missing)} of {len(names)} tracks "
                        f"(e.g. {', '.join(missing[:3])})")
    return specs


def _train_or_holdout(dirs: list, subset: str, has_valid_dir: bool) -> list:
    if has_valid_dir:
        return dirs if subset == "train" else []
    held = set(holdout_names([d.name for d in dirs]))
    return [d for d in dirs if (d.name in held) == (subset == "valid")]


def _find_audio(folder: Path, stem: str) -> Optional[Path]:
    found = [
        p for p in folder.iterdir() if p.is_file() and p.stem == stem and p.suffix.lower() in AUDIO_EXTENSIONS
    ]
    if len(found) > 1:
        raise DataError(
            f"track {folder} has several files for {stem!r} ({', '.join(sorted(p.name for p in found))}); keep one"
        )
    return found[0].absolute() if found else None


def _stem_folder_track(folder: Path, subset: str, sources: tuple) -> Optional[TrackSpec]:
    paths = {s: _find_audio(folder, s) for s in sources}
    mixture = _find_audio(folder, MIXTURE)
    if all(p is None for p in paths.values()) and mixture is None:
        if not any(p.suffix.lower() in AUDIO_EXTENSIONS for p in folder.iterdir()):
            warnings.warn(f"skipping {folder}: it holds no audio files")
            return None
    missing = [s for s, p in paths.items() if p is None]
    if missing:
        raise DataError(
            f"track {folder} is missing the stem(s) {', '.join(missing)}: every track folder needs one audio "
            f"file per source ({', '.join(s + '.wav' for s in sources)}; extensions {', '.join(AUDIO_EXTENSIONS)})"
        )
    stems = tuple(AudioRef(str(paths[s])) for s in sources)
    mix = AudioRef(str(mixture)) if mixture is not None else None
    return TrackSpec(folder.name, subset, tuple(sources), stems, mix)
