"""Command line: separate songs into stems (``wavesep-separate``, ``python separate.py``).

    wavesep-separate song.mp3 music/ -n default -o separated
    -> separated/<model name>/<track name>/<stem>.wav

Inputs are files and folders (searched recursively for audio files). Stems are written at the
input's sample rate and exact length, 16-bit by default. A track's files are written into a
temporary folder and moved into place together, so a track is written whole or not at all. A file that cannot be read or
separated is reported and skipped; the others are still processed and the exit status is then 1,
after a summary. ``--skip-existing`` leaves out tracks whose stems are all there (reruns);
``--ray [ADDRESS]`` separates on Ray workers instead (:mod:`wavesep.cluster.separate`), with the
same outputs, messages and summary. ``main(argv)`` returns the exit status, so tests call it
in-process.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from . import apply, audio, pretrained
from .api import SUBTYPES, Separator, save_stems
from .atomic import atomic_folder, remove_stale
from .interrupts import Interrupted, StopSignals
from .audio import read
from .errors import WavesepError
from .postfilter import CHOICES as POSTFILTER_CHOICES
from .streaming import DEFAULT_HOP_SECONDS

# Extensions picked up when searching folders (files named explicitly are tried whatever their
# extension; wavesep.audio decides how to decode them).
FOLDER_EXTENSIONS = frozenset(
    {
        "wav", "wave", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff", "aifc", "caf", "w64",
        "rf64", "au", "m4a", "mp4", "aac", "wma", "mka", "webm", "alac", "ape", "wv",
    }
)

EXIT_OK, EXIT_FAILED = 0, 1  # interrupted: 128 + the signal, 130 (SIGINT) or 143 (SIGTERM)


@dataclass
class Track:
    """One input file and the name of its output folder (relative, may contain '/').

    ``roots``: the names of the folders above the input it came from, nearest last (for a file
    given by name its own folder's path, for a file found in a folder that folder's path
    included); used only to tell apart tracks that would share a name."""

    path: Path
    name: str
    roots: tuple = ()


def _track_stem(path: Path) -> str:
    name = path.name
    stem = name[: -len(path.suffix)] if path.suffix else name
    # MUSDB ".stem.mp4" files: the track is what precedes ".stem".
    return stem[: -len(".stem")] if stem.lower().endswith(".stem") and len(stem) > 5 else stem


def _hidden(parts) -> bool:
    return any(p.startswith(".") for p in parts)


def _folder_names(folder: Path) -> tuple:
    return Path(os.path.abspath(folder)).parts[1:]  # without the root ("/", "C:\\")


def collect_tracks(inputs, out_dir: Path) -> tuple:
    """Expands files and folders into tracks with unique output names.

    Returns (tracks, problems): ``problems`` lists (input, message) for inputs that do not exist.
    Folders are searched recursively for :data:`FOLDER_EXTENSIONS`, skipping hidden files and
    folders and the output folder; their tracks are named by their path relative to the folder
    (``album/01 song``), files given by name by their name without extension. A file given
    twice (or reached twice) is separated once. Names that would clash are made unique for the
    whole run before anything is written, see :func:`unique_names`.
    """
    out_resolved = out_dir.resolve()
    found, problems, seen = [], [], set()
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            candidates = []
            roots = _folder_names(path)
            for f in sorted(path.rglob("*")):
                rel = f.relative_to(path)
                if _hidden(rel.parts) or not f.is_file():
                    continue
                if f.suffix.lower().lstrip(".") not in FOLDER_EXTENSIONS:
                    continue
                if out_resolved == f.resolve() or out_resolved in f.resolve().parents:
                    continue
                candidates.append((f, (rel.parent / _track_stem(f)).as_posix(), roots))
            if not candidates:
                problems.append((str(given), "no audio files found in this folder"))
        elif path.exists() or path.is_symlink():
            candidates = [(path, _track_stem(path), _folder_names(path.parent))]
        else:
            problems.append((str(given), "no such file or folder"))
            continue
        for f, name, roots in candidates:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                found.append(Track(f, name, roots))
    for track, name in zip(found, unique_names(found)):
        track.name = name
    return found, problems


def _clashing(names: list) -> list:
    """Groups (lists of indices) of names that cannot all be output folders of one run: equal
    names (ignoring case, as some file systems do), and a name whose folder would hold another's
    (``album`` and ``album/song``: the former is renamed alone)."""
    by_key = {}
    for i, name in enumerate(names):
        by_key.setdefault(name.casefold(), []).append(i)
    groups = [idx for idx in by_key.values() if len(idx) > 1]
    for name in names:
        parts = name.casefold().split("/")
        for depth in range(1, len(parts)):
            holder = by_key.get("/".join(parts[:depth]))
            if holder and len(holder) == 1 and holder not in groups:
                groups.append(holder)
    return groups


def _with_prefix(track: Track, base: str, depth: int) -> Optional[str]:
    """``base`` with the ``depth`` nearest folder names of its input prepended to its first part
    (``albumA_song``, ``music_cd1/song``); None when there are not that many folders."""
    if depth > len(track.roots):
        return None
    first, _, rest = base.partition("/")
    head = "_".join(list(track.roots[len(track.roots) - depth :]) + [first])
    return f"{head}/{rest}" if rest else head


def unique_names(tracks: list) -> list:
    """The output names of ``tracks``, unique for the run (ignoring case) and never one inside
    another's folder. Each group of clashing names is renamed, all its members alike, by the
    first of these rules that makes them distinct (and clashes with no other name):

    1. the nearest parent folder names prepended, as few as needed, joined by "_"
       (``albumA/song.wav``, ``albumB/song.wav`` -> ``albumA_song``, ``albumB_song``);
    2. the file's extension kept, then with parent folders as in 1 (``song.wav``, ``song.flac``);
    3. " (2)", " (3)", ... appended to all but the first, in input order.
    """
    names = [t.name for t in tracks]

    def fits(group, candidate) -> bool:
        """Whether ``group``'s first members, renamed to ``candidate``, clash with nothing (its
        members not yet renamed left out)."""
        trial = list(names)
        for i in group:
            trial[i] = f"\0{i}"  # cannot be a file name
        for i, name in zip(group, candidate):
            trial[i] = name
        renamed = set(group[: len(candidate)])
        return not any(set(g) & renamed for g in _clashing(trial))

    # One pass settles every group: a group's new names are checked against all current names.
    for group in _clashing(names):
        depth_max = max(len(tracks[i].roots) for i in group)
        options = [(d, False) for d in range(1, depth_max + 1)]
        options += [(d, True) for d in range(0, depth_max + 1)]
        for depth, extension in options:
            candidate = [
                _with_prefix(tracks[i], tracks[i].name + (tracks[i].path.suffix if extension else ""), depth)
                for i in group
            ]
            if None not in candidate and fits(group, candidate):
                break
        else:
            candidate = [names[group[0]]] if len(group) > 1 else []
            number = 2
            for i in group[len(candidate):]:
                while not fits(group, candidate + [f"{names[i]} ({number})"]):
                    number += 1
                candidate.append(f"{names[i]} ({number})")
                number += 1
        for i, name in zip(group, candidate):
            names[i] = name
    return names


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wavesep-separate",
        description="Separate songs into stems with a Wave-U-Net model. Writes "
        "OUT/<model>/<track>/<stem>.wav at the input's sample rate and length.",
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="audio files or folders (searched recursively)")
    p.add_argument("-o", "--out", default="separated", help="output folder (default: %(default)s)")
    p.add_argument(
        "-n", "--model", default=pretrained.DEFAULT_MODEL,
        help="registered model name, checkpoint file or training run directory (default: %(default)s); "
        "see --list-models",
    )
    p.add_argument("--list-models", action="store_true", help="list the registered models and exit")
    p.add_argument(
        "--two-stems", metavar="STEM",
        help="write only STEM and no_STEM, the sum of all other stems (e.g. --two-stems vocals "
        "-> vocals.wav + no_vocals.wav)",
    )
    p.add_argument(
        "--postfilter", choices=POSTFILTER_CHOICES, default="auto",
        help="refine the estimates with a time-frequency mask built from them (ratio-mask, see "
        "wavesep.postfilter; ratio-mask-fullband: the same, and above the model's Nyquist frequency "
        "each frame's mean mask of the band below) or not (none); auto: what the model's metadata "
        "asks for (default)",
    )
    p.add_argument("-d", "--device", default="auto", help="cpu, cuda, cuda:N or auto (default: %(default)s)")
    p.add_argument("--batch-size", type=int, help="model windows per forward pass (default: 1 on CPU, "
                   "fitted to free memory on CUDA)")
    p.add_argument("--segment", type=float, default=apply.DEFAULT_SEGMENT_SECONDS, metavar="SECONDS",
                   help="output window length in seconds; smaller uses less memory (default: %(default)s)")
    p.add_argument("--precision", choices=["auto", "float32", "float16", "bfloat16"], default="auto",
                   help="auto (default): bfloat16 where the device computes it natively (CPUs with "
                   "AVX-512 BF16 or AMX, CUDA GPUs that support it), float32 elsewhere; float32: exact; "
                   "float16 / bfloat16: autocast")
    enc = p.add_mutually_exclusive_group()
    enc.add_argument("--float32", action="store_const", const="float32", dest="encoding",
                     help="write 32-bit float wav (no clipping needed)")
    enc.add_argument("--int24", action="store_const", const="int24", dest="encoding",
                     help="write 24-bit integer files")
    p.set_defaults(encoding="int16")
    p.add_argument("--flac", action="store_true", help="write flac instead of wav (16 or 24 bit)")
    p.add_argument(
        "--clip-mode", choices=apply.CLIP_MODES, default=None,
        help="rescale: scale all stems of a track together so its peak is <= 1 (they keep adding "
        "up to the scaled mixture); clamp: clip each sample to [-1, 1]; none: leave as is "
        "(integer files then clip). Default: rescale (clamp with --stream, which cannot rescale)",
    )
    p.add_argument("-j", "--jobs", type=int, default=1, help="files separated in parallel (default: 1)")
    p.add_argument("--skip-existing", action="store_true",
                   help="leave out tracks whose output folder already holds every stem (reruns)")
    p.add_argument(
        "--ray", nargs="?", const="", metavar="ADDRESS",
        help="separate on a Ray cluster, one model per worker: ADDRESS of the cluster (auto, HOST:6379, "
        "ray://HOST:10001) or none to start a local Ray instance (extra: ray)",
    )
    p.add_argument("--ray-workers", type=int, metavar="N",
                   help="Ray workers (default: one per GPU of the cluster, else one per --ray-cpus CPUs)")
    p.add_argument("--ray-cpus", type=float, default=1.0, metavar="N",
                   help="CPUs (and torch threads) per Ray worker (default: %(default)g)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice, one per core); on a CPU busy with "
                   "other jobs 1 thread can be several times faster (benchmarks/RESULTS.md)")
    p.add_argument(
        "--channels", choices=apply.CHANNEL_POLICIES, default="error", dest="channel_policy",
        help="inputs with more than 2 channels: error (default), downmix (mean of all channels), "
        "first (the model's number of first channels) or split (each channel separated on its "
        "own, all channels kept)",
    )
    p.add_argument("--spectrogram", action="store_true",
                   help="also write <track>/spectrograms.png: the mixture and each stem, one above the other")
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors and the summary")
    st = p.add_argument_group("streaming (--stream)")
    st.add_argument("--stream", action="store_true",
                    help="separate one stream as it arrives: INPUT is '-' (stdin, the default), a pipe "
                    "or a file, wav or raw PCM; stems are written to OUT/<model>/<--name>/ as they "
                    "come, exactly as the offline separation would make them")
    st.add_argument("--name", default=None, help="output folder name of the stream (default: the input "
                    "file's name, 'stream' for stdin)")
    st.add_argument("--raw-format", choices=sorted(audio.RAW_FORMATS), default=None,
                    help="raw PCM input without a wav header (interleaved little-endian); needs "
                    "--rate and --in-channels")
    st.add_argument("--rate", type=int, help="sample rate of raw PCM input (Hz)")
    st.add_argument("--in-channels", type=int, help="channels of raw PCM input")
    st.add_argument("--block", type=int, default=4096, help="frames read at a time (default: %(default)s)")
    st.add_argument("--hop", type=float, default=DEFAULT_HOP_SECONDS, metavar="SECONDS",
                    help="network window hop of the stream: part of the latency (default: %(default)s)")
    return p


def _printable(text: str, stream=None) -> str:
    """``text`` as ``stream`` can encode it: the bytes of a file name that is not valid in the
    file system's encoding (surrogate escapes in Python) as \\xNN, characters the stream's
    encoding lacks as escapes."""
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    encoding = getattr(stream, "encoding", None) or "utf-8"
    return text.encode(encoding, "backslashreplace").decode(encoding)


def _print(text: str = "", file=None, flush: bool = False) -> None:
    stream = sys.stdout if file is None else file
    print(_printable(text, stream), file=stream, flush=flush)


def _check_output_folder(folder: Path) -> Optional[str]:
    """None if files can be created in ``folder`` (created if missing), else the reason."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create the output folder {folder}: {exc.strerror or exc}"
    probe = folder / f".wavesep-write-test-{uuid.uuid4().hex[:8]}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return f"the output folder {folder} is not writable: {exc.strerror or exc}"
    return None


def main(argv=None) -> int:
    """Runs the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit status:
    0 all tracks separated, 1 some failed (after a summary) or nothing could be done, 2 bad
    arguments, 130 interrupted (SIGINT, Ctrl-C), 143 terminated (SIGTERM); after an interrupt no
    partial or temporary file is left."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help or a usage error: argparse has printed why
        return int(exc.code or 0)
    if args.list_models:
        for name in pretrained.names():
            state = "" if name in pretrained.available() else "  (not installed)"
            _print(f"{name}: {pretrained.describe(name)}{state}")
        return EXIT_OK
    if args.threads is not None:
        if args.threads < 1:
            print(f"wavesep-separate: error: --threads must be >= 1, got {args.threads}", file=sys.stderr)
            return 2
        torch.set_num_threads(args.threads)
    if args.stream:
        with StopSignals() as stop:
            return _stream_main(args, stop)
    if not args.inputs:
        parser.print_usage(sys.stderr)
        _print("wavesep-separate: error: give at least one audio file or folder", file=sys.stderr)
        return 2
    if args.flac and args.encoding == "float32":
        _print("wavesep-separate: error: --flac cannot hold float samples; use --int24 or 16-bit", file=sys.stderr)
        return 2
    for name, value in (("--batch-size", args.batch_size), ("--jobs", args.jobs), ("--ray-workers", args.ray_workers)):
        if value is not None and value < 1:
            _print(f"wavesep-separate: error: {name} must be >= 1, got {value}", file=sys.stderr)
            return 2
    if not (args.ray_cpus > 0 and math.isfinite(args.ray_cpus)):
        _print(f"wavesep-separate: error: --ray-cpus must be > 0, got {args.ray_cpus}", file=sys.stderr)
        return 2
    if not (args.segment > 0 and math.isfinite(args.segment)):
        _print(f"wavesep-separate: error: --segment must be a finite number of seconds > 0, got "
               f"{args.segment}", file=sys.stderr)
        return 2

    started = time.time()
    with StopSignals() as stop:
        try:
            return _separate_all(args, stop, started)
        except KeyboardInterrupt as exc:
            signum = getattr(exc, "signum", None) or stop.signum or signal.SIGINT
            _print(f"\nwavesep-separate: interrupted ({signal.Signals(signum).name}); the tracks "
                  "already written are complete, and no partial or temporary file was left",
                  file=sys.stderr, flush=True)
            return 128 + signum


def _separate_all(args, stop: StopSignals, started: float) -> int:
    try:
        separator = Separator(
            args.model,
            # with --ray the driver only holds the model to send it; the workers use --device
            device="cpu" if args.ray is not None else args.device,
            segment_seconds=args.segment,
            batch_size=args.batch_size,
            precision=args.precision,
            clip=args.clip_mode or "rescale",
            channel_policy=args.channel_policy,
            two_stems=args.two_stems,
            postfilter=args.postfilter,
        )
    except (WavesepError, ValueError) as exc:
        stop.check()
        _print(f"wavesep-separate: error: {exc}", file=sys.stderr)
        return EXIT_FAILED

    out_root = Path(args.out)
    model_dir = out_root / separator.name
    tracks, problems = collect_tracks(args.inputs, out_root)
    failures = list(problems)
    for given, why in problems:
        _print(f"error: {given}: {why}", file=sys.stderr)
    if tracks:
        why = _check_output_folder(model_dir)
        if why is not None:
            _print(f"wavesep-separate: error: {why}; nothing was separated", file=sys.stderr)
            return EXIT_FAILED
        # Temporaries that a killed run left where this run writes (older than this run: a newer
        # one may be another run's work in progress).
        folders = {model_dir / t.name for t in tracks} | {(model_dir / t.name).parent for t in tracks}
        removed = [p for folder in sorted(folders) for p in remove_stale(folder, before=started)]
        if removed and not args.quiet:
            _print(f"removed {len(removed)} temporary file(s) or folder(s) left by an interrupted run")

    extension = "flac" if args.flac else "wav"
    lock = threading.Lock()
    total = len(tracks)
    skipped = set()
    if args.skip_existing:
        wanted = [f"{s}.{extension}" for s in separator.sources] + (["spectrograms.png"] if args.spectrogram else [])
        skipped = {i for i, t in enumerate(tracks) if all((model_dir / t.name / f).is_file() for f in wanted)}
        if skipped and not args.quiet:
            _print(f"skipping {len(skipped)} track(s) already separated (--skip-existing)")
    todo = [i for i in range(total) if i not in skipped]

    def run_one(index: int, track: Track) -> Optional[str]:
        start = time.perf_counter()
        try:
            stop.check()
            stems, rate, mixture = _separate_track(separator, track.path, lambda done: stop.check())
            stop.check()
            folder = model_dir / track.name
            # The track's files are written into a temporary folder and moved into place together.
            with atomic_folder(folder) as staging:
                save_stems(stems, staging, rate, encoding=args.encoding, extension=extension)
                if args.spectrogram:
                    from .plot import save_spectrograms

                    save_spectrograms(staging / "spectrograms.png", mixture, stems, rate,
                                      title=_printable(f"{track.name} ({separator.name})"))
                stop.check()
        except WavesepError as exc:
            stop.check()  # a failure caused by an interrupt is the interrupt
            message = str(exc)
        except OSError as exc:  # the track's folder cannot be created or filled
            stop.check()
            message = f"cannot write into {model_dir / track.name}: {exc.strerror or exc}"
        except Exception as exc:  # a bug: report it fully, but keep going with the other files
            stop.check()
            message = f"unexpected {type(exc).__name__}: {exc}"
            with lock:
                _print(traceback.format_exc().rstrip(), file=sys.stderr)
        else:
            if not args.quiet:
                with lock:
                    _print(f"[{index + 1}/{total}] {track.path} -> {folder} "
                          f"({time.perf_counter() - start:.1f} s)", flush=True)
            return None
        with lock:
            _print(f"[{index + 1}/{total}] error: {message}", file=sys.stderr, flush=True)
        return message

    results = [None] * total
    if args.ray is not None:
        from .cluster.separate import separate_on_ray

        try:
            done_remotely = separate_on_ray(
                separator, [tracks[i] for i in todo], model_dir, address=args.ray or None,
                workers=args.ray_workers, cpus_per_worker=args.ray_cpus, device=args.device,
                encoding=args.encoding, extension=extension, spectrogram=args.spectrogram, quiet=args.quiet,
                numbers=todo, of=total)
        except WavesepError as exc:  # the Ray cluster could not be reached or used
            stop.check()
            _print(f"wavesep-separate: error: {exc}", file=sys.stderr)
            return EXIT_FAILED
        for i, message in zip(todo, done_remotely):
            results[i] = message
    elif args.jobs == 1 or len(todo) <= 1:
        for i in todo:
            results[i] = run_one(i, tracks[i])
    else:
        pool = ThreadPoolExecutor(max_workers=args.jobs)
        try:
            for i, message in zip(todo, pool.map(run_one, todo, [tracks[i] for i in todo])):
                results[i] = message
        except BaseException:
            stop.signum = stop.signum or signal.SIGINT  # the running tracks stop at their next check
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    failures += [(str(t.path), msg) for t, msg in zip(tracks, results) if msg is not None]
    done = total - sum(msg is not None for msg in results)
    if failures or not args.quiet:
        # Inputs that do not exist or hold no audio count as one each.
        also = f" ({len(skipped)} of them already done)" if skipped else ""
        _print(f"separated {done} of {total + len(problems)} track(s){also} with model "
               f"'{separator.name}' into {model_dir}")
    if failures:
        _print(f"{len(failures)} input(s) failed:", file=sys.stderr)
        for given, why in failures:
            _print(f"  {why}" if given in why else f"  {given}: {why}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _stream_main(args, stop: StopSignals) -> int:
    """``--stream``: one input (stdin, a pipe or a file) separated block by block; the stems are
    written as they come (each to a temporary file renamed at the end of the stream)."""
    if len(args.inputs) > 1:
        _print("wavesep-separate: error: --stream takes one input ('-' for stdin)", file=sys.stderr)
        return 2
    if args.clip_mode == "rescale":
        _print("wavesep-separate: error: --clip-mode rescale needs the whole track's peak, which a "
              "stream only knows at its end: use clamp (the default with --stream) or none, or "
              "separate the file without --stream", file=sys.stderr)
        return 2
    if args.block < 1 or not args.hop > 0:
        _print("wavesep-separate: error: --block must be >= 1 and --hop > 0", file=sys.stderr)
        return 2
    given = args.inputs[0] if args.inputs else "-"
    raw = None
    if args.raw_format or args.rate or args.in_channels:
        if not (args.raw_format and args.rate and args.in_channels):
            _print("wavesep-separate: error: raw PCM needs --raw-format, --rate and --in-channels", file=sys.stderr)
            return 2
        raw = (args.raw_format, args.rate, args.in_channels)
    name = args.name or ("stream" if given == "-" else _track_stem(Path(given)))
    try:
        separator = Separator(args.model, device=args.device, precision=args.precision,
                              clip=args.clip_mode or "clamp", channel_policy=args.channel_policy,
                              two_stems=args.two_stems, postfilter=args.postfilter,
                              batch_size=args.batch_size)
        handle = sys.stdin.buffer if given == "-" else open(given, "rb")
    except (WavesepError, ValueError, OSError) as exc:
        _print(f"wavesep-separate: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    extension = "flac" if args.flac else "wav"
    folder = Path(args.out) / separator.name / name
    writers = {}
    start = time.perf_counter()
    try:
        with handle:
            reader = audio.PcmReader(handle, raw, name=given)
            stream = separator.stream(reader.sample_rate, reader.channels, hop_seconds=args.hop)
            writers = {stem: audio.StreamWriter(folder / f"{stem}.{extension}", reader.sample_rate,
                                                stream.out_channels, SUBTYPES[args.encoding])
                       for stem in stream.sources}
            while True:
                block = reader.read(args.block)
                stems = stream.process(block) if block.shape[-1] else stream.flush()
                for stem, wav in stems.items():
                    writers[stem].write(wav)
                if not block.shape[-1]:
                    break
        for writer in writers.values():
            writer.close()
    except KeyboardInterrupt as exc:
        for writer in writers.values():
            writer.abort()
        signum = getattr(exc, "signum", None) or stop.signum or signal.SIGINT
        _print(f"\nwavesep-separate: interrupted ({signal.Signals(signum).name}); no partial or temporary "
               "file was left", file=sys.stderr)
        return 128 + signum
    except (WavesepError, ValueError, OSError) as exc:
        for writer in writers.values():
            writer.abort()
        _print(f"wavesep-separate: error: {given}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if not args.quiet:
        seconds = stream.received / reader.sample_rate
        took = time.perf_counter() - start
        _print(f"separated {seconds:.1f} s of {given} with model '{separator.name}' into {folder} "
              f"({took:.1f} s, real-time factor {took / max(seconds, 1e-9):.3f})")
    return EXIT_OK


def _separate_track(separator: Separator, path: Path, progress=None) -> tuple:
    """(stems, sample rate, mixture (C, T)) of one file; the rate is returned rather than read from
    the shared separator, which parallel jobs would race on."""
    wav, rate = read(path)
    try:
        return separator.separate_tensor(wav, rate, progress=progress), rate, wav
    except WavesepError as exc:
        raise type(exc)(f"{path}: {exc}") from None


__all__ = ["FOLDER_EXTENSIONS", "Track", "build_parser", "collect_tracks", "main", "unique_names"]


if __name__ == "__main__":
    sys.exit(main())
