"""Training figures on this machine: throughput, and an end-to-end synthetic run scored by museval.

``throughput`` (the default): builds a small synthetic corpus (wavesep.synth) in a temporary
folder, builds the real datasets (wavesep.data, output window 16384 samples as in the paper) and
runs wavesep.train.train for a few warm-up iterations, then resumes it for the measured ones.
Prints per preset and DataLoader worker count: global training windows per second, seconds per
iteration, and the share of iteration time spent waiting for the next batch (target < 10%).

    python benchmarks/bench_train.py
    python benchmarks/bench_train.py throughput --presets small M4 --workers 0 2 --steps 6
    python benchmarks/bench_train.py throughput --presets deep --workers 0 --output-samples 32768 \
        --losses mse mse+stft sdr --steps 3 --threads 1      # the cost of each training loss

``synthetic``: the whole path on the CPU: render a corpus, train a small preset for a fixed
time budget (``train.py`` with ``--max-minutes``), separate the held-out test tracks with
wavesep.apply and score them with museval (BSS Eval v4, 1 s windows; per track the median over
windows, then the median over tracks), next to the mixture-as-estimate baseline.

    python benchmarks/bench_train.py synthetic --out runs/bench-synth --minutes 12
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from wavesep import WaveUNet, presets
from wavesep.training import TrainConfig, train
from wavesep.training.config import LOSSES


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def _corpus(root: Path, tracks: int, valid: int, test: int, seconds: float, seed: int = 0) -> float:
    from wavesep.corpus import command as synth

    t0 = time.perf_counter()
    synth.build_corpus(root, tracks=tracks, seconds=seconds, seed=seed, valid_tracks=valid, test_tracks=test,
                       progress=False)
    return time.perf_counter() - t0


# ---------------------------------------------------------------------- throughput


def throughput(args) -> None:
    from wavesep.data import build_datasets

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        seconds = _corpus(tmp / "corpus", args.tracks, 1, 0, args.seconds)
        print(f"corpus: {args.tracks} + 1 tracks of {args.seconds:g} s in {seconds:.0f} s; torch threads "
              f"{torch.get_num_threads()}; {_load()}")
        print("| preset | input -> output (samples) | batch | workers | loss | windows/s | s/iteration | data wait |")
        print("|---|---|---|---|---|---|---|---|")
        for name in args.presets:
            torch.manual_seed(0)
            model = WaveUNet(presets.get(name))
            batch = args.m4_batch if name.startswith("M") else args.batch
            steps = args.m4_steps if name.startswith("M") else args.steps
            sizes = {"output_samples": args.output_samples} if args.output_samples else {}
            train_set, valid_set = build_datasets("synthetic", tmp / "corpus", "vocals", model,
                                                  cache_dir=tmp / "cache", valid_windows=1, progress=False, **sizes)
            n_in = train_set.window.input_samples
            for workers, loss in ((w, l) for w in args.workers for l in args.losses):
                run = tmp / f"run-{name}-{workers}-{loss}"
                common = dict(batch_size=batch, epoch_iterations=10**9, finetune=False, workers=workers,
                              progress=False, verbose=False, tensorboard=False, loss=loss)
                # warm-up (allocator, oneDNN primitives), then the measured iterations in a resumed run
                train(model, train_set, valid_set, run, TrainConfig(max_steps=1, **common))
                result = train(model, train_set, valid_set, run, TrainConfig(max_steps=1 + steps, **common),
                               resume=True)
                print(f"| {name} | {n_in} -> {model.output_length(n_in)} | {batch} | {workers} | {loss} | "
                      f"{result.windows_per_second:.2f} | {result.step_seconds:.3f} | "
                      f"{100 * result.data_wait_share:.1f}% |", flush=True)
        print(f"after: {_load()}")


# ---------------------------------------------------------------------- end to end


def _score_tracks(model, corpus: Path, names: list) -> dict:
    """museval v4 medians over 1 s windows of each test track, for the model and the mixture."""
    import museval

    from wavesep import apply, audio

    per_track = {"model": [], "mixture": []}
    for name in names:
        folder = corpus / "test" / name
        mix, rate = audio.read(folder / "mixture.wav")  # (C, T)
        vocals, _ = audio.read(folder / "vocals.wav")
        accompaniment = sum(audio.read(folder / f"{s}.wav")[0] for s in ("bass", "drums", "other"))
        with torch.no_grad():
            est = apply.separate(model, mix, rate, device="cpu")  # (S, C, T): accompaniment, vocals
        order = [model.sources.index("vocals"), model.sources.index("accompaniment")]
        refs = torch.stack([vocals, accompaniment]).transpose(1, 2).numpy().astype(np.float64)  # (2, T, C)
        for key, estimates in (("model", est[order]), ("mixture", torch.stack([mix, mix]))):
            sdr, _, _, _ = museval.evaluate(refs, estimates.transpose(1, 2).numpy().astype(np.float64),
                                            win=rate, hop=rate, mode="v4")
            per_track[key].append([float(np.nanmedian(sdr[0])), float(np.nanmedian(sdr[1]))])
    return {k: np.array(v) for k, v in per_track.items()}


def synthetic(args) -> None:
    from wavesep import load_model
    from wavesep import training as wtrain

    out = Path(args.out)
    corpus = out / "corpus"
    print(f"start: {_load()}", flush=True)
    t_corpus = _corpus(corpus, args.tracks, args.valid_tracks, args.test_tracks, args.seconds, args.seed)
    print(f"corpus: {args.tracks} train + {args.valid_tracks} valid + {args.test_tracks} test tracks of "
          f"{args.seconds:g} s in {t_corpus:.0f} s", flush=True)
    run = out / "run"
    argv = ["--preset", args.preset, "--synthetic", str(corpus), "--task", "vocals",
            "--batch-size", str(args.batch_size), "--lr", str(args.lr), "--epoch-iterations", str(args.epoch_iterations),
            "--patience", str(args.patience), "--finetune-batch-size", str(2 * args.batch_size),
            "--finetune-lr", str(args.lr / 10), "--max-minutes", str(args.minutes), "--workers", str(args.workers),
            "--valid-windows", str(args.valid_windows), "--cache-dir", str(out / "cache"), "--seed", str(args.seed),
            "--device", "cpu"]
    if args.threads:
        argv += ["--threads", str(args.threads)]
    argv += ["--resume", str(run)] if (run / "last.pt").exists() else ["--out", str(run)]
    t0 = time.perf_counter()
    code = wtrain.main(argv)
    t_train = time.perf_counter() - t0
    history = [json.loads(line) for line in (run / wtrain.HISTORY_NAME).read_text().splitlines()]
    epochs = [r for r in history if r["type"] == "epoch"]
    print(f"training: exit code {code}, {t_train / 60:.1f} min, {epochs[-1]['step'] if epochs else 0} iterations, "
          f"{len(epochs)} epochs; best valid loss {min(r['valid_loss'] for r in epochs):.5f}; {_load()}", flush=True)
    model = load_model(run).eval()
    names = json.loads((corpus / "splits.json").read_text())["test"]
    t0 = time.perf_counter()
    scores = _score_tracks(model, corpus, names)
    t_eval = time.perf_counter() - t0
    med = {k: np.median(v, axis=0) for k, v in scores.items()}
    print(f"museval v4 on {len(names)} held-out synthetic test tracks ({t_eval:.0f} s), median over tracks of "
          "the per-track median over 1 s windows, SDR in dB:")
    print("| estimate | vocals | accompaniment |")
    print("|---|---|---|")
    print(f"| {args.preset} ({t_train / 60:.1f} min CPU training) | {med['model'][0]:.2f} | {med['model'][1]:.2f} |")
    print(f"| mixture as estimate | {med['mixture'][0]:.2f} | {med['mixture'][1]:.2f} |")
    print(f"vocals: {med['model'][0] - med['mixture'][0]:+.2f} dB over the mixture baseline "
          f"(target: at least +6 dB); end: {_load()}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode")
    tp = sub.add_parser("throughput", help="windows/s, s/iteration and data wait per preset")
    tp.add_argument("--presets", nargs="+", default=["tiny", "small", "wide", "M4"])
    tp.add_argument("--workers", nargs="+", type=int, default=[0, 2])
    tp.add_argument("--batch", type=int, default=16, help="batch of the small presets (paper: 16)")
    tp.add_argument("--m4-batch", type=int, default=2, help="batch of the paper presets (memory and time)")
    tp.add_argument("--steps", type=int, default=8, help="measured iterations, small presets")
    tp.add_argument("--m4-steps", type=int, default=2, help="measured iterations, paper presets")
    tp.add_argument("--tracks", type=int, default=4)
    tp.add_argument("--seconds", type=float, default=20.0)
    tp.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    tp.add_argument("--losses", nargs="+", default=["mse"], choices=LOSSES, help="training losses to time (mse)")
    tp.add_argument("--output-samples", type=int, default=None, help="output window (default 16384, the paper's)")
    sy = sub.add_parser("synthetic", help="train on a synthetic corpus, score with museval")
    sy.add_argument("--out", default="runs/bench-synth", help="folder for the corpus, cache and run")
    sy.add_argument("--preset", default="small")
    sy.add_argument("--minutes", type=float, default=12.0, help="training budget")
    sy.add_argument("--tracks", type=int, default=24)
    sy.add_argument("--valid-tracks", type=int, default=3)
    sy.add_argument("--test-tracks", type=int, default=8)
    sy.add_argument("--seconds", type=float, default=20.0)
    sy.add_argument("--batch-size", type=int, default=8)
    sy.add_argument("--lr", type=float, default=5e-4)
    sy.add_argument("--epoch-iterations", type=int, default=25)
    sy.add_argument("--patience", type=int, default=5)
    sy.add_argument("--valid-windows", type=int, default=24)
    sy.add_argument("--workers", type=int, default=1)
    sy.add_argument("--seed", type=int, default=0)
    sy.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("throughput", "synthetic", "-h", "--help"):
        argv.insert(0, "throughput")
    args = parser.parse_args(argv)
    (synthetic if args.mode == "synthetic" else throughput)(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
