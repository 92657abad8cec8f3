"""Inference levers on real recordings: post-filters, test-time augmentation, input level.

    python benchmarks/bench_levers.py --stems ../shared/realdev --model default
    python benchmarks/bench_levers.py --stems DIR --model runs/x/best.pt --variants none ratio-mask swap

For each track of an own-stems folder (``vocals.*`` + ``accompaniment.*`` or MUSDB stems,
``mixture.*`` optional; the layout ``wavesep-evaluate --stems`` reads) and each variant, prints the
vocals SDR (BSS Eval v4, vocals against mixture - vocals, median over 1 s frames: the SiSEC
convention), the share of the true vocals' energy above 11.025 kHz that the estimate recovers
(:func:`wavesep.metrics.band.high_band_recovery`), and the real-time factor of the variant
(network passes + post-filter, on this machine, at its load). Prints figures; asserts nothing.

Variants (the network's estimates are computed once per input variant and shared):

- ``none``: the network alone; ``ratio-mask``: wavesep's post-filter (:mod:`wavesep.postfilter`);
- ``ratio-mask-fullband``: wavesep's "ratio-mask-fullband" post-filter
  (:func:`wavesep.postfilter.ratio_mask_fullband`): the ratio mask, and above the model's Nyquist
  frequency (where the network has no output) each frame's masks are their mean between 0.63 and
  0.95 of that frequency, weighted by the mixture's magnitude: a cheap path for the top band
  (called ``ratio-mask+hf`` while it was a prototype here);
- ``swap``: estimates averaged with those of the channel-swapped input, then the ratio mask;
- ``shifts4``: estimates averaged over 4 input delays of 0, 1/4, 1/2 and 3/4 of the model's stride
  (other decimation phases; Demucs's ``shifts``), then the ratio mask;
- ``wiener``: sigsep's ``norbert.wiener`` (1 iteration, STFT 4096) on the network's estimates,
  instead of the ratio mask (needs ``pip install norbert``);
- ``gain0.25`` / ``gain0.5`` / ``gain2``: the input scaled by 0.25 / 0.5 / 2 before the network (and the output back):
  how much the model depends on the input level (then the ratio mask).
- ``level-20``: the whole track brought to -20 dBFS RMS before the network (about the level of
  the rendered training songs) and the output back: input level normalisation;
- ``ensemble``: the estimates of ``--model`` and of each ``--ensemble`` model averaged, then the
  ratio mask (a bag of models, as Demucs ships; its cost is all their passes);
- ``cascade``: the network run again on the ratio-masked vocals estimate, its vocals ratio-masked
  against that estimate: a second pass to clean what the first let in;
- ``vocals-x2``: the vocals estimate doubled before the ratio mask (masks biased towards the
  vocals): a check of whether the network holds back vocals it has found (low ISR, high SIR).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

from wavesep import apply, pretrained
from wavesep.evaluation.tracks import _read_stems, stem_folder_tracks, target_stems
from wavesep.metrics.band import high_band_recovery
from wavesep.metrics.bss import bss_eval_v4
from wavesep.postfilter import ratio_mask, ratio_mask_fullband

VARIANTS = ("none", "ratio-mask", "ratio-mask-fullband", "swap", "shifts4", "wiener", "gain0.25", "gain0.5", "gain2",
            "level-20", "ensemble", "cascade", "vocals-x2")


def _stft(x: torch.Tensor, n_fft: int) -> torch.Tensor:  # (..., T) -> (..., F, N)
    return torch.stft(x, n_fft, n_fft // 4, window=torch.hann_window(n_fft), return_complex=True)


def wiener(mix: torch.Tensor, est: torch.Tensor) -> torch.Tensor:
    import norbert

    n_fft = 4096
    sources, channels, length = est.shape
    x = _stft(mix, n_fft).permute(2, 1, 0).numpy().astype(np.complex128)  # (N, F, C)
    v = _stft(est.reshape(-1, length), n_fft).reshape(sources, channels, n_fft // 2 + 1, -1)
    v = (v.abs() ** 2).permute(3, 2, 1, 0).numpy().astype(np.float64)  # (N, F, C, S)
    y = torch.from_numpy(norbert.wiener(v, x, iterations=1)).permute(3, 2, 1, 0)  # (S, C, F, N)
    return torch.stack([torch.istft(y[s].to(torch.complex64), n_fft, n_fft // 4,
                                    window=torch.hann_window(n_fft), length=length) for s in range(sources)])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stems", required=True, help="own-stems folder (e.g. ../shared/realdev)")
    p.add_argument("--model", default="default", help="registered name, checkpoint or run folder")
    p.add_argument("--variants", nargs="+", choices=VARIANTS,
                   help="default: all (ensemble only with --ensemble)")
    p.add_argument("--ensemble", nargs="+", default=[], metavar="MODEL",
                   help="more models for the ensemble variant (same sources and rate as --model)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = p.parse_args(argv)
    if args.variants is None:
        args.variants = [v for v in VARIANTS if v != "ensemble" or args.ensemble]
    if "ensemble" in args.variants and not args.ensemble:
        p.error("the ensemble variant needs --ensemble MODEL [MODEL ...]")
    torch.set_num_threads(args.threads)
    model = pretrained.get_model(args.model)
    others = [pretrained.get_model(m) for m in args.ensemble]
    for name, other in zip(args.ensemble, others):
        if other.sources != model.sources or other.sample_rate != model.sample_rate:
            p.error(f"--ensemble {name}: sources {other.sources} at {other.sample_rate} Hz, "
                    f"--model has {model.sources} at {model.sample_rate} Hz")
    vi = model.sources.index("vocals")
    print(f"model {args.model} ({model.sample_rate} Hz), {args.threads} thread(s), load {os.getloadavg()[0]:.1f}, "
          f"torch {torch.__version__}, {sys.platform}")
    table = {v: [] for v in args.variants}
    seconds = {v: 0.0 for v in args.variants}
    total_audio = 0.0
    tracks = stem_folder_tracks(args.stems)
    for track in tracks:
        stems, rate, mixture = _read_stems(track)
        vocals = sum(stems[s] for s in target_stems(track, "vocals"))  # (T, C)
        if mixture is None:
            mixture = sum(stems.values())
        mix = torch.from_numpy(np.ascontiguousarray(mixture.T)).float()  # (C, T)
        total_audio += mix.shape[-1] / rate
        cache, cost = {}, {}

        def net(key, gain=1.0, swap=False, shift=0, member=None):
            if key not in cache:
                t0 = time.perf_counter()
                x = mix * gain
                if swap:
                    x = x.flip(0)
                if shift:
                    x = torch.nn.functional.pad(x, (shift, 0))
                m = model if member is None else others[member]
                e = apply.separate(m, x, rate, postfilter="none", device="cpu")  # (S, C, T)
                e = e[..., shift:] if shift else e
                cache[key] = (e.flip(1) if swap else e) / gain
                cost[key] = time.perf_counter() - t0
            return cache[key]

        stride = model.stride * rate // model.sample_rate
        for var in args.variants:
            if var == "swap":
                inputs = {"base": {}, "swap": {"swap": True}}
            elif var == "shifts4":
                inputs = {"base": {}, **{f"shift{k}": {"shift": k * stride // 4} for k in (1, 2, 3)}}
            elif var == "ensemble":
                inputs = {"base": {}, **{f"member{k}": {"member": k} for k in range(len(others))}}
            elif var.startswith("gain"):
                inputs = {var: {"gain": float(var[4:])}}
            elif var.startswith("level"):  # the whole track brought to this RMS level (dBFS) and back
                rms = float(mix.pow(2).mean().sqrt())
                inputs = {var: {"gain": 10 ** (float(var[5:]) / 20) / max(rms, 1e-9)}}
            else:
                inputs = {"base": {}}
            ests = {k: net(k, **kw) for k, kw in inputs.items()}  # computed once, timed in net()
            t0 = time.perf_counter()
            if var == "none":
                e = ests["base"]
            elif var == "ratio-mask-fullband":
                e = ratio_mask_fullband(mix, ests["base"], rate, model.sample_rate)
            elif var == "wiener":
                e = wiener(mix, ests["base"])
            elif var == "cascade":
                first = ratio_mask(mix, ests["base"])[vi]  # (C, T)
                again = apply.separate(model, first, rate, postfilter="none", device="cpu")  # timed with the variant
                e = torch.zeros_like(ests["base"])
                e[vi] = ratio_mask(first, again)[vi]
            elif var == "vocals-x2":
                biased = ests["base"].clone()
                biased[vi] *= 2.0
                e = ratio_mask(mix, biased)
            else:  # ratio-mask, swap, shifts4, ensemble, gains: the mean of the estimates, then the ratio mask
                e = ratio_mask(mix, sum(ests.values()) / len(ests))
            # a variant's cost: all its network passes, plus its own post-processing
            seconds[var] += sum(cost[k] for k in inputs) + time.perf_counter() - t0
            est_v = e[vi].numpy().T.astype(np.float64)  # (T, C)
            refs = np.stack([vocals, mixture - vocals])
            ests = np.stack([est_v, mixture - est_v])
            sdr = bss_eval_v4(refs, ests, rate)[0][0]
            band = high_band_recovery(vocals.T, est_v.T, rate)
            table[var].append((float(np.nanmedian(sdr)), band["recovered"]))
        print(f"  {track.name}: " + ", ".join(f"{v} {table[v][-1][0]:.2f}" for v in args.variants), flush=True)
    names = [t.name[:16] for t in tracks]
    print("\nvocals SDR (dB, median over 1 s frames) per track, mean; HF rec. = mean share of the true vocals' "
          "energy above 11.025 kHz recovered; RTF = seconds per second of audio")
    print(f"{'variant':20s} " + " ".join(f"{n:>16s}" for n in names) + f" {'mean':>7s} {'HF rec.':>8s} {'RTF':>6s}")
    for var in args.variants:
        sdrs = [r[0] for r in table[var]]
        hf = np.nanmean([r[1] for r in table[var]])
        print(f"{var:20s} " + " ".join(f"{x:16.2f}" for x in sdrs) + f" {np.mean(sdrs):7.3f} {hf:8.3f} "
              f"{seconds[var] / total_audio:6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
