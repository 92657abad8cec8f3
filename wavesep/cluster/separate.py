"""``wavesep-separate --ray [ADDRESS]``: tracks separated by Ray workers, one model per worker.

The driver (the command line) reads each input file's bytes and streams them to the workers;
each worker decodes, separates and encodes exactly as the local path does (the same
:class:`~wavesep.api.Separator`, :func:`~wavesep.audio.read` and
:func:`~wavesep.api.save_stems`) and returns the encoded files, which the driver writes into
``OUT/<model>/<track>/`` as one unit (:func:`wavesep.atomic.atomic_folder`), as the local path
does. The model travels as a plain-data checkpoint dict
(:func:`wavesep.checkpoint.make_checkpoint`), never as pickled code of ours.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from .. import audio, checkpoint
from ..api import Separator, save_stems
from ..atomic import atomic_folder
from ..errors import WavesepError
from .pool import ActorPool, ClusterError, connect, default_workers, disconnect, require_ray


class SeparationWorker:
    """One Ray worker: holds a :class:`~wavesep.api.Separator` and separates files sent as bytes.

    Args:
        model_checkpoint: :func:`wavesep.checkpoint.make_checkpoint` of the model, or a
            one-element list holding a Ray ObjectRef of it (the driver keeps it alive).
        model_name: its name (the output folder).
        options: keyword arguments of :class:`~wavesep.api.Separator` (device, segment_seconds,
            batch_size, precision, clip, channel_policy, two_stems, postfilter).
        threads: torch CPU threads (the worker's CPUs in Ray).
    """

    def __init__(self, model_checkpoint, model_name: str, options: dict, threads: int):
        torch.set_num_threads(max(1, int(threads)))
        if isinstance(model_checkpoint, list):  # [ObjectRef]: fetched here, so a restart fetches it again
            model_checkpoint = require_ray().get(model_checkpoint[0])
        model = checkpoint.model_from_checkpoint(model_checkpoint, model_name)
        model.metadata = dict(model_checkpoint.get("metadata") or {})
        model.name = model_name
        self.separator = Separator(model, **options)

    def pid(self) -> int:
        return os.getpid()

    def separate(self, given: str, data: bytes, encoding: str, extension: str,
                 spectrogram_title: Optional[str]) -> dict:
        """Separates one file.

        Args:
            given: the input's path on the driver (its name decides the decoder; messages name it).
            data: the file's bytes.
            encoding, extension: as :func:`wavesep.api.save_stems`.
            spectrogram_title: also draw ``spectrograms.png`` with this title (None: no).

        Returns:
            {"files": {file name: bytes}, "seconds": float} or {"error": message} (the local
            command line's message for the file), plus "traceback" for unexpected errors.
        """
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="wavesep-ray-") as tmp:
            src = Path(tmp) / "in" / Path(given).name
            src.parent.mkdir()
            src.write_bytes(data)
            try:
                wav, rate = audio.read(src)  # (C, T)
                try:
                    stems = self.separator.separate_tensor(wav, rate)
                except WavesepError as exc:
                    raise type(exc)(f"{src}: {exc}") from None
                out = Path(tmp) / "out"
                save_stems(stems, out, rate, encoding=encoding, extension=extension)
                if spectrogram_title is not None:
                    from ..plot import save_spectrograms

                    save_spectrograms(out / "spectrograms.png", wav, stems, rate, title=spectrogram_title)
                files = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if not p.name.startswith(".")}
            except WavesepError as exc:
                return {"error": str(exc).replace(str(src), given)}
            except Exception as exc:  # a bug: the driver prints the traceback and goes on
                return {"error": f"unexpected {type(exc).__name__}: {str(exc).replace(str(src), given)}",
                        "traceback": traceback.format_exc()}
        return {"files": files, "seconds": time.perf_counter() - start}


def _read_input(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        audio.read(path)  # raises the local path's AudioError for a missing/unreadable/folder input
        raise WavesepError(f"cannot read {path}: {exc.strerror or exc}") from None


def write_files(folder: Path, files: Dict[str, bytes]) -> None:
    """Writes a track's files as the local path does: into a temporary folder, moved into
    ``folder`` together (:func:`wavesep.atomic.atomic_folder`), so the track is written whole or
    not at all."""
    with atomic_folder(folder) as staging:
        for name, data in files.items():
            (staging / name).write_bytes(data)


def separate_on_ray(
    separator: Separator,
    tracks: Sequence,
    model_dir: Path,
    *,
    address: Optional[str] = None,
    workers: Optional[int] = None,
    cpus_per_worker: float = 1.0,
    device: str = "auto",
    encoding: str = "int16",
    extension: str = "wav",
    spectrogram: bool = False,
    quiet: bool = False,
    on_result=None,
    numbers: Optional[Sequence[int]] = None,
    of: Optional[int] = None,
) -> List[Optional[str]]:
    """Separates ``tracks`` (:class:`wavesep.separate.Track`) on Ray workers into
    ``model_dir/<track name>/``.

    Args:
        separator: the driver's separator: its model and options are what the workers use.
        address: a Ray cluster address; None starts a local instance (or uses the one this process
            already has).
        workers: number of workers (default: one per GPU of the cluster when ``device`` allows
            CUDA and it has GPUs, else one per ``cpus_per_worker`` CPUs), at most one per track.
        cpus_per_worker: Ray CPUs (and torch threads) per worker.
        on_result: called as ``on_result(index, message_or_None, pool)`` after each track (tests
            use it to kill a worker mid-run).
        numbers, of: the tracks' numbers (0-based) and the count shown in the "[n/of]" lines
            (default: their positions in ``tracks`` and its length), so that a rerun that leaves
            tracks out numbers them as the whole run does.

    Returns:
        One entry per track: None when its files were written, else the error message.
    """
    ray = require_ray()
    total = len(tracks)
    results: List[Optional[str]] = [None] * total
    if total == 0:
        return results
    ours = connect(address, None)
    pool = None
    try:
        device = str(device)
        use_gpus = device != "cpu"
        n = workers or default_workers(cpus_per_worker, use_gpus)
        n = max(1, min(int(n), total))
        cluster_gpus = ray.cluster_resources().get("GPU", 0)
        gpus = 1 if use_gpus and cluster_gpus >= n else 0
        if device.startswith("cuda") and not gpus:
            raise ClusterError(f"--device {device} with --ray needs one GPU per worker: the cluster has "
                               f"{cluster_gpus:g} GPU(s) for {n} worker(s) (fewer --ray-workers, or --device auto)")
        # Ray gives each worker its own GPU as cuda:0 (CUDA_VISIBLE_DEVICES).
        options = dict(device="cuda" if gpus else "cpu",
                       segment_seconds=separator.segment_seconds, batch_size=separator.batch_size,
                       precision=separator.precision, clip=separator.clip, channel_policy=separator.channel_policy,
                       two_stems=separator.two_stems, postfilter=separator.postfilter)
        metadata = getattr(separator.model, "metadata", None) or {}
        ckpt = ray.put(checkpoint.make_checkpoint(separator.model, metadata))
        actor = ray.remote(SeparationWorker)
        pool = ActorPool(actor, ([ckpt], separator.name, options, max(1, int(cpus_per_worker))), n,
                         {"num_cpus": cpus_per_worker, "num_gpus": gpus})
        pool.pids()
        if not quiet:
            print(f"Ray: {n} worker(s), {cpus_per_worker:g} CPU{'s' if cpus_per_worker != 1 else ''}"
                  f"{' and 1 GPU' if gpus else ''} each", file=sys.stderr, flush=True)
        index = {id(t): i for i, t in enumerate(tracks)}
        shown = list(numbers) if numbers is not None else list(range(total))
        of = of or total

        def tag(track) -> str:
            return f"[{shown[index[id(track)]] + 1}/{of}]"

        lock = threading.Lock()
        from tqdm import tqdm

        bar = tqdm(total=total, unit="track", disable=quiet, file=sys.stderr, dynamic_ncols=True)

        def say(text, err=False):
            with lock:
                if quiet and not err:
                    return
                bar.write(text, file=sys.stderr if err else sys.stdout)

        def finish(track, message):
            i = index[id(track)]
            results[i] = message
            bar.update(1)
            if on_result is not None:
                on_result(i, message, pool)

        def make_args(track):
            from ..separate import _printable  # the local path's title, escaped the same way

            title = _printable(f"{track.name} ({separator.name})") if spectrogram else None
            return (str(track.path), _read_input(track.path), encoding, extension, title)

        def on_done(track, result):
            if "error" in result:
                if result.get("traceback"):
                    say(result["traceback"].rstrip(), err=True)
                say(f"{tag(track)} error: {result['error']}", err=True)
                return finish(track, result["error"])
            folder = model_dir / track.name
            try:
                write_files(folder, result["files"])
            except OSError as exc:
                message = f"cannot write into {folder}: {exc.strerror or exc}"
                say(f"{tag(track)} error: {message}", err=True)
                return finish(track, message)
            say(f"{tag(track)} {track.path} -> {folder} ({result['seconds']:.1f} s)")
            finish(track, None)

        def on_failure(track, message):
            say(f"{tag(track)} error: {message}", err=True)
            finish(track, message)

        def on_retry(track, why):
            say(f"{why}; {track.path} is separated again", err=True)

        try:
            stats = pool.run(list(tracks), "separate", make_args, on_done, on_failure, on_retry)
        finally:
            bar.close()
        if stats.retried and not quiet:
            print(f"Ray: {stats.worker_deaths} worker death(s), {stats.retried} track(s) separated again",
                  file=sys.stderr)
        return results
    finally:
        if pool is not None:
            pool.close()
        if ours:
            disconnect()


__all__ = ["SeparationWorker", "separate_on_ray", "write_files"]
