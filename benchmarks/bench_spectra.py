"""Spectral balance of vocals: real stems against the rendered corpus, and what a model recovers.

    python benchmarks/bench_spectra.py --stems ../shared/realdev --corpus corpora/sampled10h --tracks 24
    python benchmarks/bench_spectra.py --stems ../shared/realdev --width
    python benchmarks/bench_spectra.py --stems ../shared/realdev --model default-v1
    python benchmarks/bench_spectra.py --solo ../shared/realdev/solo-singing/vocadito_1.flac --model default-v1

Without ``--model``: for the vocals of each track of an own-stems folder (``vocals.*``; the
layout ``wavesep-evaluate --stems`` reads) and of the first ``--tracks`` training songs of a
rendered corpus (with the singing method its ``meta/<song>.json`` names), the share of the
vocals' energy in each band (dB relative to their total). With ``--model``: for each track of
the folder, the energy of the model's vocals estimate (post-filter ``ratio-mask``) relative to
the true vocals' in each band, and the error's (estimate - truth) relative to the truth: where
the estimate is 10 dB below the truth and the error near 0 dB, the model leaves that band of the
voice in the accompaniment. With ``--solo FILE`` (real unaccompanied singing) and ``--model``:
the share of the voice's energy, in all and per band, that the model returns as vocals, with the
input scaled by each of ``--gains`` (a solo voice is all vocals: 0 dB everywhere is perfect).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import glob
import json
import os

import numpy as np
import soundfile as sf

EDGES = (0, 200, 500, 1000, 2000, 4000, 8000, 11025)


def band_energy(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Energy of (T, C) audio in each band of EDGES (Hz), shape (len(EDGES) - 1,)."""
    spec = np.abs(np.fft.rfft(x, axis=0)) ** 2
    freqs = np.fft.rfftfreq(x.shape[0], 1.0 / sample_rate)
    return np.array([spec[(freqs >= lo) & (freqs < hi)].sum() for lo, hi in zip(EDGES[:-1], EDGES[1:])])


def _db(x):
    return np.round(10 * np.log10(np.maximum(x, 1e-30)), 1)


def _method(meta_path: str) -> str:
    if not os.path.exists(meta_path):
        return "?"
    text = open(meta_path).read().lower()
    return ",".join(m for m in ("sinsy", "espeak", "festival", "choir") if m in text) or "?"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stems", help="own-stems folder with true vocals (e.g. ../shared/realdev)")
    p.add_argument("--solo", help="a recording of unaccompanied singing (with --model)")
    p.add_argument("--gains", type=float, nargs="+", default=[1.0, 4.0], help="input gains for --solo")
    p.add_argument("--corpus", help="rendered corpus to compare with (python -m wavesep.synth)")
    p.add_argument("--tracks", type=int, default=24, help="rendered training songs to read (default 24)")
    p.add_argument("--model", help="score a model's vocals estimate per band instead")
    p.add_argument("--width", action="store_true", help="print the vocals' stereo width instead: channel "
                   "correlation and side/mid energy (dB) per track")
    args = p.parse_args(argv)
    if args.solo:
        if not args.model:
            p.error("--solo needs --model")
        return _solo(args)
    if not args.stems:
        p.error("give --stems (or --solo with --model)")
    folders = sorted(d for d in glob.glob(os.path.join(args.stems, "*")) if glob.glob(os.path.join(d, "vocals.*")))
    if args.width:
        return _width(folders, args.tracks)
    print("bands (Hz):", " ".join(f"{lo}-{hi}" for lo, hi in zip(EDGES[:-1], EDGES[1:])))
    if args.model:
        import torch

        from wavesep.api import Separator

        torch.set_num_threads(1)
        sep = Separator(args.model, postfilter="ratio-mask")
        print(f"{args.model}: estimate / truth (dB) per band | error / truth (dB) per band")
        for d in folders:
            vocals, rate = sf.read(glob.glob(os.path.join(d, "vocals.*"))[0], always_2d=True, dtype="float32")
            mixture, _ = sf.read(glob.glob(os.path.join(d, "mixture.*"))[0], always_2d=True, dtype="float32")
            est = sep.separate_tensor(torch.from_numpy(np.ascontiguousarray(mixture.T)), rate)["vocals"].numpy().T
            truth = band_energy(vocals, rate)
            print(f"  {os.path.basename(d)[:28]:28s} {_db(band_energy(est, rate) / truth)} | "
                  f"{_db(band_energy(est - vocals, rate) / truth)}")
        return 0
    print("real vocals: band share of their energy (dB)")
    for d in folders:
        x, rate = sf.read(glob.glob(os.path.join(d, "vocals.*"))[0], always_2d=True)
        e = band_energy(x, rate)
        print(f"  {os.path.basename(d)[:28]:28s} {_db(e / e.sum())}")
    if args.corpus:
        names = json.load(open(os.path.join(args.corpus, "splits.json")))["train"][: args.tracks]
        shares = []
        print("rendered vocals: band share of their energy (dB), singing method")
        for name in names:
            path = os.path.join(args.corpus, "train", name, "vocals.wav")
            x, rate = sf.read(path, always_2d=True)
            e = band_energy(x, rate)
            if e.sum() <= 0:
                continue
            shares.append(e / e.sum())
            print(f"  {name[-16:]:28s} {_db(e / e.sum())} {_method(os.path.join(args.corpus, 'meta', name + '.json'))}")
        print(f"  {'median over songs':28s} {_db(np.median(np.array(shares), axis=0))}")
    return 0


def stereo_width(x: np.ndarray) -> tuple:
    """(channel correlation, side/mid energy in dB) of a (T, 2) signal; (1.0, -inf) for mono."""
    if x.ndim == 1 or x.shape[1] == 1:
        return 1.0, -np.inf
    left, right = x[:, 0].astype(np.float64), x[:, 1].astype(np.float64)
    corr = float(np.corrcoef(left, right)[0, 1])
    side, mid = np.sum((left - right) ** 2), np.sum((left + right) ** 2)
    return corr, float(10 * np.log10(side / mid)) if side > 0 else -np.inf


def _width(folders, limit: int) -> int:
    print("vocals' stereo width: channel correlation, side/mid energy (dB)")
    for d in folders[:limit]:
        x, _ = sf.read(glob.glob(os.path.join(d, "vocals.*"))[0], always_2d=True)
        corr, side = stereo_width(x)
        print(f"  {os.path.basename(d)[:28]:28s} {corr:6.3f} {side:7.1f}")
    return 0


def _solo(args) -> int:
    import torch

    from wavesep.api import Separator

    torch.set_num_threads(1)
    sep = Separator(args.model, postfilter="ratio-mask")
    voice, rate = sf.read(args.solo, always_2d=True, dtype="float32")
    level = 20 * np.log10(np.sqrt(np.mean(voice.astype(np.float64) ** 2)))
    print("bands (Hz):", " ".join(f"{lo}-{hi}" for lo, hi in zip(EDGES[:-1], EDGES[1:])))
    print(f"{args.model} on {os.path.basename(args.solo)} ({voice.shape[0] / rate:.1f} s, {level:.1f} dBFS RMS): "
          "energy returned as vocals / the voice's (dB), in all and per band")
    for gain in args.gains:
        x = voice * gain
        est = sep.separate_tensor(torch.from_numpy(np.ascontiguousarray(x.T)), rate)["vocals"].numpy().T
        total = np.sum(est.astype(np.float64) ** 2) / np.sum(x.astype(np.float64) ** 2)
        print(f"  input x {gain:g} ({level + 20 * np.log10(gain):.1f} dBFS): all {_db(total)}, per band "
              f"{_db(band_energy(est, rate) / band_energy(x, rate))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
