"""Full-track inference: speed against the reference procedure, exactness, memory, real-time factor.

    python benchmarks/bench_inference.py                    # everything (several minutes on a CPU)
    python benchmarks/bench_inference.py --model small --model runs/x/best.pt --skip-reference
    python benchmarks/bench_inference.py --only-rss --rss-model M4

Prints figures; asserts nothing. Sections:

1. M4 (random weights), a stereo 44.1 kHz input of --seconds (60): time of wavesep.apply.separate
   (precision float32, and auto: bfloat16 where native) against the reference Wave-U-Net procedure implemented below (resample to 22050 Hz, zero-pad
   the context, batch 1, non-overlapping 16389-sample output windows each reading its own
   147443-sample input, resample back), and the max abs difference of each to one forward pass
   over the whole padded signal at the model's rate.
2. Peak RSS of separate() for a 10-minute and a 1-minute track, each in a fresh subprocess, less
   the bytes of the input and output arrays themselves; their ratio shows whether memory grows
   with the length.
3. Real-time factor (processing time / audio duration) of each --model (default: M4 and small),
   float32 and auto precision: the network (apply.separate) and, for models with a post-filter,
   the whole Separator.separate_tensor.

Models are preset names (random weights, seed 0), registered names (wavesep.pretrained) or
checkpoint files / run directories.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from wavesep import WaveUNet, audio, presets, pretrained
from wavesep.api import Separator
from wavesep.apply import DEFAULT_SEGMENT_SECONDS, plan_tiles, resolve_device, resolve_precision, separate

INPUT_RATE = 44100


def load(spec: str) -> WaveUNet:
    if spec in presets.names():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = WaveUNet(presets.get(spec))
        model.name = spec
        return model.eval()
    return pretrained.get_model(spec)


def test_signal(seconds: float, rate: int = INPUT_RATE, channels: int = 2, seed: int = 0) -> torch.Tensor:
    """(C, T) noise at a music-like level (std 0.1)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(channels, int(seconds * rate), generator=gen).mul_(0.1)  # in place: no 2nd copy


def whole_pass(model: WaveUNet, mix: torch.Tensor) -> torch.Tensor:
    """One forward over the whole zero-padded (C, T) mixture at the model's rate -> (S, C, T)."""
    length = mix.shape[-1]
    left = model.context[0]
    n = model.input_length(length)
    with torch.inference_mode():
        return model(F.pad(mix, (left, n - length - left))[None])[0, ..., :length]


def reference_procedure(model: WaveUNet, mix: torch.Tensor, rate: int, device) -> tuple:
    """The reference implementation's full-track inference (a re-implementation of its steps).

    Returns (estimates at ``rate`` (S, C, T), estimates at the model's rate (S, C, T_m)).
    """
    at_model = audio.resample(mix, rate, model.sample_rate)  # (C, T_m)
    length = at_model.shape[-1]
    w_in = model.input_length(16384)  # 147443 for the paper's models
    w_out = model.output_length(w_in)  # 16389
    left, right = model.context
    count = -(-length // w_out)
    padded = F.pad(at_model, (left, count * w_out - length + right))  # (C, count * w_out + context)
    outputs = []
    with torch.inference_mode():
        for i in range(count):
            window = padded[None, :, i * w_out : i * w_out + w_in].to(device)  # (1, C, w_in)
            outputs.append(model(window)[0].cpu())  # (S, C, w_out)
    estimates = torch.cat(outputs, dim=-1)[..., :length]  # (S, C, T_m)
    back = audio.resample(estimates, model.sample_rate, rate)[..., : mix.shape[-1]]
    return back, estimates


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch threads "
        f"{torch.get_num_threads()}, {gpu}; torch {torch.__version__}"
    )


def compare_with_reference(args) -> None:
    model = load("M4")
    device = resolve_device(args.device)
    model_dev = model.to(device)
    mix = test_signal(args.seconds)
    print(f"\n== 1. M4 (random weights), {args.seconds:g} s stereo at {INPUT_RATE} Hz, device {device}")
    plan = plan_tiles(model, audio.resampled_length(mix.shape[-1], INPUT_RATE, model.sample_rate), args.segment)
    print(f"wavesep: {plan.num_windows} windows of {plan.input_length} -> {plan.output_length} samples, "
          f"hop {plan.hop} (= {plan.hop // model.stride} x stride {model.stride}), batch {args.batch_size or 'auto'}")
    times = {}
    for precision in ("float32", "auto"):
        name = resolve_precision(precision, device) or "float32"
        _, times[precision] = timed(lambda: separate(model_dev, mix, INPUT_RATE, segment_seconds=args.segment,
                                                     batch_size=args.batch_size, device=device,
                                                     precision=precision))
        print(f"wavesep.apply.separate, precision {precision} ({name}): {times[precision]:.1f} s "
              f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    (ref, ref_model_rate), t_ref = timed(lambda: reference_procedure(model_dev, mix, INPUT_RATE, device))
    print(f"reference procedure:    {t_ref:.1f} s  (batch 1, 16389-sample windows, float32; "
          f"load average {os.getloadavg()[0]:.1f})")
    for precision, t in times.items():
        print(f"speed-up, precision {precision}: {t_ref / t:.2f}x")
    del ref

    at_model = audio.resample(mix, INPUT_RATE, model.sample_rate)
    whole, t_whole = timed(lambda: whole_pass(model.cpu(), at_model))
    ours_model_rate = separate(model, at_model, model.sample_rate, segment_seconds=args.segment,
                               batch_size=args.batch_size, device=device)
    scale = whole.abs().max().item()
    print(f"max |difference| to one whole-signal forward pass at {model.sample_rate} Hz "
          f"(its peak |value| {scale:.3f}; whole pass {t_whole:.1f} s):")
    print(f"  wavesep:             {(ours_model_rate - whole).abs().max().item():.3e}")
    print(f"  reference procedure: {(ref_model_rate - whole).abs().max().item():.3e}")


def peak_rss() -> int:
    """High-water mark of this process's resident memory (bytes).

    Read from /proc (VmHWM): getrusage's ru_maxrss would not do, since Linux carries the parent's
    peak over into an exec'ed child.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # not Linux: best effort


def rss_child(model_spec: str, minutes: float, segment: float, batch_size) -> None:
    """Runs in a fresh process: separates a track and prints its peak RSS figures as JSON."""
    model = load(model_spec)
    mix = test_signal(minutes * 60)
    base = peak_rss()
    out, seconds = timed(lambda: separate(model, mix, INPUT_RATE, segment_seconds=segment,
                                          batch_size=batch_size, device="cpu"))
    peak = peak_rss()
    arrays = mix.numel() * mix.element_size() + out.numel() * out.element_size()
    print(json.dumps({"peak": peak, "before": base, "arrays": arrays, "seconds": seconds}))


def measure_rss(args) -> None:
    print(f"\n== 2. peak RSS, model {args.rss_model}, stereo {INPUT_RATE} Hz, CPU, fresh process each")
    results = {}
    for minutes in args.rss_minutes:
        cmd = [sys.executable, __file__, "--rss-child", str(minutes), "--rss-model", args.rss_model,
               "--segment", str(args.segment)]
        if args.batch_size:
            cmd += ["--batch-size", str(args.batch_size)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results[minutes] = r
        mb = 1 << 20
        print(f"{minutes:g} min: peak RSS {r['peak'] / mb:.0f} MB, input + output arrays {r['arrays'] / mb:.0f} MB, "
              f"peak less arrays {(r['peak'] - r['arrays']) / mb:.0f} MB (RSS before separating "
              f"{r['before'] / mb:.0f} MB), {r['seconds']:.1f} s")
    if len(results) >= 2:
        lo, hi = min(results), max(results)
        ratio = (results[hi]["peak"] - results[hi]["arrays"]) / (results[lo]["peak"] - results[lo]["arrays"])
        print(f"ratio {hi:g} min / {lo:g} min, arrays excluded: {ratio:.2f}")


def timed_cpu(fn):
    """(result, wall seconds, CPU seconds of this process, all threads)."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - start, time.process_time() - cpu


def real_time_factors(args) -> None:
    device = resolve_device(args.device)
    print(f"\n== 3. real-time factor (time / duration; < 1 is faster than real time), "
          f"{args.seconds:g} s stereo {INPUT_RATE} Hz, device {device}, torch threads {torch.get_num_threads()}")
    mix = test_signal(args.seconds)
    for spec in args.model or ["M4", "small"]:
        model = load(spec).to(device)
        for precision in ("float32", "auto"):
            name = resolve_precision(precision, device) or "float32"
            _, seconds, cpu = timed_cpu(lambda: separate(model, mix, INPUT_RATE, segment_seconds=args.segment,
                                                         batch_size=args.batch_size, device=device,
                                                         precision=precision))
            print(f"{spec}, network only (apply.separate, no post-filter), {name}: {seconds:.1f} s, "
                  f"RTF {seconds / args.seconds:.3f}; CPU {cpu:.1f} s, CPU seconds per audio second "
                  f"{cpu / args.seconds:.3f} (load average {os.getloadavg()[0]:.1f})", flush=True)
            sep = Separator(model, device=device, precision=precision, segment_seconds=args.segment,
                            batch_size=args.batch_size)
            if sep.postfilter != "none":
                _, seconds, cpu = timed_cpu(lambda: sep.separate_tensor(mix, INPUT_RATE))
                print(f"{spec} via Separator with its post-filter ({sep.postfilter}), {name}: {seconds:.1f} s, "
                      f"RTF {seconds / args.seconds:.3f}; CPU {cpu:.1f} s, CPU seconds per audio second "
                      f"{cpu / args.seconds:.3f} (load average {os.getloadavg()[0]:.1f})", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", metavar="NAME_OR_CHECKPOINT",
                   help="model for the real-time factors (repeatable; default: M4 and small)")
    p.add_argument("--seconds", type=float, default=60.0, help="input length for sections 1 and 3")
    p.add_argument("--segment", type=float, default=DEFAULT_SEGMENT_SECONDS, help="segment_seconds")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--rss-model", default="M4", help="model of the memory section (default: M4)")
    p.add_argument("--rss-minutes", type=float, nargs="+", default=[1.0, 10.0])
    p.add_argument("--skip-reference", action="store_true")
    p.add_argument("--skip-rss", action="store_true")
    p.add_argument("--skip-rtf", action="store_true")
    p.add_argument("--only-rss", action="store_true")
    p.add_argument("--rss-child", type=float, help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.rss_child is not None:
        rss_child(args.rss_model, args.rss_child, args.segment, args.batch_size)
        return 0
    print(f"machine: {machine()}")
    if not (args.skip_reference or args.only_rss):
        compare_with_reference(args)
    if not args.skip_rss:
        measure_rss(args)
    if not (args.skip_rtf or args.only_rss):
        real_time_factors(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
