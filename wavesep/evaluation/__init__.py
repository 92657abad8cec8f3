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

The wing: :mod:`.scoring` (BSS Eval and musical noise of one track), :mod:`.methods` (what is
evaluated, options, targets, models), :mod:`.tracks` (selection, reading stems), :mod:`.estimates`
(model, folder, oracle), :mod:`.runner` (one track, many tracks, worker pool, reruns),
:mod:`.report` and :mod:`.plots` (tables, summary, box plot), :mod:`.cli` (the command line).

May import: wavesep.metrics, wavesep.data (track discovery), inference (wavesep.apply,
wavesep.postfilter, wavesep.checkpoint, wavesep.pretrained) and the shared basics; with ``--ray``,
wavesep.cluster (imported only then). Nothing in the
package imports this wing, apart from the command shims (wavesep.evaluate, wavesep.cli).
"""

from wavesep.evaluation.cli import main
from wavesep.evaluation.methods import (
    DEFAULT_ORACLE_TARGETS,
    ORACLES,
    EvalOptions,
    Method,
    TrackOutcome,
    load_separation_model,
    resolve_targets,
)
from wavesep.evaluation.plots import plot_sdr_boxplot
from wavesep.evaluation.report import format_report
from wavesep.evaluation.runner import evaluate_track, evaluate_tracks
from wavesep.evaluation.scoring import BACKENDS, TARGET_STEMS, evaluation_groups, score_track
from wavesep.evaluation.tracks import select_tracks

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
