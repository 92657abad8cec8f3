"""The text report of an evaluation (median SDR/SIR/SAR/ISR per method and target, SiSEC rows),
and the summary JSON written beside the per-track results."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import List, Mapping, Optional

import numpy as np

from wavesep.atomic import write_text

from wavesep.evaluation.methods import Method
from wavesep.metrics import aggregate as agg

# Whole-track extras shown per target: musical noise and the top band's recovery.
_EXTRA_KEYS = ("spot_rate", "kurtosis_ratio", "high_band_recovered")


# ---------------------------------------------------------------------- report and plot


def _paired_lines(results, labels) -> List[str]:
    """The paired comparison of every method with the first one, on their common tracks."""
    names = list(results)
    if len(names) < 2:
        return []
    first = names[0]
    rows = []
    for method in names[1:]:
        for target, d in agg.paired_differences(results[first], results[method]).items():
            rows.append([labels.get(method, method), target, str(d.tracks),
                         f"{d.mean:+.2f} ± {agg.format_value(d.sem)}", f"{d.wins}/{d.losses}",
                         f"{d.median_difference:+.2f}", f"[{d.ci[0]:+.2f}, {d.ci[1]:+.2f}]"])
    if not rows:
        return []
    return [f"Paired against {labels.get(first, first)}, SDR per track (median over frames) on the tracks "
            "both scored: mean difference ± standard error, tracks better/worse, the change of the "
            "median over tracks and its 95% paired-bootstrap interval (2000 resamples of the tracks)",
            agg.format_table(["method", "target", "tracks", "mean diff", "better/worse", "median diff",
                              "95% interval"], rows), ""]


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
    lines.extend(_paired_lines(results, labels))
    lines.append(
        f"Per method: metrics in dB, {agg.convention_label('median', 'median', window_seconds)}; "
        "spots/s (residual isolated peaks per second) and KR (kurt(estimate) / kurt(reference)): "
        "median over tracks; HF rec. (share of the reference's energy above 11.025 kHz that the "
        "estimate recovers, 1 - |E_h - R_h|^2 / |R_h|^2; inputs above 22.05 kHz only): median over tracks; "
        "NaN frames: left out of the medians"
    )
    for method, res in results.items():
        scores = agg.aggregate(res)
        extras = agg.aggregate_extras(res, _EXTRA_KEYS)
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
                + [agg.format_value(extra.get("spot_rate")), agg.format_value(extra.get("kurtosis_ratio"), 3),
                   agg.format_value(extra.get("high_band_recovered"), 3), share]
            )
        lines.append(f"{labels.get(method, method)} ({len(res)} track{'' if len(res) == 1 else 's'})")
        lines.append(agg.format_table(["target"] + list(agg.METRICS) + ["spots/s", "KR", "HF rec.", "NaN frames"], rows))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _write_summary(folder: Path, folder_subset: str, results, method: Method) -> Path:
    """``folder/summary-<subset>.json``: aggregated numbers with their conventions (outside the
    subset folder, so museval's loaders never mistake it for a track), strict JSON: null where a
    number is undefined (a target whose frames are all NaN)."""
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
        "high_band_median_over_tracks": agg.aggregate_extras(
            results, ("high_band_recovered", "high_band_energy_ratio", "high_band_reference_share")),
        "nan_frames": {
            t: {"nan": n, "total": total, "tracks_all_nan": e} for t, (n, total, e) in agg.nan_frames(results).items()
        },
    }
    path = folder / f"summary-{folder_subset}.json"
    # Strict JSON (null where a number is undefined, e.g. every frame NaN), unlike museval's
    # per-track files, which keep their NaN literals.
    return write_text(path, json.dumps(_strict(summary), indent=2, allow_nan=False))


def _strict(value):
    """``value`` with every non-finite float replaced by None (JSON null)."""
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value
