"""Backing recordings: real, voice-free music from Debian packages, for ``train.py --backing``.

The rendered corpus has rendered instruments and masters; real records do not. This module builds
a folder of real instrumental recordings (game soundtracks and rock songs that Debian ships under
free licences) that training mixes under the rendered vocals in place of their accompaniment
(:func:`wavesep.data.augment.replace_backing`).

    python -m wavesep.corpus.backing corpora/backing            # all steps, default packages
    python -m wavesep.corpus.backing corpora/backing --steps screen select --jobs 2

Steps (each skips what an earlier call already did, so the command resumes):

1. ``fetch``: ``apt-get download`` of the packages into ``OUT/debs`` and ``dpkg -x`` into
   ``OUT/x`` (Quake-style ``.pk3`` archives are unzipped).
2. ``convert``: every recording to ``OUT/wav/<package>__<name>.wav``, 22.05 kHz stereo 16-bit,
   with ffmpeg. A Frets on Fire song folder (``song.ogg`` beside ``guitar.ogg``/``rhythm.ogg``)
   is one recording, the sum of its files.
3. ``screen``: is there a voice? Six evenly spaced 8 s excerpts of each recording of 20 s or more
   are separated with the bundled ``default`` model (post-filter ``ratio-mask``), and the Silero
   voice activity detector (the ``silero-vad`` package, made for speech) reads the vocals
   estimate. The detector alone misses singing inside a dense mix, and the vocals estimate alone
   also holds lead instruments, but the detector on the estimate separates the two: on
   ``../shared/realdev`` it finds voice in 35-81% of each mixture and in 0% of each
   accompaniment. Results go to ``OUT/screen.json`` per excerpt: the estimate's energy relative
   to the mixture (dB) and the detector's voiced share.
4. ``select``: the recordings of 20 s or more whose every excerpt is below ``--max-voiced``
   (default 0.1) become tracks of ``OUT/train/<name>/accompaniment.wav`` (hard links), the layout
   ``train.py --backing OUT`` reads; ``OUT/MANIFEST.tsv`` lists each with its package and
   seconds, and the rejected ones with the reason.

Licences: every default package is in Debian main (GPL, CC-BY-SA, CC0 or free game licences;
each package's ``/usr/share/doc/<package>/copyright`` is kept in ``OUT/x``). The recordings are
used to train and are not redistributed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import WavesepError

# Layering: the voice screen imports wavesep.api (and silero_vad) inside screen() only, the one
# step that needs a network; the rest of this module is corpus-level (files, ffmpeg, apt).

# Debian main packages with real recorded music, mostly instrumental (screened anyway).
DEFAULT_PACKAGES = (
    "wesnoth-1.16-music", "ufoai-music", "nexuiz-music", "warzone2100-music", "hyperrogue-music",
    "singularity-music", "drascula-music", "fretsonfire-songs-muldjord", "fretsonfire-songs-sectoid",
    "planetblupi-music-ogg", "asc-music",
)
AUDIO_SUFFIXES = (".ogg", ".mp3", ".flac", ".wav", ".opus")
SAMPLE_RATE = 22050
MIN_SECONDS = 20.0
EXCERPTS = 6
EXCERPT_SECONDS = 8.0
VAD_RATE = 16000
STEPS = ("fetch", "convert", "screen", "select")


class BackingError(WavesepError):
    """A step of the backing build failed (a package, a file, a tool)."""


# ---------------------------------------------------------------------- fetch and convert


def fetch(out: Path, packages: Sequence[str]) -> None:
    """Downloads and unpacks ``packages`` into ``out/debs`` and ``out/x/<package>``."""
    debs, unpacked = out / "debs", out / "x"
    debs.mkdir(parents=True, exist_ok=True)
    unpacked.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if not list(debs.glob(f"{p}_*.deb"))]
    if missing:
        run = subprocess.run(["apt-get", "download", *missing], cwd=debs, capture_output=True, text=True)
        if run.returncode != 0:
            raise BackingError(f"apt-get download {' '.join(missing)} failed: {run.stderr.strip()[-500:]}")
    for p in packages:
        target = unpacked / p
        if target.is_dir():
            continue
        deb = sorted(debs.glob(f"{p}_*.deb"))[-1]
        tmp = unpacked / f".{p}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(["dpkg", "-x", str(deb), str(tmp)], check=True)
        for pk3 in tmp.rglob("*.pk3"):
            with zipfile.ZipFile(pk3) as z:
                z.extractall(pk3.parent / (pk3.stem + ".pk3-files"))
        tmp.rename(target)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")


def recordings(unpacked: Path) -> list:
    """[(output name, [input files])] of every recording under ``unpacked/<package>``."""
    out = []
    for pkg_dir in sorted(p for p in unpacked.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in pkg_dir.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES and f.is_file())
        if pkg_dir.name.startswith("fretsonfire"):
            for folder in sorted({f.parent for f in files}):
                out.append((f"{pkg_dir.name}__{_safe(folder.name)}", [f for f in files if f.parent == folder]))
        else:
            out.extend((f"{pkg_dir.name}__{_safe(f.stem)}", [f]) for f in files)
    return out


def convert(out: Path, jobs: int = 2) -> None:
    """Every recording under ``out/x`` to ``out/wav/<name>.wav`` (22.05 kHz stereo int16)."""
    wav = out / "wav"
    wav.mkdir(parents=True, exist_ok=True)

    def one(item):
        name, inputs = item
        target = wav / f"{name}.wav"
        if target.exists():
            return None
        tmp = wav / f".{name}.tmp.wav"
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
        for f in inputs:
            cmd += ["-i", str(f)]
        if len(inputs) > 1:
            cmd += ["-filter_complex", f"amix=inputs={len(inputs)}:normalize=0"]
        cmd += ["-ac", "2", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le", str(tmp)]
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode != 0:
            tmp.unlink(missing_ok=True)
            return f"{name}: {run.stderr.strip()[-200:]}"
        tmp.rename(target)
        return None

    with ThreadPoolExecutor(max(1, int(jobs))) as pool:
        for problem in pool.map(one, recordings(out / "x")):
            if problem:
                print(f"skipped (ffmpeg cannot read it): {problem}", file=sys.stderr)


# ---------------------------------------------------------------------- screen and select


def excerpt_starts(frames: int, sample_rate: int) -> list:
    """Start samples of the screened excerpts: EXCERPTS evenly spaced over the recording."""
    length = int(EXCERPT_SECONDS * sample_rate)
    return [int(s) for s in np.linspace(0, frames - length, EXCERPTS)]


def voiced_share(vocals, sample_rate: int, vad_model) -> float:
    """Share (0-1) of a vocals estimate (T,) float32 that the Silero detector calls speech.

    The estimate is peak-normalised to 0.5 first: the detector reads shape, not level.
    """
    import soxr
    import torch
    from silero_vad import get_speech_timestamps

    y = soxr.resample(np.asarray(vocals, dtype=np.float32), sample_rate, VAD_RATE).astype(np.float32)
    y = y / (np.abs(y).max() + 1e-9) * 0.5
    stamps = get_speech_timestamps(torch.from_numpy(y), vad_model, sampling_rate=VAD_RATE, threshold=0.5)
    return sum(t["end"] - t["start"] for t in stamps) / len(y)


def screen_file(path: Path, separate: Callable, vad: Callable) -> dict:
    """{"seconds", "excerpts": [{"start", "ratio_db", "vad"}]} of one recording, or
    {"seconds", "skipped"} when it is shorter than MIN_SECONDS.

    Args:
        separate: (C, T) float32 tensor, sample rate -> (C, T) vocals estimate tensor.
        vad: (T,) float32 array, sample rate -> voiced share in [0, 1].
    """
    import soundfile as sf
    import torch

    info = sf.info(str(path))
    frames, rate = info.frames, info.samplerate
    if frames < MIN_SECONDS * rate:
        return {"seconds": frames / rate, "skipped": f"shorter than {MIN_SECONDS:g} s"}
    length = int(EXCERPT_SECONDS * rate)
    found = []
    for start in excerpt_starts(frames, rate):
        x, _ = sf.read(str(path), start=start, frames=length, dtype="float32", always_2d=True)
        mix = torch.from_numpy(np.ascontiguousarray(x.T))  # (C, T)
        power = float((mix ** 2).mean())
        if power < 1e-8:
            continue  # silence: nothing to hear
        vocals = separate(mix, rate)
        ratio = 10 * np.log10(float((vocals ** 2).mean()) / power + 1e-12)
        found.append({"start": start / rate, "ratio_db": round(float(ratio), 2),
                      "vad": round(float(vad(vocals.numpy().mean(axis=0), rate)), 3)})
    return {"seconds": frames / rate, "excerpts": found}


def screen(out: Path, files: Optional[Sequence[Path]] = None, model: str = "default") -> dict:
    """Screens ``files`` (default: all of ``out/wav``) not yet in ``out/screen.json``; returns it all."""
    import torch
    from silero_vad import load_silero_vad

    from ..api import Separator

    torch.set_num_threads(1)
    record = out / "screen.json"
    results = json.loads(record.read_text()) if record.exists() else {}
    todo = [Path(f) for f in (files if files is not None else sorted((out / "wav").glob("*.wav")))
            if Path(f).name not in results]
    if not todo:
        return results
    sep = Separator(model, postfilter="ratio-mask")
    vad_model = load_silero_vad()
    for path in todo:
        results[path.name] = screen_file(path, lambda x, r: sep.separate_tensor(x, r)["vocals"],
                                         lambda v, r: voiced_share(v, r, vad_model))
        tmp = record.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(results, indent=1))
        os.replace(tmp, record)
        print(path.name, [(e["ratio_db"], e["vad"]) for e in results[path.name].get("excerpts", [])], flush=True)
    return results


def verdict(entry: dict, max_voiced: float = 0.1) -> Optional[str]:
    """None when a screened recording is kept, else the reason it is not."""
    if "skipped" in entry:
        return entry["skipped"]
    if not entry.get("excerpts"):
        return "silent"
    worst = max(e["vad"] for e in entry["excerpts"])
    if worst >= max_voiced:
        return f"voice detected in {worst:.0%} of an excerpt"
    return None


def select(out: Path, max_voiced: float = 0.1) -> tuple:
    """Links the kept recordings into ``out/train/<name>/accompaniment.wav`` and writes
    ``out/MANIFEST.tsv``. Returns (kept seconds, kept count, rejected count)."""
    results = json.loads((out / "screen.json").read_text())
    train = out / "train"
    lines = ["name\tpackage\tseconds\tkept\treason"]
    kept_seconds, kept, rejected = 0.0, 0, 0
    for name, entry in sorted(results.items()):
        reason = verdict(entry, max_voiced)
        stem = name[:-4] if name.endswith(".wav") else name
        lines.append(f"{stem}\t{stem.split('__')[0]}\t{entry['seconds']:.1f}\t{'yes' if reason is None else 'no'}\t"
                     f"{reason or ''}")
        folder = train / stem
        if reason is None:
            folder.mkdir(parents=True, exist_ok=True)
            link = folder / "accompaniment.wav"
            if not link.exists():
                os.link(out / "wav" / name, link)
            kept_seconds += entry["seconds"]
            kept += 1
        else:
            shutil.rmtree(folder, ignore_errors=True)
            rejected += 1
    (out / "MANIFEST.tsv").write_text("\n".join(lines) + "\n")
    return kept_seconds, kept, rejected


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m wavesep.corpus.backing", description=__doc__.splitlines()[0])
    p.add_argument("out", help="output folder (train.py --backing OUT reads it)")
    p.add_argument("--packages", nargs="+", default=list(DEFAULT_PACKAGES), help="Debian packages of recordings")
    p.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS), help="steps to run (default: all)")
    p.add_argument("--jobs", type=int, default=2, help="parallel conversions / screening processes")
    p.add_argument("--max-voiced", type=float, default=0.1, help="reject a recording when an excerpt's "
                   "vocals estimate is voiced for this share or more (default 0.1)")
    p.add_argument("--model", default="default", help="separator whose vocals estimate is screened")
    p.add_argument("--files", nargs="+", help=argparse.SUPPRESS)  # one screening worker's share
    args = p.parse_args(argv)
    out = Path(args.out)
    try:
        if "fetch" in args.steps:
            fetch(out, args.packages)
        if "convert" in args.steps:
            convert(out, args.jobs)
        if "screen" in args.steps:
            _screen_in_parallel(out, args)
        if "select" in args.steps:
            seconds, kept, rejected = select(out, args.max_voiced)
            print(f"kept {kept} recordings ({seconds / 3600:.2f} h) in {out / 'train'}, rejected {rejected}; "
                  f"see {out / 'MANIFEST.tsv'}")
    except (WavesepError, OSError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _screen_in_parallel(out: Path, args) -> None:
    """``--jobs`` worker processes, each screening its share into its own record, then merged."""
    if args.files is not None:  # a worker
        screen(out, [Path(f) for f in args.files], args.model)
        return
    record = out / "screen.json"
    done = json.loads(record.read_text()) if record.exists() else {}
    for part in sorted(out.glob("part*/screen.json")):  # an interrupted earlier call's workers
        done.update(json.loads(part.read_text()))
    todo = [str(f) for f in sorted((out / "wav").glob("*.wav")) if f.name not in done]
    jobs = max(1, min(int(args.jobs), len(todo)))
    if not todo:
        return
    workers = []
    for k in range(jobs):
        part = out / f"part{k}"
        part.mkdir(exist_ok=True)
        cmd = [sys.executable, "-m", "wavesep.corpus.backing", str(part), "--steps", "screen", "--model", args.model,
               "--files", *todo[k::jobs]]
        workers.append((part, subprocess.Popen(cmd, env=dict(os.environ, OMP_NUM_THREADS="1"))))
    for part, proc in workers:
        proc.wait()
        if (part / "screen.json").exists():
            done.update(json.loads((part / "screen.json").read_text()))
        if proc.returncode != 0:
            raise BackingError(f"a screening worker failed (exit {proc.returncode}); rerun to continue")
    tmp = record.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(done, indent=1))
    os.replace(tmp, record)
    for part, _ in workers:
        shutil.rmtree(part, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
