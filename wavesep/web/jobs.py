"""Separation jobs of the web page: uploads, one worker thread, a temporary folder.

Every upload becomes a :class:`Job` in one :class:`JobQueue`, shared by all browser tabs; one
worker thread separates the jobs one after another (a model uses the CPU's cores or the GPU
fully, so running two at once would only make both slower). Everything lives in one
``tempfile.TemporaryDirectory``, removed by :meth:`JobQueue.close`; finished jobs are also
removed ``keep_seconds`` after they finish, and on request.

A job's folder is ``<root>/<job id>/`` with ``input.<ext>`` (the upload), ``mixture.wav`` (the
decoded mixture for the browser's player), ``stems/<stem>.wav`` (written exactly as
``wavesep-separate`` writes them with its defaults) and ``stems.zip`` on demand. The name the
browser sends is only ever a display and download name after :func:`display_name` cleaned it;
file-system paths are made from the job id and the stem names alone.

No web framework here: :mod:`wavesep.web.app` maps HTTP onto this.
"""

from __future__ import annotations

import logging
import math
import queue
import re
import shutil
import tempfile
import threading
import time
import traceback
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import torch

from .. import apply, audio, pretrained
from ..api import Separator, save_stems
from ..atomic import atomic_path
from ..errors import WavesepError
from ..postfilter import CHOICES as POSTFILTER_CHOICES

log = logging.getLogger("wavesep.web")

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "error"
PEAK_BINS = 1000  # points of the waveform view (min and max per bin)
_ID = re.compile(r"^[0-9a-f]{16}$")
_STEM = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class Limits:
    """Upload limits and how long results are kept.

    Attributes:
        max_upload_bytes: the largest upload accepted (bytes).
        max_seconds: the longest audio accepted (seconds, from the file's header).
        keep_seconds: finished jobs and their files are removed this long after they finish.
        max_jobs: queued and kept jobs at most (a new upload beyond is refused).
    """

    max_upload_bytes: int = 200 * 2**20
    max_seconds: float = 20 * 60.0
    keep_seconds: float = 2 * 3600.0
    max_jobs: int = 100


class UploadRejected(WavesepError):
    """An upload was refused; ``status`` is the HTTP status that says why (400 bad file or
    option, 413 over a limit, 503 the queue is full)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def display_name(name: Optional[str]) -> str:
    """The browser's file name made safe to show and to use in download names.

    Only the last component of any path survives (``../../etc/passwd`` -> ``passwd``, Windows
    ``C:\\x\\song.mp3`` -> ``song.mp3``); characters other than letters, digits, space and
    ``. _ - ( ) + ,`` become ``_``; leading dots and spaces go (no hidden names, no ``..``); at
    most 120 characters; ``upload`` when nothing is left. Never used as a path by this module.
    """
    base = re.split(r"[\\/]", str(name or ""))[-1]
    base = re.sub(r"[^\w .()+,-]", "_", base, flags=re.UNICODE)
    base = base.lstrip(". ").strip()
    if len(base) > 120:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: 119 - len(ext)] + "." + ext) if dot and len(ext) <= 8 else base[:120]
    return base or "upload"


def _extension(name: str) -> str:
    """The lower-case extension of a (cleaned) name when it is a plain one (``mp3``, ``m4a``), for
    the decoder to choose by; "" otherwise."""
    suffix = name.rpartition(".")[2].lower() if "." in name else ""
    return suffix if re.fullmatch(r"[a-z0-9]{1,8}", suffix) else ""


def _track_name(name: str) -> str:
    """Display name without its extension (``.stem`` of MUSDB files too), for download names."""
    stem = name.rpartition(".")[0] if _extension(name) else name
    if stem.lower().endswith(".stem") and len(stem) > 5:
        stem = stem[:-5]
    return stem or "upload"


def peaks(wav: torch.Tensor, bins: int = PEAK_BINS) -> List[List[float]]:
    """Waveform outline of a (C, T) signal: [[min, max], ...] of the channel mean over ``bins``
    equal stretches of time (fewer when T < bins), rounded to 1e-4."""
    mono = wav.mean(dim=0) if wav.dim() == 2 else wav  # (T,)
    length = mono.numel()
    if length == 0:
        return []
    bins = max(1, min(bins, length))
    edges = torch.linspace(0, length, bins + 1).round().long().tolist()
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        part = mono[a:max(b, a + 1)]
        out.append([round(float(part.min()), 4), round(float(part.max()), 4)])
    return out


@dataclass
class Job:
    """One uploaded file and its separation. ``progress`` is the fraction of the model's windows
    done (0..1, from :func:`wavesep.apply.separate`'s progress callback)."""

    id: str
    name: str
    model: str
    two_stems: Optional[str]
    postfilter: str
    folder: Path
    input_path: Path
    size_bytes: int = 0
    seconds: Optional[float] = None
    status: str = QUEUED
    stage: str = "queued"
    progress: float = 0.0
    message: str = ""
    stems: List[str] = field(default_factory=list)
    sample_rate: Optional[int] = None
    peaks: Dict[str, list] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    started: Optional[float] = None
    finished: Optional[float] = None
    cancelled: bool = False

    def to_json(self) -> dict:
        """What the page sees (no file-system paths)."""
        return {
            "id": self.id, "name": self.name, "model": self.model, "two_stems": self.two_stems,
            "postfilter": self.postfilter, "status": self.status, "stage": self.stage,
            "progress": round(self.progress, 4), "message": self.message, "stems": list(self.stems),
            "sample_rate": self.sample_rate, "seconds": self.seconds, "size_bytes": self.size_bytes,
            "created": self.created, "started": self.started, "finished": self.finished,
        }

    def stem_path(self, stem: str) -> Optional[Path]:
        """The file of one stem of a finished job (``mixture`` too), None if there is none."""
        if self.status != DONE:
            return None
        if stem == "mixture":
            return self.folder / "mixture.wav"
        return self.folder / "stems" / f"{stem}.wav" if stem in self.stems else None

    def download_name(self, stem: str, extension: str = "wav") -> str:
        return f"{_track_name(self.name)}-{stem}.{extension}"


class _Cancelled(Exception):
    pass


class Upload:
    """An upload being received: :meth:`write` chunks, then :meth:`JobQueue.finish_upload`."""

    def __init__(self, job: Job, limit: int):
        self.job = job
        self._limit = limit
        job.folder.mkdir(parents=True)
        self._file = open(job.input_path, "xb")

    def write(self, chunk: bytes) -> None:
        """Appends a chunk; raises :class:`UploadRejected` (413) past the size limit."""
        self.job.size_bytes += len(chunk)
        if self.job.size_bytes > self._limit:
            raise UploadRejected(
                f"{self.job.name} is larger than the upload limit of {_mb(self._limit)} "
                "(wavesep serve --max-upload-mb)", 413)
        self._file.write(chunk)

    def close(self) -> None:
        self._file.close()


def _mb(n: int) -> str:
    return f"{n / 2**20:g} MB"


class JobQueue:
    """The jobs of one server and the thread that runs them.

    Args:
        default_model: the model chosen when an upload names none: a registered name, a
            checkpoint file or a run directory (as ``wavesep-separate -n``).
        device: "auto", "cpu", "cuda" or "cuda:N" for every job.
        limits: :class:`Limits`.
        models: the models the page offers (default: ``default_model`` and the registered models
            installed here).
    """

    def __init__(self, default_model: str = pretrained.DEFAULT_MODEL, device: str = "auto",
                 limits: Limits = Limits(), models: Optional[List[str]] = None):
        self.device = apply.resolve_device(device)
        self.limits = limits
        self.default_model = str(default_model)
        names = list(models) if models else [self.default_model] + pretrained.available()
        self.models = list(dict.fromkeys(str(n) for n in names))
        self._loaded: Dict[str, object] = {}
        self._separators: Dict[tuple, Separator] = {}
        self._load_lock = threading.Lock()
        self._lock = threading.Lock()
        self._jobs: Dict[str, Job] = {}
        self._pending: "queue.Queue[Optional[str]]" = queue.Queue()
        self._closing = False
        self._tmp = tempfile.TemporaryDirectory(prefix="wavesep-serve-")
        self.root = Path(self._tmp.name)
        self.model(self.default_model)  # a bad --model fails at start-up, not at the first upload
        self._thread = threading.Thread(target=self._work, name="wavesep-separate", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------------------ models

    def model(self, name: str):
        """The loaded model ``name`` (loaded once; raises CheckpointError for unknown names)."""
        with self._load_lock:
            if name not in self._loaded:
                self._loaded[name] = pretrained.get_model(name)
            return self._loaded[name]

    def model_choices(self) -> List[dict]:
        """[{name, sources, postfilter (what "auto" means for it), description}] of the models
        offered; models that fail to load are left out (the log says why)."""
        out = []
        for name in self.models:
            try:
                model = self.model(name)
            except WavesepError as exc:
                log.warning("model %s is not offered: %s", name, exc)
                continue
            meta = getattr(model, "metadata", None) or {}
            out.append({
                "name": name, "sources": list(model.sources),
                "postfilter": meta.get("postfilter") or "none",
                "description": pretrained.describe(name) if name in pretrained.names() else name,
            })
        return out

    def _separator(self, job: Job) -> Separator:
        key = (job.model, job.two_stems, job.postfilter)
        if key not in self._separators:
            # The command line's defaults: clip "rescale", default segment and batch.
            self._separators[key] = Separator(self.model(job.model), device=self.device, clip="rescale",
                                              two_stems=job.two_stems, postfilter=job.postfilter)
        return self._separators[key]

    # ------------------------------------------------------------------------------ uploads

    def check_options(self, model: Optional[str], two_stems: Optional[str], postfilter: Optional[str]) -> tuple:
        """(model, two_stems or None, postfilter) checked; raises :class:`UploadRejected`."""
        model = model or self.default_model
        if model not in self.models:
            raise UploadRejected(f"unknown model {model!r}; this server offers {', '.join(self.models)}")
        postfilter = postfilter or "auto"
        if postfilter not in POSTFILTER_CHOICES:
            raise UploadRejected(f"postfilter must be one of {', '.join(POSTFILTER_CHOICES)}, got {postfilter!r}")
        two_stems = two_stems or None
        if two_stems is not None:
            sources = self.model(model).sources
            if two_stems not in sources:
                raise UploadRejected(f"two_stems={two_stems!r} is not a stem of {model} ({', '.join(sources)})")
        return model, two_stems, postfilter

    def start_upload(self, filename: Optional[str], model: Optional[str] = None,
                     two_stems: Optional[str] = None, postfilter: Optional[str] = None,
                     declared_bytes: Optional[int] = None) -> Upload:
        """Starts receiving a file; raises :class:`UploadRejected` for bad options, a declared
        size over the limit or a full queue."""
        if self._closing:
            raise UploadRejected("the server is shutting down", 503)
        model, two_stems, postfilter = self.check_options(model, two_stems, postfilter)
        name = display_name(filename)
        if declared_bytes is not None and declared_bytes > self.limits.max_upload_bytes:
            raise UploadRejected(f"{name} ({_mb(declared_bytes)}) is larger than the upload limit of "
                                 f"{_mb(self.limits.max_upload_bytes)} (wavesep serve --max-upload-mb)", 413)
        self.expire()
        with self._lock:
            if len(self._jobs) >= self.limits.max_jobs:
                raise UploadRejected(f"the queue is full ({self.limits.max_jobs} jobs); remove finished "
                                     "ones or wait", 503)
            job_id = uuid.uuid4().hex[:16]
            folder = self.root / job_id
            ext = _extension(name)
            job = Job(job_id, name, model, two_stems, postfilter, folder,
                      folder / (f"input.{ext}" if ext else "input"))
        return Upload(job, self.limits.max_upload_bytes)

    def abort_upload(self, upload: Upload) -> None:
        upload.close()
        shutil.rmtree(upload.job.folder, ignore_errors=True)

    def finish_upload(self, upload: Upload) -> Job:
        """Checks the received file (readable audio, not too long) and queues it. Raises
        :class:`UploadRejected` with the command line's message (the file named by its display
        name) after removing the file."""
        upload.close()
        job = upload.job
        try:
            if job.size_bytes == 0:
                raise UploadRejected(f"{job.name} is empty (0 bytes): nothing was uploaded")
            try:
                seconds = audio.info(job.input_path).duration_seconds  # the header only
            except WavesepError:
                try:  # a bad file: the message wavesep-separate gives, which decodes it
                    wav, rate = audio.read(job.input_path, check_finite=False)
                except WavesepError as exc:
                    raise UploadRejected(self._public(str(exc), job)) from None
                seconds = wav.shape[-1] / rate
            job.seconds = round(seconds, 3)
            if seconds > self.limits.max_seconds:
                raise UploadRejected(
                    f"{job.name} lasts {_minutes(seconds)}, longer than the limit of "
                    f"{_minutes(self.limits.max_seconds)} (wavesep serve --max-minutes)", 413)
        except UploadRejected:
            shutil.rmtree(job.folder, ignore_errors=True)
            raise
        with self._lock:
            self._jobs[job.id] = job
        self._pending.put(job.id)
        return job

    # ------------------------------------------------------------------------------ jobs

    def get(self, job_id: str) -> Optional[Job]:
        if not _ID.match(job_id or ""):
            return None
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self) -> List[Job]:
        """All jobs, oldest first (after removing expired ones)."""
        self.expire()
        with self._lock:
            return list(self._jobs.values())

    def position(self, job: Job) -> int:
        """0 while running or finished, else the number of jobs to run before it, plus one."""
        if job.status != QUEUED:
            return 0
        with self._lock:
            ahead = [j for j in self._jobs.values() if j.status in (QUEUED, RUNNING) and j.created <= job.created]
        return len(ahead)

    def remove(self, job_id: str) -> bool:
        """Removes a job and its files (a running job stops at its next progress report)."""
        with self._lock:
            job = self._jobs.pop(job_id, None)
        if job is None:
            return False
        job.cancelled = True
        if job.status != RUNNING:
            shutil.rmtree(job.folder, ignore_errors=True)
        return True

    def expire(self) -> None:
        """Removes the jobs finished more than ``keep_seconds`` ago."""
        limit = time.time() - self.limits.keep_seconds
        with self._lock:
            old = [j.id for j in self._jobs.values() if j.finished is not None and j.finished < limit]
        for job_id in old:
            self.remove(job_id)

    def zip_path(self, job: Job) -> Optional[Path]:
        """``stems.zip`` of a finished job (made once): ``<name>/<stem>.wav`` for every stem."""
        if job.status != DONE:
            return None
        path = job.folder / "stems.zip"
        with self._lock:
            if not path.exists():
                with atomic_path(path, suffix=".zip") as tmp:
                    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
                        for stem in job.stems:
                            zf.write(job.stem_path(stem), f"{_track_name(job.name)}/{stem}.wav")
        return path

    def wait(self, job_id: str, timeout: float = 60.0) -> Job:
        """Blocks until a job is done or failed (for tests and scripts); returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(job_id)
            if job is None or job.status in (DONE, FAILED):
                return job
            time.sleep(0.05)
        raise TimeoutError(f"job {job_id} not finished after {timeout} s")

    def close(self) -> None:
        """Stops the worker (a running job stops at its next progress report) and removes the
        temporary folder with every upload and result."""
        self._closing = True
        with self._lock:
            for job in self._jobs.values():
                job.cancelled = True
        self._pending.put(None)
        self._thread.join(timeout=30)
        self._tmp.cleanup()

    # ------------------------------------------------------------------------------ worker

    @staticmethod
    def _public(message: str, job: Job) -> str:
        """A message about the upload with its temporary path replaced by the display name."""
        return message.replace(str(job.input_path), job.name).replace(str(job.folder), job.name)

    def _work(self) -> None:
        while True:
            try:
                job_id = self._pending.get(timeout=60)
            except queue.Empty:
                self.expire()
                continue
            if job_id is None:
                return
            job = self.get(job_id)
            if job is None or job.cancelled:
                continue
            self._run(job)
            if job.cancelled:
                shutil.rmtree(job.folder, ignore_errors=True)

    def _run(self, job: Job) -> None:
        job.status, job.stage, job.started = RUNNING, "reading", time.time()

        def progress(fraction: float) -> None:
            if job.cancelled:
                raise _Cancelled
            job.progress = float(fraction)

        try:
            wav, rate = audio.read(job.input_path)  # (C, T), as wavesep-separate reads it
            job.sample_rate = rate
            separator = self._separator(job)
            job.stage = "separating"
            try:
                stems = separator.separate_tensor(wav, rate, progress=progress)
            except WavesepError as exc:
                raise type(exc)(f"{job.input_path}: {exc}") from None
            job.stage = "writing"
            save_stems(stems, job.folder / "stems", rate)  # wavesep-separate's default encoding
            audio.write(job.folder / "mixture.wav", wav.clamp(-1.0, 1.0), rate, "PCM_16")
            job.peaks = {"mixture": peaks(wav), **{k: peaks(v) for k, v in stems.items()}}
            job.stems = list(stems)
            job.progress, job.stage, job.status = 1.0, "done", DONE
        except _Cancelled:
            job.status, job.stage, job.message = FAILED, "cancelled", "cancelled"
        except WavesepError as exc:
            job.status, job.stage, job.message = FAILED, "failed", self._public(str(exc), job)
        except Exception as exc:  # a bug: logged in full, the page gets one line
            log.error("job %s (%s) failed:\n%s", job.id, job.name, traceback.format_exc())
            job.status, job.stage = FAILED, "failed"
            job.message = self._public(f"unexpected {type(exc).__name__}: {exc}", job)
        finally:
            job.finished = time.time()


def _minutes(seconds: float) -> str:
    m, s = divmod(int(math.ceil(seconds)), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


__all__ = ["DONE", "FAILED", "Job", "JobQueue", "Limits", "QUEUED", "RUNNING", "Upload", "UploadRejected",
           "display_name", "peaks"]
