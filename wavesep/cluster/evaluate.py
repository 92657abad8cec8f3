"""``wavesep-evaluate --ray [ADDRESS]``: tracks evaluated by Ray workers, one model per worker.

Each worker runs :func:`wavesep.evaluation.runner.evaluate_track` (the local path's code) into a
folder of its own and returns the track's museval JSON, which the driver writes atomically to
``OUT/<method>/<subset>/<track>.json``. The workers read the dataset (and ``--estimates``
folders) at the paths the driver gives, so on a multi-machine cluster these must be on a shared
file system or copied to the same path on every node; the results go through the driver.

The local path's rules hold: tracks with a complete result are skipped before anything is sent
(reruns), and the first error stops the run (results already written stay). A worker that dies
is restarted by Ray and its tracks are evaluated again (:class:`~wavesep.cluster.pool.ActorPool`).
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
import traceback
from typing import Callable, Optional, Sequence

import torch

from .. import checkpoint, errors
from ..atomic import atomic_open
from .pool import ActorPool, ClusterError, connect, default_workers, disconnect, require_ray


class EvaluationWorker:
    """One Ray worker: evaluates tracks with the local path's :func:`evaluate_track`.

    Args:
        model_checkpoint: None (oracles, estimate folders) or a one-element list holding a Ray
            ObjectRef of :func:`wavesep.checkpoint.make_checkpoint` of the model.
        model_name: its name.
        threads: torch CPU threads.
    """

    def __init__(self, model_checkpoint, model_name: str, threads: int):
        torch.set_num_threads(max(1, int(threads)))
        self.model = None
        if model_checkpoint is not None:
            ckpt = require_ray().get(model_checkpoint[0])
            self.model = checkpoint.model_from_checkpoint(ckpt, model_name)
            self.model.metadata = dict(ckpt.get("metadata") or {})
            self.model.name = model_name

    def pid(self) -> int:
        import os

        return os.getpid()

    def evaluate(self, track, method, folder_subset: str, options, record: Optional[dict] = None) -> dict:
        """Evaluates one track (``record``: the driver's :func:`result_record`, stored in the result).

        Returns:
            {"json": bytes, "seconds": float, "notes": [str]} or {"error": message, "type": class name}.
        """
        from ..evaluation.runner import evaluate_track, result_path

        notes = []
        with tempfile.TemporaryDirectory(prefix="wavesep-ray-eval-") as tmp:
            try:
                outcome = evaluate_track(track, method, tmp, folder_subset, options, self.model, notes.append, record)
                data = result_path(tmp, folder_subset, track.name).read_bytes()
            except errors.WavesepError as exc:
                return {"error": str(exc), "type": type(exc).__name__, "notes": notes}
            except Exception as exc:  # a bug: the driver stops with the traceback
                return {"error": f"unexpected {type(exc).__name__}: {exc}", "type": "",
                        "traceback": traceback.format_exc(), "notes": notes}
        return {"json": data, "seconds": outcome.seconds, "note": outcome.note, "notes": notes}


def _raise(result: dict) -> None:
    cls = getattr(errors, result.get("type") or "", None)
    if not (isinstance(cls, type) and issubclass(cls, errors.WavesepError)):
        cls = errors.WavesepError
    raise cls(result["error"])


def evaluate_on_ray(
    method,
    tracks: Sequence,
    out_dir,
    folder_subset: str,
    options,
    model,
    report: Callable,
    log: Callable[[str], None] = print,
    *,
    record: Optional[dict] = None,
    address: Optional[str] = None,
    workers: Optional[int] = None,
    cpus_per_worker: float = 1.0,
    quiet: bool = False,
) -> None:
    """Evaluates ``tracks`` (none of them complete yet) with one method on Ray workers.

    Args:
        method, folder_subset, options: as :func:`wavesep.evaluation.runner.evaluate_track`.
        model: the loaded model of a "model" method (sent to each worker once), else None.
        report: called with each track's :class:`~wavesep.evaluation.methods.TrackOutcome` as
            it is written, in the order tracks finish.
        record: the method's :func:`~wavesep.evaluation.runner.result_record`, stored in every
            result as the local path stores it (computed by the workers when None).
        address, workers, cpus_per_worker: as :func:`wavesep.cluster.separate.separate_on_ray`.

    Raises:
        WavesepError: the first track that fails (the same class and message as locally), or
            :class:`~wavesep.cluster.pool.ClusterError`.
    """
    from ..evaluation.methods import TrackOutcome
    from ..evaluation.runner import result_path

    if not tracks:
        return
    ray = require_ray()
    ours = connect(address)
    pool = None
    try:
        device = str(options.device)
        use_gpus = model is not None and device != "cpu"
        n = max(1, min(int(workers or default_workers(cpus_per_worker, use_gpus)), len(tracks)))
        cluster_gpus = ray.cluster_resources().get("GPU", 0)
        gpus = 1 if use_gpus and cluster_gpus >= n else 0
        if model is not None and device.startswith("cuda") and not gpus:
            raise ClusterError(f"--device {device} with --ray needs one GPU per worker: the cluster has "
                               f"{cluster_gpus:g} GPU(s) for {n} worker(s)")
        options = dataclasses.replace(options, device="cuda" if gpus else "cpu")
        ckpt = None
        if model is not None:
            ckpt = [ray.put(checkpoint.make_checkpoint(model, getattr(model, "metadata", None) or {}))]
        pool = ActorPool(ray.remote(EvaluationWorker), (ckpt, getattr(model, "name", method.name),
                                                        max(1, int(cpus_per_worker))), n,
                         {"num_cpus": cpus_per_worker, "num_gpus": gpus})
        pool.pids()
        log(f"Ray: {n} worker(s), {cpus_per_worker:g} CPU(s){' and 1 GPU' if gpus else ''} each")
        from tqdm import tqdm

        bar = tqdm(total=len(tracks), unit="track", disable=quiet, file=sys.stderr, dynamic_ncols=True,
                   desc=method.name)

        def on_done(track, result):
            for note in result.get("notes", []):
                bar.write(note)
            if "error" in result:
                if result.get("traceback"):
                    bar.write(result["traceback"].rstrip(), file=sys.stderr)
                _raise(result)  # the first error stops the run, as locally
            path = result_path(out_dir, folder_subset, track.name)
            with atomic_open(path, "wb") as f:
                f.write(result["json"])
            bar.update(1)
            report(TrackOutcome(track.name, str(path), "evaluated", result["seconds"], result.get("note", "")))

        def on_failure(track, message):
            raise errors.WavesepError(f"track {track.name!r}: {message}")

        def on_retry(track, why):
            bar.write(f"{why}; track {track.name!r} is evaluated again", file=sys.stderr)

        start = time.perf_counter()
        try:
            stats = pool.run(list(tracks), "evaluate", lambda t: (t, method, folder_subset, options, record),
                             on_done, on_failure, on_retry)
        finally:
            bar.close()
        log(f"Ray: {stats.finished} track(s) in {time.perf_counter() - start:.1f} s"
            + (f", {stats.retried} evaluated again after {stats.worker_deaths} worker death(s)" if stats.retried else ""))
    finally:
        if pool is not None:
            pool.close()
        if ours:
            disconnect()


class session:
    """``with session(address):`` one Ray connection for several :func:`evaluate_on_ray` calls
    (None: no Ray; "": a local instance)."""

    def __init__(self, address: Optional[str]):
        self.address = address
        self.ours = False

    def __enter__(self):
        if self.address is not None:
            self.ours = connect(self.address or None)
        return self

    def __exit__(self, *exc):
        if self.ours:
            disconnect()


__all__ = ["EvaluationWorker", "evaluate_on_ray", "session"]
