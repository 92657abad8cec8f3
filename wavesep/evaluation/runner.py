"""Evaluating one track, and many tracks in a pool of worker processes; reruns skip what is done.

A track's result file ``OUT/<method>/<subset>/<track>.json`` is written atomically when the track
is complete, so an interrupted evaluation resumes where it stopped (``--force`` recomputes). Each
file records what produced it (:func:`result_record`: model weights' hash, post-filter, backend,
window, version...); a rerun with other settings recomputes the track and says why.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import multiprocessing
import os
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from wavesep import postfilter as postfilters
from wavesep.atomic import remove_stale
from wavesep.checkpoint import weights_digest
from wavesep.data.tracks import TrackSpec
from wavesep.errors import DataError
from wavesep.evaluation.estimates import _folder_estimates, _irm_estimates, _model_estimates
from wavesep.evaluation.methods import EvalOptions, Method, TrackOutcome, load_separation_model
from wavesep.evaluation.scoring import _silent, score_track
from wavesep.evaluation.tracks import _read_stems, _stem_files, target_stems
from wavesep.metrics import aggregate as agg


Log = Callable[[str], None]


# ---------------------------------------------------------------------- one track, many tracks


_MODELS: Dict[str, object] = {}


def _cached_model(spec: str):
    if spec not in _MODELS:
        _MODELS[spec] = load_separation_model(spec)
    return _MODELS[spec]


def result_path(out_dir, folder_subset: str, track_name: str) -> Path:
    """Where a track's result file goes: ``out_dir/<subset>/<track>.json`` (museval's layout)."""
    return Path(out_dir) / folder_subset / f"{track_name}.json"


def result_record(method: Method, options: EvalOptions, model=None) -> dict:
    """What produces a method's track results, stored in each result file (its ``"wavesep"``
    key) and compared on reruns: the wavesep version, backend, framing and musical-noise option,
    and for a model the SHA-256 of its configuration and weights
    (:func:`wavesep.checkpoint.weights_digest`), the post-filter it runs with and the window
    length; for an estimates folder its path and ``fix_length``. ``model``: the loaded model of a
    "model" method."""
    from wavesep import __version__

    record = {
        "wavesep_version": __version__,
        "method_kind": method.kind,
        "backend": options.backend,
        "window_seconds": float(options.window_seconds),
        "hop_seconds": float(options.hop_seconds),
        "musical_noise": bool(options.musical_noise),
    }
    if method.kind == "model":
        record["model_sha256"] = weights_digest(model)
        record["postfilter"] = postfilters.resolve(options.postfilter, getattr(model, "metadata", None))
        record["segment_seconds"] = float(options.segment_seconds)
    elif method.kind == "estimates":
        record["method_source"] = method.source
        record["fix_length"] = bool(options.fix_length)
    return record


def _complete(path: Path, targets: Sequence[str], record: Optional[dict] = None) -> Tuple[bool, str]:
    if not path.exists():
        return False, ""
    try:
        result = agg.read_track_json(path)
    except DataError as e:
        return False, f"re-evaluating: {e}"
    missing = [t for t in targets if t not in result.scores]
    if missing:
        return False, f"re-evaluating: {path} lacks {', '.join(missing)}"
    changed = [k for k in (record or {}) if result.info.get(k) != record[k]]
    if changed:
        was = ", ".join(f"{k}={result.info.get(k, '(not recorded)')}" for k in changed)
        now = ", ".join(f"{k}={record[k]}" for k in changed)
        return False, f"re-evaluating: {path} was made with {was}; this run uses {now}"
    return True, ""


def evaluate_track(
    track: TrackSpec,
    method: Method,
    out_dir,
    folder_subset: str,
    options: EvalOptions,
    model=None,
    log: Log = print,
    record: Optional[dict] = None,
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
        record: :func:`result_record` of the method (computed when None).

    Returns:
        :class:`TrackOutcome` ("skipped" when a complete result made the same way
        (:func:`result_record`) exists and not ``options.force``).

    Raises:
        WavesepError: see the module docstring (each message names the file).
    """
    path = result_path(out_dir, folder_subset, track.name)
    note = ""
    if method.kind == "model":
        model = model if model is not None else _cached_model(method.source)
    if record is None:
        record = result_record(method, options, model)
    if not options.force:
        done, note = _complete(path, options.targets, record)
        if done:
            return TrackOutcome(track.name, str(path), "skipped")
    start = time.perf_counter()
    stems, sample_rate, mixture = _read_stems(track)
    parts = {t: target_stems(track, t) for t in options.targets}
    references = {t: sum(stems[s] for s in parts[t]) for t in options.targets}
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
        estimates = _model_estimates(model, mixture, sample_rate, options.targets, options, method.name)
    elif method.kind == "estimates":
        estimates, labels = _folder_estimates(
            method, folder_subset, track, options.targets, shape, sample_rate, options.fix_length, log
        )
    elif method.source == "irm":
        estimates = _irm_estimates(stems, parts)
    else:
        estimates = {t: mixture for t in options.targets}
    info = {"method": method.name, "method_source": method.source, **record}
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
    ray: Optional[str] = None,
    ray_workers: Optional[int] = None,
    ray_cpus: float = 1.0,
) -> List[TrackOutcome]:
    """Evaluate one method on many tracks, ``jobs`` tracks at a time.

    Tracks whose result file is complete are skipped first (unless ``options.force``). With
    ``jobs > 1`` the others run in worker processes (spawned, with ``cpu_count // jobs`` torch
    threads each), which load the model themselves. With ``ray`` (a Ray cluster address, or ""
    for a local instance) they run on ``ray_workers`` Ray workers of ``ray_cpus`` CPUs instead
    (:func:`wavesep.cluster.evaluate.evaluate_on_ray`). The first error stops the run; results
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

    remove_stale(Path(out_dir) / folder_subset)  # temporaries a killed run left (older than this process)
    if method.kind == "model" and model is None:
        model = _cached_model(method.source)
    record = result_record(method, options, model)
    pending = []
    for track in tracks:
        path = result_path(out_dir, folder_subset, track.name)
        complete = False
        if not options.force:
            complete, note = _complete(path, options.targets, record)
            if note:
                log(f"  {note}")
        if complete:
            report(TrackOutcome(track.name, str(path), "skipped"))
        else:
            pending.append(track)
    # the check is done: workers must not skip a track whose file they were sent to replace
    options = dataclasses.replace(options, force=True)

    if ray is not None and pending:
        from wavesep.cluster.evaluate import evaluate_on_ray

        evaluate_on_ray(method, pending, out_dir, folder_subset, options, model, report, log, record=record,
                        address=ray or None, workers=ray_workers, cpus_per_worker=ray_cpus)
    elif jobs == 1 or len(pending) <= 1:
        for track in pending:
            report(evaluate_track(track, method, out_dir, folder_subset, options, model, log, record))
    else:
        with contextlib.ExitStack() as stack:
            pool = _pool if _pool is not None else stack.enter_context(_WorkerPool(jobs))
            futures = [
                pool.get().submit(evaluate_track, track, method, str(out_dir), folder_subset, options, record=record)
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


