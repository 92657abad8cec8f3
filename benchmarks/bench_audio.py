"""Resampling speed and memory of wavesep.audio.resample on a long stereo signal.

    python benchmarks/bench_audio.py [--minutes 10]

Each rate pair runs in a fresh subprocess so that its peak RSS (VmHWM) is its own; the figure
printed is the peak minus the memory of the input and output arrays.
"""

import argparse
import json
import subprocess
import sys

PAIRS = [(44100, 48000), (48000, 44100), (44100, 22050), (22050, 44100)]

CHILD = r"""
import json, sys, time
import numpy as np, torch
from wavesep import audio
orig, new, minutes = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
torch.set_num_threads(1)
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024
# float32 straight away: a float64 temporary would set a peak that hides the resampler's own
x = torch.from_numpy(np.random.default_rng(0).standard_normal((2, int(minutes * 60 * orig)), dtype=np.float32))
x.mul_(0.1)
audio.resample(x[:, :orig], orig, new)  # warm-up (imports, allocator)
base = hwm()
t = time.perf_counter()
y = audio.resample(x, orig, new)
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "extra_mb": (hwm() - base - y.numel() * 4) / 2**20, "out_mb": y.numel() * 4 / 2**20}))
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0)
    args = p.parse_args(argv)
    print(f"wavesep.audio.resample, {args.minutes:g}-minute stereo float32 signal, 1 torch thread")
    print("| rates (Hz) | time (s) | x real time | output (MiB) | memory beyond input and output (MiB) |")
    print("|---|---|---|---|---|")
    for orig, new in PAIRS:
        out = subprocess.run([sys.executable, "-c", CHILD, str(orig), str(new), str(args.minutes)],
                             capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"| {orig} -> {new} | {r['seconds']:.2f} | {args.minutes * 60 / r['seconds']:.0f} | "
              f"{r['out_mb']:.0f} | {max(0.0, r['extra_mb']):.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
