"""End-to-end peak memory of `wavesep-separate` against the track's length.

    python benchmarks/bench_memory.py                         # 1, 10 and 60 minutes, model default
    python benchmarks/bench_memory.py --minutes 1 10 --model default --pythonpath /tmp/old-wavesep

For each length a stereo 44.1 kHz 16-bit wav of that many minutes is written to a temporary
folder (a few tones plus noise), then separated by the command line (`wavesep.separate.main`,
default settings: the model's post-filter, precision auto, clip mode rescale, 16-bit output) in a
fresh process whose peak RSS (VmHWM) is read at the end. Printed per length: the peak, the bytes
of the arrays that are the input and the output themselves (the decoded mixture (C, T) and the
S stems (C, T), float32), and the peak less those arrays; then the ratio of that last figure
between the longest and the shortest track (issue 16: at most 1.5). ``--pythonpath`` runs
another checkout of wavesep (e.g. an older commit, for before/after figures). Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

RATE = 44100

CHILD = r"""
import json, sys, time
from wavesep.separate import main
path, out, model = sys.argv[1:4]
t = time.perf_counter()
status = main([path, "-o", out, "-n", model, "-q"])
seconds = time.perf_counter() - t
peak = 0
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        peak = int(line.split()[1]) * 1024
print(json.dumps({"status": status, "peak": peak, "seconds": seconds}))
"""


def write_track(path: Path, minutes: float) -> int:
    """A stereo 16-bit wav of ``minutes``: tones and noise at about -12 dBFS. Returns T."""
    frames = int(minutes * 60 * RATE)
    rng = np.random.default_rng(0)
    block = 1 << 20
    with soundfile.SoundFile(str(path), "w", RATE, 2, "PCM_16") as f:
        for t0 in range(0, frames, block):
            t = (np.arange(t0, min(frames, t0 + block)) / RATE)[:, None]
            x = 0.1 * np.sin(2 * np.pi * np.array([220.0, 330.0]) * t)
            x += 0.05 * np.sin(2 * np.pi * 1760.0 * t) * (np.sin(2 * np.pi * 0.5 * t) > 0)
            x += 0.05 * rng.standard_normal(x.shape)
            f.write(x.astype(np.float32))
    return frames


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0, 60.0])
    p.add_argument("--model", default="default")
    p.add_argument("--sources", type=int, default=2, help="stems the model writes (for the array bytes)")
    p.add_argument("--pythonpath", help="wavesep checkout to run instead of the installed one")
    p.add_argument("--threads", type=int, help="CPU threads of the separating process (OMP_NUM_THREADS, "
                   "which any wavesep version's torch follows)")
    args = p.parse_args(argv)
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath
    print(f"model {args.model}, stereo {RATE} Hz 16-bit wav in, default `wavesep-separate` settings, "
          f"threads {args.threads or 'default'}; load average {os.getloadavg()[0]:.1f} at start")
    print("| track | peak RSS (MB) | input + output arrays (MB) | peak less arrays (MB) | time (s) | load average at end |")
    print("|---|---|---|---|---|---|")
    beyond = {}
    mb = 1 << 20
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            wav = Path(tmp) / f"track-{minutes:g}min.wav"
            frames = write_track(wav, minutes)
            arrays = (1 + args.sources) * 2 * frames * 4  # float32 (C, T) mixture + S stems
            # cwd: the temporary folder, so that `python -c` does not import a wavesep found in the
            # current directory ahead of PYTHONPATH.
            proc = subprocess.run([sys.executable, "-c", CHILD, str(wav), str(Path(tmp) / "out"), args.model],
                                  capture_output=True, text=True, env=env, cwd=tmp)
            if proc.returncode != 0:
                print(f"| {minutes:g} min | failed: {proc.stderr.strip().splitlines()[-1:]} |||||")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            beyond[minutes] = r["peak"] - arrays
            print(f"| {minutes:g} min | {r['peak'] / mb:.0f} | {arrays / mb:.0f} | {beyond[minutes] / mb:.0f} | "
                  f"{r['seconds']:.0f} | {os.getloadavg()[0]:.1f} |", flush=True)
            wav.unlink()
    if len(beyond) >= 2:
        lo, hi = min(beyond), max(beyond)
        print(f"ratio {hi:g} min / {lo:g} min, arrays excluded: {beyond[hi] / beyond[lo]:.2f} (target <= 1.5)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
