"""museval-format result files, SiSEC-style aggregation and the published SiSEC 2018 rows.

Result files
------------
One JSON file per track, ``RESULTS/<subset>/<track name>.json``, in the layout museval's
``TrackStore`` writes and ``EvalStore.add_eval_dir`` / ``MethodStore.add_eval_dir`` read (they
glob ``test/**/*.json`` and take the track name from the file name)::

    {"targets": [{"name": "vocals",
                  "frames": [{"time": 0.0, "duration": 1.0,
                              "metrics": {"SDR": 4.12345, "SIR": ..., "SAR": ..., "ISR": ...}},
                             ...]},
                 ...],
     "museval_version": "0.4.1"}           # only when museval computed the numbers

Values are in dB and rounded to 5 decimals; +-inf is written as NaN, both as museval does.
museval's schema (``musdb.schema.json``) does not forbid extra keys and its loader
(``json2df``) keeps only ``time``, ``name`` and the four metrics, so wavesep adds its own
numbers under a ``"wavesep"`` key at three levels without disturbing museval:

- top level: provenance (backend, sample rate, method, conventions of the extra metrics);
- per target: ``spot_rate`` (isolated peaks per second in the residual, whole track),
  ``kurtosis_ratio`` and ``evaluated_with`` (the targets BSS Eval saw together);
- per frame: ``spot_rate`` of that frame.

Files written by museval or by other tools load here too (the ``"wavesep"`` keys are optional).

Aggregation
-----------
SiSEC 2018: per track and target the median over frames (NaN frames left out), then the median
over tracks (tracks without any valid frame left out): numerically what museval's
``EvalStore.agg_frames_tracks_scores()`` gives. The mean over tracks of the per-track medians is
offered beside it. Every number printed says which convention it uses
(:func:`convention_label`), and :func:`nan_frames` counts the frames that were left out.

Shape legend: N evaluation frames of a track.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from wavesep.atomic import write_text
from wavesep.errors import DataError

__all__ = [
    "METRICS",
    "MUSDB_TARGETS",
    "EXTRA_KEY",
    "AGGREGATIONS",
    "TrackResult",
    "PublishedRow",
    "ordered_targets",
    "quantize",
    "track_document",
    "write_json",
    "read_track_json",
    "load_results",
    "track_values",
    "aggregate",
    "nan_frames",
    "extra_track_values",
    "aggregate_extras",
    "convention_label",
    "sisec18_rows",
    "format_table",
    "format_value",
]

#: BSS Eval metrics in the order museval's TrackStore writes them.
METRICS = ("SDR", "SIR", "SAR", "ISR")
#: The MUSDB18 targets, in the order musdb lists them (museval evaluates and writes in it).
MUSDB_TARGETS = ("vocals", "drums", "bass", "other", "accompaniment", "linear_mixture")
#: Key under which wavesep stores its own numbers in a museval-format file.
EXTRA_KEY = "wavesep"
#: Aggregation functions over frames or tracks (both leave NaN out, as pandas does in museval).
AGGREGATIONS = ("median", "mean")

_DECIMALS = 5  # museval's TrackStore quantises to 0.00001 dB


@dataclass
class TrackResult:
    """The scores of one track, as read from (or written to) a museval-format file.

    Attributes:
        name: track name (the file name without ``.json``, as museval takes it).
        scores: ``scores[target][metric]`` is a float64 array (N,) of frame values in dB,
            NaN where undefined; metrics are "SDR", "SIR", "SAR", "ISR".
        extras: ``extras[target]`` holds wavesep's whole-track numbers of the target
            (e.g. ``{"spot_rate": 1/s, "kurtosis_ratio": ratio}``); empty for foreign files.
        frame_extras: ``frame_extras[target][key]`` is an array (N,) of per-frame extra numbers
            (e.g. ``"spot_rate"``); empty for foreign files.
        info: the top-level ``"wavesep"`` provenance dict ({} for foreign files).
        path: the file it was read from, if any.
    """

    name: str
    scores: Dict[str, Dict[str, np.ndarray]]
    extras: Dict[str, Dict[str, float]] = field(default_factory=dict)
    frame_extras: Dict[str, Dict[str, np.ndarray]] = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    path: Optional[str] = None

    @property
    def targets(self) -> Tuple[str, ...]:
        """Target names in file order."""
        return tuple(self.scores)


@dataclass(frozen=True)
class PublishedRow:
    """A published result: ``sdr[target]`` in dB under the convention of its source."""

    name: str
    note: str
    sdr: Mapping[str, float]


def ordered_targets(names: Iterable[str]) -> Tuple[str, ...]:
    """Distinct target names, MUSDB18 targets first in musdb's order, then others as given."""
    names = list(dict.fromkeys(names))
    known = [t for t in MUSDB_TARGETS if t in names]
    return tuple(known + [t for t in names if t not in MUSDB_TARGETS])


# ---------------------------------------------------------------------- writing


def quantize(value) -> float:
    """A metric value as museval stores it: rounded to 5 decimals, NaN for NaN and +-inf."""
    value = float(value)
    if not math.isfinite(value):
        return math.nan
    return round(value, _DECIMALS)


def _plain(value):
    """numpy scalars and arrays as JSON-ready Python values."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def track_document(
    scores: Mapping[str, Mapping[str, Sequence[float]]],
    window_seconds: float = 1.0,
    hop_seconds: float = 1.0,
    extras: Optional[Mapping[str, Mapping[str, float]]] = None,
    frame_extras: Optional[Mapping[str, Mapping[str, Sequence[float]]]] = None,
    info: Optional[Mapping] = None,
    museval_version: Optional[str] = None,
) -> dict:
    """The museval-format JSON document of one track.

    Args:
        scores: ``scores[target][metric]``: frame values (N,) in dB for the four metrics
            "SDR", "SIR", "SAR", "ISR"; targets are written in the mapping's order.
        window_seconds: frame length in seconds (museval's ``duration`` of every frame).
        hop_seconds: frame hop in seconds (frame k has ``time = k * hop_seconds``).
        extras: per-target whole-track extra numbers, stored under ``"wavesep"``.
        frame_extras: per-target arrays (N,) of per-frame extra numbers, stored under
            ``"wavesep"`` in each frame.
        info: provenance stored under the top-level ``"wavesep"`` key.
        museval_version: written as ``"museval_version"`` when given (museval computed the
            metrics); left out otherwise.

    Returns:
        A dict of plain Python values, ready for :func:`write_json`.

    Raises:
        DataError: a target lacks a metric, or the frame counts of a target differ.
    """
    targets = []
    for target, values in scores.items():
        missing = [m for m in METRICS if m not in values]
        if missing:
            raise DataError(f"target {target!r} has no {', '.join(missing)} values to write")
        columns = {m: np.asarray(values[m], dtype=np.float64).reshape(-1) for m in METRICS}
        num_frames = len(columns["SDR"])
        per_frame = {
            k: np.asarray(v, dtype=np.float64).reshape(-1)
            for k, v in ((frame_extras or {}).get(target) or {}).items()
        }
        lengths = {len(c) for c in columns.values()} | {len(c) for c in per_frame.values()}
        if lengths != {num_frames}:
            raise DataError(
                f"target {target!r} has frame series of different lengths {sorted(lengths)}; "
                "every metric needs one value per frame"
            )
        frames = []
        for k in range(num_frames):
            frame = {
                "time": k * float(hop_seconds),
                "duration": float(window_seconds),
                "metrics": {m: quantize(columns[m][k]) for m in METRICS},
            }
            if per_frame:
                frame[EXTRA_KEY] = {key: float(arr[k]) for key, arr in per_frame.items()}
            frames.append(frame)
        entry = {"name": str(target), "frames": frames}
        target_extras = (extras or {}).get(target)
        if target_extras:
            entry[EXTRA_KEY] = _plain(dict(target_extras))
        targets.append(entry)
    document = {"targets": targets}
    if museval_version is not None:
        document["museval_version"] = str(museval_version)
    if info:
        document[EXTRA_KEY] = _plain(dict(info))
    return document


def write_json(path, document: Mapping) -> Path:
    """Write a JSON document atomically (temporary file in the same folder, then rename).

    NaN is written as the ``NaN`` literal, as museval does (Python's and simplejson's readers
    accept it).

    Args:
        path: destination; for a track result ``RESULTS/<subset>/<track name>.json``.
        document: plain data, e.g. from :func:`track_document`.

    Returns:
        The written path.
    """
    return write_text(path, json.dumps(document, indent=2, allow_nan=True))  # NaN literals, as museval writes


# ---------------------------------------------------------------------- reading


def read_track_json(path) -> TrackResult:
    """Read one museval-format track file (written by wavesep, museval or another tool).

    Args:
        path: the ``.json`` file; the track name is its file name without the extension.

    Returns:
        :class:`TrackResult`. A metric missing from some frames reads as NaN there.

    Raises:
        DataError: unreadable file, invalid JSON, or not a museval track document.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read the result file {path}: {e}; delete it to re-evaluate the track") from None
    if not isinstance(document, dict) or not isinstance(document.get("targets"), list):
        raise DataError(
            f"{path} is not a museval track result (no 'targets' list); "
            "result folders hold <subset>/<track>.json files as museval writes them"
        )
    scores: Dict[str, Dict[str, np.ndarray]] = {}
    extras: Dict[str, Dict[str, float]] = {}
    frame_extras: Dict[str, Dict[str, np.ndarray]] = {}
    for entry in document["targets"]:
        if not isinstance(entry, dict) or "name" not in entry or not isinstance(entry.get("frames"), list):
            raise DataError(f"{path}: every target needs a 'name' and a 'frames' list; got {str(entry)[:80]}")
        name = str(entry["name"])
        frames = entry["frames"]
        columns = {m: np.full(len(frames), np.nan) for m in METRICS}
        per_frame: Dict[str, np.ndarray] = {}
        for k, frame in enumerate(frames):
            metrics = frame.get("metrics", {}) if isinstance(frame, dict) else {}
            for m in METRICS:
                value = metrics.get(m)
                if value is not None:
                    columns[m][k] = float(value)
            extra = frame.get(EXTRA_KEY) if isinstance(frame, dict) else None
            if isinstance(extra, dict):
                for key, value in extra.items():
                    per_frame.setdefault(key, np.full(len(frames), np.nan))[k] = _as_float(value)
        scores[name] = columns
        if per_frame:
            frame_extras[name] = per_frame
        if isinstance(entry.get(EXTRA_KEY), dict):
            extras[name] = dict(entry[EXTRA_KEY])
    info = document.get(EXTRA_KEY) if isinstance(document.get(EXTRA_KEY), dict) else {}
    return TrackResult(path.stem, scores, extras, frame_extras, dict(info), str(path))


def _as_float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def load_results(folder, subset: str = "test", tracks: Optional[Sequence[str]] = None) -> Dict[str, TrackResult]:
    """All track results of one subset of a result folder, by track name.

    Reads ``folder/<subset>/**/*.json`` (museval's layout; its loaders read ``test`` only).

    Args:
        folder: a method's result folder (what museval calls the output dir).
        subset: "test" or "train" (the MUSDB folder the tracks live in).
        tracks: if given, exactly these tracks (each must be there).

    Returns:
        ``{track name: TrackResult}`` sorted by name.

    Raises:
        DataError: the folder or subset is missing or empty, a requested track is missing, two
            files share a track name, or a file cannot be read.
    """
    folder = Path(folder)
    base = folder / subset
    if not base.is_dir():
        raise DataError(
            f"result folder {base} does not exist: a result folder holds "
            f"<subset>/<track>.json files (museval's layout), e.g. {folder / 'test'}"
        )
    paths = sorted(p for p in base.glob("**/*.json") if not p.name.startswith("."))
    by_name: Dict[str, Path] = {}
    for p in paths:
        if p.stem in by_name:
            raise DataError(f"two result files for track {p.stem!r}: {by_name[p.stem]} and {p}; keep one")
        by_name[p.stem] = p
    if tracks is not None:
        missing = [t for t in tracks if t not in by_name]
        if missing:
            raise DataError(
                f"{base} has no result for {len(missing)} track(s) (first: {missing[0]!r}); "
                "evaluate them first or leave them out of --tracks"
            )
        wanted = sorted(set(tracks))
    else:
        wanted = sorted(by_name)
    if not wanted:
        raise DataError(f"{base} holds no track result (.json) files")
    return {name: read_track_json(by_name[name]) for name in wanted}


# ---------------------------------------------------------------------- aggregation


def _agg(values: np.ndarray, how: str) -> float:
    """median / mean of the non-NaN values; NaN (without a warning) when there are none."""
    if how not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {how!r}")
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return math.nan
    return float(np.median(values) if how == "median" else np.mean(values))


def _all_targets(results: Mapping[str, TrackResult]) -> Tuple[str, ...]:
    return ordered_targets(t for r in results.values() for t in r.scores)


def track_values(
    results: Mapping[str, TrackResult], metric: str = "SDR", frames: str = "median"
) -> Dict[str, Dict[str, float]]:
    """Per-track values of one metric: the median (or mean) over frames, NaN frames left out.

    Args:
        results: ``{track: TrackResult}`` (e.g. from :func:`load_results`).
        metric: "SDR", "SIR", "SAR" or "ISR".
        frames: "median" (SiSEC 2018) or "mean".

    Returns:
        ``{target: {track: value in dB}}``; NaN for a track whose frames are all NaN. Tracks
        that lack the target are absent.
    """
    out: Dict[str, Dict[str, float]] = {}
    for target in _all_targets(results):
        out[target] = {
            name: _agg(r.scores[target][metric], frames) for name, r in results.items() if target in r.scores
        }
    return out


def aggregate(
    results: Mapping[str, TrackResult], frames: str = "median", tracks: str = "median"
) -> Dict[str, Dict[str, float]]:
    """Dataset-level scores: aggregate over frames per track, then over tracks.

    ``frames="median", tracks="median"`` is the SiSEC 2018 convention and equals museval's
    ``EvalStore(frames_agg, tracks_agg).agg_frames_tracks_scores()``: NaN frames and tracks
    without any valid frame are left out (see :func:`nan_frames` for how many).

    Returns:
        ``{target: {metric: value in dB}}`` for the four metrics; NaN where no track has a valid
        frame.
    """
    out: Dict[str, Dict[str, float]] = {}
    for metric in METRICS:
        for target, per_track in track_values(results, metric, frames).items():
            out.setdefault(target, {})[metric] = _agg(np.array(list(per_track.values())), tracks)
    return out


@dataclass
class PairedDifference:
    """One method against a reference on the tracks both scored, for one target and metric.

    Per track the metric is the median over frames (NaN frames left out); the differences are
    method - reference in dB. Attributes: tracks (n, both finite), mean and sem (mean of the
    per-track differences and its standard error, std with ddof 1 / sqrt(n); NaN for n < 2),
    wins / losses (tracks where the method is higher / lower), median_difference (median over
    tracks of the method minus that of the reference: the SiSEC figure's change), and ci (2.5 and
    97.5 percentiles of that change when the n tracks are resampled with replacement, the same
    tracks for both methods: a paired bootstrap).
    """

    tracks: int
    mean: float
    sem: float
    wins: int
    losses: int
    median_difference: float
    ci: Tuple[float, float]


def paired_differences(
    reference: Mapping[str, TrackResult], results: Mapping[str, TrackResult], metric: str = "SDR",
    resamples: int = 2000, seed: int = 0,
) -> Dict[str, PairedDifference]:
    """``results`` against ``reference`` track by track (:class:`PairedDifference` per target
    both have). A paired comparison removes what the tracks share (some songs are hard for every
    model), so a change of tenths of a dB that the median over tracks hides in the spread of the
    tracks can be told from noise. ``resamples`` bootstrap draws from ``numpy.random.default_rng(seed)``.
    """
    ref, new = track_values(reference, metric), track_values(results, metric)
    out: Dict[str, PairedDifference] = {}
    for target in ordered_targets(t for t in ref if t in new):
        names = sorted(n for n in ref[target] if n in new[target]
                       and math.isfinite(ref[target][n]) and math.isfinite(new[target][n]))
        if not names:
            continue
        a = np.array([ref[target][n] for n in names])
        b = np.array([new[target][n] for n in names])
        d = b - a
        n = len(names)
        idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
        boot = np.median(b[idx], axis=1) - np.median(a[idx], axis=1)
        out[target] = PairedDifference(
            tracks=n, mean=float(d.mean()), sem=float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan,
            wins=int((d > 0).sum()), losses=int((d < 0).sum()),
            median_difference=float(np.median(b) - np.median(a)),
            ci=(float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))),
        )
    return out


def nan_frames(results: Mapping[str, TrackResult], metric: str = "SDR") -> Dict[str, Tuple[int, int, int]]:
    """How many frames the aggregation leaves out, per target.

    Returns:
        ``{target: (nan_frames, total_frames, tracks_without_valid_frame)}``, counted on
        ``metric`` (museval NaNs every metric of a frame together).
    """
    out: Dict[str, Tuple[int, int, int]] = {}
    for target in _all_targets(results):
        nan = total = empty = 0
        for r in results.values():
            if target not in r.scores:
                continue
            values = r.scores[target][metric]
            missing = int(np.isnan(values).sum())
            nan += missing
            total += values.size
            empty += int(missing == values.size)
        out[target] = (nan, total, empty)
    return out


def extra_track_values(results: Mapping[str, TrackResult], key: str) -> Dict[str, Dict[str, float]]:
    """Per-track whole-track extra numbers (e.g. ``"spot_rate"``): ``{target: {track: value}}``.

    Tracks whose file has no such number (foreign files) are absent.
    """
    out: Dict[str, Dict[str, float]] = {}
    for target in _all_targets(results):
        values = {
            name: _as_float(r.extras[target][key])
            for name, r in results.items()
            if key in r.extras.get(target, {})
        }
        if values:
            out[target] = values
    return out


def aggregate_extras(
    results: Mapping[str, TrackResult], keys: Sequence[str] = ("spot_rate", "kurtosis_ratio"), tracks: str = "median"
) -> Dict[str, Dict[str, float]]:
    """Median (or mean) over tracks of whole-track extra numbers: ``{target: {key: value}}``."""
    out: Dict[str, Dict[str, float]] = {}
    for key in keys:
        for target, per_track in extra_track_values(results, key).items():
            out.setdefault(target, {})[key] = _agg(np.array(list(per_track.values())), tracks)
    return out


def convention_label(frames: str = "median", tracks: str = "median", window_seconds: float = 1.0) -> str:
    """Human-readable name of an aggregation convention, e.g. for table titles."""
    label = f"{frames} over {window_seconds:g} s frames per track, then {tracks} over tracks"
    if frames == "median" and tracks == "median":
        label += " (SiSEC 2018 convention)"
    return label


# ---------------------------------------------------------------------- published rows


def _load_sisec18() -> dict:
    text = resources.files("wavesep").joinpath("resources/sisec18.json").read_text(encoding="utf-8")
    return json.loads(text)


def sisec18_rows(include_later: bool = False) -> List[PublishedRow]:
    """The published SiSEC 2018 SDR medians on the MUSDB18 test set (REFERENCE.md section 3).

    Convention: BSS Eval v4, 1 s frames, median over frames per track, then median over the 50
    test tracks. With ``include_later``, later systems quoted for scale follow (their notes say
    where they differ, e.g. MUSDB18-HQ).

    Returns:
        list of :class:`PublishedRow` with ``sdr[target]`` in dB.
    """
    data = _load_sisec18()
    rows = list(data["rows"]) + (list(data.get("later", [])) if include_later else [])
    return [PublishedRow(r["name"], r.get("note", ""), dict(r["SDR"])) for r in rows]


# ---------------------------------------------------------------------- text tables


def format_value(value, decimals: int = 2) -> str:
    """A number for a table cell: fixed decimals, "nan" for NaN, "" for None."""
    if value is None:
        return ""
    value = float(value)
    if math.isnan(value):
        return "nan"
    return f"{value:.{decimals}f}"


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    widths = [len(h) for h in header]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"table row has {len(row)} cells for {len(header)} columns: {row}")
        widths = [max(w, len(c)) for w, c in zip(widths, row)]

    def line(cells):
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return "  ".join([first] + rest).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep] + [line(r) for r in rows])
