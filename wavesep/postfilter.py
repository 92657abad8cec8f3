"""Post-filters: whole-signal refinements of a separation's estimates, applied after the model.

"ratio-mask" re-estimates every source from the mixture through a time-frequency mask built from
the estimates themselves: with E_s the STFT of estimate s and X that of the mixture (per channel),

    mask_s = |E_s| / sum_j |E_j|,        estimate'_s = iSTFT(mask_s * X).

The masks add up to one, so the refined estimates still add up to the mixture (up to the
STFT round trip, ~1e-7). The mask keeps what the waveform network got right, where each source
dominates, and removes the broadband error it spreads over time-frequency regions where the
mixture holds none of that source: on the bundled default model's 50 held-out rendered songs
it raises the median vocals SAR by 1.3 dB and the SDR by 0.20 dB (README model card).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

POSTFILTERS = ("none", "ratio-mask")
CHOICES = ("auto",) + POSTFILTERS  # what the command lines accept: "auto" = the model's choice
N_FFT = 8192  # samples (186 ms at 44.1 kHz), hop N_FFT / 4. Rendered corpus: 1024 < 2048 < 4096 on
# 7 test songs; on the 14 validation songs 8192 beat 4096 on 13 (+0.05 dB vocals SDR, mean), 16384
# gained no more, and mask exponents 0.5 / 0.75 / 1.5 / 2 (|E|^a / sum |E|^a) all lost to 1


def resolve(name: Optional[str], metadata: Optional[dict] = None) -> str:
    """The post-filter to use: ``name``, or for None / "auto" the one a model's metadata names
    (key "postfilter"; "none" if it names none). ValueError for unknown names."""
    if name in (None, "auto"):
        name = (metadata or {}).get("postfilter", "none")
    if name not in POSTFILTERS:
        raise ValueError(f"postfilter must be 'auto' or one of {POSTFILTERS}, got {name!r}")
    return name


def ratio_mask(mix: Tensor, estimates: Tensor, n_fft: int = N_FFT, eps: float = 1e-8) -> Tensor:
    """Refines ``estimates`` (S, C, T) of ``mix`` (C, T) (float, same rate, any rate) with the
    magnitude-ratio mask of the module docstring. Returns (S, C, T) float32 on the CPU.

    Works channel by channel, so memory is about (S + 2) complex spectrograms of one channel.
    Where every estimate is silent (sum of magnitudes < eps) the mixture is split equally.
    Signals shorter than ``n_fft`` samples are returned unchanged.
    """
    if mix.dim() != 2 or estimates.dim() != 3 or estimates.shape[1:] != mix.shape:
        raise ValueError(f"expected mix (C, T) and estimates (S, C, T), got {tuple(mix.shape)} and "
                         f"{tuple(estimates.shape)}")
    mix = mix.detach().to("cpu", torch.float32)
    estimates = estimates.detach().to("cpu", torch.float32)
    sources, channels, length = estimates.shape
    if length < n_fft:
        return estimates.clone()
    window = torch.hann_window(n_fft)

    def stft(x: Tensor) -> Tensor:  # (..., T) -> (..., F, N)
        return torch.stft(x, n_fft, n_fft // 4, window=window, return_complex=True)

    out = torch.empty_like(estimates)
    for c in range(channels):
        magnitudes = stft(estimates[:, c]).abs()  # (S, F, N)
        total = magnitudes.sum(dim=0, keepdim=True)  # (1, F, N)
        masks = torch.where(total > eps, magnitudes / total.clamp_min(eps), torch.full_like(magnitudes, 1 / sources))
        spectrum = stft(mix[c]) * masks  # (S, F, N)
        out[:, c] = torch.istft(spectrum, n_fft, n_fft // 4, window=window, length=length)
    return out
