"""Streaming separation: latency and real-time factor (wavesep.streaming via Separator.stream).

    python benchmarks/bench_stream.py                        # default and M4, hops 0.25 and 1 s
    python benchmarks/bench_stream.py --model default --hop 0.5 --seconds 30 --block 512

A stereo 44.1 kHz test signal of --seconds is fed in blocks of --block samples, as from a sound
card. After every block the stream has returned ``returned`` of the ``received`` samples; the
latency is the largest ``received - returned`` over the stream (in ms at 44.1 kHz: how much
input must arrive after a sample before its stems come out, block granularity included), beside
its parts: the network's right context plus one hop (at the model's rate), and the post-filter's
n_fft - 1 samples when the model has one. Real-time factor = wall time of all process() and
flush() calls / duration. Also checks the streamed stems against separate_tensor on the whole
signal (max abs difference; exact only in float32). Models: registered names (the bundled
default with its post-filter) or presets with random weights (M4: the paper's model).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from wavesep import WaveUNet, presets
from wavesep.api import Separator
from wavesep.apply import resolve_precision
from wavesep.postfilter import N_FFT

RATE = 44100


def load(spec: str):
    if spec in presets.names():
        torch.manual_seed(0)
        model = WaveUNet(presets.get(spec)).eval()
        model.name = spec
        return model
    return spec


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", help="default: default and M4")
    p.add_argument("--hop", type=float, nargs="+", default=[0.25, 1.0], help="network hops (s)")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--block", type=int, default=1024, help="samples per process() call")
    p.add_argument("--precision", default="auto")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    mix = torch.randn(2, int(args.seconds * RATE), generator=gen) * 0.1  # (C, T)
    print(f"{args.seconds:g} s stereo {RATE} Hz in blocks of {args.block} samples "
          f"({1000 * args.block / RATE:.1f} ms), torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    print("| model | precision | hop (s) | latency (ms) | of which right context + hop (ms) | post-filter frame (ms) | "
          "real-time factor | CPU s per audio s | max abs difference to offline | load average |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for spec in args.model or ["default", "M4"]:
        sep = Separator(load(spec), device="cpu", precision=args.precision)
        model = sep.model
        offline = None
        for hop in args.hop:
            stream = sep.stream(RATE, 2, hop_seconds=hop)
            parts = {name: [] for name in stream.sources}
            latency = 0
            start, cpu = time.perf_counter(), time.process_time()
            for i in range(0, mix.shape[-1], args.block):
                for name, wav in stream.process(mix[:, i : i + args.block]).items():
                    parts[name].append(wav)
                latency = max(latency, stream.received - stream.returned)
            for name, wav in stream.flush().items():
                parts[name].append(wav)
            took, cpu = time.perf_counter() - start, time.process_time() - cpu
            if offline is None:
                offline = sep.separate_tensor(mix, RATE)
            diff = max(float((torch.cat(parts[k], dim=-1) - offline[k]).abs().max()) for k in offline)
            network_ms = 1000 * (model.context[1] + stream.hop) / model.sample_rate
            post_ms = 1000 * (N_FFT - 1) / RATE if sep.postfilter != "none" else 0.0
            precision = resolve_precision(sep.precision, sep.device) or "float32"
            print(f"| {spec} | {precision} | {stream.hop / model.sample_rate:.3f} | {1000 * latency / RATE:.0f} | "
                  f"{network_ms:.0f} | {post_ms:.0f} | {took / args.seconds:.3f} | {cpu / args.seconds:.3f} | {diff:.1e} | "
                  f"{os.getloadavg()[0]:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
