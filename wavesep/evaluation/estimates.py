"""Estimates of a track's targets, from a model, a folder in the MUSDB layout, or the IRM2 oracle.

Arrays are (T, C) float, museval's layout, at the track's sample rate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence

import numpy as np
import torch

from wavesep import audio
from wavesep import postfilter as postfilters
from wavesep.data.tracks import AUDIO_EXTENSIONS, TrackSpec
from wavesep.errors import AudioError, DataError
from wavesep.evaluation.methods import _ESTIMATES_LAYOUT, EvalOptions, Method, _model_plan
from wavesep.metrics.oracle import ideal_ratio_mask


# IRM2 STFT of the SiSEC 2018 oracle (at 44.1 kHz), kept at every sample rate.
_IRM_N_FFT = 4096
_IRM_HOP = 1024


# ---------------------------------------------------------------------- estimates


def _model_estimates(model, mixture: np.ndarray, sample_rate: int, targets, options: EvalOptions, name: str):
    from wavesep.apply import separate

    plan = _model_plan(model.sources, targets, name)
    mix = torch.from_numpy(np.ascontiguousarray(mixture.T)).float()  # (T, C) -> (C, T)
    stems = separate(
        model,
        mix,
        sample_rate,
        segment_seconds=options.segment_seconds,
        batch_size=options.batch_size,
        device=options.device,
        postfilter=postfilters.resolve(options.postfilter, getattr(model, "metadata", None)),
    )  # (S, C, T)
    stems = stems.to(torch.float64).numpy()
    return {t: np.ascontiguousarray(stems[list(idx)].sum(axis=0).T) for t, idx in plan.items()}  # (T, C)


def _find_estimate(folder: Path, target: str) -> Optional[Path]:
    wav = folder / f"{target}.wav"
    if wav.is_file():
        return wav
    found = [p for p in folder.iterdir() if p.is_file() and p.stem == target and p.suffix.lower() in AUDIO_EXTENSIONS]
    if len(found) > 1:
        raise DataError(f"{folder} has several files for {target!r} ({', '.join(p.name for p in found)}); keep one")
    return found[0] if found else None


def _folder_estimates(
    method: Method, folder_subset: str, track: TrackSpec, targets, shape, sample_rate, fix_length, log
):
    folder = Path(method.source) / folder_subset / track.name
    if not folder.is_dir():
        raise DataError(f"no estimates for track {track.name!r}: {folder} does not exist ({_ESTIMATES_LAYOUT})")
    estimates, labels = {}, {}
    for target in targets:
        path = _find_estimate(folder, target)
        if path is None:
            present = sorted(p.name for p in folder.iterdir() if p.is_file())
            raise DataError(
                f"missing estimate {folder / (target + '.wav')} for target {target!r} of track {track.name!r} "
                f"(the folder holds: {', '.join(present) or 'nothing'}); write it or choose --targets"
            )
        wav, rate = audio.read(path, dtype=torch.float64)
        est = np.ascontiguousarray(wav.numpy().T)  # (C, T) -> (T, C)
        if rate != sample_rate:
            raise AudioError(
                f"estimate {path} is at {rate} Hz but the references of track {track.name!r} are at "
                f"{sample_rate} Hz; write estimates at the mixture's sample rate"
            )
        if est.shape[1] != shape[1]:
            raise AudioError(
                f"estimate {path} has {est.shape[1]} channel(s) but the references of track "
                f"{track.name!r} have {shape[1]}"
            )
        if est.shape[0] != shape[0]:
            if not fix_length:
                raise AudioError(
                    f"estimate {path} has {est.shape[0]} samples but the references of track {track.name!r} "
                    f"have {shape[0]} ({est.shape[0] - shape[0]:+d}); estimates must have the mixture's exact "
                    "length (or pass --fix-length to zero-pad / truncate them as museval does)"
                )
            log(f"  {path}: {est.shape[0] - shape[0]:+d} samples, zero-padded / truncated to {shape[0]}")
            est = np.pad(est[: shape[0]], ((0, max(0, shape[0] - est.shape[0])), (0, 0)))
        estimates[target] = est
        labels[target] = f"estimate {path}"
    return estimates, labels


def _irm_estimates(stems: Mapping[str, np.ndarray], parts: Mapping[str, Sequence[str]]) -> Dict[str, np.ndarray]:
    """IRM2 oracle estimates: target -> sum of the masked stems ``parts[target]``, (T, C)."""
    names = list(stems)
    masked = ideal_ratio_mask(np.stack([stems[n] for n in names]), _IRM_N_FFT, _IRM_HOP, power=2.0)  # (S, T, C)
    return {t: sum(masked[names.index(s)] for s in stem_names) for t, stem_names in parts.items()}
