"""Command line: ``wavesep serve`` (``wavesep-serve``), the local web page for separating songs.

    wavesep serve                       # http://127.0.0.1:8000/, this computer only
    wavesep serve --model runs/my-run --port 8080 --max-upload-mb 500 --max-minutes 30

Binds to 127.0.0.1 unless ``--host`` says otherwise (``--host 0.0.0.0`` opens it to the network:
anyone who reaches the port can upload files and use the CPU/GPU). Uploads and results live in a
temporary folder removed when the server stops. Needs the ``web`` extra (FastAPI, uvicorn).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

from .. import pretrained
from ..errors import DependencyError, WavesepError

INSTALL = 'pip install "wavesep[web]"  (from a checkout: pip install -e ".[web]")'


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wavesep serve",
        description="A local web page for separating songs: drop files, follow the progress, "
        "listen to and download the stems.",
    )
    p.add_argument("-n", "--model", default=pretrained.DEFAULT_MODEL,
                   help="model selected on the page: registered name, checkpoint file or run directory "
                   "(default: %(default)s); the page also offers the registered models")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default: %(default)s, this computer only; 0.0.0.0 opens it to "
                   "the network)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default: %(default)s)")
    p.add_argument("-d", "--device", default="auto", help="cpu, cuda, cuda:N or auto (default: %(default)s)")
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="largest upload in MB (default: %(default)g)")
    p.add_argument("--max-minutes", type=float, default=20.0,
                   help="longest audio accepted, in minutes (default: %(default)g)")
    p.add_argument("--keep-hours", type=float, default=2.0,
                   help="results are deleted this long after they are ready (default: %(default)g)")
    return p


def _require_web():
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise DependencyError(f"wavesep serve needs FastAPI and uvicorn ({exc.name} is missing): {INSTALL}") from None


def make_server(app, host: str, port: int, log_level: str = "warning"):
    """A ``uvicorn.Server`` for ``app`` (``server.run()`` blocks; tests run it in a thread)."""
    import uvicorn

    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False))


def run_in_thread(server, timeout: float = 30.0) -> threading.Thread:
    """Starts ``server`` in a daemon thread and waits until it accepts connections."""
    thread = threading.Thread(target=server.run, daemon=True, name="wavesep-serve")
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the web server did not start (is the port free?)")
        time.sleep(0.02)
    return thread


def main(argv=None) -> int:
    """Runs the server until Ctrl-C; returns the exit status (1: it could not start, 2: bad
    arguments)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    for name, value in (("--max-upload-mb", args.max_upload_mb), ("--max-minutes", args.max_minutes),
                        ("--keep-hours", args.keep_hours)):
        if not value > 0:
            print(f"wavesep serve: error: {name} must be > 0, got {value}", file=sys.stderr)
            return 2
    if not 0 <= args.port < 65536:
        print(f"wavesep serve: error: --port must be 0..65535, got {args.port}", file=sys.stderr)
        return 2
    try:
        _require_web()
        from .app import LOOPBACK, create_app
        from .jobs import JobQueue, Limits

        jobs = JobQueue(args.model, device=args.device, limits=Limits(
            max_upload_bytes=int(args.max_upload_mb * 2**20), max_seconds=args.max_minutes * 60,
            keep_seconds=args.keep_hours * 3600))
    except (WavesepError, ValueError) as exc:
        print(f"wavesep serve: error: {exc}", file=sys.stderr)
        return 1
    app = create_app(jobs, host=args.host)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"wavesep serve: open http://{shown}:{args.port}/  (model {args.model}, device {jobs.device}; "
          f"uploads up to {args.max_upload_mb:g} MB and {args.max_minutes:g} min; Ctrl-C stops)")
    if args.host in LOOPBACK:
        print(f"wavesep serve: bound to {args.host}: only this computer can open the page "
              "(--host 0.0.0.0 opens it to the network)")
    else:
        print(f"wavesep serve: WARNING: bound to {args.host}: every machine that reaches this port can "
              "upload files and use this computer's processor; there is no login", file=sys.stderr)
    server = make_server(app, args.host, args.port)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        jobs.close()  # also done by the app's shutdown; closing twice is harmless
    if not server.started:
        print(f"wavesep serve: error: could not listen on {args.host}:{args.port} (in use?)", file=sys.stderr)
        return 1
    return 0


__all__ = ["INSTALL", "build_parser", "main", "make_server", "run_in_thread"]


if __name__ == "__main__":
    sys.exit(main())
