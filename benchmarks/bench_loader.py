"""Training-window throughput of wavesep.data against what CPU training consumes.

Builds a small corpus in a temporary folder (wavesep.synth when available, else noise stems in
the same MUSDB18-HQ layout: the loader's speed does not depend on the content), decodes it into
a fresh cache, then for the M4 input size (147443 samples) and the "small" preset prints:

- windows/s of ``TrainWindows[i]`` read straight from the memory-mapped cache,
- windows/s through a DataLoader (batch 16) with 0 and 2 worker processes (0 workers also with
  torch limited to 1 thread: on a busy machine the multi-threaded collate of torch can stall),
- windows/s one CPU training step consumes (forward + backward + Adam on a batch of 16 for
  "small"; for M4 a smaller batch, scaled per window),
- the ratio loader / training (target: at least 5x).

    python benchmarks/bench_loader.py
    python benchmarks/bench_loader.py --seconds 60 --tracks 6 --m4-batch 2
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from wavesep import WaveUNet, presets
from wavesep.data import build_datasets


def make_corpus(root: Path, tracks: int, seconds: float, seed: int = 0) -> str:
    """Writes the corpus; returns how it was made."""
    try:
        from wavesep.corpus import command as synth

        synth.build_corpus(root, tracks=tracks, seconds=seconds, seed=seed, valid_tracks=1, test_tracks=1)
        return "wavesep.synth"
    except ImportError:
        pass
    rng = np.random.default_rng(seed)
    names = [f"Bench - Track {k}" for k in range(tracks + 2)]
    splits = {"train": names[:tracks], "valid": [names[tracks]], "test": [names[tracks + 1]]}
    for subset, subset_names in splits.items():
        for name in subset_names:
            folder = root / ("test" if subset == "test" else "train") / name
            folder.mkdir(parents=True)
            n = int(44100 * seconds)
            stems = {s: (0.1 * rng.standard_normal((n, 2))).astype(np.float32) for s in ("bass", "drums", "other", "vocals")}
            for s, x in stems.items():
                sf.write(folder / f"{s}.wav", x, 44100, subtype="PCM_16")
            sf.write(folder / "mixture.wav", sum(stems.values()), 44100, subtype="PCM_16")
    (root / "splits.json").write_text(json.dumps(splits))
    return "noise stems (wavesep.synth not available)"


def direct_rate(dataset, count: int) -> float:
    for i in range(min(8, count)):  # first touches of the memory map
        dataset[i]
    start = time.perf_counter()
    for i in range(count):
        dataset[1000 + i]
    return count / (time.perf_counter() - start)


def loader_rate(dataset, workers: int, batches: int, batch_size: int = 16) -> float:
    sampler = range(10_000, 10_000 + (batches + 2) * batch_size)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers)
    it = iter(loader)
    next(it)  # worker start-up is a one-off cost of a run, not of each batch
    next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch_size / (time.perf_counter() - start)


def training_rate(model: WaveUNet, dataset, batch_size: int, steps: int) -> float:
    """Windows per second consumed by forward + backward + Adam on the CPU."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    mix = torch.stack([dataset[i][0] for i in range(batch_size)])  # (B, C, T_in)
    targets = torch.stack([dataset[i][1] for i in range(batch_size)])  # (B, S, C, T_out)

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(mix), targets)
        loss.backward()
        opt.step()

    step()  # warm-up (allocator, first-call overheads)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=4, help="training tracks")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds per track")
    parser.add_argument("--small-batch", type=int, default=16)
    parser.add_argument("--m4-batch", type=int, default=1, help="batch of the timed M4 step (scaled per window)")
    parser.add_argument("--steps", type=int, default=2, help="timed training steps")
    parser.add_argument("--batches", type=int, default=10, help="timed DataLoader batches of 16")
    args = parser.parse_args(argv)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "corpus"
        how = make_corpus(root, args.tracks, args.seconds)
        print(f"corpus: {args.tracks} training tracks of {args.seconds:g} s at 44.1 kHz stereo ({how})")
        rows = []
        for name in ("M4", "small"):
            model = WaveUNet(presets.get(name))
            start = time.perf_counter()
            train, _ = build_datasets("synthetic", root, "vocals", model, cache_dir=Path(tmp) / "cache", progress=False)
            build_s = time.perf_counter() - start
            direct = direct_rate(train, 200)
            loaders = {w: loader_rate(train, w, args.batches) for w in (0, 2)}
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            loaders["0/1t"] = loader_rate(train, 0, args.batches)
            torch.set_num_threads(threads)
            batch = args.m4_batch if name == "M4" else args.small_batch
            consume = training_rate(model, train, batch, args.steps)
            rows.append((name, train.window.input_samples, build_s, direct, loaders, consume, batch))
            print(f"  {name}: done", file=sys.stderr)

    print()
    print("| preset | input samples | build datasets (s) | direct (win/s) | DataLoader 0 workers "
          "(1 thread) | DataLoader 2 workers | training consumes (win/s) | loader / training |")
    print("|---|---|---|---|---|---|---|---|")
    for name, n_in, build_s, direct, loaders, consume, batch in rows:
        worst = min(loaders.values())
        print(f"| {name} | {n_in} | {build_s:.1f} | {direct:.0f} | {loaders[0]:.0f} ({loaders['0/1t']:.0f}) | "
              f"{loaders[2]:.0f} | {consume:.2f} (batch {batch}) | {worst / consume:.0f}x (slowest loader) |")
    print("\n'build datasets' for M4 includes decoding and resampling the corpus into the cache;")
    print("for small it is a cache hit (listing with musdb, which runs ffprobe on every track).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
