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
    return 0


if __name__ == "__main__":
    sys.exit(main())
