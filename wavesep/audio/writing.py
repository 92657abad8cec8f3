"""Writing (C, T) float signals (full scale 1.0, sample rate in Hz) to audio files, atomically:
a temporary file in the destination folder, fsynced and renamed over the target.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Optional, Union

import numpy as np
import soundfile
import torch

from wavesep.errors import AudioError
from .common import _BLOCK_FRAMES, PathLike, _all_finite, _check_rate, _extension

__all__ = ["write"]

# Container formats that write() can produce, by extension.
_WRITE_FORMATS = {
    "wav": "WAV", "wave": "WAV", "flac": "FLAC", "ogg": "OGG", "oga": "OGG", "mp3": "MP3",
    "aif": "AIFF", "aiff": "AIFF", "caf": "CAF", "w64": "W64", "rf64": "RF64", "au": "AU",
}


def _create_exclusive(path: Path) -> int:
    # 0o666 lets the umask decide the final permissions, as for any other new file
    # (mkstemp would leave 0o600).
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)


def write(
    path: PathLike,
    wav: Union[torch.Tensor, np.ndarray],
    sample_rate: int,
    subtype: Optional[str] = "PCM_16",
    format: Optional[str] = None,
    *,
    check_finite: bool = True,
) -> Path:
    """Write a (C, T) signal to an audio file, atomically.

    The samples go to a temporary file in the destination folder, which is flushed, fsynced and
    renamed over ``path`` (``os.replace``): readers never see a half-written file and a failure
    leaves any previous file untouched and no temporary file behind. Missing parent folders are
    created.

    Samples are not rescaled or clipped here, except that integer subtypes (PCM_16, PCM_24,
    PCM_U8, ...) cannot hold values outside [-1, 1): libsndfile clips those to the integer range.
    FLOAT/DOUBLE files keep out-of-range values. Any other clipping or normalisation policy is
    the caller's job.

    Args:
        path: destination; its extension chooses the format unless ``format`` is given
            (wav, flac, ogg, mp3, aiff, caf, w64, rf64, au).
        wav: tensor or array (C, T) of float samples, full scale 1.0. CUDA tensors are copied to
            the CPU.
        sample_rate: Hz.
        subtype: sample encoding: ``"PCM_16"`` (default), ``"PCM_24"``, ``"PCM_32"``,
            ``"FLOAT"``, ``"DOUBLE"``, ``"PCM_U8"``, ``"VORBIS"`` (ogg), ``"MPEG_LAYER_III"``
            (mp3), ... ``None`` takes the format's default. FLAC holds at most 24 bits.
        format: soundfile format name (``"WAV"``, ``"FLAC"``, ...) overriding the extension.
        check_finite: refuse NaN/Inf samples (they would become arbitrary integers).

    Returns:
        The written path.

    Raises:
        AudioError: bad shape, non-finite samples, unsupported extension/subtype, destination
            folder not writable (named), or a write failure (disk full, ...).
    """
    p = Path(path)
    sample_rate = _check_rate(sample_rate, "sample_rate")
    if isinstance(wav, torch.Tensor):
        array = wav.detach().to("cpu").numpy()
    else:
        array = np.asarray(wav)
    if array.ndim != 2:
        raise AudioError(f"write({p}) expects audio of shape (C, T), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise AudioError(f"write({p}) expects float samples, got dtype {array.dtype}")
    if check_finite and not _all_finite(array):
        raise AudioError(
            f"refusing to write {p}: the audio contains NaN or infinite samples "
            "(pass check_finite=False to write them anyway)"
        )
    if format is None:
        format = _WRITE_FORMATS.get(_extension(p))
        if format is None:
            raise AudioError(
                f"cannot write {p}: unknown audio extension '{p.suffix}'; use one of "
                + ", ".join("." + ext for ext in sorted(_WRITE_FORMATS))
            )
    format = format.upper()
    if subtype is None:
        subtype = soundfile.default_subtype(format)
    subtype = subtype.upper()
    if not soundfile.check_format(format, subtype):
        raise AudioError(
            f"cannot write {p}: subtype {subtype} is not available for format {format} "
            f"(available: {', '.join(soundfile.available_subtypes(format))})"
        )
    if p.is_dir():
        raise AudioError(f"cannot write {p}: it is an existing directory")

    folder = p.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AudioError(
            f"cannot create the output folder {folder} for {p.name}: {exc.strerror or exc}"
        ) from None
    tmp = folder / f".{p.name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        fd = _create_exclusive(tmp)
    except OSError as exc:
        raise AudioError(
            f"cannot write {p.name}: the folder {folder} is not writable ({exc.strerror or exc})"
        ) from None
    try:
        try:
            # libsndfile writes through the descriptor itself. Given a Python file object it would
            # call back into Python for every write, and cffi drops an exception raised in such a
            # callback (a Ctrl-C among them): the write would only fail later, as an
            # AssertionError.
            with soundfile.SoundFile(fd, "w", samplerate=sample_rate, channels=array.shape[0],
                                     subtype=subtype, format=format, closefd=False) as sf_out:
                # soundfile wants (T, C) rows; converting block by block keeps the extra memory
                # small for long signals.
                for block_start in range(0, array.shape[1], _BLOCK_FRAMES):
                    block = array[:, block_start : block_start + _BLOCK_FRAMES]  # (C, T_block)
                    if block.dtype not in (np.float32, np.float64):
                        block = block.astype(np.float32)
                    sf_out.write(np.ascontiguousarray(block.T))  # (T_block, C)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, p)
    except BaseException as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        if isinstance(exc, AssertionError):  # soundfile: fewer frames written than given
            raise AudioError(f"failed to write {p}: the samples could not all be written "
                             "(is the disk full?)") from exc
        if isinstance(exc, (OSError, RuntimeError, soundfile.SoundFileError)):
            raise AudioError(f"failed to write {p}: {exc}") from exc
        raise
    _fsync_folder(folder)
    return p


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable; some platforms and filesystems refuse, hence best effort.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
