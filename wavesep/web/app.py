"""The FastAPI application of ``wavesep serve``: a JSON API over :class:`~wavesep.web.jobs.JobQueue`
and the page in ``static/``.

    GET    /                                  the page
    GET    /api/config                        models (with their stems), post-filters, limits, binding
    POST   /api/jobs?filename=&model=&two_stems=&postfilter=
                                              body: the audio file's bytes -> 201 the job
    GET    /api/jobs                          every job (all tabs see the same queue)
    GET    /api/jobs/{id}                     one job: status, stage, progress (0..1), message, stems
    GET    /api/jobs/{id}/peaks               {"mixture"|stem: [[min, max], ...]} waveform outlines
    GET    /api/jobs/{id}/audio/{stem}.wav    mixture or a stem (?download=1: as an attachment)
    GET    /api/jobs/{id}/stems.zip           every stem
    DELETE /api/jobs/{id}                     removes a job and its files

The upload is the request body (not a multipart form), so it is written to the job's folder as it
arrives and refused as soon as it passes the size limit. Errors come back as ``{"error": message}``
with the command line's message for the file.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.requests import ClientDisconnect

from .. import __version__
from ..postfilter import CHOICES as POSTFILTER_CHOICES
from .jobs import JobQueue, UploadRejected

STATIC = Path(__file__).resolve().parent / "static"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(jobs: JobQueue, host: str = "127.0.0.1", close_on_shutdown: bool = True) -> FastAPI:
    """The application serving ``jobs``; ``host`` is the address the server binds to (shown on
    the page). With ``close_on_shutdown`` the queue and its temporary folder are removed when the
    application stops."""

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        if close_on_shutdown:
            await run_in_threadpool(jobs.close)

    app = FastAPI(title="wavesep", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def job_json(job) -> dict:
        return {**job.to_json(), "position": jobs.position(job)}

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/config")
    def config():
        return {
            "version": __version__,
            "models": jobs.model_choices(),
            "default_model": jobs.default_model,
            "postfilters": list(POSTFILTER_CHOICES),
            "max_upload_bytes": jobs.limits.max_upload_bytes,
            "max_seconds": jobs.limits.max_seconds,
            "keep_seconds": jobs.limits.keep_seconds,
            "device": str(jobs.device),
            "host": host,
            "local_only": host in LOOPBACK,
        }

    @app.post("/api/jobs", status_code=201)
    async def upload(request: Request, filename: str = "", model: str = "", two_stems: str = "",
                     postfilter: str = "auto"):
        declared = request.headers.get("content-length", "")
        try:
            up = jobs.start_upload(filename, model or None, two_stems or None, postfilter or None,
                                   int(declared) if declared.isdigit() else None)
        except UploadRejected as exc:
            return _error(str(exc), exc.status)
        try:
            async for chunk in request.stream():
                up.write(chunk)
        except UploadRejected as exc:
            jobs.abort_upload(up)
            return _error(str(exc), exc.status)
        except ClientDisconnect:
            jobs.abort_upload(up)
            return _error("the upload was interrupted", 400)
        except BaseException:
            jobs.abort_upload(up)
            raise
        try:
            job = await run_in_threadpool(jobs.finish_upload, up)  # reads the header (maybe ffprobe)
        except UploadRejected as exc:
            return _error(str(exc), exc.status)
        return job_json(job)

    @app.get("/api/jobs")
    def list_jobs():
        return [job_json(j) for j in jobs.jobs()]

    @app.get("/api/jobs/{job_id}")
    def get_job(job_id: str):
        job = jobs.get(job_id)
        return job_json(job) if job else _error(f"no job {job_id!r} (finished jobs expire)", 404)

    @app.delete("/api/jobs/{job_id}")
    def delete_job(job_id: str):
        return {"removed": job_id} if jobs.remove(job_id) else _error(f"no job {job_id!r}", 404)

    @app.get("/api/jobs/{job_id}/peaks")
    def job_peaks(job_id: str):
        job = jobs.get(job_id)
        if job is None or job.status != "done":
            return _error(f"job {job_id!r} has no results", 404)
        return job.peaks

    @app.get("/api/jobs/{job_id}/audio/{stem}.wav")
    def job_audio(job_id: str, stem: str, download: bool = False):
        job = jobs.get(job_id)
        path = job.stem_path(stem) if job else None  # only the job's own stem names match
        if path is None or not path.is_file():
            return _error(f"job {job_id!r} has no stem {stem!r}", 404)
        name = job.download_name(stem)
        return FileResponse(path, media_type="audio/wav", filename=name,
                            content_disposition_type="attachment" if download else "inline")

    @app.get("/api/jobs/{job_id}/stems.zip")
    def job_zip(job_id: str):
        job = jobs.get(job_id)
        if job is None or job.status != "done":
            return _error(f"job {job_id!r} has no results", 404)
        path = jobs.zip_path(job)
        return FileResponse(path, media_type="application/zip", filename=job.download_name("stems", "zip"))

    return app


__all__ = ["LOOPBACK", "STATIC", "create_app"]
