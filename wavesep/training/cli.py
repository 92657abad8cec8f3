"""The training command line: ``python train.py ...``, ``wavesep train ...``, ``wavesep-train``.

Parses the options, builds (or resumes, or grows) the model and the datasets (via
:mod:`wavesep.data`), and calls :func:`wavesep.training.loop.train`; under torchrun it trains with
DistributedDataParallel.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from pathlib import Path
from typing import Optional

import torch
import torch.distributed as dist

from .. import checkpoint, grow
from ..data import DEFAULT_OUTPUT_SAMPLES, TASKS
from ..errors import CheckpointError, WavesepError
from ..model import WaveUNet, WaveUNetConfig, presets
from .config import DEFAULT_STFT_WEIGHT, LOSSES, TrainConfig
from .distributed import _dist_info, resolve_device, setup_distributed
from .loop import train


_RUN_DEFINING = ("preset", "task", "sources", "seed", "batch_size", "lr", "epoch_iterations", "output_samples",
                 "output_seconds", "augment", "remix", "production", "level_range", "mono_prob", "backing", "backing_prob", "vocal_eq", "voices", "voices_prob", "cache_dtype", "loss", "stft_weight", "finetune_batch_size", "finetune_lr", "is_wav", "init_from", "widen", "render", "render_seconds", "render_windows")

# Relative noise on duplicated channels (--widen duplicate): breaks the copies' symmetry and
# changes the bundled model's output by about -28 dB of its energy (benchmarks/RESULTS.md).
DUPLICATE_NOISE = 0.1

# Options of one invocation: a resumed run takes them from its own command line (or defaults).
# (--threads is not one: a resumed run reuses the run's thread count unless told otherwise, since
# another count changes the floating-point rounding and so the results.)
_PER_INVOCATION = ("max_steps", "max_minutes", "device", "progress")

_DEFAULTS = {
    "preset": "M4", "task": None, "sources": None, "out": None, "resume": None, "device": "auto",
    "output_samples": None, "output_seconds": None, "is_wav": False, "cache_dir": None, "cache_dtype": "float32",
    "valid_windows": None, "augment": True, "remix": False, "production": False, "level_range": None, "mono_prob": None, "backing": None, "backing_prob": 0.5, "vocal_eq": None, "voices": None, "voices_prob": 0.5, "loss": "mse", "stft_weight": DEFAULT_STFT_WEIGHT, "seed": 0, "batch_size": 16, "lr": 1e-4,
    "epoch_iterations": 2000, "patience": 20, "max_epochs": None, "finetune": True,
    "finetune_batch_size": 32, "finetune_lr": 1e-5, "finetune_patience": 20,
    "finetune_max_epochs": None, "valid_batch_size": None, "valid_tracks": 3,
    "valid_track_seconds": 30.0, "workers": 2, "max_steps": None,
    "max_minutes": None, "max_nonfinite": 5, "checkpoint_minutes": 10.0, "progress": True,
    "tensorboard": True, "musdb": None, "stems": None, "synthetic": None, "threads": None, "init_from": None, "widen": "zero",
    "render": None, "render_seconds": 20.0, "render_windows": 16,
}


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``train.py`` (defaults applied by :func:`parse_args`)."""
    p = argparse.ArgumentParser(
        prog="train.py",
        description="Train a Wave-U-Net separator (default: the paper's recipe, Stoller et al. 2018). "
        "For several GPUs or nodes run it under torchrun.",
        argument_default=argparse.SUPPRESS,
    )
    data = p.add_argument_group("data (one of them, unless --resume)")
    which = data.add_mutually_exclusive_group()
    which.add_argument("--musdb", metavar="ROOT", help="MUSDB18 root (stems; MUSDB18-HQ wavs with --is-wav)")
    which.add_argument("--stems", metavar="DIR", help="folder of tracks, each a folder of stem wavs")
    which.add_argument("--synthetic", metavar="ROOT", help="corpus made by python -m wavesep.synth")
    data.add_argument("--is-wav", action="store_true", help="MUSDB18-HQ: decoded wav files")
    data.add_argument("--cache-dir", metavar="DIR", help="cache of decoded/resampled audio")
    data.add_argument("--cache-dtype", choices=("float32", "float16"),
                      help="storage of the decode cache: float16 halves its disk (10 h of 4-stem songs with their "
                      "mixture at 22.05 kHz stereo: about 15 GB instead of 30) at a rounding error of about "
                      "-66 dB (default float32)")
    data.add_argument("--valid-windows", type=int, metavar="N", help="number of validation windows")
    data.add_argument("--augment", action=argparse.BooleanOptionalAction,
                      help="random source gains U(0.7, 1.0), mixture rebuilt as the sum of the stems "
                      "(the paper's; other presets also swap channels and flip signs) (default: on)")
    data.add_argument("--remix", action=argparse.BooleanOptionalAction,
                      help="with --augment, also build windows from stems of different tracks (default: off)")
    data.add_argument("--production", action=argparse.BooleanOptionalAction,
                      help="with --augment, also run the production chain of wavesep.data.production on 75%% of "
                      "the windows: vocal EQ/compression/reverb/echo, instrument colour and saturation, "
                      "bus compression, limiting and loudness (default: off)")
    data.add_argument("--level-range", type=float, nargs=2, metavar=("LOW", "HIGH"),
                      help="with --augment, scale each window so that its mixture's RMS level is drawn from "
                      "U(LOW, HIGH) dBFS, e.g. -40 -10: real records range from about -35 to -8 dBFS, and a "
                      "network trained at one level depends on it (default: off)")
    data.add_argument("--mono-prob", type=float, metavar="P",
                      help="with --augment, make a window mono (each stem's channels set to their mean) with "
                      "probability P: mono records give no panning cue (default: off)")
    data.add_argument("--backing", metavar="DIR",
                      help="with --augment and a vocals task, replace the accompaniment of a share of the "
                      "windows (--backing-prob) by real, voice-free music: DIR is a stems folder whose "
                      "tracks each hold one accompaniment.* file (python -m wavesep.corpus.backing builds one) (default: off)")
    data.add_argument("--backing-prob", type=float, metavar="P",
                      help="share of the windows that get a --backing recording as accompaniment (default 0.5)")
    data.add_argument("--voices", metavar="DIR",
                      help="with --augment and a vocals task, take the vocal stem of a share of the windows "
                      "(--voices-prob) from the same song's vocal line sung again with a recorded voice: DIR "
                      "holds <track>/vocals.* for every training track (python -m wavesep.corpus.revoice "
                      "writes OUT/voices) (default: off)")
    data.add_argument("--voices-prob", type=float, metavar="P",
                      help="share of the windows whose vocals come from --voices (default 0.5)")
    data.add_argument("--render", metavar="RENDERER",
                      help="train on songs rendered on the fly by a corpus renderer (sampled or oscillator; "
                      "python -m wavesep.synth's), new songs without end and no disk; the data option above "
                      "then gives only the validation set (its valid split) (default: off)")
    data.add_argument("--render-seconds", type=float, metavar="S",
                      help="with --render, the length of each song in seconds (default 20)")
    data.add_argument("--render-windows", type=int, metavar="W",
                      help="with --render, training windows cut from each song: rendering costs one song per W "
                      "windows (default 16)")
    data.add_argument("--vocal-eq", type=float, metavar="P",
                      help="with --augment, give the vocal stem of a window the spectral balance of a produced "
                      "voice (high-pass, +3..+15 dB above 2.5-5 kHz, air) with probability P: rendered voices "
                      "have 5-15 dB less of their energy above 4 kHz than real ones (default: off)")

    run = p.add_argument_group("run")
    run.add_argument("--preset", choices=presets.names(), help="model preset (default M4)")
    run.add_argument("--loss", choices=LOSSES,
                     help="mse (the paper's, default); level-mse: each window's MSE relative to its mixture's "
                     "power, so that windows of every level weigh the same (for --level-range); l1: mean "
                     "absolute error; mse+stft: MSE plus --stft-weight times a multi-resolution STFT loss "
                     "(auraloss: spectral convergence and log magnitudes, every band and level alike); sdr: the "
                     "negative SDR of each window and source in dB, soft-thresholded at 30 dB and against "
                     "-30 dB of the mixture for silent targets (every window alike, as BSS Eval's frames)")
    run.add_argument("--stft-weight", type=float, metavar="W",
                     help=f"weight of the STFT term of --loss mse+stft (default {DEFAULT_STFT_WEIGHT:g}, which keeps "
                     "the MSE the larger pull)")
    run.add_argument("--task", choices=sorted(TASKS), help="vocals (accompaniment, vocals) or multi "
                     "(bass, drums, other, vocals); default: the preset's sources")
    run.add_argument("--sources", nargs="+", metavar="NAME",
                     help="instead of --task: the model's sources, named like the stem files of "
                     "--stems tracks (with a difference output the last one is mix minus the others)")
    run.add_argument("--out", metavar="RUN_DIR", help="new run directory (checkpoints, logs)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR exactly")
    run.add_argument("--device", help="auto (default), cpu, cuda or cuda:K")
    window = run.add_mutually_exclusive_group()
    window.add_argument("--output-samples", type=int, metavar="N",
                        help=f"output window of a training example (default {DEFAULT_OUTPUT_SAMPLES})")
    window.add_argument("--output-seconds", type=float, metavar="S", help="output window in seconds")
    run.add_argument("--seed", type=int, help="seed of the initial weights and of the data (default 0)")
    run.add_argument("--init-from", metavar="CHECKPOINT",
                     help="start a new run from a trained model's weights: the same preset, or one with more "
                     "levels or wider levels (grown; see wavesep.grow)")
    run.add_argument("--widen", choices=grow.WIDEN_MODES,
                     help="how --init-from fills a wider preset's new channels: 'zero' (they start with zero weight "
                     "into the trained ones: the trained function, opened slowly by training) or 'duplicate' "
                     f"(copies of trained channels with {DUPLICATE_NOISE:g} relative noise, their readers' weights "
                     "split between the copies: Net2WiderNet; same levels only) (default zero)")

    recipe = p.add_argument_group("recipe (defaults: the paper)")
    recipe.add_argument("--batch-size", type=int, help="global batch of the first stage (16)")
    recipe.add_argument("--lr", type=float, help="Adam learning rate of the first stage (1e-4)")
    recipe.add_argument("--epoch-iterations", type=int, help="iterations per epoch (2000)")
    recipe.add_argument("--patience", type=int, help="epochs without improvement before stopping (20)")
    recipe.add_argument("--max-epochs", type=int, help="cap on the epochs of each stage (none)")
    recipe.add_argument("--finetune", action=argparse.BooleanOptionalAction,
                        help="run the fine-tuning stage (default: on)")
    recipe.add_argument("--finetune-batch-size", type=int, help="global batch of fine-tuning (32)")
    recipe.add_argument("--finetune-lr", type=float, help="learning rate of fine-tuning (1e-5)")
    recipe.add_argument("--finetune-patience", type=int, help="patience of fine-tuning (20)")
    recipe.add_argument("--finetune-max-epochs", type=int, help="cap on fine-tuning epochs (--max-epochs)")
    recipe.add_argument("--valid-batch-size", type=int, help="validation windows per batch and rank")
    recipe.add_argument("--valid-tracks", type=int, metavar="N",
                        help="whole validation tracks scored with BSS Eval v4 after each epoch, for the "
                        "logs only (default 3; 0: none)")
    recipe.add_argument("--valid-track-seconds", type=float, metavar="S",
                        help="seconds of each of those tracks (default 30)")

    rt = p.add_argument_group("runtime")
    rt.add_argument("--workers", type=int, help="DataLoader workers per process (2)")
    rt.add_argument("--threads", type=int, help="torch CPU threads per process (default: torch's choice)")
    rt.add_argument("--max-steps", type=int, help="stop (resumably) after this many iterations in all")
    rt.add_argument("--max-minutes", type=float, help="stop (resumably) after this many minutes")
    rt.add_argument("--max-nonfinite", type=int, help="stop after this many non-finite losses in a row (5)")
    rt.add_argument("--checkpoint-minutes", type=float, help="write last.pt within epochs this often (10)")
    rt.add_argument("--progress", action=argparse.BooleanOptionalAction, help="tqdm progress bar (on)")
    rt.add_argument("--tensorboard", action=argparse.BooleanOptionalAction, help="TensorBoard scalars (on)")
    return p


def parse_args(argv=None) -> tuple:
    """(namespace with every option, set of the option names given explicitly)."""
    parser = build_parser()
    given = vars(parser.parse_args(argv))
    args = dict(_DEFAULTS, dataset=None, root=None)
    args.update(given)
    for kind in ("musdb", "stems", "synthetic"):
        if args[kind] is not None:
            args["dataset"], args["root"] = kind, args[kind]
    if not args.get("dataset") and not args["resume"]:
        parser.error("give the training data: --musdb ROOT, --stems DIR or --synthetic ROOT (with --render, "
                     "the validation data: its valid split)")
    if not args["out"] and not args["resume"]:
        parser.error("give --out RUN_DIR (a new run) or --resume RUN_DIR")
    if args["out"] and args["resume"] and Path(args["out"]) != Path(args["resume"]):
        parser.error("--resume continues in its own run directory; leave out --out")
    if "widen" in given and args["widen"] != "zero" and not args["init_from"] and not args["resume"]:
        parser.error("--widen says how --init-from fills new channels; give --init-from CHECKPOINT")
    return argparse.Namespace(**args), set(given)


def _config_from_args(args) -> TrainConfig:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in names})


def _output_samples(args, sample_rate: int) -> int:
    if args.output_seconds is not None:
        return max(1, int(round(args.output_seconds * sample_rate)))
    return args.output_samples or DEFAULT_OUTPUT_SAMPLES


def augment_config(args):
    """The training windows' augmentation for the command-line arguments: False (none), True
    (AugmentConfig's defaults) or a :class:`wavesep.data.AugmentConfig`."""
    from .. import data

    augment = args.augment
    remix, production = getattr(args, "remix", False), getattr(args, "production", False)
    level, mono = getattr(args, "level_range", None), getattr(args, "mono_prob", None)
    backing, vocal_eq = getattr(args, "backing", None), getattr(args, "vocal_eq", None)
    voices = getattr(args, "voices", None)
    if augment and (remix or production or level or mono or backing or vocal_eq or voices):
        extra = {"level": True, "level_low_db": float(level[0]), "level_high_db": float(level[1])} if level else {}
        if mono:
            extra.update(mono=True, mono_prob=float(mono))
        if backing:
            extra.update(backing=True, backing_prob=float(getattr(args, "backing_prob", 0.5)))
        if vocal_eq:
            extra.update(vocal_eq=True, vocal_eq_prob=float(vocal_eq))
        if voices:
            extra.update(voices=True, voices_prob=float(getattr(args, "voices_prob", None) or 0.5))
        augment = data.AugmentConfig(remix=bool(remix), production=bool(production), **extra)
    elif augment and str(args.preset).startswith("M"):
        # The paper's presets get the paper's augmentation: source gains U(0.7, 1.0) only.
        augment = data.AugmentConfig.paper()
    return augment


def build_datasets_from_args(args, model: WaveUNet) -> tuple:
    """(train, valid) datasets for the command-line arguments, via wavesep.data."""
    from .. import data

    # Every rank builds its datasets; the decode cache is written atomically, so concurrent
    # builders are safe (a second run, or ranks after the first, hit the cache).
    augment = augment_config(args)
    kwargs = {"is_wav": args.is_wav, "seed": args.seed, "cache_dir": args.cache_dir, "augment": augment,
              "cache_dtype": getattr(args, "cache_dtype", "float32"),
              "output_samples": _output_samples(args, model.sample_rate), "progress": _dist_info()[0] == 0}
    if args.valid_windows is not None:
        kwargs["valid_windows"] = args.valid_windows
    if getattr(args, "backing", None):
        kwargs["backing_root"] = args.backing
    if getattr(args, "voices", None):
        kwargs["voices_root"] = args.voices
    if getattr(args, "render", None):
        from ..corpus.command import SongStream

        kwargs["songs"] = SongStream(args.render, args.seed, args.render_seconds, model.sample_rate)
        kwargs["windows_per_song"] = int(args.render_windows)
    return data.build_datasets(args.dataset, args.root, args.task, model, **kwargs)


def _task_name(sources) -> Optional[str]:
    """The task whose targets are exactly ``sources`` (in order), else None."""
    return next((name for name, task in TASKS.items() if tuple(sources) == task), None)


def _stored_run(run_dir: Path) -> dict:
    """{"config", "metadata"} of the run's last.pt, read by rank 0 and broadcast, so that in a
    multi-node job only rank 0's machine needs the run directory."""
    rank, world = _dist_info()
    payload = [None]
    if rank == 0:
        last = run_dir / checkpoint.LAST_NAME
        try:
            if not last.is_file():
                raise CheckpointError(f"{run_dir}: no {checkpoint.LAST_NAME} to resume from")
            ckpt = checkpoint.load(last)
            payload = [{"config": ckpt["config"], "metadata": ckpt.get("metadata", {})}]
        except WavesepError as exc:
            payload = [{"error": str(exc)}]  # every rank raises it, none waits for the others
    if world > 1:
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
        dist.broadcast_object_list(payload, src=0, device=device)
    if "error" in payload[0]:
        raise CheckpointError(payload[0]["error"])
    return payload[0]


# Metadata a run inherits from its --init-from checkpoint (and keeps on --resume): how the
# weights are meant to be used, which fine-tuning does not change.
_INHERITED = ("postfilter",)


def _inherited(metadata: dict) -> dict:
    return {k: metadata[k] for k in _INHERITED if k in (metadata or {})}


def _prepare(args, given: set) -> tuple:
    """(model, run directory, resume?, inherited metadata) for a new or resumed run; may change
    ``args`` in place. The inherited metadata (e.g. the post-filter) comes from the --init-from
    checkpoint, or for a resumed run from its own checkpoint."""
    if args.resume:
        run_dir = Path(args.resume)
        last = run_dir / checkpoint.LAST_NAME
        ckpt = _stored_run(run_dir)
        stored = dict(ckpt.get("metadata", {}).get("training_args") or {})
        if not stored:
            raise CheckpointError(f"{last}: no training arguments stored; it cannot be resumed from the command line")
        changed = sorted(k for k in _RUN_DEFINING if k in given and getattr(args, k) != stored.get(k))
        if args.dataset is not None and args.dataset != stored.get("dataset"):
            changed.append("dataset")
        if changed:
            raise CheckpointError(
                f"{run_dir}: --resume continues the run as it was defined; "
                f"{', '.join('--' + k.replace('_', '-') for k in changed)} cannot change (start a new run with --out)"
            )
        if "threads" in given and stored.get("threads") not in (None, args.threads):
            print(f"warning: {run_dir} ran on {stored['threads']} torch thread(s) per process; with "
                  f"--threads {args.threads} the results will differ from an uninterrupted run by "
                  "floating-point rounding (resume without --threads to keep them exact)", file=sys.stderr)
        elif stored.get("threads") is None and "threads" not in given:
            print(f"warning: {run_dir} did not record its thread count; the results are exact only if "
                  "this process uses the same number of torch threads as before (--threads)", file=sys.stderr)
        merged = dict(stored)
        for key in _PER_INVOCATION:  # budgets of the earlier invocation do not carry over
            merged[key] = getattr(args, key)
        for key in given:  # runtime options and data paths may change
            merged[key] = getattr(args, key)
        if any(k in given for k in ("musdb", "stems", "synthetic")):
            merged["root"] = args.root
        merged["resume"], merged["out"] = str(run_dir), str(run_dir)
        for key, value in merged.items():
            setattr(args, key, value)
        try:
            model = WaveUNet(WaveUNetConfig.from_dict(ckpt["config"]))  # weights: loaded by train()
        except (KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{last}: cannot rebuild the model ({exc})") from None
        return model, run_dir, True, _inherited(ckpt.get("metadata", {}))
    run_dir = Path(args.out)
    if (run_dir / checkpoint.LAST_NAME).exists():
        raise CheckpointError(
            f"{run_dir} already holds a run ({checkpoint.LAST_NAME}); continue it with --resume {run_dir} "
            "or choose another --out"
        )
    config = presets.get(args.preset)
    if args.task is not None:
        config = config.replace(sources=TASKS[args.task])
    elif getattr(args, "sources", None):
        config = config.replace(sources=tuple(args.sources))
    # Without --task the preset's sources are kept in their order; the data module matches
    # targets to stems by name (e.g. "accompaniment" = every stem but vocals).
    torch.manual_seed(args.seed)
    model = WaveUNet(config)
    inherited = {}
    if args.init_from:
        source = checkpoint.load_model(args.init_from)  # CheckpointError names the file
        try:
            grow.init_from(model, source, widen=args.widen, noise=DUPLICATE_NOISE, seed=args.seed)
        except ValueError as exc:
            raise CheckpointError(f"{args.init_from}: {exc}") from None
        inherited = _inherited(source.metadata)
    return model, run_dir, False, inherited


def _plain_args(args) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


def main(argv=None) -> int:
    """Command line: ``python train.py --preset small --synthetic CORPUS --out runs/small``.

    Returns the exit code: 0 finished or stopped by a budget (resumable), 1 error or divergence,
    128 + signal number when stopped by SIGINT/SIGTERM (after writing a resumable checkpoint).
    """
    args, given = parse_args(argv)
    created_group = False
    try:
        created_group = setup_distributed(args.device)
        model, run_dir, resume, inherited = _prepare(args, given)  # a resumed run's args.threads: the run's
        if args.threads:
            torch.set_num_threads(args.threads)  # on a shared or small machine 1 thread can be fastest
        args.threads = torch.get_num_threads()  # stored with the run, reused by --resume
        config = _config_from_args(args)
        if "progress" not in given and not sys.stderr.isatty():
            config.progress = False  # a progress bar in a log file is noise; epochs are still printed
        train_set, valid_set = build_datasets_from_args(args, model)
        metadata = {"preset": args.preset, "task": args.task or _task_name(model.sources), "dataset": args.dataset,
                    "training_args": _plain_args(args), **inherited}
        if resolve_device(config.device).type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed window shapes: let cuDNN pick its fastest kernels
        result = train(model, train_set, valid_set, run_dir, config, metadata=metadata, resume=resume)
    except KeyboardInterrupt:
        print(f"interrupted; the checkpoints in {args.resume or args.out} are as last written", file=sys.stderr)
        return 128 + int(signal.SIGINT)
    except WavesepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if created_group:
            dist.destroy_process_group()
    if result.status == "diverged":  # the trainer has said why (config.verbose)
        if not config.verbose:
            print(f"error: {result.message}", file=sys.stderr)
        return 1
    if result.status == "interrupted":
        return 128 + int(result.signal or signal.SIGTERM)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
