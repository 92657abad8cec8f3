"""Training of Wave-U-Net models: the paper's recipe, exact resume, logging and DDP.

Shape legend: B batch, S sources, C audio channels, T time (samples).

The recipe of Stoller et al. (2018), the default of :class:`TrainConfig`:

- loss: mean squared error averaged over sources, channels and samples;
- stage "train": Adam, learning rate 1e-4, batch 16; one epoch = 2000 iterations; early stopping
  after 20 epochs without improvement of the validation loss;
- stage "finetune": restarts from the best weights of the first stage with a fresh Adam,
  learning rate 1e-5, batch 32, again 20 epochs of patience. The best validation loss carries
  over, so ``best.pt`` only changes when fine-tuning beats the first stage. (The reference code
  continued from the last weights; we restart from the best, the ones early stopping selected.)

Data come from any map-style datasets following the contract of :mod:`wavesep.data`: a training
set whose item ``i`` is a pure function of ``(seed, i)`` and returns ``(mix (C, T_in), targets
(S, C, T_out))``, and a fixed validation set of such windows. Iteration ``k`` of a run reads the
global indices ``[p, p + B)`` where ``p`` counts the windows consumed so far, so the sampling
state of a run is that one counter: a resumed run continues the index sequence, and DDP rank
``r`` of ``W`` takes the ``r``-th slice of ``B / W`` indices (disjoint across ranks; together the
same windows as a single process with the same global batch).

A run directory holds ``last.pt`` (resumable: model, optimiser, stage, early-stopping counters,
sampling position, RNG states), ``best.pt`` (best validation loss), ``history.jsonl`` (one JSON
record per line: "start", "epoch", "nonfinite", "stage", "stop") and TensorBoard event files.
Every file is written to a temporary file in the same folder and renamed.

Entry points: :func:`train` (Python API over a model and two datasets) and :func:`main` (the
command line, ``python train.py --help``; ``torchrun --nproc_per_node=N train.py ...`` for DDP).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader

from .. import checkpoint, grow
from ..data import DEFAULT_OUTPUT_SAMPLES, TASKS
from ..atomic import write_text
from ..errors import CheckpointError, DataError, WavesepError
from ..model import WaveUNet, WaveUNetConfig, presets

HISTORY_NAME = "history.jsonl"
STAGES = ("train", "finetune")


# ---------------------------------------------------------------------- configuration


@dataclass
class TrainConfig:
    """How to train; the defaults are the paper's recipe (see the module docstring).

    Attributes:
        batch_size, lr, patience: global batch (windows per iteration, split across DDP ranks),
            Adam learning rate and early-stopping patience (epochs) of the first stage.
        epoch_iterations: iterations per epoch (validation after each epoch).
        max_epochs: cap on the epochs of the first stage (None: early stopping only).
        finetune: run the fine-tuning stage after the first one.
        finetune_batch_size, finetune_lr, finetune_patience, finetune_max_epochs: the same for
            the fine-tuning stage (finetune_max_epochs None: ``max_epochs``).
        valid_batch_size: windows per validation batch (None: the current training batch).
        valid_tracks: whole validation tracks separated after every epoch for the logged
            BSS Eval v4 SDR (first ``valid_track_seconds`` of each; 0: none). Logged only: early
            stopping uses the validation loss.
        workers: DataLoader worker processes per rank (0: load in the training process).
        seed: seeds the RNGs at the start of a fresh run (the datasets carry their own seed).
        max_steps: stop after this many iterations of the whole run, with a resumable
            checkpoint (a budget for this invocation; None: no limit).
        max_minutes: stop after this many minutes of this invocation, resumable (None: no limit).
        max_nonfinite: stop after this many non-finite losses or gradients in a row.
        checkpoint_minutes: also write ``last.pt`` within an epoch at least this often (minutes).
        device: "auto" (CUDA when available), "cpu", "cuda" or "cuda:K".
        progress: show a tqdm progress bar (rank 0). tensorboard: write TensorBoard scalars.
        verbose: print epoch summaries and events to stderr (rank 0).
        log_every: write the training loss to TensorBoard every this many iterations.
    """

    batch_size: int = 16
    lr: float = 1e-4
    epoch_iterations: int = 2000
    patience: int = 20
    max_epochs: Optional[int] = None
    finetune: bool = True
    finetune_batch_size: int = 32
    finetune_lr: float = 1e-5
    finetune_patience: int = 20
    finetune_max_epochs: Optional[int] = None
    valid_batch_size: Optional[int] = None
    valid_tracks: int = 3
    valid_track_seconds: float = 30.0
    workers: int = 0
    seed: int = 0
    max_steps: Optional[int] = None
    max_minutes: Optional[float] = None
    max_nonfinite: int = 5
    checkpoint_minutes: float = 10.0
    device: str = "auto"
    progress: bool = True
    tensorboard: bool = True
    verbose: bool = True
    log_every: int = 10

    def __post_init__(self):
        problems = []
        for name in ("batch_size", "epoch_iterations", "finetune_batch_size", "max_nonfinite", "log_every"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("patience", "finetune_patience", "workers"):
            if int(getattr(self, name)) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("lr", "finetune_lr", "checkpoint_minutes"):
            if not float(getattr(self, name)) > 0:
                problems.append(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("max_epochs", "finetune_max_epochs", "max_steps", "valid_batch_size"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                problems.append(f"{name} must be >= 1 or None, got {value}")
        if problems:
            raise ValueError("invalid TrainConfig: " + "; ".join(problems))

    def stage_settings(self, stage: int) -> tuple:
        """(global batch, learning rate, patience, max epochs or None) of stage 0 or 1."""
        if stage == 0:
            return self.batch_size, self.lr, self.patience, self.max_epochs
        max_epochs = self.finetune_max_epochs if self.finetune_max_epochs is not None else self.max_epochs
        return self.finetune_batch_size, self.finetune_lr, self.finetune_patience, max_epochs

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    """What :func:`train` did.

    Attributes:
        status: "finished" (early stopping ended the last stage), "stopped" (max_steps or
            max_minutes reached; resumable), "interrupted" (SIGINT/SIGTERM; resumable) or
            "diverged" (max_nonfinite non-finite losses in a row; last good checkpoints kept).
        message: one line for the user. signal: the signal number when interrupted.
        steps, epochs, stage: iterations and epochs of the whole run, stage name at the end.
        best_loss, best_epoch: best validation loss (MSE) and the epoch (1-based) it came from.
        run_dir: the run directory.
        windows_per_second, step_seconds, data_wait_share: means over the iterations of this
            invocation: global training windows per second, seconds per iteration, and the
            share of iteration time spent waiting for the next batch.
    """

    status: str
    message: str
    run_dir: Path
    steps: int = 0
    epochs: int = 0
    stage: str = STAGES[0]
    best_loss: Optional[float] = None
    best_epoch: Optional[int] = None
    signal: Optional[int] = None
    windows_per_second: float = float("nan")
    step_seconds: float = float("nan")
    data_wait_share: float = float("nan")


@dataclass
class _State:
    """The counters of a run (plain data, stored in ``last.pt``)."""

    stage: int = 0
    epoch: int = 0  # epochs completed in the whole run
    stage_epoch: int = 0  # epochs completed in the current stage
    step: int = 0  # iterations done, skipped non-finite ones included
    step_in_epoch: int = 0
    samples: int = 0  # global position in the training-window index sequence
    best_loss: Optional[float] = None
    best_epoch: Optional[int] = None
    bad_epochs: int = 0
    nonfinite_run: int = 0
    nonfinite_total: int = 0
    epoch_loss_sum: float = 0.0
    epoch_loss_count: int = 0
    history_lines: int = 0
    finished: bool = False


# ---------------------------------------------------------------------- small helpers


def _atomic_write_text(path: Path, text: str) -> None:
    write_text(path, text)


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _finite_or_none(x: Optional[float]) -> Optional[float]:
    return None if x is None or not math.isfinite(x) else float(x)


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """The torch device for ``name`` ("auto", "cpu", "cuda", "cuda:K"); under DDP "cuda" means
    the GPU of this process's local rank."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available; use --device cpu")
        if name == "cuda":
            return torch.device("cuda", local_rank % torch.cuda.device_count())
    try:
        return torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None


def _dist_info() -> tuple:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def setup_distributed(device: str = "auto") -> bool:
    """Initialises torch.distributed from the torchrun environment (WORLD_SIZE > 1): NCCL on
    GPUs, Gloo on CPUs. Returns True when this call created the process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available() or dist.is_initialized():
        return False
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
    return True


def _rng_state(device: torch.device) -> dict:
    keys = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        # numpy's state holds an ndarray, which weights_only loading refuses: store a tensor
        "numpy": {"keys": torch.from_numpy(keys[1].astype(np.int64)), "pos": int(keys[2]),
                  "has_gauss": int(keys[3]), "cached_gaussian": float(keys[4])},
        "python": _py_state_to_plain(random.getstate()),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _py_state_to_plain(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


class _BatchIndices:
    """Infinite batch sampler: the global batches ``[p, p + B)``, ``[p + B, p + 2B)``, ... from
    position ``p = start``; this rank takes its ``B / world`` slice of each."""

    def __init__(self, start: int, global_batch: int, rank: int, world: int):
        self.start, self.global_batch, self.rank = start, global_batch, rank
        self.local_batch = global_batch // world

    def __iter__(self):
        p = self.start + self.rank * self.local_batch
        while True:
            yield list(range(p, p + self.local_batch))
            p += self.global_batch


class _StopSignals:
    """Turns the first SIGINT/SIGTERM into a flag that the loop polls between iterations; a
    second SIGINT interrupts at once (the atomic writes keep the last checkpoints intact)."""

    def __init__(self):
        self.signum: Optional[int] = None
        self._previous: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


# ---------------------------------------------------------------------- validation


@torch.no_grad()
def evaluate(
    model: WaveUNet,
    valid_set,
    *,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    workers: int = 0,
) -> dict:
    """Validation loss and a simple global SDR of ``model`` on a fixed set of windows.

    ``valid_set[i]`` is ``(mix (C, T_in), targets (S, C, T_out))``. Under torch.distributed each
    rank scores its share of the windows and the sums are all-reduced, then broadcast from rank
    0, so every rank returns the same numbers.

    Returns a dict: "loss" (MSE over all windows, sources, channels and samples, as the training
    loss), "sdr" ({source: dB}: global SDR = 10 log10(sum target^2 / sum (target - estimate)^2)
    over all the validation windows, no clipping; a cheap progress figure, not BSS Eval), and
    "windows" (number of windows).
    """
    rank, world = _dist_info()
    device = torch.device(device)
    was_training = model.training
    model.eval()
    n = len(valid_set)
    loader = DataLoader(
        valid_set,
        batch_size=batch_size,
        sampler=list(range(rank, n, world)),
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )
    S = model.num_sources
    # float64 sums: [squared error, element count, per-source target energy, per-source error energy]
    sums = torch.zeros(2 + 2 * S, dtype=torch.float64, device=device)
    for mix, targets in loader:
        mix = mix.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        err = (model(mix) - targets).double()  # (B, S, C, T_out)
        sums[0] += err.square().sum()
        sums[1] += err.numel()
        sums[2 : 2 + S] += targets.double().square().sum(dim=(0, 2, 3))
        sums[2 + S :] += err.square().sum(dim=(0, 2, 3))
    if world > 1:
        dist.all_reduce(sums)
        dist.broadcast(sums, 0)  # decisions taken from these numbers must agree bit for bit
    model.train(was_training)
    sums = sums.cpu()
    loss = float(sums[0] / sums[1]) if sums[1] > 0 else float("nan")
    tiny = 1e-20
    sdr = {
        name: 10.0 * math.log10((float(sums[2 + s]) + tiny) / (float(sums[2 + S + s]) + tiny))
        for s, name in enumerate(model.sources)
    }
    return {"loss": loss, "sdr": sdr, "windows": n}


# ---------------------------------------------------------------------- the training loop


class _Trainer:
    def __init__(self, model, train_set, valid_set, run_dir, config, metadata, resume):
        self.config = config
        self.rank, self.world = _dist_info()
        self.is_main = self.rank == 0
        self.run_dir = Path(run_dir)
        self.metadata = dict(metadata or {})
        self.train_set, self.valid_set = train_set, valid_set
        local_rank = int(os.environ.get("LOCAL_RANK", self.rank))
        self.device = resolve_device(config.device, local_rank)
        for stage in (0, 1):
            batch = config.stage_settings(stage)[0]
            if batch % self.world:
                raise ValueError(
                    f"the global batch {batch} of stage {STAGES[stage]!r} is not divisible by the "
                    f"{self.world} processes; choose a multiple"
                )
        self.model = model.to(self.device).train()
        self.last_path = self.run_dir / checkpoint.LAST_NAME
        self.best_path = self.run_dir / checkpoint.BEST_NAME
        self.history_path = self.run_dir / HISTORY_NAME
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)

        self.state = _State()
        training = None
        if resume:
            training = self._read_resume_state()
            self.state = _State(**training["state"])
        else:
            _seed_everything(config.seed + self.rank)
        batch, lr, _, _ = config.stage_settings(self.state.stage)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        if training is not None:
            self.optimizer.load_state_dict(training["optimizer"])
        self.ddp = self.model
        if self.world > 1:
            # DDP broadcasts rank 0's weights (the resumed ones on rank 0) to every rank
            self.ddp = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.history = self._read_history() if self.is_main else []
        self.history = self.history[: self.state.history_lines] if resume else []
        self.writer = self._open_tensorboard(purge_step=self.state.step + 1 if resume else None)
        self._open_batches()
        if training is not None:
            rngs = training["rng"]
            _set_rng_state(rngs[self.rank % len(rngs)], self.device)
        self._shapes_checked = False
        self._t_start = time.monotonic()
        self._t_saved = self._t_start
        self._bar = None
        self._times = {"wait": 0.0, "step": 0.0, "windows": 0, "steps": 0}

    # ------------------------------------------------------------------ setup
    def _read_resume_state(self) -> dict:
        payload = [None]
        if self.is_main:
            ckpt = checkpoint.load(self.last_path)
            training = ckpt.get("training")
            if not training or "state" not in training:
                raise CheckpointError(f"{self.last_path}: no training state; it cannot be resumed")
            if ckpt["config"] != self.model.config.to_dict():
                raise CheckpointError(
                    f"{self.last_path}: its model configuration differs from the model given to resume"
                )
            self.model.load_state_dict(ckpt["state_dict"])
            payload = [training]
        if self.world > 1:
            dist.broadcast_object_list(payload, src=0, device=self._collective_device())
        return payload[0]

    def _collective_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")

    def _read_history(self) -> list:
        if not self.history_path.is_file():
            return []
        return self.history_path.read_text(encoding="utf-8").splitlines()

    def _open_tensorboard(self, purge_step):
        if not (self.is_main and self.config.tensorboard):
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            warnings.warn(
                "TensorBoard logging is off: the 'tensorboard' package is not installed "
                "(pip install tensorboard); history.jsonl is still written",
                stacklevel=3,
            )
            return None
        return SummaryWriter(log_dir=str(self.run_dir), purge_step=purge_step)

    def _open_batches(self) -> None:
        batch = self.config.stage_settings(self.state.stage)[0]
        generator = torch.Generator().manual_seed(self.config.seed)  # keeps the global RNG untouched
        loader = DataLoader(
            self.train_set,
            batch_sampler=_BatchIndices(self.state.samples, batch, self.rank, self.world),
            num_workers=self.config.workers,
            pin_memory=self.device.type == "cuda",
            generator=generator,
        )
        self._batches = iter(loader)

    # ------------------------------------------------------------------ logging
    def _say(self, message: str) -> None:
        if self.is_main and self.config.verbose:
            from tqdm import tqdm

            tqdm.write(message, file=sys.stderr)

    def _record(self, record: dict) -> None:
        if not self.is_main:
            return
        self.history.append(json.dumps(record, sort_keys=True))
        self.state.history_lines = len(self.history)
        _atomic_write_text(self.history_path, "\n".join(self.history) + "\n")

    def _scalar(self, tag: str, value: float, step: int) -> None:
        if self.writer is not None and value is not None and math.isfinite(value):
            self.writer.add_scalar(tag, value, step)

    def _progress(self):
        if not (self.is_main and self.config.progress):
            return None
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.config.epoch_iterations,
                initial=self.state.step_in_epoch,
                desc=f"epoch {self.state.epoch + 1} ({STAGES[self.state.stage]})",
                unit="it",
                dynamic_ncols=True,
                leave=False,
            )
        return self._bar

    def _close_progress(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint_metadata(self) -> dict:
        meta = dict(self.metadata)
        meta.update(
            {
                "stage": STAGES[self.state.stage],
                "epoch": self.state.epoch,
                "step": self.state.step,
                "best_valid_loss": _finite_or_none(self.state.best_loss),
                "best_epoch": self.state.best_epoch,
                "train_config": self.config.to_dict(),
            }
        )
        return meta

    def _save_last(self) -> None:
        """Writes the resumable ``last.pt``; a collective call under DDP (RNG states of all ranks)."""
        rng = _rng_state(self.device)
        rngs = [rng]
        if self.world > 1:
            rngs = [None] * self.world
            dist.all_gather_object(rngs, _to_cpu(rng))
        if self.is_main:
            training = {
                "state": dataclasses.asdict(self.state),
                "config": self.config.to_dict(),
                "optimizer": _to_cpu(self.optimizer.state_dict()),
                "rng": [_to_cpu(r) for r in rngs],
                "world_size": self.world,
            }
            checkpoint.save(self.last_path, self.model, self._checkpoint_metadata(), training)
        self._t_saved = time.monotonic()

    def _save_best(self, valid: dict) -> None:
        if self.is_main:
            summary = {"epoch": self.state.epoch, "step": self.state.step, "stage": STAGES[self.state.stage],
                       "valid_loss": valid["loss"], "valid_sdr_global": valid["sdr"]}
            checkpoint.save(self.best_path, self.model, self._checkpoint_metadata(), {"summary": summary})

    def _load_best_weights(self) -> None:
        """The first stage's best weights, on every rank, for the fine-tuning stage."""
        have = [self.best_path.is_file()] if self.is_main else [None]
        if self.world > 1:
            dist.broadcast_object_list(have, src=0, device=self._collective_device())
        if not have[0]:
            return  # no finite validation loss yet: fine-tune from the current weights
        if self.is_main:
            self.model.load_state_dict(checkpoint.load(self.best_path)["state_dict"])
        if self.world > 1:
            with torch.no_grad():
                for tensor in self.model.state_dict().values():
                    dist.broadcast(tensor, 0)

    # ------------------------------------------------------------------ one iteration
    def _check_shapes(self, mix: Tensor, targets: Tensor, est: Optional[Tensor]) -> None:
        model = self.model
        if est is None:
            if mix.dim() != 3 or mix.shape[1] != model.channels or not model.is_valid_length(mix.shape[-1]):
                lower, upper = model.nearest_valid_lengths(mix.shape[-1]) if mix.dim() == 3 else (None, None)
                raise DataError(
                    f"training mixtures of shape {tuple(mix.shape)} do not fit the model: expected "
                    f"(batch, {model.channels}, T_in) with a valid T_in (nearest: {lower}, {upper}); "
                    "build the datasets with this model (wavesep.data.build_datasets)"
                )
        elif targets.shape != est.shape:
            raise DataError(
                f"training targets of shape {tuple(targets.shape)} do not match the model output "
                f"{tuple(est.shape)} (batch, sources {list(model.sources)}, channels, T_out); "
                "build the datasets with this model and task"
            )

    def _sync(self, values: list) -> Tensor:
        flags = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.world > 1:
            dist.all_reduce(flags)
        return flags.cpu()

    def _step(self, stop: _StopSignals) -> tuple:
        """One iteration. Returns (mean loss over ranks, non-finite?, signal on any rank?, save now?,
        time up?, global windows per second)."""
        t0 = time.perf_counter()
        mix, targets = next(self._batches)
        mix = mix.to(self.device, non_blocking=True)  # (B_local, C, T_in)
        targets = targets.to(self.device, non_blocking=True)  # (B_local, S, C, T_out)
        t_data = time.perf_counter() - t0
        if not self._shapes_checked:
            self._check_shapes(mix, targets, None)
        est = self.ddp(mix)  # (B_local, S, C, T_out)
        if not self._shapes_checked:
            self._check_shapes(mix, targets, est)
            self._shapes_checked = True
        loss = F.mse_loss(est, targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        # After DDP's all-reduce a non-finite loss on any rank makes the gradients non-finite on
        # all ranks; the loss itself can overflow with finite gradients, hence both checks.
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        grad_ok = bool(torch.isfinite(torch.stack([g.abs().sum() for g in grads]).sum())) if grads else True
        now = time.monotonic()
        save_now = self.is_main and now - self._t_saved >= self.config.checkpoint_minutes * 60
        time_up = (
            self.is_main
            and self.config.max_minutes is not None
            and now - self._t_start >= self.config.max_minutes * 60
        )
        flags = self._sync([loss.item(), 0.0 if grad_ok else 1.0, float(stop.signum is not None),
                            float(save_now), float(time_up)])
        loss_mean = float(flags[0]) / self.world
        nonfinite = not math.isfinite(loss_mean) or flags[1] > 0
        if nonfinite:
            self.optimizer.zero_grad(set_to_none=True)
        else:
            self.optimizer.step()
        dt = time.perf_counter() - t0
        batch = self.config.stage_settings(self.state.stage)[0]
        self._times["wait"] += t_data
        self._times["step"] += dt
        self._times["windows"] += batch
        self._times["steps"] += 1
        return loss_mean, nonfinite, flags[2] > 0, flags[3] > 0, flags[4] > 0, batch / dt

    # ------------------------------------------------------------------ epochs and stages
    def _track_sdr(self) -> dict:
        """{source: dB}: BSS Eval v4 SDR of the first few whole validation tracks (median over
        1 s frames per track, then median over tracks). Rank 0 only; logged, never decisive."""
        cfg = self.config
        tracks = getattr(self.valid_set, "tracks", None)
        if not self.is_main or cfg.valid_tracks <= 0 or tracks is None:
            return {}
        from ..apply import separate
        from ..metrics import bss_eval_v4

        rate = self.model.sample_rate
        keep = max(1, int(cfg.valid_track_seconds * rate))
        medians = {name: [] for name in self.model.sources}
        for _, mix, targets in tracks(cfg.valid_tracks):
            mix, targets = mix[..., :keep], targets[..., :keep]  # (C, T), (S, C, T)
            est = separate(self.model, mix, rate, device=self.device)  # (S, C, T)
            try:
                sdr = bss_eval_v4(targets.permute(0, 2, 1).numpy(), est.permute(0, 2, 1).numpy(), rate)[0]
            except (WavesepError, np.linalg.LinAlgError):
                continue  # a silent source or degenerate signals: BSS Eval is undefined there
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames
                for s, name in enumerate(self.model.sources):
                    medians[name].append(float(np.nanmedian(sdr[s])))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return {name: float(np.nanmedian(v)) for name, v in medians.items() if v}

    def _end_epoch(self) -> None:
        self._close_progress()
        st, cfg = self.state, self.config
        batch, lr, patience, max_epochs = cfg.stage_settings(st.stage)
        valid = evaluate(
            self.model,
            self.valid_set,
            batch_size=cfg.valid_batch_size or max(1, batch // self.world),
            device=self.device,
            workers=cfg.workers,
        )
        loss = valid["loss"]
        improved = math.isfinite(loss) and (st.best_loss is None or loss < st.best_loss)
        st.epoch += 1
        st.stage_epoch += 1
        if improved:
            st.best_loss, st.best_epoch, st.bad_epochs = loss, st.epoch, 0
        else:
            st.bad_epochs += 1
        train_loss = st.epoch_loss_sum / st.epoch_loss_count if st.epoch_loss_count else float("nan")
        record = {
            "type": "epoch",
            "epoch": st.epoch,
            "stage": STAGES[st.stage],
            "stage_epoch": st.stage_epoch,
            "step": st.step,
            "lr": lr,
            "batch_size": batch,
            "train_loss": _finite_or_none(train_loss),
            "valid_loss": _finite_or_none(loss),
            "valid_sdr_global_db": {k: _finite_or_none(v) for k, v in valid["sdr"].items()},
            "valid_windows": valid["windows"],
            "best_loss": _finite_or_none(st.best_loss),
            "improved": improved,
            "bad_epochs": st.bad_epochs,
            "nonfinite_total": st.nonfinite_total,
            "time": time.time(),
        }
        track_sdr = self._track_sdr()
        if track_sdr:
            record["valid_track_sdr_db"] = {k: _finite_or_none(v) for k, v in track_sdr.items()}
        self._record(record)
        for name, value in track_sdr.items():
            self._scalar(f"valid/sdr_bss_v4_tracks/{name}", value, st.step)
        self._scalar("train/epoch_loss", train_loss, st.step)
        self._scalar("valid/loss", loss, st.step)
        self._scalar("lr", lr, st.step)
        for name, value in valid["sdr"].items():
            # a global SDR over all validation windows, not BSS Eval's framewise median
            self._scalar(f"valid/sdr_global_windows/{name}", value, st.step)
        self._say(
            f"epoch {st.epoch} ({STAGES[st.stage]}): train loss {train_loss:.6g}, valid loss {loss:.6g}"
            + (" (best)" if improved else f" ({st.bad_epochs}/{patience} without improvement)")
            + ", valid SDR (global, windows) "
            + ", ".join(f"{k} {v:.2f} dB" for k, v in valid["sdr"].items())
        )
        if improved:
            self._save_best(valid)
        st.step_in_epoch, st.epoch_loss_sum, st.epoch_loss_count = 0, 0.0, 0
        stage_done = st.bad_epochs >= patience or (max_epochs is not None and st.stage_epoch >= max_epochs)
        if stage_done:
            reason = "early stopping" if st.bad_epochs >= patience else f"max epochs ({max_epochs})"
            if st.stage == 0 and cfg.finetune:
                self._start_finetune(reason)
            else:
                st.finished = True
                self._record({"type": "stop", "reason": f"finished ({reason})", "step": st.step,
                              "epoch": st.epoch, "time": time.time()})
        if self.writer is not None:
            self.writer.flush()
        self._save_last()

    def _start_finetune(self, reason: str) -> None:
        st = self.state
        self._load_best_weights()
        st.stage, st.stage_epoch, st.bad_epochs = 1, 0, 0
        batch, lr, _, _ = self.config.stage_settings(1)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self._record({"type": "stage", "stage": STAGES[1], "reason": reason, "step": st.step,
                      "epoch": st.epoch, "from_best_epoch": st.best_epoch, "time": time.time()})
        self._say(f"{reason} after epoch {st.epoch}: fine-tuning from the best weights (epoch "
                  f"{st.best_epoch}) with batch {batch}, lr {lr:g}")
        self._open_batches()

    # ------------------------------------------------------------------ main loop
    def _result(self, status: str, message: str, signum: Optional[int] = None) -> TrainResult:
        t = self._times
        return TrainResult(
            status=status,
            message=message,
            run_dir=self.run_dir,
            steps=self.state.step,
            epochs=self.state.epoch,
            stage=STAGES[self.state.stage],
            best_loss=self.state.best_loss,
            best_epoch=self.state.best_epoch,
            signal=signum,
            windows_per_second=t["windows"] / t["step"] if t["step"] else float("nan"),
            step_seconds=t["step"] / t["steps"] if t["steps"] else float("nan"),
            data_wait_share=t["wait"] / t["step"] if t["step"] else float("nan"),
        )

    def _stop(self, status: str, message: str, signum=None) -> TrainResult:
        self._close_progress()
        self._record({"type": "stop", "reason": message, "step": self.state.step, "epoch": self.state.epoch,
                      "time": time.time()})
        if status in ("stopped", "interrupted"):
            self._save_last()
        self._say(message)
        return self._result(status, message, signum)

    def run(self) -> TrainResult:
        st, cfg = self.state, self.config
        if st.finished:
            return self._result("finished", f"{self.run_dir}: this run has already finished")
        self._record({"type": "start", "step": st.step, "epoch": st.epoch, "stage": STAGES[st.stage],
                      "world_size": self.world, "device": str(self.device), "config": cfg.to_dict(),
                      "time": time.time()})
        batch, lr, patience, _ = cfg.stage_settings(st.stage)
        self._say(
            f"{'resuming' if st.step else 'starting'} {self.run_dir} at iteration {st.step} "
            f"(stage {STAGES[st.stage]}, epoch {st.epoch + 1}) on {self.world} x {self.device}: "
            f"{self.model.num_parameters():,} parameters, global batch {batch}, lr {lr:g}, "
            f"{cfg.epoch_iterations} iterations per epoch, patience {patience}"
        )
        resumable = f"continue with --resume {self.run_dir}"
        with _StopSignals() as stop:
            signalled = time_up = False
            while True:
                if signalled:
                    name = signal.Signals(stop.signum).name if stop.signum else "a signal on another rank"
                    return self._stop("interrupted", f"stopped by {name} at step {st.step}; {resumable}",
                                      stop.signum or signal.SIGTERM)
                if st.step_in_epoch >= cfg.epoch_iterations:
                    self._end_epoch()
                    if st.finished:
                        return self._stop_finished()
                    continue
                if cfg.max_steps is not None and st.step >= cfg.max_steps:
                    return self._stop("stopped", f"stopped at step {st.step} (max steps); {resumable}")
                if time_up:
                    return self._stop("stopped", f"stopped at step {st.step} (max minutes); {resumable}")
                loss, nonfinite, signalled, save_now, time_up = self._iteration(stop)
                if nonfinite and st.nonfinite_run >= cfg.max_nonfinite:
                    self._close_progress()
                    message = (
                        f"training stopped: {st.nonfinite_run} non-finite losses or gradients in a row "
                        f"(last at step {st.step}); the last good checkpoints are kept in {self.run_dir}. "
                        "Try a lower learning rate, or check the data for NaN or Inf samples"
                    )
                    self._record({"type": "stop", "reason": message, "step": st.step, "epoch": st.epoch,
                                  "time": time.time()})
                    self._say(message)
                    return self._result("diverged", message)
                if save_now:
                    self._save_last()

    def _stop_finished(self) -> TrainResult:
        self._close_progress()
        st = self.state
        best = (f"best validation loss {st.best_loss:.6g} at epoch {st.best_epoch}" if st.best_loss is not None
                else "no finite validation loss")
        message = f"finished after {st.epoch} epochs ({st.step} iterations); {best}"
        self._say(message)
        return self._result("finished", message)

    def _iteration(self, stop: _StopSignals) -> tuple:
        st = self.state
        bar = self._progress()
        loss, nonfinite, signalled, save_now, time_up, rate = self._step(stop)
        st.step += 1
        st.step_in_epoch += 1
        st.samples += self.config.stage_settings(st.stage)[0]
        if nonfinite:
            st.nonfinite_run += 1
            st.nonfinite_total += 1
            self._record({"type": "nonfinite", "step": st.step, "epoch": st.epoch + 1, "loss": str(loss),
                          "in_a_row": st.nonfinite_run, "time": time.time()})
            self._say(f"step {st.step}: non-finite loss or gradient ({loss}); step skipped "
                      f"({st.nonfinite_run} in a row, the run stops at {self.config.max_nonfinite})")
        else:
            st.nonfinite_run = 0
            st.epoch_loss_sum += loss
            st.epoch_loss_count += 1
            if st.step % self.config.log_every == 0:
                self._scalar("train/loss", loss, st.step)
                self._scalar("train/windows_per_s", rate, st.step)
        if bar is not None:
            running = st.epoch_loss_sum / st.epoch_loss_count if st.epoch_loss_count else float("nan")
            bar.set_postfix(loss=f"{running:.5g}", win_s=f"{rate:.1f}", refresh=False)
            bar.update(1)
        return loss, nonfinite, signalled, save_now, time_up


def train(
    model: WaveUNet,
    train_set,
    valid_set,
    run_dir: str | os.PathLike,
    config: Optional[TrainConfig] = None,
    *,
    metadata: Optional[dict] = None,
    resume: bool = False,
) -> TrainResult:
    """Trains ``model`` with the paper's two-stage recipe (or ``config``), writing ``run_dir``.

    Args:
        model: a :class:`WaveUNet` (moved to the configured device and trained in place).
        train_set: map-style dataset; item ``i`` is ``(mix (C, T_in), targets (S, C, T_out))``
            float32, a pure function of ``i`` (see :mod:`wavesep.data`); it is indexed from 0 up,
            never by ``len``.
        valid_set: map-style dataset of fixed validation windows of the same shapes.
        run_dir: folder for ``last.pt``, ``best.pt``, ``history.jsonl`` and TensorBoard events.
        config: :class:`TrainConfig` (default: the paper's recipe).
        metadata: plain data stored in every checkpoint's metadata (preset, task, arguments...).
        resume: continue the run in ``run_dir`` from its ``last.pt`` exactly where it stopped;
            ``model`` must have the checkpoint's configuration (its weights are replaced).

    Under torch.distributed (initialised by the caller, e.g. :func:`setup_distributed`) the
    model is wrapped in DistributedDataParallel, the global batch is split across ranks, and
    only rank 0 writes files and logs. Returns a :class:`TrainResult` (never raises for
    divergence or signals: see its ``status``).
    """
    config = config or TrainConfig()
    trainer = _Trainer(model, train_set, valid_set, run_dir, config, metadata, resume)
    try:
        return trainer.run()
    finally:
        trainer._close_progress()
        trainer._batches = None  # shuts the DataLoader workers down
        if trainer.writer is not None:
            trainer.writer.close()


# ---------------------------------------------------------------------- command line

# Options that define the run: fixed once it has started, so --resume refuses to change them.
_RUN_DEFINING = ("preset", "task", "sources", "seed", "batch_size", "lr", "epoch_iterations", "output_samples",
                 "output_seconds", "augment", "remix", "finetune_batch_size", "finetune_lr", "is_wav", "init_from")

# Options of one invocation: a resumed run takes them from its own command line (or defaults).
_PER_INVOCATION = ("max_steps", "max_minutes", "device", "progress", "threads")

_DEFAULTS = {
    "preset": "M4", "task": None, "sources": None, "out": None, "resume": None, "device": "auto",
    "output_samples": None, "output_seconds": None, "is_wav": False, "cache_dir": None,
    "valid_windows": None, "augment": True, "remix": False, "seed": 0, "batch_size": 16, "lr": 1e-4,
    "epoch_iterations": 2000, "patience": 20, "max_epochs": None, "finetune": True,
    "finetune_batch_size": 32, "finetune_lr": 1e-5, "finetune_patience": 20,
    "finetune_max_epochs": None, "valid_batch_size": None, "valid_tracks": 3,
    "valid_track_seconds": 30.0, "workers": 2, "max_steps": None,
    "max_minutes": None, "max_nonfinite": 5, "checkpoint_minutes": 10.0, "progress": True,
    "tensorboard": True, "musdb": None, "stems": None, "synthetic": None, "threads": None, "init_from": None,
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
    data.add_argument("--valid-windows", type=int, metavar="N", help="number of validation windows")
    data.add_argument("--augment", action=argparse.BooleanOptionalAction,
                      help="random source gains U(0.7, 1.0), mixture rebuilt as the sum of the stems "
                      "(the paper's; other presets also swap channels and flip signs) (default: on)")
    data.add_argument("--remix", action=argparse.BooleanOptionalAction,
                      help="with --augment, also build windows from stems of different tracks (default: off)")

    run = p.add_argument_group("run")
    run.add_argument("--preset", choices=presets.names(), help="model preset (default M4)")
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
                     "levels and the same widths (grown; see wavesep.grow)")

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
        parser.error("give the training data: --musdb ROOT, --stems DIR or --synthetic ROOT")
    if not args["out"] and not args["resume"]:
        parser.error("give --out RUN_DIR (a new run) or --resume RUN_DIR")
    if args["out"] and args["resume"] and Path(args["out"]) != Path(args["resume"]):
        parser.error("--resume continues in its own run directory; leave out --out")
    return argparse.Namespace(**args), set(given)


def _config_from_args(args) -> TrainConfig:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in names})


def _output_samples(args, sample_rate: int) -> int:
    if args.output_seconds is not None:
        return max(1, int(round(args.output_seconds * sample_rate)))
    return args.output_samples or DEFAULT_OUTPUT_SAMPLES


def build_datasets_from_args(args, model: WaveUNet) -> tuple:
    """(train, valid) datasets for the command-line arguments, via wavesep.data."""
    from .. import data

    # Every rank builds its datasets; the decode cache is written atomically, so concurrent
    # builders are safe (a second run, or ranks after the first, hit the cache).
    augment = args.augment
    if augment and getattr(args, "remix", False):
        augment = data.AugmentConfig(remix=True)
    elif augment and str(args.preset).startswith("M"):
        # The paper's presets get the paper's augmentation: source gains U(0.7, 1.0) only.
        augment = data.AugmentConfig.paper()
    kwargs = {"is_wav": args.is_wav, "seed": args.seed, "cache_dir": args.cache_dir, "augment": augment,
              "output_samples": _output_samples(args, model.sample_rate), "progress": _dist_info()[0] == 0}
    if args.valid_windows is not None:
        kwargs["valid_windows"] = args.valid_windows
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


def _prepare(args, given: set) -> tuple:
    """(model, run directory, resume?) for a new or resumed run; may change ``args`` in place."""
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
        return model, run_dir, True
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
    if args.init_from:
        source = checkpoint.load_model(args.init_from)  # CheckpointError names the file
        try:
            grow.init_from(model, source)
        except ValueError as exc:
            raise CheckpointError(f"{args.init_from}: {exc}") from None
    return model, run_dir, False


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
        if args.threads:
            torch.set_num_threads(args.threads)  # on a shared or small machine 1 thread can be fastest
        created_group = setup_distributed(args.device)
        model, run_dir, resume = _prepare(args, given)
        config = _config_from_args(args)
        if "progress" not in given and not sys.stderr.isatty():
            config.progress = False  # a progress bar in a log file is noise; epochs are still printed
        train_set, valid_set = build_datasets_from_args(args, model)
        metadata = {"preset": args.preset, "task": args.task or _task_name(model.sources), "dataset": args.dataset,
                    "training_args": _plain_args(args)}
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
    if result.status == "diverged":
        print(f"error: {result.message}", file=sys.stderr)
        return 1
    if result.status == "interrupted":
        return 128 + int(result.signal or signal.SIGTERM)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
