"""Atomic file writes: a temporary file in the destination folder, fsynced and renamed.

Readers never see a half-written file, and a failure (or a kill) at any moment leaves the
previous file untouched and no temporary file behind (an interrupted process may leave a hidden
``.<name>.<random>.tmp``, never a truncated ``<name>``). New files get the usual permissions
(0o666 minus the umask), not mkstemp's 0o600. :func:`atomic_folder` does the same for a set of
files that belong together (a track's stems).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Iterator


# The temporaries of wavesep (here and in wavesep.audio.write): "." + the target's name + "." + 12
# hex digits + ".tmp" (or ".png" for plots, see atomic_path's suffix).
TEMPORARY_PATTERN = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{12}\.(?:tmp|png)", re.DOTALL)
# About when this process started (wavesep is imported early): temporaries older than this
# cannot be this process's own work in progress.
PROCESS_START = time.time()


def _temporary_name(path: Path, suffix: str) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}{suffix}")


def remove_stale(folder: str | os.PathLike, before: float | None = None, name: str | None = None) -> list:
    """Removes the temporaries of wavesep's naming (``.<name>.<12 hex digits>.tmp`` files and
    :func:`atomic_folder` folders) that a killed process left in ``folder``: only those last
    modified before ``before`` (seconds since the epoch; default :data:`PROCESS_START`), since a
    newer one may belong to a process still writing it; only those of target ``name`` if given.
    Returns the removed paths; a missing folder or an entry that cannot be removed is skipped."""
    before = PROCESS_START if before is None else before
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = TEMPORARY_PATTERN.fullmatch(entry.name)
        if match is None or (name is not None and match["name"] != name):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_mtime >= before:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yields a temporary path next to ``path`` for a writer that wants a file name (e.g. a
    plotting library; give ``suffix=".png"`` when it infers the format from the name). When the
    block succeeds the file is fsynced and renamed over ``path``; otherwise it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path, suffix)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """``open(path, mode)`` for writing, atomically: yields the handle of a temporary file that
    replaces ``path`` when the block succeeds. ``mode`` is "wb" or "w" (then ``encoding``,
    default utf-8)."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'wb' or 'w', got {mode!r}")
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        text = mode == "w"
        with os.fdopen(fd, mode, encoding=(encoding or "utf-8") if text else None) as handle:
            yield handle
            handle.flush()


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM held back for the few renames of a commit: their handlers run right
    after the block. Python runs signal handlers in the main thread only, so in other threads
    nothing needs holding back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is not None:  # None: a handler not set from Python, left alone
            previous[sig] = signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(caught):
            signal.raise_signal(sig)


@contextlib.contextmanager
def atomic_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Yields an empty hidden folder ``.<name>.<random>.tmp`` next to ``folder`` to write a set of
    files into. When the block succeeds they are moved into ``folder``: by one rename when
    ``folder`` does not exist yet (or is empty), else file by file (``os.replace``), replacing
    files of the same names and leaving the others; the set is complete before the first move. If
    the block fails, the temporary folder is removed with everything in it and ``folder`` is left
    as it was. Raises OSError when ``folder`` cannot be created or is not a folder."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(folder, ".tmp")
    tmp.mkdir()
    try:
        yield tmp
        with _signals_deferred():  # a Ctrl-C between two moves would leave a mixed set
            try:
                os.rename(tmp, folder)  # POSIX: also replaces an empty folder
            except OSError:
                if not folder.is_dir():
                    raise
                for entry in sorted(tmp.iterdir()):
                    os.replace(entry, folder / entry.name)
                tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes ``text`` (utf-8) to ``path`` atomically; returns the path."""
    with atomic_open(path, "w") as f:
        f.write(text)
    return Path(path)
