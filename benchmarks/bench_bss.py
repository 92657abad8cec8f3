"""Time and peak memory of wavesep.metrics.bss_eval_v4 against museval.evaluate (mode "v4").

Generates one track (default: 4 sources, 60 s, stereo, 44.1 kHz) with realistic distortions,
evaluates it with each implementation in its own subprocess (so that peak RSS is measured
separately), and prints a table with wall time, peak RSS, the RSS growth during the call, and
the largest absolute difference from museval per metric.

    python benchmarks/bench_bss.py                # museval takes a minute or two
    python benchmarks/bench_bss.py --seconds 30 --sources 2
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.signal

METRICS = ("SDR", "ISR", "SIR", "SAR")


def make_track(num_sources, seconds, sample_rate, seed=0):
    """References and estimates, (S, T, 2) float64.

    References: band-limited noise, harmonic tones and a gated percussive part per source,
    panned with small inter-channel delays over a -80 dB noise floor. Estimates: the
    reference through a short random filter, channel crosstalk, leakage of the other
    sources, additive noise and a gain drift.
    """
    rng = np.random.default_rng(seed)
    length = int(seconds * sample_rate)
    time_s = np.arange(length) / sample_rate
    refs = np.empty((num_sources, length, 2))
    for s in range(num_sources):
        high = min(0.45 * sample_rate, 2000.0 * (s + 1) ** 1.6)
        band = [40.0 * (s + 1), high]
        sos = scipy.signal.butter(4, band, btype="band", fs=sample_rate, output="sos")
        voice = scipy.signal.sosfilt(sos, rng.standard_normal(length))
        pitch = 82.0 * 2 ** (s * 7 / 12) * (1 + 0.01 * np.sin(2 * np.pi * 5 * time_s))
        phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
        for k in range(1, 6):
            voice += 0.4 / k * np.sin(k * phase)
        beat = (np.sin(2 * np.pi * rng.uniform(1.5, 3.0) * time_s) > 0.6).astype(float)
        voice *= 0.5 + 0.5 * beat
        for c in range(2):
            delayed = np.roll(voice, int(rng.integers(0, 20)))
            refs[s, :, c] = 0.1 * rng.uniform(0.4, 1.0) * delayed
    refs += 1e-5 * rng.standard_normal(refs.shape)
    ests = np.empty_like(refs)
    drift = np.linspace(0.8, 1.2, length)[:, None]
    for s in range(num_sources):
        taps = rng.standard_normal(64) * np.exp(-np.arange(64) / 8.0) * 0.2
        taps[0] += 1.0
        ests[s] = scipy.signal.lfilter(taps, 1.0, refs[s], axis=0)
        ests[s] += 0.1 * refs[s][:, ::-1]
        for k in range(num_sources):
            if k != s:
                ests[s] += rng.uniform(0.05, 0.3) * refs[k]
        ests[s] += 2e-3 * rng.standard_normal((length, 2))
        ests[s] *= drift
    return refs, ests


def _rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _worker(impl, track_path, out_path, sample_rate, repeats, threads):
    data = np.load(track_path)
    refs, ests = data["refs"], data["ests"]
    if impl == "museval":
        import museval

        def run():
            return museval.evaluate(refs, ests, win=sample_rate, hop=sample_rate)

    else:
        import torch

        from wavesep.metrics import bss_eval_v4

        if threads:
            torch.set_num_threads(threads)

        def run():
            return bss_eval_v4(refs, ests, sample_rate)

    rss_before = _rss_mib()
    times, cpu_times = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        result = run()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    tmp = out_path + ".tmp.npy"
    np.save(tmp, np.stack(result))
    os.replace(tmp, out_path)
    print(json.dumps({"times": times, "cpu_times": cpu_times, "peak_mib": peak,
                      "growth_mib": peak - rss_before}))


def _run_worker(impl, track, out, sample_rate, repeats, threads=0):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", impl, "--track", track,
           "--out", out, "--sample-rate", str(sample_rate), "--repeats", str(repeats),
           "--threads", str(threads)]
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(proc.stdout.strip().splitlines()[-1]), np.load(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--sample-rate", type=int, default=44100)
    parser.add_argument("--repeats", type=int, default=3, help="calls of wavesep's version")
    parser.add_argument("--skip-museval", action="store_true", help="time wavesep only")
    parser.add_argument("--worker", choices=["museval", "wavesep"], help=argparse.SUPPRESS)
    parser.add_argument("--track", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker, args.track, args.out, args.sample_rate, args.repeats, args.threads)
        return

    import torch

    load_before = os.getloadavg()[0]
    rows = []  # (name, wall s, CPU s, peak MiB, growth MiB)
    with tempfile.TemporaryDirectory() as tmp:
        track = os.path.join(tmp, "track.npz")
        refs, ests = make_track(args.sources, args.seconds, args.sample_rate)
        np.savez(track, refs=refs, ests=ests)
        del refs, ests
        # the default thread count, and one thread: on a machine shared with other jobs,
        # OpenMP threads that spin-wait for descheduled peers can make one thread faster
        for threads in (0, 1):
            label = f"{threads or torch.get_num_threads()} thread(s)"
            stats, ours = _run_worker("wavesep", track, os.path.join(tmp, f"w{threads}.npy"),
                                      args.sample_rate, args.repeats, threads)
            rows.append((f"wavesep {label}, 1st call", stats["times"][0], stats["cpu_times"][0],
                         stats["peak_mib"], stats["growth_mib"]))
            if args.repeats > 1:
                i = 1 + int(np.argmin(stats["times"][1:]))
                rows.append((f"wavesep {label}, best later", stats["times"][i],
                             stats["cpu_times"][i], stats["peak_mib"], stats["growth_mib"]))
        if not args.skip_museval:
            stats, theirs = _run_worker("museval", track, os.path.join(tmp, "m.npy"),
                                        args.sample_rate, 1)
            rows.insert(0, ("museval.evaluate", stats["times"][0], stats["cpu_times"][0],
                            stats["peak_mib"], stats["growth_mib"]))

    print(f"BSS Eval v4: {args.sources} sources, {args.seconds:g} s, stereo, "
          f"{args.sample_rate} Hz; {os.cpu_count()} CPU cores; load average "
          f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(f"{'implementation':<34}{'wall (s)':>10}{'CPU (s)':>10}{'peak RSS (MiB)':>16}"
          f"{'RSS growth (MiB)':>18}")
    for name, wall, cpu, peak, growth in rows:
        print(f"{name:<34}{wall:>10.2f}{cpu:>10.2f}{peak:>16.0f}{growth:>18.0f}")
    if args.skip_museval:
        return
    best = min(rows[1:], key=lambda row: row[1])
    print(f"speed-up over museval: wall {rows[0][1] / best[1]:.1f}x ({best[0]}), "
          f"CPU time {rows[0][2] / best[2]:.1f}x")
    same_nan = np.array_equal(np.isnan(ours), np.isnan(theirs))
    diffs = [np.nanmax(np.abs(o - t)) for o, t in zip(ours, theirs)]
    print("max |wavesep - museval| (dB): "
          + ", ".join(f"{m} {d:.1e}" for m, d in zip(METRICS, diffs))
          + f"; NaN positions equal: {same_nan}")
    medians = np.nanmedian(theirs, axis=2)
    per_metric = (f"{m} " + " ".join(f"{v:.2f}" for v in row) for m, row in zip(METRICS, medians))
    print("museval per-source medians (dB): " + "; ".join(per_metric))


if __name__ == "__main__":
    main()
