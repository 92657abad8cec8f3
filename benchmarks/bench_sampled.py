"""Speed and variety of the sampled renderer (wavesep.corpus.sampled).

Speed: renders songs with each singing method forced and prints the real-time factor
(seconds of audio per second of wall time and per second of CPU time, the CPU time
including child processes: mma, festival, espeak-ng). Target: at least 5x real time per core.

Variety: with --stats ROOT, prints the statistics of a corpus built by
``python -m wavesep.synth ROOT --renderer sampled ...`` (songs, minutes, distinct pieces,
programs, voices, vocal activity, stem RMS ranges).

    python benchmarks/bench_sampled.py                 # 3 songs x 30 s per method
    python benchmarks/bench_sampled.py --songs 5 --seconds 60
    python benchmarks/bench_sampled.py --stats /data/sampled_corpus
"""

import argparse
import json
import os
import platform
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from wavesep.corpus import sampled, singing  # noqa: E402


def _cpu_seconds() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def bench_speed(songs: int, seconds: float, sample_rate: int) -> None:
    sampled.check_dependencies()
    # warm-up: imports, corpus index, groove list (paid once per worker process)
    t0 = time.perf_counter()
    sampled.render("warmup", "train", 0, 5.0, sample_rate)
    print(f"warm-up (imports, indexes, first 5 s song): {time.perf_counter() - t0:.1f} s")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"songs of {seconds:.0f} s at {sample_rate} Hz, {songs} per method")
    print(f"{'method':<14}{'song x RT (wall)':>18}{'song x RT (cpu)':>17}{'singing only x RT':>19}")
    for method in sampled.SINGING_WEIGHTS:
        wall = cpu = sing_wall = sung = 0.0
        for k in range(songs):
            voice = f"{method}:{singing.VOICES[method][k % len(singing.VOICES[method])]}"
            c0, w0 = _cpu_seconds(), time.perf_counter()
            stems, info = sampled.render(f"bench {k}", "train", 1000 + k, seconds, sample_rate,
                                         voice=voice)
            wall += time.perf_counter() - w0
            cpu += _cpu_seconds() - c0
            # singing alone, on a fresh melody of the same song length
            rng = np.random.default_rng(k)
            notes, t = [], 0.3
            while t < seconds - 1:
                d = float(rng.choice([0.25, 0.4, 0.6, 0.9]))
                lo, hi = singing.voice_range(voice)
                notes.append(singing.SungNote(t, d, int(rng.integers(lo, hi + 1))))
                t += d + (0.8 if rng.random() < 0.1 else 0.02)
            w1 = time.perf_counter()
            singing.sing(voice, notes, int(seconds * sample_rate), sample_rate, rng)
            sing_wall += time.perf_counter() - w1
            sung += seconds
        total = songs * seconds
        print(f"{method:<14}{total / wall:>18.1f}{total / cpu:>17.1f}{sung / sing_wall:>19.1f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--songs", type=int, default=3, help="songs per singing method")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each song")
    ap.add_argument("--sample-rate", type=int, default=44100)
    ap.add_argument("--stats", metavar="ROOT", help="print variety statistics of a built corpus")
    args = ap.parse_args(argv)
    if args.stats:
        print(json.dumps(sampled.corpus_statistics(args.stats), indent=2))
        return 0
    bench_speed(args.songs, args.seconds, args.sample_rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
