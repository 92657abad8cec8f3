"""Box plot of per-track SDR by method and target (matplotlib, imported lazily, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from wavesep.atomic import atomic_path
from wavesep.errors import DataError, DependencyError
from wavesep.metrics import aggregate as agg


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
