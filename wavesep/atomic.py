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
import shutil
import uuid
from pathlib import Path
from typing import IO, Iterator


def _temporary_name(path: Path, suffix: str) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}{suffix}")


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
