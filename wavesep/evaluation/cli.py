"""The evaluation command line: ``wavesep evaluate``, ``wavesep-evaluate``, ``python -m wavesep.evaluate``."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from wavesep import postfilter as postfilters
from wavesep.errors import DataError, WavesepError
from wavesep.interrupts import StopSignals
from wavesep.evaluation.methods import ORACLES, EvalOptions, Method, load_separation_model, resolve_targets
from wavesep.evaluation.plots import plot_sdr_boxplot
from wavesep.evaluation.report import _write_summary, format_report
from wavesep.evaluation.runner import Log, _WorkerPool, evaluate_tracks
from wavesep.evaluation.scoring import BACKENDS, TARGET_STEMS, _import_museval
from wavesep.evaluation.tracks import select_tracks
from wavesep.metrics import aggregate as agg


# ---------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wavesep-evaluate",
        description=(
            "Evaluate separation results the SiSEC 2018 way (BSS Eval v4, museval-format JSON per track, "
            "median over frames then over tracks) and compare them with the published SiSEC 2018 rows."
        ),
    )
    what = p.add_argument_group("what to evaluate (one or more; each gets a result folder OUT/<name>)")
    what.add_argument("--model", help="pretrained model name, or checkpoint file / training run folder")
    what.add_argument(
        "--estimates", metavar="DIR", help="estimates in the MUSDB layout DIR/<subset>/<track>/<target>.wav"
    )
    what.add_argument(
        "--oracle", nargs="+", choices=sorted(ORACLES), default=[],
        help="oracle rows from the true stems: irm (IRM2, power-ratio mask, upper reference), "
        "mix (mixture as estimate, lower reference)",
    )
    what.add_argument("--name", help="result folder name for --model / --estimates (default: derived from it)")
    data = p.add_argument_group("dataset")
    where = data.add_mutually_exclusive_group()
    where.add_argument("--musdb", metavar="ROOT", help="MUSDB18 root (train/ and test/)")
    where.add_argument("--synthetic", metavar="ROOT", help="wavesep synthetic corpus root (with splits.json)")
    where.add_argument("--stems", metavar="DIR", help="folder of own tracks, one folder per track with one audio "
                       "file per stem (vocals.wav + accompaniment.wav, or vocals/drums/bass/other; mixture.* "
                       "optional; the layout train.py --stems reads; DIR/test/ if present)")
    data.add_argument("--is-wav", action="store_true", help="the MUSDB root is MUSDB18-HQ (wav folders)")
    data.add_argument("--subset", choices=["train", "test"], help="MUSDB folder (default: test)")
    data.add_argument(
        "--split", choices=["train", "valid", "test"], help="split (musdb's official one, or splits.json)"
    )
    data.add_argument("--tracks", nargs="+", metavar="NAME", help="only these tracks")
    data.add_argument("--exclude", nargs="+", metavar="NAME", default=[], help="leave these tracks out")
    data.add_argument(
        "--targets", nargs="+", choices=list(TARGET_STEMS), metavar="TARGET",
        help=f"targets to score ({', '.join(TARGET_STEMS)}); default: the model's sources, the files found, "
        "or for oracles alone all five",
    )
    run = p.add_argument_group("scoring and output")
    run.add_argument("--out", metavar="DIR", help="results root: OUT/<method>/<subset>/<track>.json")
    run.add_argument("--backend", choices=BACKENDS, default="fast", help="BSS Eval implementation (default: fast)")
    run.add_argument("--jobs", type=int, default=1, help="tracks evaluated in parallel processes (default: 1)")
    run.add_argument(
        "--ray", nargs="?", const="", metavar="ADDRESS",
        help="evaluate on a Ray cluster, one model per worker: ADDRESS (auto, HOST:6379, ray://HOST:10001) or "
        "none to start a local Ray instance; the dataset must be readable at the same path on every worker "
        "(extra: ray)",
    )
    run.add_argument("--ray-workers", type=int, metavar="N",
                     help="Ray workers (default: one per GPU of the cluster, else one per --ray-cpus CPUs)")
    run.add_argument("--ray-cpus", type=float, default=1.0, metavar="N",
                     help="CPUs (and torch threads) per Ray worker (default: 1)")
    run.add_argument("--force", action="store_true", help="re-evaluate tracks whose result file exists")
    run.add_argument("--fix-length", action="store_true", help="zero-pad / truncate estimates of the wrong length")
    run.add_argument("--no-musical-noise", action="store_true", help="skip the spot rate and kurtosis ratio")
    run.add_argument(
        "--compare", nargs="+", metavar="DIR", default=[],
        help="more result folders (wavesep, museval or SiSEC 2018 submissions) to put in the table and plot",
    )
    run.add_argument("--plot", metavar="PNG", help="boxplot file (default: OUT/sdr-boxplot-<subset>.png)")
    run.add_argument("--no-plot", action="store_true", help="do not draw the boxplot")
    sep = p.add_argument_group("separation (--model)")
    sep.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    sep.add_argument("--segment-seconds", type=float, default=10.0, help="window length of wavesep.apply")
    sep.add_argument("--batch-size", type=int, help="windows per forward pass")
    sep.add_argument("--postfilter", choices=postfilters.CHOICES, default="auto",
                     help="refine the estimates (wavesep.postfilter); auto: the model's own choice (default)")
    return p


def _run(args, log: Log) -> int:
    if args.name and args.model and args.estimates:
        raise DataError("--name is ambiguous with both --model and --estimates; evaluate them in two runs")
    methods: List[Method] = []
    if args.model:
        methods.append(Method.model(args.model, args.name if not args.estimates else None))
    if args.estimates:
        methods.append(Method.estimates(args.estimates, args.name if not args.model else None))
    methods += [Method.oracle(o) for o in dict.fromkeys(args.oracle)]
    if len({m.name for m in methods}) != len(methods):
        raise DataError(f"two methods share the result folder name {methods[-1].name!r}; pass --name")
    if not methods and not args.compare:
        raise DataError("nothing to do: give --model, --estimates, --oracle and/or --compare (see --help)")
    if args.jobs < 1:
        raise DataError(f"--jobs must be at least 1, got {args.jobs}")
    if not (args.segment_seconds > 0 and np.isfinite(args.segment_seconds)):
        raise DataError(f"--segment-seconds must be a finite number of seconds > 0, got {args.segment_seconds}")
    if args.ray_workers is not None and args.ray_workers < 1:
        raise DataError(f"--ray-workers must be at least 1, got {args.ray_workers}")
    if not (args.ray_cpus > 0 and np.isfinite(args.ray_cpus)):
        raise DataError(f"--ray-cpus must be > 0, got {args.ray_cpus}")
    if args.backend == "museval":
        _import_museval()

    results: Dict[str, Dict[str, agg.TrackResult]] = {}
    labels: Dict[str, str] = {}
    folder_subset = args.subset or ("test" if args.split in (None, "test") else "train")
    selected: Optional[List[str]] = args.tracks
    if methods:
        if not (args.musdb or args.synthetic or args.stems):
            raise DataError(
                "evaluating needs a dataset: --musdb ROOT (with --is-wav for MUSDB18-HQ), --synthetic ROOT "
                "or --stems DIR"
            )
        if not args.out:
            raise DataError("evaluating needs --out DIR (results go to DIR/<method>/<subset>/<track>.json)")
        dataset, root = (("musdb", args.musdb) if args.musdb else ("synthetic", args.synthetic) if args.synthetic
                         else ("stems", args.stems))
        tracks, folder_subset = select_tracks(
            dataset, root, is_wav=args.is_wav, subset=args.subset, split=args.split,
            tracks=args.tracks, exclude=args.exclude,
        )
        selected = [t.name for t in tracks]
        log(f"{len(tracks)} track(s) of {root} ({folder_subset} subset)")
        first_targets: Optional[Tuple[str, ...]] = None
        models = {}
        for method in methods:
            if method.kind == "model":
                models[method.name] = load_separation_model(method.source)
        with contextlib.ExitStack() as stack:
            pool = stack.enter_context(_WorkerPool(args.jobs))  # started only if some track needs a worker
            if args.ray is not None:  # one Ray connection for all methods
                from wavesep.cluster.evaluate import session

                stack.enter_context(session(args.ray))
            # oracles score the same targets as the method they accompany, so the rows line up
            for method in sorted(methods, key=lambda m: m.kind == "oracle"):
                targets = resolve_targets(
                    method, tracks, folder_subset, args.targets, models.get(method.name), first_targets
                )
                first_targets = first_targets or (targets if method.kind != "oracle" else None)
                options = EvalOptions(
                    targets=targets, backend=args.backend, musical_noise=not args.no_musical_noise,
                    fix_length=args.fix_length, force=args.force, device=args.device,
                    segment_seconds=args.segment_seconds, batch_size=args.batch_size,
                    postfilter=args.postfilter,
                )
                out_dir = Path(args.out) / method.name
                log(f"{method.label}: {', '.join(targets)} -> {out_dir}")
                evaluate_tracks(
                    method, tracks, out_dir, folder_subset, options, args.jobs, models.get(method.name), log, pool,
                    ray=args.ray, ray_workers=args.ray_workers, ray_cpus=args.ray_cpus,
                )
        for method in methods:
            results[method.name] = agg.load_results(Path(args.out) / method.name, folder_subset, selected)
            labels[method.name] = method.label
    for folder in args.compare:
        name = Path(folder).name
        if name in results:
            name = str(folder)
        results[name] = agg.load_results(folder, folder_subset, args.tracks)

    log("")
    log(format_report(results, labels))
    if methods:
        for method in methods:
            _write_summary(Path(args.out) / method.name, folder_subset, results[method.name], method)
    if not args.no_plot and (args.plot or args.out):
        plot_path = Path(args.plot) if args.plot else Path(args.out) / f"sdr-boxplot-{folder_subset}.png"
        if any(np.isfinite(v).any() for res in results.values() for tr in res.values()
               for metrics in tr.scores.values() for v in [metrics["SDR"]]):
            plot_sdr_boxplot(results, plot_path, labels)
            log(f"boxplot: {plot_path}")
        else:  # the results are reported, NaN frames counted; there is just nothing to draw
            log(f"boxplot: not drawn, no finite per-track SDR (every frame is NaN); {plot_path} not written")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point (``wavesep-evaluate``, ``python -m wavesep.evaluate``).

    Returns:
        0 on success, 2 after a user error (its message printed to stderr, no traceback), 130 / 143
        when stopped by SIGINT / SIGTERM (no partial or temporary result file is left).
    """
    args = _parser().parse_args(argv)
    with StopSignals() as stop:
        try:
            return _run(args, print)
        except WavesepError as e:
            print(f"wavesep-evaluate: error: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as exc:  # SIGINT or SIGTERM: the track being written left nothing
            signum = getattr(exc, "signum", None) or stop.signum or signal.SIGINT
            print(f"\nwavesep-evaluate: interrupted ({signal.Signals(signum).name}); the finished tracks' "
                  "results are written, and a rerun evaluates the others", file=sys.stderr)
            return 128 + signum


if __name__ == "__main__":
    # the worker processes' functions live in wavesep.evaluation.runner, never in __main__
    sys.exit(main())
