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
Every file is written to a temporary file in the same folder and renamed; the temporaries a killed
run leaves are removed when the next run starts in that folder.

Entry points: :func:`train` (Python API over a model and two datasets) and
:func:`wavesep.training.cli.main` (the command line, ``python train.py --help``;
``torchrun --nproc_per_node=N train.py ...`` for DDP).

At about 700 lines this module is over the package's usual size on purpose: it is one cohesive
thing, the state machine of a run (:class:`_Trainer`: iterations, epochs, stages, checkpoints,
history), whose methods share that state.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
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

from .. import checkpoint
from ..atomic import remove_stale, write_text
from ..errors import CheckpointError, DataError, WavesepError
from ..interrupts import leave_stops_to_the_parent, stops_held
from ..model import WaveUNet
from .config import HISTORY_NAME, STAGES, TrainConfig, TrainResult
from .distributed import _dist_info, resolve_device
from .losses import TrainingLoss
from .rng import _rng_state, _seed_everything, _set_rng_state
from .validation import evaluate


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
        self._loss = TrainingLoss(config.loss, config.stft_weight)
        self.last_path = self.run_dir / checkpoint.LAST_NAME
        self.best_path = self.run_dir / checkpoint.BEST_NAME
        self.history_path = self.run_dir / HISTORY_NAME
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            remove_stale(self.run_dir)  # temporaries a killed run left (older than this process)

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
        self.broken: Optional[str] = None  # why the model can no longer be saved (a diverged run)
        self._saved_step = self.state.step if resume else None  # of the last.pt on disk
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
            worker_init_fn=leave_stops_to_the_parent,  # the stop is ours: see interrupts
        )
        with stops_held():  # the workers start here; see interrupts
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
        self._saved_step = self.state.step
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
        loss = self._loss(est, targets)
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
            # Finite gradients can still make the weights overflow (a learning rate far too
            # high): such weights must never reach a checkpoint. One host sync for all tensors.
            params = [p.detach() for p in self.model.parameters()]
            if not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
                self.broken = (f"the weights became non-finite at step {self.state.step + 1}, after a step "
                               f"with finite gradients (learning rate {self.optimizer.param_groups[0]['lr']:g})")
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
            try:
                est = separate(self.model, mix, rate, device=self.device)  # (S, C, T)
                sdr = bss_eval_v4(targets.permute(0, 2, 1).numpy(), est.permute(0, 2, 1).numpy(), rate)[0]
            except (WavesepError, np.linalg.LinAlgError):
                continue  # a silent source or degenerate signals (or NaN estimates): undefined
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
        if not math.isfinite(loss):
            # The model's outputs overflow (weights blown up by a step with finite gradients) or
            # the validation windows hold NaN/Inf: nothing of this state may reach a checkpoint.
            self.broken = (f"the validation loss is {loss} after step {st.step}: the model's outputs are "
                           "non-finite (or the validation data hold NaN or Inf samples)")
            return
        improved = st.best_loss is None or loss < st.best_loss
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
                    if self.broken is not None:
                        return self._diverged(self.broken)
                    if st.finished:
                        return self._stop_finished()
                    continue
                if cfg.max_steps is not None and st.step >= cfg.max_steps:
                    return self._stop("stopped", f"stopped at step {st.step} (max steps); {resumable}")
                if time_up:
                    return self._stop("stopped", f"stopped at step {st.step} (max minutes); {resumable}")
                loss, nonfinite, signalled, save_now, time_up = self._iteration(stop)
                if self.broken is not None:
                    return self._diverged(self.broken)
                if nonfinite and st.nonfinite_run >= cfg.max_nonfinite:
                    return self._diverged(f"{st.nonfinite_run} non-finite losses or gradients in a row "
                                          f"(last at step {st.step})")
                if save_now:
                    self._save_last()

    def _diverged(self, reason: str) -> TrainResult:
        """Ends a diverged run, saving nothing; the message says which checkpoints remain."""
        self._close_progress()
        kept = [p.name for p in (self.last_path, self.best_path) if p.is_file()]
        if kept:
            where = (f"the checkpoints written before it are kept in {self.run_dir} ({', '.join(kept)}"
                     + (f"; last.pt from step {self._saved_step})" if self._saved_step is not None else ")"))
        else:
            where = f"no checkpoint was written before it, so {self.run_dir} holds none"
        message = (f"training stopped: {reason}; {where}. Try a lower learning rate, or check the data "
                   "for NaN or Inf samples")
        self._record({"type": "stop", "reason": message, "step": self.state.step, "epoch": self.state.epoch,
                      "time": time.time()})
        self._say(message)
        return self._result("diverged", message)

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
