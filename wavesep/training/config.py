"""The configuration of a training run and what a run returns.

:class:`TrainConfig` holds the recipe (the paper's by default, see :mod:`wavesep.training.loop`);
:class:`TrainResult` says how a call of :func:`~wavesep.training.loop.train` ended. Plain data only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Optional


HISTORY_NAME = "history.jsonl"
_FLOAT32_MAX = 3.4028234663852886e38
STAGES = ("train", "finetune")


LOSSES = ("mse", "level-mse", "l1", "mse+stft", "sdr")
# Weight of the STFT term in "mse+stft": its gradient is hundreds of times the MSE's on rendered
# windows, so a small weight keeps the MSE the larger pull.
DEFAULT_STFT_WEIGHT = 5e-4


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
        loss: "mse" (the paper's: mean squared error over sources, channels and samples) or
            "level-mse": each window's MSE divided by its mixture's mean square (the sum of its
            targets; floored at -60 dBFS) and multiplied by that of -20 dBFS, so that a window
            counts the same at any level (with plain MSE a window 20 dB quieter weighs 100 times
            less, so level augmentation teaches little about quiet records). Validation always
            reports plain MSE. "l1": the mean absolute error. "mse+stft": MSE plus
            ``stft_weight`` times a multi-resolution STFT loss (auraloss; see
            :class:`wavesep.training.losses.TrainingLoss`). "sdr": a soft-thresholded negative
            SDR per window and source, in dB (every window weighs the same at any level).
        stft_weight: the STFT term's weight in "mse+stft" (> 0; unused by the other losses).
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
    loss: str = "mse"
    stft_weight: float = DEFAULT_STFT_WEIGHT

    def __post_init__(self):
        problems = []
        for name in ("batch_size", "epoch_iterations", "finetune_batch_size", "max_nonfinite", "log_every"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("patience", "finetune_patience", "workers"):
            if int(getattr(self, name)) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("lr", "finetune_lr"):  # the optimiser applies them to float32 weights
            if not 0 < float(getattr(self, name)) <= _FLOAT32_MAX:
                problems.append(f"{name} must be a number > 0 that float32 holds (at most 3.4e38), "
                                f"got {getattr(self, name)}")
        if not float(self.checkpoint_minutes) > 0:
            problems.append(f"checkpoint_minutes must be > 0, got {self.checkpoint_minutes}")
        for name in ("max_epochs", "finetune_max_epochs", "max_steps", "valid_batch_size"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                problems.append(f"{name} must be >= 1 or None, got {value}")
        if self.loss not in LOSSES:
            problems.append(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if not 0 < float(self.stft_weight) < float("inf"):
            problems.append(f"stft_weight must be a finite number > 0, got {self.stft_weight}")
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
