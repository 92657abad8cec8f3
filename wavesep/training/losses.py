"""Training losses: plain MSE (the paper's), a level-weighted MSE, L1, MSE with a
multi-resolution STFT term (auraloss), and a soft-thresholded SDR.

Shape legend: B batch, S sources, C audio channels, T time (samples).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import WavesepError
from .config import DEFAULT_STFT_WEIGHT, LOSSES

REFERENCE_POWER = 10.0 ** (-20.0 / 10.0)  # mean square of a -20 dBFS RMS signal
POWER_FLOOR = 10.0 ** (-60.0 / 10.0)  # -60 dBFS: windows quieter than this are weighed as if at it
SDR_TAU = 1e-3  # soft threshold of the "sdr" loss: caps the SDR near 30 dB; silent targets vs -30 dB of the mixture
FLOOR_EPS = 1e-12  # keeps the "sdr" loss finite on an all-silent window
# (FFT size, hop, window length) of auraloss's MultiResolutionSTFTLoss defaults
_RESOLUTIONS = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))


class TrainingLoss:
    """The training loss of ``estimates`` against ``targets``, both (B, S, C, T), as a scalar.

    Kinds:
        "mse": the mean squared error over every element (the paper's).
        "level-mse": each window's MSE times REFERENCE_POWER / P_b, where P_b is the mean square
            of the window's mixture (the sum of its targets over S, i.e. the mixture when the
            sources cover it), floored at POWER_FLOOR: every window weighs as if it were at
            -20 dBFS RMS, so quiet windows are not drowned by loud ones. Equal to "mse" when every
            window is at -20 dBFS.
        "l1": the mean absolute error over every element.
        "mse+stft": "mse" plus ``stft_weight`` times auraloss's MultiResolutionSTFTLoss (spectral
            convergence + L1 of log magnitudes; auraloss's default resolutions, FFT sizes
            1024/2048/512, less those whose half FFT does not fit in T) over every (window,
            source) pair, its channels as a batch. The log-magnitude
            term weighs every frequency band and level alike, where MSE is ruled by the loud low
            bands; needs the ``auraloss`` package (extra ``train``).
        "sdr": the mean over windows and sources of the negative, soft-thresholded SDR in dB,
            ``10 log10(|t - e|^2 + tau |t|^2 + tau |x|^2) - 10 log10(|t|^2 + tau |x|^2)`` with sums
            over channels and time, x the window's mixture (the sum of its targets over S) and
            tau = SDR_TAU (1e-3): -SDR capped near 30 dB for an audible target (a perfect estimate
            gives 10 log10(tau (|t|^2 + |x|^2) / (|t|^2 + tau |x|^2))), and for a silent
            one 10 log10(1 + |e|^2 / (tau |x|^2)), which still punishes what leaks into it (a plain
            SDR loss, e.g. auraloss's SNRLoss, has no floor: a window whose vocals are nearly
            silent scores tens of dB below zero and rules the mean). Every window weighs the same
            at any level, as in BSS Eval's frame-wise SDR.
    """

    def __init__(self, kind: str = "mse", stft_weight: float = DEFAULT_STFT_WEIGHT):
        if kind not in LOSSES:
            raise ValueError(f"unknown loss {kind!r}; known: {', '.join(LOSSES)}")
        if not stft_weight > 0:
            raise ValueError(f"stft_weight must be > 0, got {stft_weight}")
        self.kind, self.stft_weight = kind, float(stft_weight)
        self._stft, self._resolutions = None, None
        if kind == "mse+stft":  # built now, so a missing auraloss fails before the first step
            self._stft, self._resolutions = _mrstft(_RESOLUTIONS), _RESOLUTIONS

    def __call__(self, estimates: Tensor, targets: Tensor) -> Tensor:
        if self.kind == "mse":
            return F.mse_loss(estimates, targets)
        if self.kind == "l1":
            return F.l1_loss(estimates, targets)
        if self.kind == "sdr":
            error = (estimates - targets).pow(2).flatten(2).sum(-1)  # (B, S)
            energy = targets.detach().pow(2).flatten(2).sum(-1)  # (B, S)
            mixture = targets.detach().sum(dim=1).pow(2).flatten(1).sum(-1, keepdim=True)  # (B, 1)
            floor = SDR_TAU * mixture + FLOOR_EPS
            return (10.0 * torch.log10(error + SDR_TAU * energy + floor) - 10.0 * torch.log10(energy + floor)).mean()
        if self.kind == "level-mse":
            per_window = (estimates - targets).pow(2).flatten(1).mean(dim=1)  # (B,)
            power = targets.detach().sum(dim=1).pow(2).flatten(1).mean(dim=1)  # (B,)
            return (per_window * (REFERENCE_POWER / power.clamp_min(POWER_FLOOR))).mean()
        # mse+stft: auraloss folds (B*S, C, T) into (B*S*C) single-channel signals
        fits = tuple(r for r in _RESOLUTIONS if r[0] // 2 < estimates.shape[-1])
        if not fits:
            raise WavesepError(f"the loss 'mse+stft' needs training windows of more than "
                               f"{min(r[0] for r in _RESOLUTIONS) // 2} samples, got {estimates.shape[-1]}")
        if fits != self._resolutions:
            self._stft, self._resolutions = _mrstft(fits), fits
        stft = self._stft(estimates.flatten(0, 1).contiguous(), targets.flatten(0, 1).contiguous())
        return F.mse_loss(estimates, targets) + self.stft_weight * stft


def training_loss(estimates: Tensor, targets: Tensor, kind: str = "mse",
                  stft_weight: float = DEFAULT_STFT_WEIGHT) -> Tensor:
    """``TrainingLoss(kind, stft_weight)(estimates, targets)``: estimates and targets (B, S, C, T),
    a scalar back. Build a :class:`TrainingLoss` once to reuse the STFT windows."""
    return TrainingLoss(kind, stft_weight)(estimates, targets)


def _mrstft(resolutions):
    try:
        from auraloss.freq import MultiResolutionSTFTLoss
    except ImportError as exc:  # an optional dependency
        raise WavesepError("the loss 'mse+stft' needs the auraloss package: pip install auraloss "
                           "(or wavesep[train])") from exc
    fft, hop, win = (list(v) for v in zip(*resolutions))
    return MultiResolutionSTFTLoss(fft_sizes=fft, hop_sizes=hop, win_lengths=win)
