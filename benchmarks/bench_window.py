"""Window length and thread count for CPU inference: which segment_seconds and torch threads are fastest.

    python benchmarks/bench_window.py                                  # M4, float32, 2-30 s, 1 and 2 threads
    python benchmarks/bench_window.py --model default --precision auto --segments 5 10 20

Times wavesep.apply.separate (the network with its tiling, no post-filter) on a stereo 44.1 kHz
noise input of --seconds (60) for every window length (``segment_seconds``: the output length
of one window, the model's context is added on both sides) and every thread count; each figure
is the best of --repeats calls after one warm-up call. Prints figures; asserts nothing. The
library's defaults (DEFAULT_SEGMENT_SECONDS, torch's thread count: one per core) were chosen
from this table (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from bench_inference import load  # preset names get random weights (seed 0)
from wavesep.apply import plan_tiles, separate
from wavesep import audio

INPUT_RATE = 44100


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="M4")
    p.add_argument("--precision", default="float32")
    p.add_argument("--segments", type=float, nargs="+", default=[2.0, 4.0, 6.0, 10.0, 20.0, 30.0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch's default threads "
          f"{torch.get_num_threads()}; torch {torch.__version__}")
    model = load(args.model)
    gen = torch.Generator().manual_seed(0)
    mix = 0.1 * torch.randn(2, int(args.seconds * INPUT_RATE), generator=gen)  # (C, T)
    length = audio.resampled_length(mix.shape[-1], INPUT_RATE, model.sample_rate)
    for threads in args.threads:
        torch.set_num_threads(threads)
        for seg in args.segments:
            plan = plan_tiles(model, length, seg)
            separate(model, mix[:, : 5 * INPUT_RATE], INPUT_RATE, segment_seconds=seg, precision=args.precision)
            best = float("inf")
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                separate(model, mix, INPUT_RATE, segment_seconds=seg, precision=args.precision)
                best = min(best, time.perf_counter() - t0)
            print(f"{args.model}, precision {args.precision}, {threads} thread(s), segment {seg:g} s "
                  f"({plan.num_windows} windows of {plan.input_length} -> {plan.output_length} samples): "
                  f"{best:.2f} s, RTF {best / args.seconds:.3f} (load average {os.getloadavg()[0]:.1f})",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
