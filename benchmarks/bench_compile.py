"""Does torch.compile speed up inference after bfloat16? Eager against compiled, same run.

    python benchmarks/bench_compile.py                          # default and M4, float32 and auto
    python benchmarks/bench_compile.py --model M4 --precision auto --seconds 30

For each model and precision, on a stereo 44.1 kHz noise input of --seconds (60) through
wavesep.apply.separate (the network with its tiling, no post-filter):
- eager: the best of --repeats timed calls after one warm-up call;
- compiled (``model.forward = torch.compile(model.forward, dynamic=False)``): the first call,
  which includes tracing and code generation (the "first-call cost"), then the best of --repeats;
- the max abs difference between the compiled and the eager output.

Prints figures; asserts nothing. Models are preset names (random weights, seed 0) or registered
names / checkpoints. torch.compile on the CPU needs a C++ compiler (g++).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from bench_inference import load  # preset names get random weights (seed 0)
from wavesep.apply import resolve_precision, separate

INPUT_RATE = 44100


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", help="model (repeatable; default: default and M4)")
    p.add_argument("--precision", nargs="+", default=["float32", "auto"])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}; "
          f"torch {torch.__version__}")
    gen = torch.Generator().manual_seed(0)
    mix = 0.1 * torch.randn(2, int(args.seconds * INPUT_RATE), generator=gen)  # (C, T)
    for spec in args.model or ["default", "M4"]:
        for precision in args.precision:
            model = load(spec)
            used = resolve_precision(precision, torch.device("cpu")) or "float32"

            def run():
                return separate(model, mix, INPUT_RATE, precision=precision)

            run()  # warm-up (allocator, thread pool)
            eager_out, eager = None, float("inf")
            for _ in range(args.repeats):
                eager_out, t = timed(run)
                eager = min(eager, t)
            model.forward = torch.compile(model.forward, dynamic=False)
            out, first = timed(run)
            steady = float("inf")
            for _ in range(args.repeats):
                out, t = timed(run)
                steady = min(steady, t)
            diff = (out - eager_out).abs().max().item()
            print(f"{spec}, precision {precision} ({used}), {args.seconds:g} s: eager {eager:.2f} s; compiled: "
                  f"first call {first:.2f} s, then {steady:.2f} s ({eager / steady:.2f}x eager); max abs "
                  f"difference {diff:.1e} (load average {os.getloadavg()[0]:.1f})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
