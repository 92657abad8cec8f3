"""Separation quality in bfloat16 against float32: the guard of `--precision auto`.

    python benchmarks/bench_precision.py                                   # realdev, if present
    python benchmarks/bench_precision.py --songs corpora/x/test --model default

Separates each track with the model (its post-filter included) twice, with ``precision="float32"``
and ``precision="bfloat16"`` (autocast), and scores both with BSS Eval v4
(:func:`wavesep.metrics.bss.bss_eval_v4`, museval's v4 metrics; references vocals and
accompaniment = mixture - vocals; per track the median over 1 s frames, silent frames left out).
Prints per track the vocals SDR of each and the difference, then the median and mean difference
and the largest drop. Tracks: every folder of --realdev holding mixture.flac and vocals.flac
(default ../shared/realdev, the project's real excerpts, read in place and never copied), and
every folder of --songs holding mixture.wav and vocals.wav (rendered songs, e.g. made by
``python -m wavesep.synth DIR --renderer sampled --tracks 0 --valid-tracks 0 --test-tracks 6
--seconds 30 --seed 0``, then --songs DIR/test). Also prints the CPU's bfloat16 flags. Prints
figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

from wavesep import audio
from wavesep.api import Separator
from wavesep.apply import _cpu_flags, native_bfloat16
from wavesep.metrics.bss import bss_eval_v4

HERE = Path(__file__).resolve().parent


def tracks(realdev: Path, songs) -> list:
    found = []
    if realdev and realdev.is_dir():
        for d in sorted(realdev.iterdir()):
            if (d / "mixture.flac").is_file() and (d / "vocals.flac").is_file():
                found.append((f"realdev/{d.name}", d / "mixture.flac", d / "vocals.flac"))
    if songs:
        for d in sorted(Path(songs).iterdir()):
            if (d / "mixture.wav").is_file() and (d / "vocals.wav").is_file():
                found.append((f"rendered/{d.name}", d / "mixture.wav", d / "vocals.wav"))
    return found


def vocals_sdr(mix: torch.Tensor, vocals: torch.Tensor, stems: dict, rate: int) -> float:
    refs = np.stack([vocals.T.numpy(), (mix - vocals).T.numpy()])  # (2, T, C)
    ests = np.stack([stems["vocals"].T.numpy(), stems["accompaniment"].T.numpy()])
    sdr, _, _, _ = bss_eval_v4(refs, ests, rate)
    return float(np.nanmedian(sdr[0]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default")
    p.add_argument("--realdev", type=Path, default=HERE.parent.parent / "shared" / "realdev")
    p.add_argument("--songs", help="folder of rendered songs (one folder per song)")
    args = p.parse_args(argv)
    flags = sorted({"avx512_bf16", "amx_bf16", "amx_tile"} & _cpu_flags())
    print(f"CPU bfloat16 flags: {', '.join(flags) or 'none'}; native bfloat16: {native_bfloat16('cpu')}; "
          f"torch threads {torch.get_num_threads()}; load average {os.getloadavg()[0]:.1f}")
    seps = {name: Separator(args.model, device="cpu", precision=name) for name in ("float32", "bfloat16")}
    print(f"model {args.model}, post-filter {seps['float32'].postfilter}")
    print("| track | vocals SDR float32 (dB) | vocals SDR bfloat16 (dB) | bfloat16 - float32 (dB) |")
    print("|---|---|---|---|")
    deltas = []
    for name, mix_path, vocals_path in tracks(args.realdev, args.songs):
        mix, rate = audio.read(mix_path)
        vocals, _ = audio.read(vocals_path)
        if vocals.shape[0] != mix.shape[0]:
            vocals = audio.convert_channels(vocals, mix.shape[0])
        sdr = {k: vocals_sdr(mix, vocals, sep.separate_tensor(mix, rate), rate) for k, sep in seps.items()}
        deltas.append(sdr["bfloat16"] - sdr["float32"])
        print(f"| {name} | {sdr['float32']:.3f} | {sdr['bfloat16']:.3f} | {deltas[-1]:+.3f} |", flush=True)
    if deltas:
        d = np.array(deltas)
        print(f"{len(d)} tracks: median difference {np.median(d):+.3f} dB, mean {d.mean():+.3f} dB, "
              f"largest drop {min(0.0, d.min()):+.3f} dB (guard: no drop beyond 0.05 dB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
