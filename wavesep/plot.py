"""Pictures of separations: stacked spectrograms of a mixture and its estimated stems.

matplotlib is imported lazily with the non-interactive Agg backend, so importing wavesep never
needs a display.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from .atomic import atomic_path


def log_spectrogram(wav: torch.Tensor, sample_rate: int, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    """Power spectrogram in dB of the channel mean of ``wav`` (C, T) or (T,).

    Returns (n_fft // 2 + 1, frames) float32, 10 log10(|X|^2 + 1e-10) with a Hann window.
    """
    x = wav.detach().float().cpu()
    if x.dim() == 2:
        x = x.mean(dim=0)
    if x.shape[-1] < n_fft:
        x = torch.nn.functional.pad(x, (0, n_fft - x.shape[-1]))
    spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), return_complex=True)
    return (10 * torch.log10(spec.abs() ** 2 + 1e-10)).numpy().astype(np.float32)


def save_spectrograms(
    path: str | os.PathLike,
    mixture: torch.Tensor,
    stems: Mapping[str, torch.Tensor],
    sample_rate: int,
    title: str = "",
    dynamic_range_db: float = 80.0,
) -> Path:
    """Writes a PNG with the mixture's and each stem's spectrogram one above the other.

    ``mixture`` and every stem are (C, T) tensors at ``sample_rate`` (Hz). All panels share one
    colour scale (the mixture's peak down to ``dynamic_range_db`` below it), so levels compare.
    The file is written to a temporary name and renamed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("mixture", mixture)] + list(stems.items())
    specs = [log_spectrogram(w, sample_rate) for _, w in panels]
    top = float(specs[0].max())
    duration = mixture.shape[-1] / sample_rate
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.2 * len(panels)), sharex=True, squeeze=False)
    for ax, (name, _), spec in zip(axes[:, 0], panels, specs):
        im = ax.imshow(
            spec,
            origin="lower",
            aspect="auto",
            extent=(0, duration, 0, sample_rate / 2000),
            vmin=top - dynamic_range_db,
            vmax=top,
            cmap="magma",
        )
        ax.set_ylabel("kHz")
        ax.set_title(name, loc="left", fontsize=10)
    axes[-1, 0].set_xlabel("time (s)")
    fig.colorbar(im, ax=axes[:, 0].tolist(), label="dB", shrink=0.8)
    if title:
        fig.suptitle(title)
    path = Path(path)
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)
    return path
