"""The offline synthetic multitrack corpus: songs rendered from seeds, written like MUSDB18-HQ.

Layout of a corpus folder OUT (readable by ``musdb.DB(root=OUT, is_wav=True)``)::

    OUT/train/<track>/{mixture,vocals,drums,bass,other}.wav   train and valid tracks
    OUT/test/<track>/{mixture,vocals,drums,bass,other}.wav    test tracks
    OUT/splits.json        {"train": [...], "valid": [...], "test": [...]} track names
    OUT/meta/<track>.json  how the track was made (renderer info, seeds, split, level)

As in MUSDB18, validation tracks live in the train folder; ``splits.json`` says which they are.
Nothing else is written inside the subset folders, because musdb takes every folder below them
for a track. Every wav is stereo at the corpus sample rate (44.1 kHz by default), 16-bit PCM or,
with ``float_format``, 32-bit float.

The mixture is the sum of the four stems, exactly as stored: in 16-bit mode each stem is rounded
to integers and the mixture file holds their integer sum; in float mode the mixture is the float32
sum ``((vocals + drums) + bass) + other`` of the stored stems. A song whose mixture or stems would
peak above :data:`HEADROOM_PEAK` is scaled down as a whole first, so nothing is ever clipped.

Songs come from a *renderer*, a module named in :data:`RENDERERS` and imported only when asked
for, so a missing optional dependency of one renderer never breaks another. A renderer module has

* ``check_dependencies() -> None``: raises :class:`~wavesep.errors.DependencyError` naming the
  install command when something it needs is missing;
* ``render(name, split, seed, seconds, sample_rate) -> (stems, info)``: stems maps "vocals",
  "drums", "bass", "other" to float32 arrays (T, 2), T = round(seconds * sample_rate), at their
  final level; info is a JSON-serialisable description of the song.

Each track's seed comes from ``numpy.random.SeedSequence`` over (corpus seed, split, index), so a
track does not change when the corpus gets more or fewer tracks, and the same arguments give the
same bytes. Tracks are rendered into ``OUT/.partial/`` and renamed into place when complete; a
rerun with the same arguments skips the tracks already there. Two runs must not write to the same
OUT at the same time.

:class:`SongStream` renders the same kind of songs in memory, one at a time, from a seed branch
of their own: an endless training corpus that needs no disk (``train.py --render``).

Command line: ``python -m wavesep.synth OUT --tracks 86 --valid-tracks 14 --test-tracks 50
--seconds 30 --seed 0 [--renderer oscillator|sampled] [--jobs 2] [--float]``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib
import json
import math
import multiprocessing
import operator
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from wavesep.atomic import write_text
from wavesep.errors import DataError, DependencyError, WavesepError

RENDERERS = {"oscillator": "wavesep.corpus.oscillator", "sampled": "wavesep.corpus.sampled"}
SOURCES = ("vocals", "drums", "bass", "other")  # also the order in which the mixture is summed
MIXTURE = "mixture"
SPLITS = ("train", "valid", "test")
SPLITS_FILE = "splits.json"
META_FOLDER = "meta"
PARTIAL_FOLDER = ".partial"
HEADROOM_PEAK = 0.95  # full scale 1.0
DEFAULTS = {"tracks": 86, "valid_tracks": 14, "test_tracks": 50, "seconds": 30.0, "seed": 0}

# Part of every track seed: changing it changes every song of every corpus.
_SEED_DOMAIN = 0x5EED_C0DE
_SPLIT_CODES = {"train": 0, "valid": 1, "test": 2}
_STREAM_CODE = 3  # the seed branch of streamed songs (SongStream), beside the three splits
_INT16_SCALE = 32768  # libsndfile maps int16 k to k / 32768 and back exactly
_FORMATS = {False: "PCM_16", True: "FLOAT"}
PathLike = Union[str, os.PathLike]
_LOADED = {}  # renderer name -> module whose dependencies were checked in this process


def track_seed(seed: int, split: str, index: int) -> int:
    """Renderer seed (64-bit int) of track `index` of `split` in a corpus built with `seed`."""
    sequence = np.random.SeedSequence(entropy=[_SEED_DOMAIN, seed],
                                      spawn_key=(_SPLIT_CODES[split], index))
    return int(sequence.generate_state(1, dtype=np.uint64)[0])


def stream_seed(seed: int, index: int) -> int:
    """Renderer seed (64-bit int) of song `index` of the stream `seed` (:class:`SongStream`).

    Its own branch of the seed tree, so a streamed song is never a corpus track of any seed.
    """
    sequence = np.random.SeedSequence(entropy=[_SEED_DOMAIN, seed], spawn_key=(_STREAM_CODE, index))
    return int(sequence.generate_state(1, dtype=np.uint64)[0])


class SongStream:
    """Songs rendered in memory on demand: an endless corpus for ``train.py --render``.

    ``stream(k)`` -> dict mapping :data:`SOURCES` to float32 ``(T, 2)`` arrays at
    ``sample_rate`` Hz, T = round(seconds * sample_rate), after the corpus's headroom scaling and
    without its 16-bit rounding. Song k is a pure function of (renderer, seed, k, seconds,
    sample_rate) and draws its pieces from the renderer's ``split`` pool ("train": the held-out
    validation and test pieces never appear). Plain data, so it pickles into DataLoader workers;
    the renderer is imported at construction (a missing dependency is reported at once).

    Args:
        renderer: a name in :data:`RENDERERS`.
        seed: non-negative int; the stream's songs differ from every corpus track.
        seconds: song length in seconds (> 0).
        sample_rate: Hz (render at the model's rate: no resampling afterwards).
        split: the renderer's piece pool ("train", "valid" or "test").
    """

    def __init__(self, renderer: str, seed: int, seconds: float, sample_rate: int, split: str = "train"):
        load_renderer(renderer)
        if split not in SPLITS:
            raise DataError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        if int(seed) < 0:
            raise DataError(f"the song stream's seed must be >= 0, got {seed}")
        self.renderer, self.seed, self.split = renderer, int(seed), split
        self.seconds, self.sample_rate = _positive_seconds(seconds), int(sample_rate)
        self.frames = int(round(self.seconds * self.sample_rate))

    def name(self, index: int) -> str:
        """The song's name (part of its randomness, as a track name is)."""
        return f"{self.renderer}-stream{self.seed}-{index:06d}"

    def __call__(self, index: int) -> dict:
        name = self.name(index)
        module = load_renderer(self.renderer)
        stems, _ = module.render(name, self.split, stream_seed(self.seed, index), self.seconds, self.sample_rate)
        stems = _checked_stems(stems, self.frames, {"renderer": self.renderer, "name": name})
        arrays, _, _ = _finalise(stems, float_format=True)
        return {k: arrays[k] for k in SOURCES}


def track_name(renderer: str, seed: int, split: str, index: int) -> str:
    """Filesystem-safe, unique track name, e.g. ``oscillator-s0-valid-0003``."""
    return f"{renderer}-s{seed}-{split}-{index:04d}"


def load_renderer(name: str):
    """Import the renderer module registered as `name` and check its dependencies.

    Raises:
        DataError: unknown renderer name.
        DependencyError: the module or something it needs is missing (the message says what).
    """
    if name in _LOADED:
        return _LOADED[name]
    if name not in RENDERERS:
        raise DataError(f"unknown renderer {name!r}; choose one of {', '.join(sorted(RENDERERS))}")
    module_name = RENDERERS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise DependencyError(
                f"the {name!r} renderer is not part of this wavesep installation "
                f"(module {module_name} not found); use --renderer oscillator or update wavesep"
            ) from None
        raise DependencyError(
            f"the {name!r} renderer needs the Python module {exc.name!r}, which is not "
            f"installed; install it (pip install {exc.name.split('.')[0]}) or use another renderer"
        ) from None
    except ImportError as exc:
        raise DependencyError(f"the {name!r} renderer cannot be imported: {exc}") from None
    module.check_dependencies()
    _LOADED[name] = module
    return module


def build_corpus(
    out: PathLike,
    tracks: int,
    seconds: float,
    seed: int,
    valid_tracks: int = DEFAULTS["valid_tracks"],
    test_tracks: int = DEFAULTS["test_tracks"],
    renderer: str = "oscillator",
    jobs: int = 1,
    sample_rate: int = 44100,
    float_format: bool = False,
    progress: bool = False,
) -> dict:
    """Render a synthetic corpus into `out` (MUSDB18-HQ layout, see the module docstring).

    Args:
        out: corpus folder; created if missing. Tracks already complete there are kept.
        tracks: number of train tracks (besides the validation ones), >= 0.
        seconds: length of every track in seconds, > 0.
        seed: corpus seed, int >= 0.
        valid_tracks: number of validation tracks (stored in OUT/train), >= 0.
        test_tracks: number of test tracks (stored in OUT/test), >= 0.
        renderer: a key of :data:`RENDERERS`.
        jobs: worker processes rendering songs in parallel (1: render in this process).
        sample_rate: Hz, 8000 to 192000.
        float_format: write 32-bit float wavs instead of 16-bit PCM.
        progress: show a progress line on stderr.

    Returns:
        Summary dict: ``out``, ``renderer``, ``seed``, ``seconds``, ``sample_rate``, ``format``,
        ``splits`` ({"train", "valid", "test"} -> track names), ``rendered`` and ``skipped``
        (track names), ``unlisted`` (folders under OUT/train and OUT/test that are not in
        ``splits``, e.g. from an earlier run with more tracks: musdb still lists them),
        ``audio_seconds`` (rendered now) and ``wall_seconds``.

    Raises:
        DataError: bad arguments, an unwritable `out`, or tracks in `out` that were built with
            other settings.
        DependencyError: the renderer cannot run here (the message says what to install).
    """
    started = time.perf_counter()
    counts = {"train": _count(tracks, "tracks"), "valid": _count(valid_tracks, "valid_tracks"),
              "test": _count(test_tracks, "test_tracks")}
    if sum(counts.values()) == 0:
        raise DataError("nothing to build: tracks, valid_tracks and test_tracks are all 0")
    seconds = _positive_seconds(seconds)
    seed = _count(seed, "seed")
    jobs = _count(jobs, "jobs")
    if jobs < 1:
        raise DataError(f"jobs must be at least 1, got {jobs}")
    sample_rate = _count(sample_rate, "sample_rate")
    if not 8000 <= sample_rate <= 192000:
        raise DataError(f"sample_rate must be between 8000 and 192000 Hz, got {sample_rate}")
    if round(seconds * sample_rate) < 1:
        raise DataError(f"seconds={seconds} is shorter than one sample at {sample_rate} Hz")
    float_format = bool(float_format)
    load_renderer(renderer)
    root = _prepare_folder(Path(out))

    settings = {"renderer": renderer, "corpus_seed": seed, "seconds": seconds,
                "sample_rate": sample_rate, "format": _FORMATS[float_format]}
    splits = {split: [] for split in SPLITS}
    todo, skipped = [], []
    for split in SPLITS:
        for index in range(counts[split]):
            name = track_name(renderer, seed, split, index)
            splits[split].append(name)
            job = {**settings, "root": str(root), "name": name, "split": split, "index": index,
                   "subset": "test" if split == "test" else "train",
                   "track_seed": track_seed(seed, split, index)}
            if _finished(root, job):
                skipped.append(name)
            else:
                todo.append(job)

    rendered = []
    bar = _progress_bar(len(todo) + len(skipped), len(skipped), progress)
    try:
        for result in _run_jobs(todo, jobs):
            rendered.append(result["name"])
            if bar is not None:
                bar.set_postfix_str(f"{result['name']} ({result['speed']:.0f}x real time)",
                                    refresh=False)
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    _write_json(root / SPLITS_FILE, splits)
    try:
        (root / PARTIAL_FOLDER).rmdir()
    except OSError:
        pass
    listed = {name for names in splits.values() for name in names}
    unlisted = sorted(p.name for sub in ("train", "test") for p in (root / sub).iterdir()
                      if p.name not in listed)
    return {"out": str(root), **{k: settings[k] for k in ("renderer", "seconds", "sample_rate",
                                                          "format")},
            "seed": seed, "splits": splits, "rendered": sorted(rendered),
            "skipped": sorted(skipped), "unlisted": unlisted,
            "audio_seconds": len(rendered) * seconds,
            "wall_seconds": time.perf_counter() - started}


# ------------------------------------------------------------------------------- one track


def render_track(job: dict) -> dict:
    """Render, check, quantise and write one track described by a job dict (see build_corpus).

    Runs in worker processes, so it takes and returns plain data only.
    """
    root = Path(job["root"])
    started = time.perf_counter()
    module = load_renderer(job["renderer"])
    stems, info = module.render(job["name"], job["split"], job["track_seed"], job["seconds"],
                                job["sample_rate"])
    frames = int(round(job["seconds"] * job["sample_rate"]))
    stems = _checked_stems(stems, frames, job)
    arrays, gain, peak = _finalise(stems, job["format"] == "FLOAT")
    meta = {**{k: job[k] for k in ("name", "split", "subset", "index", "track_seed", "renderer",
                                    "corpus_seed", "seconds", "sample_rate", "format")},
            "headroom_gain": gain, "mixture_peak": peak, "info": info}
    try:
        meta_text = json.dumps(meta, indent=1, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise DataError(f"renderer {job['renderer']!r} returned an info dict for track "
                        f"{job['name']} that is not plain JSON ({exc}); this is a bug in the "
                        "renderer") from None
    # The metadata goes first: a folder in place is then always described by its file.
    _write_text(root / META_FOLDER / f"{job['name']}.json", meta_text + "\n")

    from wavesep import audio  # imports torch; only the processes that write need it

    target = root / job["subset"] / job["name"]
    partial = Path(tempfile.mkdtemp(prefix=job["name"] + ".", dir=root / PARTIAL_FOLDER))
    try:
        for stem, array in arrays.items():
            audio.write(partial / f"{stem}.wav", array.T, job["sample_rate"],
                        subtype=job["format"], format="WAV")
        os.rename(partial, target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    elapsed = time.perf_counter() - started
    return {"name": job["name"], "seconds": elapsed,
            "speed": job["seconds"] / elapsed if elapsed > 0 else math.inf}


def _checked_stems(stems, frames: int, job: dict) -> dict:
    where = f"renderer {job['renderer']!r} (track {job['name']})"
    if not isinstance(stems, dict) or set(stems) != set(SOURCES):
        got = sorted(stems) if isinstance(stems, dict) else type(stems).__name__
        raise DataError(f"{where} returned stems {got}, expected exactly {list(SOURCES)}; "
                        "this is a bug in the renderer")
    checked = {}
    for key in SOURCES:
        x = np.asarray(stems[key])
        if x.shape != (frames, 2) or not np.issubdtype(x.dtype, np.floating):
            raise DataError(f"{where} returned {key} with shape {x.shape} and dtype {x.dtype}, "
                            f"expected float32 ({frames}, 2); this is a bug in the renderer")
        x = x.astype(np.float32, copy=False)
        if not np.isfinite(x).all():
            raise DataError(f"{where} returned NaN or infinite samples in {key}; "
                            "this is a bug in the renderer")
        checked[key] = x
    return checked


def _finalise(stems: dict, float_format: bool) -> tuple:
    """Headroom and quantisation: stems (T, 2) float32 -> ({file stem: (T, 2) float32}, gain, peak).

    The returned arrays hold exactly the values the files will hold, mixture included.
    """
    mixture = stems[SOURCES[0]].astype(np.float64)
    for key in SOURCES[1:]:
        mixture += stems[key]
    peak = max([float(np.max(np.abs(mixture), initial=0.0))]
               + [float(np.max(np.abs(stems[k]), initial=0.0)) for k in SOURCES])
    gain = 1.0
    if peak > HEADROOM_PEAK:
        gain = HEADROOM_PEAK / peak
        stems = {k: v * np.float32(gain) for k, v in stems.items()}
    if float_format:
        mix = stems[SOURCES[0]].copy()
        for key in SOURCES[1:]:
            mix += stems[key]
        arrays = {MIXTURE: mix, **stems}
    else:
        ints = {k: np.rint(v * _INT16_SCALE).astype(np.int32) for k, v in stems.items()}
        total = ints[SOURCES[0]].copy()
        for key in SOURCES[1:]:
            total += ints[key]
        if max(int(np.max(np.abs(a), initial=0)) for a in (*ints.values(), total)) > 32767:
            raise AssertionError("headroom scaling failed to keep the 16-bit mixture in range")
        arrays = {MIXTURE: total, **ints}
        arrays = {k: (v / np.float32(_INT16_SCALE)).astype(np.float32) for k, v in arrays.items()}
    mix_peak = float(np.max(np.abs(arrays[MIXTURE]), initial=0.0))
    return arrays, round(gain, 6), round(mix_peak, 6)


# ------------------------------------------------------------------------------- corpus folder


def _count(value, name: str) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)
    except TypeError:
        raise DataError(f"{name} must be a whole number, got {value!r}") from None
    if number < 0:
        raise DataError(f"{name} must not be negative, got {number}")
    return number


def _positive_seconds(value) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise DataError(f"seconds must be a number, got {value!r}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise DataError(f"seconds must be a positive number of seconds, got {value!r}")
    return seconds


def _prepare_folder(root: Path) -> Path:
    """Create the corpus folders, check that they are writable, clear a killed run's leftovers."""
    root = root.expanduser().absolute()
    if root.exists() and not root.is_dir():
        raise DataError(f"the corpus folder {root} exists and is not a folder; choose another OUT")
    try:
        for folder in (root, root / "train", root / "test", root / META_FOLDER):
            folder.mkdir(parents=True, exist_ok=True)
        partial = root / PARTIAL_FOLDER
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        fd, probe = tempfile.mkstemp(dir=partial)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise DataError(f"cannot write the corpus to {root}: {exc.strerror or exc}; "
                        "choose a folder you can write to") from None
    return root


def _finished(root: Path, job: dict) -> bool:
    """Whether the job's track is complete in `root` (and was built with the same settings)."""
    folder = root / job["subset"] / job["name"]
    if not folder.exists():
        return False
    meta_path = root / META_FOLDER / f"{job['name']}.json"
    missing = [f"{s}.wav" for s in (MIXTURE, *SOURCES) if not (folder / f"{s}.wav").is_file()]
    if missing or not meta_path.is_file():
        what = ", ".join(missing) if missing else f"its metadata {meta_path}"
        raise DataError(f"the track folder {folder} lacks {what}; delete the folder and run "
                        "again to rebuild it")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {meta_path} ({exc}); delete it and {folder}, then run "
                        "again") from None
    for key in ("renderer", "corpus_seed", "seconds", "sample_rate", "format", "split",
                "track_seed"):
        if meta.get(key) != job[key]:
            raise DataError(
                f"{folder} was built with {key}={meta.get(key)!r}, but this run asks for "
                f"{job[key]!r}; build into another folder, or delete {root} to rebuild it")
    return True


def _run_jobs(todo: list, jobs: int):
    """Yield the result of each job as it finishes, in this process or in a pool."""
    if jobs == 1 or len(todo) <= 1:
        for job in todo:
            yield render_track(job)
        return
    # "spawn" gives fresh workers even when the caller already runs threads (torch does).
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(min(jobs, len(todo)), mp_context=context) as pool:
        futures = [pool.submit(render_track, job) for job in todo]
        try:
            for future in concurrent.futures.as_completed(futures):
                yield future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _progress_bar(total: int, done: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=done, unit="track", desc="synth", file=sys.stderr,
                dynamic_ncols=True)


def _write_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (temporary file in the same folder, then rename)."""
    write_text(path, text)


def _write_json(path: Path, data) -> None:
    _write_text(path, json.dumps(data, indent=1) + "\n")


# ------------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m wavesep.synth",
        description="Render a synthetic multitrack corpus in the MUSDB18-HQ layout "
                    "(OUT/train, OUT/test, OUT/splits.json, OUT/meta).")
    parser.add_argument("out", help="corpus folder (created if missing; finished tracks in it "
                                    "are kept)")
    parser.add_argument("--tracks", type=int, default=DEFAULTS["tracks"],
                        help="train tracks, besides the validation ones (default %(default)s)")
    parser.add_argument("--valid-tracks", type=int, default=DEFAULTS["valid_tracks"],
                        help="validation tracks, stored in OUT/train (default %(default)s)")
    parser.add_argument("--test-tracks", type=int, default=DEFAULTS["test_tracks"],
                        help="test tracks, stored in OUT/test (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=DEFAULTS["seconds"],
                        help="length of each track in seconds (default %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"],
                        help="corpus seed; the same arguments give the same files "
                             "(default %(default)s)")
    parser.add_argument("--renderer", default="oscillator", choices=sorted(RENDERERS),
                        help="how songs are made (default %(default)s)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="worker processes (default %(default)s)")
    parser.add_argument("--sample-rate", type=int, default=44100,
                        help="Hz (default %(default)s)")
    parser.add_argument("--float", dest="float_format", action="store_true",
                        help="write 32-bit float wavs instead of 16-bit PCM")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the exit status (0 on success)."""
    args = _parser().parse_args(argv)
    try:
        summary = build_corpus(args.out, args.tracks, args.seconds, args.seed,
                               valid_tracks=args.valid_tracks, test_tracks=args.test_tracks,
                               renderer=args.renderer, jobs=args.jobs,
                               sample_rate=args.sample_rate, float_format=args.float_format,
                               progress=not args.quiet)
    except WavesepError as exc:
        print(f"wavesep.synth: error: {exc}", file=sys.stderr)
        return 1
    counts = ", ".join(f"{len(v)} {k}" for k, v in summary["splits"].items())
    print(f"wavesep.synth: {summary['out']}: {counts} tracks; rendered {len(summary['rendered'])}, "
          f"kept {len(summary['skipped'])} already there, in {summary['wall_seconds']:.1f} s",
          file=sys.stderr)
    if summary["unlisted"]:
        print(f"wavesep.synth: note: {len(summary['unlisted'])} track folder(s) in "
              f"{summary['out']} are not part of this corpus (first: {summary['unlisted'][0]}); "
              "musdb will list them, splits.json does not", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
