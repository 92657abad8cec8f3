"""Resampling speed, memory and frequency response of wavesep.audio.resample's two backends.

    python benchmarks/bench_audio.py [--minutes 10] [--backend fir soxr]
    python benchmarks/bench_audio.py --quality

Speed: each rate pair and backend runs in a fresh subprocess so that its peak RSS (VmHWM) is its
own; the figure printed is the peak minus the memory of the input and output arrays.

--quality measures each backend's response with sines, 44.1 <-> 22.05 kHz: passband gain from
20 Hz to 0.9 x the lower Nyquist frequency (ripple = largest minus smallest gain; the amplitude
of the output sine fitted by least squares), and the stopband: for 44100 -> 22050 every input
sine from the lower Nyquist frequency (11025 Hz) to 22050 Hz, whose output is all alias (its
amplitude relative to the input's); for 22050 -> 44100 every input sine below 11025 Hz, whose
output less the fitted sine is its image. The worst case over the sines is printed. The soxr
backend computes in float32, whose rounding floor is near -140 dB.
"""

import argparse
import json
import subprocess
import sys

import numpy as np

PAIRS = [(44100, 48000), (48000, 44100), (44100, 22050), (22050, 44100)]

CHILD = r"""
import json, sys, time
import numpy as np, torch
from wavesep import audio
orig, new, minutes, backend = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
torch.set_num_threads(1)
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024
# float32 straight away: a float64 temporary would set a peak that hides the resampler's own
x = torch.from_numpy(np.random.default_rng(0).standard_normal((2, int(minutes * 60 * orig)), dtype=np.float32))
x.mul_(0.1)
audio.resample(x[:, :orig], orig, new, backend=backend)  # warm-up (imports, allocator)
base = hwm()
t = time.perf_counter()
y = audio.resample(x, orig, new, backend=backend)
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "extra_mb": (hwm() - base - y.numel() * 4) / 2**20, "out_mb": y.numel() * 4 / 2**20}))
"""


def _fit(y, f, rate):
    """Amplitude of the sine at f Hz in y (least squares over the middle half), and the RMS of
    what is left."""
    n = len(y)
    t = np.arange(n // 4, 3 * n // 4) / rate
    basis = np.stack([np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t)], axis=1)
    seg = y[n // 4 : 3 * n // 4]
    coef, *_ = np.linalg.lstsq(basis, seg, rcond=None)
    return float(np.hypot(*coef)), float(np.sqrt(np.mean((seg - basis @ coef) ** 2)))


def quality(backends) -> None:
    import torch

    from wavesep import audio

    low = 22050
    nyq = low / 2
    n = 1 << 15
    print("| backend | passband 20 Hz - 0.9 x 11025 Hz: gain min / max (dB), ripple (dB) | "
          "stopband 44.1 -> 22.05 kHz: worst alias (dB) | stopband 22.05 -> 44.1 kHz: worst image (dB) |")
    print("|---|---|---|---|")
    for backend in backends:
        gains, aliases, images = [], [], []
        for f in np.geomspace(20, 0.9 * nyq, 40):
            x = np.sin(2 * np.pi * f * np.arange(n) / 44100)
            y = audio.resample(torch.from_numpy(x), 44100, low, backend=backend).double().numpy()
            gains.append(20 * np.log10(_fit(y, f, low)[0]))
            x = np.sin(2 * np.pi * f * np.arange(n) / low)
            y = audio.resample(torch.from_numpy(x), low, 44100, backend=backend).double().numpy()
            amp, rest = _fit(y, f, 44100)
            gains.append(20 * np.log10(amp))
        for f in np.linspace(nyq, 44100 / 2 - 20, 60):
            x = np.sin(2 * np.pi * f * np.arange(n) / 44100)
            y = audio.resample(torch.from_numpy(x), 44100, low, backend=backend).double().numpy()
            seg = y[len(y) // 4 : 3 * len(y) // 4]
            aliases.append(20 * np.log10(max(np.sqrt(2 * np.mean(seg ** 2)), 1e-300)))
        for f in np.linspace(20, nyq - 1, 60):
            x = np.sin(2 * np.pi * f * np.arange(n) / low)
            y = audio.resample(torch.from_numpy(x), low, 44100, backend=backend).double().numpy()
            images.append(20 * np.log10(max(np.sqrt(2) * _fit(y, f, 44100)[1], 1e-300)))
        print(f"| {backend} | {min(gains):+.5f} / {max(gains):+.5f}, {max(gains) - min(gains):.5f} | "
              f"{max(aliases):.1f} | {max(images):.1f} |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--backend", nargs="+", default=["fir", "soxr"])
    p.add_argument("--quality", action="store_true", help="frequency response instead of speed")
    args = p.parse_args(argv)
    if args.quality:
        quality(args.backend)
        return 0
    print(f"wavesep.audio.resample, {args.minutes:g}-minute stereo float32 signal, 1 torch thread")
    print("| backend | rates (Hz) | time (s) | x real time | output (MiB) | memory beyond input and output (MiB) |")
    print("|---|---|---|---|---|---|")
    for backend in args.backend:
        for orig, new in PAIRS:
            out = subprocess.run([sys.executable, "-c", CHILD, str(orig), str(new), str(args.minutes), backend],
                                 capture_output=True, text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"| {backend} | {orig} -> {new} | {r['seconds']:.2f} | {args.minutes * 60 / r['seconds']:.0f} | "
                  f"{r['out_mb']:.0f} | {max(0.0, r['extra_mb']):.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
