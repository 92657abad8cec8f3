"""Widening a trained network: how far each way of filling the new channels starts from the
trained function, and how far training has opened them.

    python benchmarks/bench_grow.py --model default --preset deep24
    python benchmarks/bench_grow.py --model default --preset deep24 --opened runs/w24strm-e1.pt runs/w24dup-e1.pt

First table: the trained model (``--model``) widened to ``--preset`` by ``wavesep.grow.init_from``
with ``widen="zero"`` and with ``widen="duplicate"`` at several noise levels; for each, the change
of the output on the first ``--seconds`` of the bundled demo song (resampled to the model's rate),
as dB of the trained model's output energy (-inf: the same function). Second table (``--opened``:
checkpoints of runs widened from ``--model``): for convolutions that read one trained feature
tensor (the down blocks, the bottleneck), the RMS of the weights from the new input channels into
the trained output channels against the RMS of the trained block. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from wavesep import audio, pretrained  # noqa: E402
from wavesep.grow import init_from  # noqa: E402
from wavesep.model import WaveUNet, presets  # noqa: E402

DEMO = os.path.join(os.path.dirname(__file__), "..", "wavesep", "resources", "demo.flac")


def _db(num: torch.Tensor, den: torch.Tensor) -> float:
    return float(10 * torch.log10(num / den)) if num > 0 else float("-inf")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="default", help="registered name or checkpoint of the trained network")
    p.add_argument("--preset", default="deep24", help="the wider preset")
    p.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.01, 0.05, 0.1, 0.2])
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--opened", nargs="*", default=[], help="checkpoints of widened runs")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    source = pretrained.get_model(args.model)
    source.eval()
    rate = source.config.sample_rate
    mix, _ = audio.read(DEMO, sample_rate=rate, channels=source.config.channels)  # (C, T)
    n = source.input_length(int(args.seconds * rate))
    mix = mix[None, :, :n]  # (1, C, n)
    with torch.no_grad():
        reference = source(mix)  # (1, S, C, T_out)
        energy = reference.pow(2).sum()
        print(f"{args.model} widened to {args.preset}: output change on {args.seconds:g} s of the demo, "
              "dB of the trained output's energy")
        print(f"{'widen':10s} {'noise':>6s} {'change dB':>10s}")
        rows = [("zero", 0.0)] + [("duplicate", x) for x in args.noise]
        for widen, noise in rows:
            torch.manual_seed(0)
            wide = WaveUNet(presets.get(args.preset))
            init_from(wide, source, widen=widen, noise=noise, seed=0)
            change = (wide.eval()(mix) - reference).pow(2).sum()
            print(f"{widen:10s} {noise:6.2f} {_db(change, energy):10.1f}")

    if args.opened:
        state = source.state_dict()
        names = [f"downs.{i}.conv.weight" for i in range(1, source.config.levels)] + ["bottleneck.weight"]
        print("\nRMS of weights new -> trained channels (trained block's RMS), per convolution")
        print(f"{'checkpoint':32s} " + " ".join(f"{'bottleneck' if k.startswith('b') else 'down' + k.split('.')[1]:>16s}" for k in names))
        for path in args.opened:
            wide = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
            cells = []
            for k in names:
                out, inp = state[k].shape[:2]
                w = wide[k]
                cells.append(f"{w[:out, inp:].pow(2).mean().sqrt():.4f} ({w[:out, :inp].pow(2).mean().sqrt():.3f})")
            print(f"{os.path.basename(path):32s} " + " ".join(f"{c:>16s}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
