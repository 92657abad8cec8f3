"""Rendering speed of the synthetic corpus, in seconds of audio per wall-clock second.

Single process, one song at a time (target: at least 20x real time on one core). Prints, per
song and in total:

- render: ``render()`` of the chosen renderer alone (44.1 kHz stereo, four stems),
- track: the whole path of one corpus track (render, headroom, 16-bit quantisation, five wav
  files written into a temporary folder and renamed into place),

each as wall-clock and as CPU-time real-time factors (on a busy machine the CPU figure is the
one that says what the code costs).

    python benchmarks/bench_synth.py
    python benchmarks/bench_synth.py --songs 3 --seconds 60 --renderer sampled
"""

import argparse
import tempfile
import time
from pathlib import Path

from wavesep.corpus import command as synth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--renderer", default="oscillator", choices=sorted(synth.RENDERERS))
    parser.add_argument("--sample-rate", type=int, default=44100)
    args = parser.parse_args()

    module = synth.load_renderer(args.renderer)
    module.render("warm-up", "train", 0, 1.0, args.sample_rate)  # imports, caches, page faults
    print(f"renderer {args.renderer}, {args.songs} songs of {args.seconds:g} s at "
          f"{args.sample_rate} Hz, one process")
    totals = {"render": [0.0, 0.0], "track": [0.0, 0.0]}
    with tempfile.TemporaryDirectory() as tmp:
        root = synth._prepare_folder(Path(tmp) / "corpus")
        for index in range(args.songs):
            seed = synth.track_seed(0, "train", index)
            wall, cpu = time.perf_counter(), time.process_time()
            module.render(f"bench-{index}", "train", seed, args.seconds, args.sample_rate)
            render_times = (time.perf_counter() - wall, time.process_time() - cpu)
            job = {"root": str(root), "name": synth.track_name(args.renderer, 0, "train", index),
                   "split": "train", "subset": "train", "index": index, "track_seed": seed,
                   "renderer": args.renderer, "corpus_seed": 0, "seconds": args.seconds,
                   "sample_rate": args.sample_rate, "format": "PCM_16"}
            wall, cpu = time.perf_counter(), time.process_time()
            synth.render_track(job)
            track_times = (time.perf_counter() - wall, time.process_time() - cpu)
            for key, (w, c) in (("render", render_times), ("track", track_times)):
                totals[key][0] += w
                totals[key][1] += c
            print(f"  song {index}: render {args.seconds / render_times[0]:6.1f}x wall "
                  f"{args.seconds / render_times[1]:6.1f}x cpu | track "
                  f"{args.seconds / track_times[0]:6.1f}x wall "
                  f"{args.seconds / track_times[1]:6.1f}x cpu")
    audio = args.songs * args.seconds
    for key, (w, c) in totals.items():
        print(f"{key:6s}: {audio / w:6.1f} s of audio per wall second, "
              f"{audio / c:6.1f} per CPU second")


if __name__ == "__main__":
    main()
