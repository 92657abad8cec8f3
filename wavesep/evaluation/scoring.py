"""Scoring one track: BSS Eval v4 (fast backend or museval) and musical noise, museval's grouping.

Shape legend: S sources (targets scored together), T samples, C audio channels, N evaluation
frames; track arrays are (T, C), museval's layout.
"""

from __future__ import annotations

import math
import warnings
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from wavesep import __version__
from wavesep.errors import AudioError, DataError, DependencyError
from wavesep.metrics import aggregate as agg
from wavesep.metrics.band import HIGH_BAND_HZ, high_band_recovery
from wavesep.metrics.bss import bss_eval_v4
from wavesep.metrics.musical_noise import default_stft, kurtosis_ratio, spot_rate_frames


#: The stems each scorable target is the sum of (musdb's targets; mixture excluded).
TARGET_STEMS = {
    "vocals": ("vocals",),
    "drums": ("drums",),
    "bass": ("bass",),
    "other": ("other",),
    "accompaniment": ("bass", "drums", "other"),
}


BACKENDS = ("fast", "museval")


# ---------------------------------------------------------------------- the museval convention


def evaluation_groups(targets: Sequence[str]) -> List[Tuple[Tuple[str, ...], Tuple[str, ...]]]:
    """How museval's ``eval_mus_track`` splits targets into joint BSS Eval runs.

    All targets are scored together, in musdb's order (vocals, drums, bass, other,
    accompaniment), except when both vocals and accompaniment are there: then accompaniment
    leaves the first group, vocals is scored in it but not reported from it, and a second group
    (vocals, accompaniment) reports both. A first group of fewer than two targets is skipped
    (a lone target has no interferer to measure).

    Args:
        targets: target names.

    Returns:
        list of ``(scored_together, reported)`` tuples; the reported names, in order, are the
        order of the targets in the result file (as museval writes them).

    Raises:
        DataError: fewer than two targets, or targets whose references are linearly dependent
            (e.g. bass, drums, other and accompaniment without vocals).
    """
    ordered = agg.ordered_targets(targets)
    if len(ordered) < 2:
        raise DataError(
            f"only one target ({', '.join(ordered) or 'none'}) to score: BSS Eval measures the "
            "interference of the other targets, so it needs at least two (museval leaves a lone "
            "target unscored); add e.g. --targets vocals accompaniment"
        )
    paired = "vocals" in ordered and "accompaniment" in ordered
    first = tuple(t for t in ordered if not (paired and t == "accompaniment"))
    groups = []
    if len(first) >= 2:
        groups.append((first, tuple(t for t in first if not (paired and t == "vocals"))))
    if paired:
        groups.append((("vocals", "accompaniment"), ("vocals", "accompaniment")))
    for scored, _ in groups:
        _check_independent(scored)
    return groups


def _check_independent(group: Sequence[str]) -> None:
    for target in group:
        stems = set(TARGET_STEMS.get(target, (target,)))
        parts = [t for t in group if t != target and set(TARGET_STEMS.get(t, (t,))) < stems]
        covered = set().union(*(TARGET_STEMS.get(t, (t,)) for t in parts)) if parts else set()
        if parts and covered == stems:
            raise DataError(
                f"target {target!r} is the sum of {', '.join(parts)}: their references are linearly "
                "dependent, so BSS Eval cannot score them together; add vocals (museval then scores "
                f"vocals/accompaniment separately) or leave {target!r} out"
            )


# ---------------------------------------------------------------------- scoring one track


def _num_frames(length: int, sample_rate: float, window_seconds: float, hop_seconds: float) -> int:
    window = int(window_seconds * sample_rate)
    hop = int(hop_seconds * sample_rate)
    if length <= window:
        return 1
    return (length - window) // hop + 1


def _silent(x: np.ndarray) -> bool:
    """museval's notion of silence: the channel sum is zero at every sample. x: (T, C)."""
    return not np.any(x.sum(axis=-1) != 0)


def _bss(references: np.ndarray, estimates: np.ndarray, sample_rate: int, backend: str, window_seconds, hop_seconds):
    """(S, T, C) pair -> SDR, ISR, SIR, SAR arrays (S, N) with the chosen backend."""
    if backend == "fast":
        return bss_eval_v4(references, estimates, sample_rate, window_seconds=window_seconds, hop_seconds=hop_seconds)
    museval = _import_museval()
    sdr, isr, sir, sar = museval.evaluate(
        references,
        estimates,
        win=int(window_seconds * sample_rate),
        hop=int(hop_seconds * sample_rate),
        mode="v4",
        padding=False,
    )
    return (np.asarray(m, dtype=np.float64) for m in (sdr, isr, sir, sar))


def _import_museval():
    try:
        import museval
    except ImportError as e:
        raise DependencyError(f"--backend museval needs the museval package ({e}): pip install museval") from None
    except RuntimeError as e:  # stempeg's ffmpeg check on import
        raise DependencyError(f"museval cannot start: {e}. Install ffmpeg and ffprobe.") from None
    return museval


def _museval_version() -> str:
    _import_museval()
    from museval.version import _version

    return str(_version)


def score_track(
    references: Mapping[str, np.ndarray],
    estimates: Mapping[str, np.ndarray],
    sample_rate: int,
    *,
    backend: str = "fast",
    window_seconds: float = 1.0,
    hop_seconds: float = 1.0,
    musical_noise: bool = True,
    labels: Optional[Mapping[str, str]] = None,
    info: Optional[Mapping] = None,
) -> dict:
    """Score the estimates of one track, museval's way; return its result document.

    Args:
        references: ``{target: array (T, C)}``, the true target images, any float scale.
        estimates: ``{target: array (T, C)}`` for the same targets, same shape.
        sample_rate: Hz of both.
        backend: "fast" or "museval" (the same numbers; "fast" is quicker and lighter).
        window_seconds / hop_seconds: BSS Eval framing (SiSEC 2018: 1.0 / 1.0).
        musical_noise: add the residual spot rate (per frame and per track, 1/s) and the
            kurtosis ratio kurt(estimate) / kurt(reference) per target.
        labels: ``{target: text}`` naming where each estimate came from, for messages.
        info: provenance stored in the document's top-level ``"wavesep"`` key.

    Returns:
        The museval-format document (:func:`wavesep.metrics.aggregate.track_document`): SDR,
        SIR, SAR, ISR per frame in dB for every target (grouped as
        :func:`evaluation_groups`), plus the musical-noise numbers and, for rates above
        22.05 kHz, the top band's recovery (:func:`wavesep.metrics.band.high_band_recovery`,
        keys ``high_band_*``) under ``"wavesep"``.

    Raises:
        AudioError: shapes differ, or the targets of the two mappings differ.
        DataError: a reference is silent over the whole track, or the targets cannot be scored
            together (:func:`evaluation_groups`).
    """
    if backend not in BACKENDS:
        raise DataError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    labels = dict(labels or {})
    if set(references) != set(estimates):
        raise AudioError(
            f"references are given for {sorted(references)} but estimates for {sorted(estimates)}; "
            "pass one estimate per reference"
        )
    groups = evaluation_groups(list(estimates))
    shape = None
    for target in agg.ordered_targets(estimates):
        ref = np.asarray(references[target])
        est = np.asarray(estimates[target])
        where = labels.get(target, f"the {target} estimate")
        if ref.ndim != 2 or est.ndim != 2:
            raise AudioError(f"{where}: arrays must be (samples, channels); got {ref.shape} and {est.shape}")
        if est.shape != ref.shape or (shape is not None and ref.shape != shape):
            raise AudioError(
                f"{where} has shape {est.shape} (samples, channels) but its reference has {ref.shape}"
                + (f" and the other targets {shape}" if shape is not None and ref.shape != shape else "")
                + "; estimates must match the mixture's length and channels"
            )
        shape = ref.shape
        if _silent(ref):
            raise DataError(
                f"the reference {target!r} is silent over the whole track: BSS Eval is undefined for it "
                "(museval would give only NaN frames); leave the track out (--exclude) or the target out"
            )
    length = shape[0]

    scores: Dict[str, Dict[str, np.ndarray]] = {}
    evaluated_with: Dict[str, Tuple[str, ...]] = {}
    for scored, reported in groups:
        refs = np.stack([np.asarray(references[t], dtype=np.float64) for t in scored])  # (S, T, C)
        ests = np.stack([np.asarray(estimates[t], dtype=np.float64) for t in scored])  # (S, T, C)
        silent = [t for t, e in zip(scored, ests) if _silent(e)]
        if silent:
            # museval's rule: a frame where any estimate is silent is NaN for all its sources
            warnings.warn(
                f"{', '.join(labels.get(t, t) for t in silent)} silent over the whole track: every frame "
                f"of the evaluation of {', '.join(scored)} is NaN (as in museval)"
            )
            frames = _num_frames(length, sample_rate, window_seconds, hop_seconds)
            metrics = [np.full((len(scored), frames), np.nan)] * 4
        else:
            metrics = list(_bss(refs, ests, sample_rate, backend, window_seconds, hop_seconds))
        sdr, isr, sir, sar = metrics
        for i, target in enumerate(scored):
            if target in reported:
                scores[target] = {"SDR": sdr[i], "SIR": sir[i], "SAR": sar[i], "ISR": isr[i]}
                evaluated_with[target] = scored

    extras: Dict[str, dict] = {t: {"evaluated_with": list(evaluated_with[t])} for t in scores}
    if sample_rate / 2.0 > HIGH_BAND_HZ:
        for target in scores:
            band = high_band_recovery(np.asarray(references[target]).T, np.asarray(estimates[target]).T, sample_rate)
            extras[target].update({f"high_band_{k}": v for k, v in band.items()})
    frame_extras: Dict[str, Dict[str, np.ndarray]] = {}
    if musical_noise:
        n_fft, _ = default_stft(sample_rate)
        for target in scores:
            ref = np.asarray(references[target], dtype=np.float64).T  # (C, T)
            est = np.asarray(estimates[target], dtype=np.float64).T  # (C, T)
            if length < n_fft:
                extras[target].update(spot_rate=math.nan, kurtosis_ratio=math.nan)
                continue
            per_frame = spot_rate_frames(est - ref, sample_rate, window_seconds, hop_seconds)
            extras[target]["spot_rate"] = float(np.mean(per_frame))
            extras[target]["kurtosis_ratio"] = kurtosis_ratio(ref, est, sample_rate)
            if per_frame.shape[0] == scores[target]["SDR"].shape[0]:
                frame_extras[target] = {"spot_rate": per_frame}

    provenance = {
        "wavesep_version": __version__,
        "backend": backend,
        "sample_rate": int(sample_rate),
        "window_seconds": float(window_seconds),
        "hop_seconds": float(hop_seconds),
        "convention": "museval eval_mus_track grouping; vocals/accompaniment scored as a separate pair",
    }
    if sample_rate / 2.0 > HIGH_BAND_HZ:
        provenance["high_band_recovered"] = (f"1 - |E_h - R_h|^2 / |R_h|^2 above {HIGH_BAND_HZ:g} Hz: share of the "
                                             "reference's top-band energy the estimate recovers")
    if musical_noise:
        provenance["spot_rate"] = "isolated TF peaks per second of the residual estimate - reference"
        provenance["kurtosis_ratio"] = "kurt(estimate) / kurt(reference) of the power spectrum"
    provenance.update(info or {})
    museval_version = _museval_version() if backend == "museval" else None
    return agg.track_document(
        scores, window_seconds, hop_seconds, extras, frame_extras, provenance, museval_version
    )
