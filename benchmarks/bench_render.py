"""Cost of training on songs rendered on the fly (``train.py --render``), against a training step.

    python benchmarks/bench_render.py
    python benchmarks/bench_render.py --renderer oscillator --songs 4 --train-steps 0

Prints, for ``--songs`` songs of ``--seconds`` seconds at the preset's rate:

- the CPU seconds and wall seconds to render one song (``wavesep.corpus.command.SongStream``),
  and how many times faster than real time that is;
- windows per second of ``RenderedWindows`` read in training order (rendering included; each
  song serves ``--windows-per-song`` windows) and of the same windows once the songs are in memory;
- with ``--train-steps N``: the seconds of one training step of the preset (forward, backward,
  Adam) at ``--batch`` windows, and the share of it that rendering the songs of one batch costs.

With ``--corpus ROOT --model MODEL``, also: do the streamed songs sound like the corpus to a
model? For ``--windows`` windows each (no augmentation, one window per streamed song; the corpus's
windows drawn like training windows from its training and its validation songs) it prints the
mixture's RMS level and the model's vocals SNR pooled over the windows.

    python benchmarks/bench_render.py --songs 2 --train-steps 0 --corpus corpora/sampled10h --model runs/default-v1.pt --windows 160

Renderers need their dependencies (``sampled``: FluidSynth, MMA, music21 and the singers); figures
depend on the machine and its load (run it on an idle machine, or say the load beside them).
"""

import argparse
import os
import sys
import time

import torch


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--renderer", default="sampled")
    p.add_argument("--songs", type=int, default=6)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--preset", default="deep")
    p.add_argument("--output-samples", type=int, default=32768)
    p.add_argument("--windows-per-song", type=int, default=16)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--train-steps", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--corpus", metavar="ROOT", help="a corpus made by the same renderer, to compare with")
    p.add_argument("--model", help="with --corpus: the model that listens (name or checkpoint)")
    p.add_argument("--windows", type=int, default=160, help="with --corpus: windows per set")
    p.add_argument("--cache-dtype", default="float16", help="with --corpus: its decode cache's dtype")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from wavesep import WaveUNet, presets
    from wavesep.corpus.command import SongStream
    from wavesep.data import SONG_STEMS, RenderedWindows, WindowSpec

    model = WaveUNet(presets.get(args.preset))
    stream = SongStream(args.renderer, seed=0, seconds=args.seconds, sample_rate=model.sample_rate)
    cpu, wall = [], []
    for k in range(args.songs):
        c0, w0 = time.process_time(), time.perf_counter()
        stream(k)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    per_song = sum(cpu) / len(cpu)
    print(f"{args.renderer} songs of {args.seconds:g} s at {model.sample_rate} Hz ({args.songs} songs, "
          f"load average {os.getloadavg()[0]:.1f}): {per_song:.2f} CPU s per song ({min(cpu):.2f}-{max(cpu):.2f}), "
          f"{sum(wall) / len(wall):.2f} s wall; {args.seconds / per_song:.1f}x real time per core")

    window = WindowSpec.from_model(model, args.output_samples)
    ds = RenderedWindows(stream, SONG_STEMS, model.sources, window, model.sample_rate, model.channels,
                         seed=0, augment=True, songs_at_once=min(8, args.songs),
                         windows_per_song=args.windows_per_song)
    count = min(8, args.songs) * args.windows_per_song
    t0 = time.perf_counter()
    for i in range(count):
        ds[i]
    first = count / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in range(count):
        ds[i]
    again = count / (time.perf_counter() - t0)
    print(f"RenderedWindows ({args.preset}, input {window.input_samples} samples, {args.windows_per_song} windows "
          f"per song): {first:.1f} windows/s rendering included, {again:.0f} windows/s with the songs in memory")

    if args.train_steps > 0:
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-5)
        batch = [ds[i] for i in range(args.batch)]
        mix = torch.stack([b[0] for b in batch])
        targets = torch.stack([b[1] for b in batch])
        times = []
        for _ in range(args.train_steps + 1):
            t0 = time.perf_counter()
            optimiser.zero_grad()
            loss = torch.nn.functional.mse_loss(model(mix), targets)
            loss.backward()
            optimiser.step()
            times.append(time.perf_counter() - t0)
        step = sum(times[1:]) / len(times[1:])  # the first step warms up
        render = per_song * args.batch / args.windows_per_song
        print(f"training step ({args.preset}, batch {args.batch}, {args.threads} thread(s)): {step:.2f} s; rendering "
              f"the songs of one batch: {render:.2f} CPU s = {100 * render / step:.0f}% of a step")
    if args.corpus:
        compare_with_corpus(args)
    return 0


def compare_with_corpus(args) -> None:
    import numpy as np

    from wavesep import load_model
    from wavesep.corpus.command import SongStream
    from wavesep.data import SONG_STEMS, AugmentConfig, RenderedWindows, TrainWindows, WindowSpec, build_datasets

    model = load_model(args.model).eval()
    window = WindowSpec.from_model(model, args.output_samples)
    plain = AugmentConfig(gain=False, channel_swap=False, sign_flip=False)
    train, valid = build_datasets("synthetic", args.corpus, "vocals", model, seed=11, augment=plain,
                                  output_samples=args.output_samples, cache_dtype=args.cache_dtype, progress=False)
    sets = {
        "corpus training songs": train,
        "corpus validation songs": TrainWindows(valid.cached_tracks, model.sources, window, seed=11, augment=plain),
        "streamed songs": RenderedWindows(SongStream(args.renderer, 7, args.seconds, model.sample_rate), SONG_STEMS,
                                          model.sources, window, model.sample_rate, model.channels, seed=11,
                                          augment=plain, songs_at_once=8, windows_per_song=1),
    }
    vocals = list(model.sources).index("vocals")
    print(f"{args.windows} windows per set, {args.model} listening (load average {os.getloadavg()[0]:.1f}):")
    for name, ds in sets.items():
        mix_power, err, ref = 0.0, 0.0, 0.0
        with torch.no_grad():
            for i in range(args.windows):
                mix, targets = ds[i]  # (C, T_in), (S, C, T_out)
                estimate = model(mix[None])[0]
                mix_power += float((mix.double() ** 2).mean())
                err += float(((estimate[vocals] - targets[vocals]).double() ** 2).sum())
                ref += float((targets[vocals].double() ** 2).sum())
        print(f"  {name:24s} mixture RMS {10 * np.log10(mix_power / args.windows):6.1f} dBFS   "
              f"vocals SNR (pooled) {10 * np.log10(ref / err):5.2f} dB")


if __name__ == "__main__":
    sys.exit(main())
