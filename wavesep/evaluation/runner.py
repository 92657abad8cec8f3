"""SiSEC-style evaluation: separate or load estimates, score with BSS Eval v4, write museval JSON.

Shape legend: S sources (targets scored together), T samples, C audio channels, N evaluation
frames; track arrays are (T, C), museval's layout.

What gets evaluated (each one a "method" with its own result folder ``OUT/<method>/``):

- a model (``--model``: a name known to :mod:`wavesep.pretrained`, or a checkpoint file / run
  folder), applied to each track's mixture with :func:`wavesep.apply.separate`;
- a folder of estimates in the MUSDB layout (``--estimates DIR``:
  ``DIR/<subset>/<track>/<target>.wav``, what museval's ``eval_mus_dir`` reads);
- oracles computed from the true stems (``--oracle irm mix``): ``IRM2``, the ideal power-ratio
  mask (:func:`wavesep.metrics.oracle.ideal_ratio_mask`, STFT 4096 / 1024, masks over the four
  raw stems, a composite target such as accompaniment being the sum of its stems' estimates, as
  in the SiSEC 2018 oracle), an upper reference; and ``MIX``, the mixture itself as the estimate
  of every target, the lower reference.

on a MUSDB18 root (``--musdb ROOT``, ``--is-wav`` for MUSDB18-HQ) or the synthetic corpus
(``--synthetic ROOT``, split by its splits.json), one subset/split (``--subset``/``--split``).

Scores: BSS Eval v4 (512-tap filters over the whole track, 1 s frames, 1 s hop) by
:func:`wavesep.metrics.bss_eval_v4` (``--backend fast``) or ``museval.evaluate``
(``--backend museval``); both give the same numbers. References are the musdb targets: the
stems, accompaniment = bass + drums + other. Grouping follows museval's ``eval_mus_track``
(see :func:`evaluation_groups`): the targets are scored together, except that when both vocals
and accompaniment are scored, vocals and accompaniment come from a separate two-source
evaluation (vocals against accompaniment), and the other targets from an evaluation of all but
accompaniment (vocals included, so that they see the same interferers as in museval).

Musical noise, per target, stored beside the BSS Eval metrics (see :mod:`wavesep.metrics.aggregate`):

- ``spot_rate``: isolated time-frequency peaks per second in the residual
  ``estimate - reference`` (:func:`wavesep.metrics.musical_noise.spot_rate_frames`), per frame
  with BSS Eval's framing, and per track as the mean over those frames (so, like BSS Eval, it
  leaves out the last partial second);
- ``kurtosis_ratio``: ``kurt(estimate) / kurt(reference)``
  (:func:`wavesep.metrics.musical_noise.kurtosis_ratio` with before = reference). The reference
  rather than the mixture is the "before" signal because a source is naturally sparser than the
  mixture: mixture -> estimate would reward any separation for the source's own peakiness,
  whereas reference -> estimate is 1 for a perfect estimate, above 1 when the estimate's
  spectrum is peakier than the true source's (musical noise), below 1 when it is denser
  (interference, noise).

Errors are :class:`~wavesep.errors.WavesepError` naming the file: estimates of the wrong length,
sample rate or channel count, a missing target file, a reference target that is silent over the
whole track (BSS Eval is undefined; leave the track out with ``--exclude``). An estimate that is
silent over the whole track is a result, not an error: as in museval every frame of its
evaluation group is NaN, with a warning. NaN frames are left out of the medians, as museval does,
and counted in the report.

A rerun skips tracks whose result file exists and holds every target (``--force`` recomputes);
``--jobs N`` evaluates N tracks at a time in separate processes.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import importlib.util
import math
import multiprocessing
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from wavesep import __version__, audio
from wavesep.atomic import atomic_path
from wavesep.data import list_tracks
from wavesep.data.tracks import AUDIO_EXTENSIONS, TrackSpec
from wavesep.errors import AudioError, CheckpointError, DataError, DependencyError, WavesepError
from wavesep.metrics import aggregate as agg
from wavesep.metrics.bss import bss_eval_v4
from wavesep.metrics.musical_noise import default_stft, kurtosis_ratio, spot_rate_frames
from wavesep.metrics.oracle import ideal_ratio_mask
from wavesep import postfilter as postfilters

__all__ = [
    "TARGET_STEMS",
    "DEFAULT_ORACLE_TARGETS",
    "BACKENDS",
    "ORACLES",
    "Method",
    "EvalOptions",
    "TrackOutcome",
    "evaluation_groups",
    "score_track",
    "select_tracks",
    "resolve_targets",
    "load_separation_model",
    "evaluate_track",
    "evaluate_tracks",
    "format_report",
    "plot_sdr_boxplot",
    "main",
]

#: The stems each scorable target is the sum of (musdb's targets; mixture excluded).
TARGET_STEMS = {
    "vocals": ("vocals",),
    "drums": ("drums",),
    "bass": ("bass",),
    "other": ("other",),
    "accompaniment": ("bass", "drums", "other"),
}
#: Targets of the oracle rows when nothing else decides them: the SiSEC 2018 table's columns.
DEFAULT_ORACLE_TARGETS = ("vocals", "drums", "bass", "other", "accompaniment")
BACKENDS = ("fast", "museval")
#: ``--oracle`` choices -> result folder (method) names, after the SiSEC 2018 names.
ORACLES = {"irm": "IRM2", "mix": "MIX"}
_ORACLE_LABELS = {"irm": "IRM2 oracle (power ratio mask)", "mix": "mixture as estimate"}
# IRM2 STFT of the SiSEC 2018 oracle (at 44.1 kHz), kept at every sample rate.
_IRM_N_FFT = 4096
_IRM_HOP = 1024

Log = Callable[[str], None]


# ---------------------------------------------------------------------- methods and options


@dataclass(frozen=True)
class Method:
    """Something to evaluate, and the name of its result folder.

    Attributes:
        kind: "model", "estimates" or "oracle".
        source: model name or checkpoint path; estimates folder; "irm" or "mix".
        name: result folder name (museval's ``MethodStore.add_eval_dir`` uses it as the method).
    """

    kind: str
    source: str
    name: str

    @classmethod
    def model(cls, name_or_path: str, name: Optional[str] = None) -> "Method":
        """A separation model: a pretrained name or a checkpoint file / training run folder."""
        if name is None and _has_pretrained():
            from wavesep.pretrained import model_name

            name = model_name(name_or_path)  # the folder name wavesep-separate uses too
        elif name is None:
            path = Path(os.path.expanduser(name_or_path))
            if path.exists():
                name = path.name if path.is_dir() or path.stem not in ("best", "last") else path.parent.name
            else:
                name = name_or_path
        return cls("model", str(name_or_path), _folder_name(name))

    @classmethod
    def estimates(cls, folder, name: Optional[str] = None) -> "Method":
        """A folder of estimates in the MUSDB layout ``folder/<subset>/<track>/<target>.wav``."""
        path = Path(os.path.expanduser(str(folder))).absolute()
        return cls("estimates", str(path), _folder_name(name or path.name))

    @classmethod
    def oracle(cls, which: str) -> "Method":
        """``"irm"`` (IRM2, power-ratio mask) or ``"mix"`` (mixture as estimate)."""
        if which not in ORACLES:
            raise DataError(f"unknown oracle {which!r}; choose one of {', '.join(ORACLES)}")
        return cls("oracle", which, ORACLES[which])

    @property
    def label(self) -> str:
        return _ORACLE_LABELS[self.source] if self.kind == "oracle" else self.name


def _folder_name(name: str) -> str:
    """A method name usable as one folder name."""
    cleaned = re.sub(r"[\\/:*?\"<>|\s]+", "_", str(name)).strip("._")
    if not cleaned:
        raise DataError(f"cannot make a result folder name from {name!r}; pass --name")
    return cleaned


@dataclass(frozen=True)
class EvalOptions:
    """How tracks are scored (all plain data, so it travels to worker processes).

    Attributes:
        targets: targets to score, musdb names (see :data:`TARGET_STEMS`).
        backend: "fast" (:func:`wavesep.metrics.bss_eval_v4`) or "museval".
        musical_noise: compute the spot rate and kurtosis ratio.
        fix_length: zero-pad / truncate estimates of the wrong length (museval's behaviour)
            instead of refusing them.
        force: re-evaluate tracks whose result file exists.
        window_seconds / hop_seconds: BSS Eval framing (SiSEC 2018: 1 s / 1 s).
        device / segment_seconds / batch_size: passed to :func:`wavesep.apply.separate`.
        postfilter: "auto" (the model's, see :func:`wavesep.postfilter.resolve`), "none" or
            "ratio-mask"; for --model only.
    """

    targets: Tuple[str, ...]
    backend: str = "fast"
    musical_noise: bool = True
    fix_length: bool = False
    force: bool = False
    window_seconds: float = 1.0
    hop_seconds: float = 1.0
    device: str = "auto"
    segment_seconds: float = 10.0
    batch_size: Optional[int] = None
    postfilter: str = "auto"


@dataclass(frozen=True)
class TrackOutcome:
    """What happened to one track: ``status`` is "evaluated" or "skipped"."""

    track: str
    path: str
    status: str
    seconds: float = 0.0
    note: str = ""


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
        :func:`evaluation_groups`), plus the musical-noise numbers under ``"wavesep"``.

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
    if musical_noise:
        provenance["spot_rate"] = "isolated TF peaks per second of the residual estimate - reference"
        provenance["kurtosis_ratio"] = "kurt(estimate) / kurt(reference) of the power spectrum"
    provenance.update(info or {})
    museval_version = _museval_version() if backend == "museval" else None
    return agg.track_document(
        scores, window_seconds, hop_seconds, extras, frame_extras, provenance, museval_version
    )


# ---------------------------------------------------------------------- tracks and targets


def select_tracks(
    dataset: str,
    root,
    *,
    is_wav: bool = False,
    subset: Optional[str] = None,
    split: Optional[str] = None,
    tracks: Optional[Sequence[str]] = None,
    exclude: Optional[Sequence[str]] = None,
) -> Tuple[List[TrackSpec], str]:
    """The tracks to evaluate and the MUSDB folder ("test" or "train") they live in.

    Args:
        dataset: "musdb" or "synthetic".
        root: dataset root.
        is_wav: MUSDB18-HQ wav folders (musdb only; the synthetic corpus is always wav).
        subset: MUSDB folder, "test" or "train" ("train" holds the train and valid splits).
        split: "train", "valid" or "test" (musdb's official split, or splits.json). Default:
            every track of ``subset``; with neither given, "test".
        tracks: keep only these track names (each must exist).
        exclude: leave these track names out.

    Returns:
        ``(tracks sorted by name, folder subset)``.

    Raises:
        DataError: inconsistent subset and split, unknown track names, no track left.
    """
    if dataset not in ("musdb", "synthetic"):
        raise DataError(f"unknown dataset {dataset!r}; choose musdb or synthetic")
    if subset not in (None, "train", "test"):
        raise DataError(f"unknown subset {subset!r}; choose train or test")
    if split not in (None, "train", "valid", "test"):
        raise DataError(f"unknown split {split!r}; choose train, valid or test")
    if split is not None:
        folder = "test" if split == "test" else "train"
        if subset is not None and subset != folder:
            raise DataError(f"--split {split} lives in the {folder!r} subset, not in --subset {subset}")
        splits = [split]
    else:
        folder = subset or "test"
        splits = ["test"] if folder == "test" else ["train", "valid"]
    found: List[TrackSpec] = []
    for i, name in enumerate(splits):
        try:
            found += list_tracks(dataset, root, name, is_wav=is_wav)
        except DataError:
            # the train folder's tracks: an empty valid split is fine once train has tracks
            if i == 0 or not found:
                raise
    by_name = {t.name: t for t in found}
    if tracks:
        unknown = [t for t in tracks if t not in by_name]
        if unknown:
            known = ", ".join(sorted(by_name)[:5])
            raise DataError(
                f"no track named {unknown[0]!r} in the {'/'.join(splits)} split(s) of {root} "
                f"(tracks there include: {known})"
            )
        by_name = {t: by_name[t] for t in tracks}
    for name in exclude or ():
        by_name.pop(name, None)
    if not by_name:
        raise DataError(f"no track left to evaluate in {root} after --tracks/--exclude")
    return [by_name[n] for n in sorted(by_name)], folder


def load_separation_model(name_or_path: str):
    """A model from a pretrained name or a checkpoint (file or training run folder).

    :func:`wavesep.pretrained.get_model` decides (a registered name wins over a file of the same
    name); without that module, checkpoints are read with :func:`wavesep.checkpoint.load_model`.

    Raises:
        CheckpointError: neither a known name nor a checkpoint (or an unreadable checkpoint).
    """
    if _has_pretrained():
        from wavesep import pretrained

        return pretrained.get_model(name_or_path)
    from wavesep import checkpoint

    path = Path(os.path.expanduser(name_or_path))
    if not path.exists():
        raise CheckpointError(
            f"model {name_or_path!r}: no such checkpoint file or run folder; pass the path of a .pt "
            "checkpoint or a training run folder"
        )
    return checkpoint.load_model(path)


def _has_pretrained() -> bool:
    return importlib.util.find_spec("wavesep.pretrained") is not None


def _model_plan(sources: Sequence[str], targets: Sequence[str], model_name: str) -> Dict[str, Tuple[int, ...]]:
    """For each target, the indices of the model sources whose sum estimates it."""
    plan = {}
    for target in targets:
        if target in sources:
            plan[target] = (list(sources).index(target),)
            continue
        want = set(TARGET_STEMS[target])
        parts = [i for i, s in enumerate(sources) if s in TARGET_STEMS and set(TARGET_STEMS[s]) <= want]
        stems = [st for i in parts for st in TARGET_STEMS[sources[i]]]
        if not parts or set(stems) != want or len(stems) != len(want):
            raise DataError(
                f"model {model_name} estimates {', '.join(sources)}; the target {target!r} "
                f"({' + '.join(TARGET_STEMS[target])}) cannot be formed from them; choose --targets among them"
            )
        plan[target] = tuple(parts)
    return plan


def resolve_targets(
    method: Method,
    tracks: Sequence[TrackSpec],
    folder_subset: str,
    requested: Optional[Sequence[str]] = None,
    model=None,
    fallback: Optional[Sequence[str]] = None,
) -> Tuple[str, ...]:
    """The targets to score for a method, in musdb order.

    ``requested`` (``--targets``) wins. Otherwise: a model's sources; for an estimates folder,
    the known target files of the first track's folder; for an oracle, ``fallback`` (the targets
    of the other method evaluated with it) or :data:`DEFAULT_ORACLE_TARGETS`.

    Raises:
        DataError: an unknown target name, a target the model cannot produce, or an estimates
            folder without target files.
    """
    if requested:
        unknown = [t for t in requested if t not in TARGET_STEMS]
        if unknown:
            raise DataError(f"unknown target {unknown[0]!r}; choose among {', '.join(TARGET_STEMS)}")
        targets = agg.ordered_targets(requested)
    elif method.kind == "model":
        unknown = [s for s in model.sources if s not in TARGET_STEMS]
        if unknown:
            raise DataError(
                f"model {method.name} estimates {', '.join(model.sources)}, but {unknown[0]!r} is not a "
                f"MUSDB target ({', '.join(TARGET_STEMS)}); choose --targets among those it has"
            )
        targets = agg.ordered_targets(model.sources)
    elif method.kind == "estimates":
        folder = Path(method.source) / folder_subset / tracks[0].name
        if not folder.is_dir():
            raise DataError(f"no estimates folder {folder} for track {tracks[0].name!r}: {_ESTIMATES_LAYOUT}")
        present = {p.stem for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS}
        targets = agg.ordered_targets(t for t in TARGET_STEMS if t in present)
        if not targets:
            raise DataError(
                f"{folder} holds no target file ({', '.join(t + '.wav' for t in TARGET_STEMS)}): {_ESTIMATES_LAYOUT}"
            )
    else:
        targets = agg.ordered_targets(fallback or DEFAULT_ORACLE_TARGETS)
    if method.kind == "model":
        _model_plan(model.sources, targets, method.name)
    evaluation_groups(targets)  # refuse unscorable sets before any work
    return targets


_ESTIMATES_LAYOUT = "an estimates folder holds <subset>/<track>/<target>.wav (museval's layout)"


# ---------------------------------------------------------------------- reading a track


def _read(ref) -> Tuple[np.ndarray, int]:
    wav, rate = audio.read(ref.path, dtype=torch.float64, stream=ref.stream or 0)
    return np.ascontiguousarray(wav.numpy().T), rate  # (C, T) -> (T, C)


def _read_stems(track: TrackSpec) -> Tuple[Dict[str, np.ndarray], int, Optional[np.ndarray]]:
    """The raw stems (T, C) float64 by name, their sample rate, and the mixture file (or None)."""
    refs = list(zip(track.stem_names, track.stems))
    if track.mixture is not None:
        refs.append(("mixture", track.mixture))
    arrays, rates = {}, {}
    for name, ref in refs:
        arrays[name], rates[name] = _read(ref)
    first = refs[0][1].path
    for name, ref in refs:
        if rates[name] != rates[refs[0][0]]:
            raise AudioError(
                f"{ref.path} is at {rates[name]} Hz but {first} is at {rates[refs[0][0]]} Hz: the stems of "
                f"track {track.name!r} must share one sample rate"
            )
        if arrays[name].shape[1] != arrays[refs[0][0]].shape[1]:
            raise AudioError(
                f"{ref.path} has {arrays[name].shape[1]} channels but {first} has "
                f"{arrays[refs[0][0]].shape[1]}: the stems of track {track.name!r} must match"
            )
    lengths = {name: a.shape[0] for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        one_container = len({ref.path for _, ref in refs}) == 1
        if not one_container:
            longest = max(lengths, key=lengths.get)
            shortest = min(lengths, key=lengths.get)
            raise AudioError(
                f"the stems of track {track.name!r} differ in length: {dict(refs)[longest].path} has "
                f"{lengths[longest]} samples, {dict(refs)[shortest].path} {lengths[shortest]}; fix the files"
            )
        # streams of one .stem.mp4 may decode to slightly different lengths (codec padding)
        common = min(lengths.values())
        arrays = {name: a[:common] for name, a in arrays.items()}
    mixture = arrays.pop("mixture", None)
    return arrays, rates[refs[0][0]], mixture


def _stem_files(track: TrackSpec, target: str) -> str:
    paths = {ref.path for name, ref in zip(track.stem_names, track.stems) if name in TARGET_STEMS[target]}
    return ", ".join(sorted(paths))


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


def _irm_estimates(stems: Mapping[str, np.ndarray], targets) -> Dict[str, np.ndarray]:
    names = list(stems)
    masked = ideal_ratio_mask(np.stack([stems[n] for n in names]), _IRM_N_FFT, _IRM_HOP, power=2.0)  # (S, T, C)
    return {t: sum(masked[names.index(s)] for s in TARGET_STEMS[t]) for t in targets}


# ---------------------------------------------------------------------- one track, many tracks


_MODELS: Dict[str, object] = {}


def _cached_model(spec: str):
    if spec not in _MODELS:
        _MODELS[spec] = load_separation_model(spec)
    return _MODELS[spec]


def result_path(out_dir, folder_subset: str, track_name: str) -> Path:
    """Where a track's result file goes: ``out_dir/<subset>/<track>.json`` (museval's layout)."""
    return Path(out_dir) / folder_subset / f"{track_name}.json"


def _complete(path: Path, targets: Sequence[str]) -> Tuple[bool, str]:
    if not path.exists():
        return False, ""
    try:
        result = agg.read_track_json(path)
    except DataError as e:
        return False, f"re-evaluating: {e}"
    missing = [t for t in targets if t not in result.scores]
    if missing:
        return False, f"re-evaluating: {path} lacks {', '.join(missing)}"
    return True, ""


def evaluate_track(
    track: TrackSpec,
    method: Method,
    out_dir,
    folder_subset: str,
    options: EvalOptions,
    model=None,
    log: Log = print,
) -> TrackOutcome:
    """Evaluate one method on one track and write ``out_dir/<subset>/<track>.json``.

    Args:
        track: from :func:`select_tracks`.
        method: what to evaluate.
        out_dir: the method's result folder.
        folder_subset: "test" or "train" (from :func:`select_tracks`).
        options: targets and scoring options.
        model: the loaded model for a "model" method (loaded here when None).
        log: receives progress and notes.

    Returns:
        :class:`TrackOutcome` ("skipped" when a complete result exists and not ``options.force``).

    Raises:
        WavesepError: see the module docstring (each message names the file).
    """
    path = result_path(out_dir, folder_subset, track.name)
    note = ""
    if not options.force:
        done, note = _complete(path, options.targets)
        if done:
            return TrackOutcome(track.name, str(path), "skipped")
    start = time.perf_counter()
    stems, sample_rate, mixture = _read_stems(track)
    references = {t: sum(stems[s] for s in TARGET_STEMS[t]) for t in options.targets}
    for target, ref in references.items():
        if _silent(ref):
            raise DataError(
                f"the {target} reference of track {track.name!r} ({_stem_files(track, target)}) is silent over "
                "the whole track: BSS Eval is undefined for it; leave the track out with --exclude "
                f"{track.name!r} or the target out of --targets"
            )
    if mixture is None:
        mixture = sum(stems.values())
    shape = next(iter(references.values())).shape
    labels = {t: f"the {method.name} estimate of {t} for track {track.name!r}" for t in options.targets}
    if method.kind == "model":
        model = model if model is not None else _cached_model(method.source)
        estimates = _model_estimates(model, mixture, sample_rate, options.targets, options, method.name)
    elif method.kind == "estimates":
        estimates, labels = _folder_estimates(
            method, folder_subset, track, options.targets, shape, sample_rate, options.fix_length, log
        )
    elif method.source == "irm":
        estimates = _irm_estimates(stems, options.targets)
    else:
        estimates = {t: mixture for t in options.targets}
    info = {"method": method.name, "method_kind": method.kind, "method_source": method.source}
    document = score_track(
        references,
        estimates,
        sample_rate,
        backend=options.backend,
        window_seconds=options.window_seconds,
        hop_seconds=options.hop_seconds,
        musical_noise=options.musical_noise,
        labels=labels,
        info=info,
    )
    agg.write_json(path, document)
    return TrackOutcome(track.name, str(path), "evaluated", time.perf_counter() - start, note)


def _worker_init(threads: int) -> None:
    torch.set_num_threads(threads)


class _WorkerPool:
    """Spawned worker processes, started on first use and shared by the methods of one run
    (starting a worker imports torch and wavesep: seconds each)."""

    def __init__(self, jobs: int):
        self.jobs = jobs
        self._pool: Optional[concurrent.futures.ProcessPoolExecutor] = None

    def get(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            threads = max(1, (os.cpu_count() or 1) // self.jobs)
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.jobs,
                mp_context=multiprocessing.get_context("spawn"),  # fork + torch threads can deadlock
                initializer=_worker_init,
                initargs=(threads,),
            )
        return self._pool

    def __enter__(self) -> "_WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def evaluate_tracks(
    method: Method,
    tracks: Sequence[TrackSpec],
    out_dir,
    folder_subset: str,
    options: EvalOptions,
    jobs: int = 1,
    model=None,
    log: Log = print,
    _pool: Optional[_WorkerPool] = None,
) -> List[TrackOutcome]:
    """Evaluate one method on many tracks, ``jobs`` tracks at a time.

    Tracks whose result file is complete are skipped first (unless ``options.force``). With
    ``jobs > 1`` the others run in worker processes (spawned, with ``cpu_count // jobs`` torch
    threads each), which load the model themselves. The first error stops the run; results
    already written stay and are skipped by the next run.

    Returns:
        one :class:`TrackOutcome` per track, in ``tracks`` order.
    """
    if jobs < 1:
        raise DataError(f"--jobs must be at least 1, got {jobs}")
    total = len(tracks)
    outcomes: Dict[str, TrackOutcome] = {}

    def report(outcome: TrackOutcome) -> None:
        outcomes[outcome.track] = outcome
        if outcome.note:
            log(f"  {outcome.note}")
        done = f"[{method.name} {len(outcomes)}/{total}] {outcome.track}"
        if outcome.status == "skipped":
            log(f"{done}: skipped, {outcome.path} exists")
        else:
            log(f"{done}: {outcome.seconds:.1f} s -> {outcome.path}")

    pending = []
    for track in tracks:
        path = result_path(out_dir, folder_subset, track.name)
        complete = False
        if not options.force:
            complete, note = _complete(path, options.targets)
            if note:
                log(f"  {note}")
        if complete:
            report(TrackOutcome(track.name, str(path), "skipped"))
        else:
            pending.append(track)
    # the check is done: workers must not skip a track whose file they were sent to replace
    options = dataclasses.replace(options, force=True)

    if jobs == 1 or len(pending) <= 1:
        if pending and method.kind == "model" and model is None:
            model = _cached_model(method.source)
        for track in pending:
            report(evaluate_track(track, method, out_dir, folder_subset, options, model, log))
    else:
        with contextlib.ExitStack() as stack:
            pool = _pool if _pool is not None else stack.enter_context(_WorkerPool(jobs))
            futures = [
                pool.get().submit(evaluate_track, track, method, str(out_dir), folder_subset, options)
                for track in pending
            ]
            try:
                for future in concurrent.futures.as_completed(futures):
                    report(future.result())
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    return [outcomes[t.name] for t in tracks]


# ---------------------------------------------------------------------- report and plot


def format_report(
    results: Mapping[str, Mapping[str, agg.TrackResult]],
    labels: Optional[Mapping[str, str]] = None,
    published: bool = True,
    window_seconds: float = 1.0,
) -> str:
    """Text tables of the SDR per target for several methods, beside the published rows.

    Args:
        results: ``{method name: {track: TrackResult}}``.
        labels: display names of the methods (default: their names).
        published: add the published SiSEC 2018 rows (MUSDB18 test set) to the median table.
        window_seconds: frame length, for the labels.

    Returns:
        The report: SDR tables under both track conventions (median, mean), then per method all
        four metrics, the musical-noise numbers and the NaN-frame counts.
    """
    labels = dict(labels or {})
    targets = agg.ordered_targets(t for r in results.values() for tr in r.values() for t in tr.scores)
    lines: List[str] = []
    for tracks_agg in ("median", "mean"):
        lines.append(f"SDR in dB, {agg.convention_label('median', tracks_agg, window_seconds)}")
        rows = []
        for method, res in results.items():
            scores = agg.aggregate(res, "median", tracks_agg)
            rows.append(
                [labels.get(method, method), str(len(res))]
                + [agg.format_value(scores[t]["SDR"]) if t in scores else "" for t in targets]
            )
        if published and tracks_agg == "median":
            rows.append(["published, SiSEC 2018, MUSDB18 test set (50 tracks):", ""] + [""] * len(targets))
            for row in agg.sisec18_rows(include_later=True):
                name = f"  {row.name}" + (f" ({row.note})" if row.note else "")
                rows.append([name, "50"] + [agg.format_value(row.sdr.get(t)) for t in targets])
        lines.append(agg.format_table(["method", "tracks"] + list(targets), rows))
        lines.append("")
    lines.append(
        f"Per method: metrics in dB, {agg.convention_label('median', 'median', window_seconds)}; "
        "spots/s (residual isolated peaks per second) and KR (kurt(estimate) / kurt(reference)): "
        "median over tracks; NaN frames: left out of the medians"
    )
    for method, res in results.items():
        scores = agg.aggregate(res)
        extras = agg.aggregate_extras(res)
        nans = agg.nan_frames(res)
        rows = []
        for target in agg.ordered_targets(scores):
            nan, total, empty = nans[target]
            share = f"{nan}/{total} ({100.0 * nan / total:.1f}%)" if total else "0/0"
            if empty:
                share += f", {empty} track(s) all NaN"
            extra = extras.get(target, {})
            rows.append(
                [target]
                + [agg.format_value(scores[target][m]) for m in agg.METRICS]
                + [agg.format_value(extra.get("spot_rate")), agg.format_value(extra.get("kurtosis_ratio"), 3), share]
            )
        lines.append(f"{labels.get(method, method)} ({len(res)} track{'' if len(res) == 1 else 's'})")
        lines.append(agg.format_table(["target"] + list(agg.METRICS) + ["spots/s", "KR", "NaN frames"], rows))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def plot_sdr_boxplot(
    results: Mapping[str, Mapping[str, agg.TrackResult]],
    path,
    labels: Optional[Mapping[str, str]] = None,
    title: Optional[str] = None,
) -> Path:
    """Boxplot PNG of the per-track SDR (median over frames) per target, one box per method.

    Args:
        results: ``{method name: {track: TrackResult}}``.
        path: the PNG file to write (atomically; missing folders are created).
        labels: display names of the methods.
        title: figure title (default: what the boxes show).

    Returns:
        The written path.

    Raises:
        DependencyError: matplotlib is not installed.
        DataError: no finite SDR value to plot.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise DependencyError(
            f"the SDR boxplot needs matplotlib ({e}): pip install matplotlib, or pass --no-plot"
        ) from None
    labels = dict(labels or {})
    methods = list(results)
    per_method = {m: agg.track_values(results[m], "SDR", "median") for m in methods}
    targets = agg.ordered_targets(t for m in methods for t in per_method[m])
    data, positions, colours = [], [], []
    width = 0.8 / max(1, len(methods))
    palette = [f"C{i % 10}" for i in range(len(methods))]
    for ti, target in enumerate(targets):
        for mi, method in enumerate(methods):
            values = np.array(list(per_method[method].get(target, {}).values()), dtype=np.float64)
            values = values[np.isfinite(values)]
            if values.size:
                data.append(values)
                positions.append(ti + (mi - (len(methods) - 1) / 2) * width)
                colours.append(palette[mi])
    if not data:
        raise DataError("no finite per-track SDR to plot (every frame is NaN)")
    figure = Figure(figsize=(max(4.0, 1.0 + 1.2 * len(targets) * max(1, len(methods)) ** 0.5), 4.0))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    boxes = axes.boxplot(
        data, positions=positions, widths=width * 0.85, patch_artist=True, manage_ticks=False,
        medianprops={"color": "black"},
    )
    for patch, colour in zip(boxes["boxes"], colours):
        patch.set_facecolor(colour)
        patch.set_alpha(0.6)
    axes.set_xticks(range(len(targets)))
    axes.set_xticklabels(targets)
    axes.set_xlim(-0.6, len(targets) - 0.4)
    axes.set_ylabel("SDR (dB)")
    axes.grid(axis="y", alpha=0.3)
    axes.set_title(title or "per-track SDR (median over 1 s frames)")
    if len(methods) > 1:
        from matplotlib.patches import Patch

        handles = [Patch(facecolor=palette[i], alpha=0.6, label=labels.get(m, m)) for i, m in enumerate(methods)]
        axes.legend(handles=handles, fontsize="small", loc="best")
    figure.tight_layout()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    return path


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
    if args.backend == "museval":
        _import_museval()

    results: Dict[str, Dict[str, agg.TrackResult]] = {}
    labels: Dict[str, str] = {}
    folder_subset = args.subset or ("test" if args.split in (None, "test") else "train")
    selected: Optional[List[str]] = args.tracks
    if methods:
        if not (args.musdb or args.synthetic):
            raise DataError(
                "evaluating needs a dataset: --musdb ROOT (with --is-wav for MUSDB18-HQ) or --synthetic ROOT"
            )
        if not args.out:
            raise DataError("evaluating needs --out DIR (results go to DIR/<method>/<subset>/<track>.json)")
        dataset, root = ("musdb", args.musdb) if args.musdb else ("synthetic", args.synthetic)
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
        with _WorkerPool(args.jobs) as pool:  # started only if some track needs a worker
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
                    method, tracks, out_dir, folder_subset, options, args.jobs, models.get(method.name), log, pool
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
        plot_sdr_boxplot(results, plot_path, labels)
        log(f"boxplot: {plot_path}")
    return 0


def _write_summary(folder: Path, folder_subset: str, results, method: Method) -> Path:
    """``folder/summary-<subset>.json``: aggregated numbers with their conventions (outside the
    subset folder, so museval's loaders never mistake it for a track)."""
    summary = {
        "method": method.name,
        "method_kind": method.kind,
        "subset": folder_subset,
        "tracks": sorted(results),
        "sisec2018": {
            "convention": agg.convention_label("median", "median"),
            "scores": agg.aggregate(results, "median", "median"),
        },
        "mean_over_tracks": {
            "convention": agg.convention_label("median", "mean"),
            "scores": agg.aggregate(results, "median", "mean"),
        },
        "musical_noise_median_over_tracks": agg.aggregate_extras(results),
        "nan_frames": {
            t: {"nan": n, "total": total, "tracks_all_nan": e} for t, (n, total, e) in agg.nan_frames(results).items()
        },
    }
    path = folder / f"summary-{folder_subset}.json"
    return agg.write_json(path, summary)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point (``wavesep-evaluate``, ``python -m wavesep.evaluate``).

    Returns:
        0 on success, 2 after a user error (its message printed to stderr, no traceback).
    """
    args = _parser().parse_args(argv)
    try:
        return _run(args, print)
    except WavesepError as e:
        print(f"wavesep-evaluate: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    # through the package module, so worker processes find the same functions
    from wavesep.evaluation import main as _main

    sys.exit(_main())
