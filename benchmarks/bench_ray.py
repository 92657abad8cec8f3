"""Throughput of wavesep-separate on a local Ray instance with 1 and 2 workers, against the plain
local path (``-j 1`` and ``-j 2``).

    python benchmarks/bench_ray.py                                   # 8 tracks of 20 s, model default
    python benchmarks/bench_ray.py --tracks 8 --seconds 30 --repeat 2 --plot docs/ray-throughput.png

Generates ``--tracks`` stereo 44.1 kHz songs (tones and noise, seeded), then times each
configuration's ``wavesep.separate.main`` call in this process, from the call to the last file
written (Ray's worker start-up and model loading included; starting the Ray instance itself is
timed once, apart). Prints seconds of audio separated per wall-clock second for each, and draws
a bar chart with ``--plot``. Asserts nothing. Compares every configuration's files with the first
one's and prints the largest difference: the same number of torch threads gives the same bytes,
another number can round differently (float sums in another order).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

RATE = 44100


def make_songs(folder: Path, tracks: int, seconds: float) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    t = np.arange(int(seconds * RATE)) / RATE
    for i in range(tracks):
        rng = np.random.default_rng(i)
        f = 110 * (1 + i % 5)
        mix = np.stack([0.3 * np.sin(2 * np.pi * f * t) + 0.2 * np.sin(2 * np.pi * 3.01 * f * t),
                        0.3 * np.sin(2 * np.pi * 1.5 * f * t) + 0.2 * np.sin(2 * np.pi * 2.02 * f * t)], axis=1)
        mix += 0.05 * rng.standard_normal(mix.shape)
        path = folder / f"song{i:02d}.wav"
        sf.write(str(path), mix.astype(np.float32), RATE, subtype="PCM_16")
        paths.append(path)
    return paths


def files(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.wav"))}


def largest_difference(a: dict, b: dict) -> int:
    """Largest sample difference between two runs' files, in 16-bit steps."""
    import io

    worst = 0
    for name in a:
        x = sf.read(io.BytesIO(a[name]), dtype="int16")[0].astype(np.int32)
        y = sf.read(io.BytesIO(b[name]), dtype="int16")[0].astype(np.int32)
        worst = max(worst, int(np.abs(x - y).max()))
    return worst


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tracks", type=int, default=8)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--model", default="default")
    p.add_argument("--repeat", type=int, default=1, help="runs of every configuration, round robin (median shown)")
    p.add_argument("--plot", help="bar chart PNG (bars: medians; ticks: the runs)")
    args = p.parse_args(argv)

    import ray

    from wavesep.separate import main as separate

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        songs = make_songs(tmp / "in", args.tracks, args.seconds)
        audio_seconds = args.tracks * args.seconds
        print(f"{args.tracks} tracks x {args.seconds:g} s (stereo 44.1 kHz), model {args.model}, "
              f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), torch {torch.__version__}")
        with open("/proc/loadavg") as f:
            print(f"load average before: {f.read().split()[:3]}")
        start = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR")
        print(f"starting the local Ray instance: {time.perf_counter() - start:.1f} s (not in the figures below)")
        configs = [
            ("local -j 1 (2 torch threads)", ["-j", "1"]),
            ("local -j 2 (2 torch threads each)", ["-j", "2"]),
            ("Ray, 1 worker (2 CPUs / threads)", ["--ray", "--ray-workers", "1", "--ray-cpus", "2"]),
            ("Ray, 1 worker (1 CPU / thread)", ["--ray", "--ray-workers", "1", "--ray-cpus", "1"]),
            ("Ray, 2 workers (1 CPU / thread each)", ["--ray", "--ray-workers", "2", "--ray-cpus", "1"]),
        ]
        walls = {label: [] for label, _ in configs}
        reference = None
        for repeat in range(args.repeat):  # round robin, so that a change of load hits every row
            for i, (label, options) in enumerate(configs):
                out = tmp / f"out{i}-{repeat}"
                torch.set_num_threads(os.cpu_count())
                start = time.perf_counter()
                code = separate([*map(str, songs), "-o", str(out), "-n", args.model, "-d", "cpu", "-q", *options])
                wall = time.perf_counter() - start
                written = files(out)
                reference = reference or written
                same = written == reference
                verdict = "same files" if same else f"files differ by up to {largest_difference(written, reference)} LSB"
                walls[label].append(wall)
                with open("/proc/loadavg") as f:
                    load = f.read().split()[0]
                print(f"run {repeat + 1}: {label:38s} exit {code}  {wall:7.1f} s  {audio_seconds / wall:6.2f} s of "
                      f"audio per s  {verdict} ({len(written)} files; load {load})", flush=True)
                shutil.rmtree(out)
        rows = [(label, float(np.median(w)), [audio_seconds / x for x in w]) for label, w in walls.items()]
        print("\nmedian over the runs (seconds of audio per second):")
        for label, wall, rates in rows:
            print(f"  {label:38s} {audio_seconds / wall:6.2f}   (runs: {', '.join(f'{r:.2f}' for r in rates)})")
        ray.shutdown()
        with open("/proc/loadavg") as f:
            print(f"load average after: {f.read().split()[:3]}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 3.2))
        labels = [r[0] for r in rows]
        values = [audio_seconds / r[1] for r in rows]
        colors = ["#8a93a6", "#8a93a6", "#3b6fd8", "#3b6fd8", "#3b6fd8"]
        ax.barh(labels[::-1], values[::-1], color=colors[::-1])
        for y, (v, row) in enumerate(zip(values[::-1], rows[::-1])):
            ax.plot(row[2], [y] * len(row[2]), "k|", markersize=14)
            ax.text(max(row[2]), y, f"  {v:.2f}", va="center")
        ax.set_xlabel("seconds of audio separated per second (higher is better)")
        ax.set_title(f"wavesep-separate, {args.tracks} x {args.seconds:g} s, model {args.model}, "
                     f"{os.cpu_count()} shared CPU cores", fontsize=10)
        ax.set_xlim(0, max(max(r[2]) for r in rows) * 1.2)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"figure: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
