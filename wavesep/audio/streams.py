"""Streams: PCM from a pipe in (:class:`PcmReader`), audio files written block by block as the
samples come (:class:`StreamWriter`). Blocks are (C, n) float32 tensors, full scale 1.0.
"""

from __future__ import annotations

import os
import struct
import uuid
from pathlib import Path
from typing import Optional

import numpy as np
import soundfile
import torch

from wavesep.errors import AudioError
from .common import PathLike, _all_finite, _check_rate, _extension
from .writing import _WRITE_FORMATS, _create_exclusive, _fsync_folder

__all__ = ["PcmReader", "RAW_FORMATS", "StreamWriter"]

RAW_FORMATS = {"s16le": ("<i2", 32768.0), "s24le": (None, 8388608.0), "s32le": ("<i4", 2147483648.0),
               "f32le": ("<f4", 1.0)}


class PcmReader:
    """Reads PCM audio from a binary stream (a pipe, stdin, a FIFO or a file) block by block.

    A stream that starts with a RIFF/WAVE header is read as wav (PCM 16/24/32-bit or 32-bit
    float, sizes ignored so that a pipe's unknown length works); anything else needs ``raw``:
    ``(format, sample_rate, channels)`` with format one of :data:`RAW_FORMATS` (interleaved,
    little-endian). ``read(frames)`` returns a (C, n) float32 tensor, n < frames only at the end
    (0 at the end). ``name`` is used in error messages.
    """

    def __init__(self, handle, raw: Optional[tuple] = None, name: str = "<stdin>"):
        self.handle, self.name = handle, name
        self._pending = b""
        head = self._read_exact(12)
        if len(head) == 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            self._parse_wav_header()
        elif raw is None:
            raise AudioError(f"{name}: not a wav stream (no RIFF/WAVE header); for raw PCM give its "
                             "format, sample rate and channels (--raw-format, --rate, --in-channels)")
        else:
            self._pending = head
            fmt, rate, channels = raw
            if fmt not in RAW_FORMATS:
                raise AudioError(f"raw format must be one of {', '.join(RAW_FORMATS)}, got {fmt!r}")
            self.format = fmt
            self.sample_rate = _check_rate(rate, "sample_rate")
            if int(channels) < 1:
                raise AudioError(f"channels must be >= 1, got {channels}")
            self.channels = int(channels)
        self.width = 3 if self.format == "s24le" else 4 if self.format in ("s32le", "f32le") else 2

    def _read_exact(self, count: int) -> bytes:
        parts, have = [self._pending[:count]], len(self._pending[:count])
        self._pending = self._pending[count:]
        while have < count:
            chunk = self.handle.read(count - have)
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
        return b"".join(parts)

    def _parse_wav_header(self) -> None:
        fmt = None
        while True:
            chunk = self._read_exact(8)
            if len(chunk) < 8:
                raise AudioError(f"{self.name}: wav stream ends before its audio data")
            cid, size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if cid == b"fmt ":
                body = self._read_exact(size + (size & 1))
                tag, channels, rate = struct.unpack_from("<HHI", body, 0)
                (bits,) = struct.unpack_from("<H", body, 14)
                if tag == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the sub-format
                    (tag,) = struct.unpack_from("<H", body, 24)
                formats = {(1, 16): "s16le", (1, 24): "s24le", (1, 32): "s32le", (3, 32): "f32le"}
                fmt = formats.get((tag, bits))
                if fmt is None:
                    raise AudioError(f"{self.name}: wav encoding (format {tag}, {bits} bits) is not "
                                     "supported on a stream: use 16/24/32-bit PCM or 32-bit float")
                self.format, self.sample_rate, self.channels = fmt, _check_rate(rate, "sample_rate"), channels
            elif cid == b"data":
                if fmt is None:
                    raise AudioError(f"{self.name}: wav stream has no fmt chunk before its data")
                return
            else:
                self._read_exact(size + (size & 1))

    def read(self, frames: int) -> torch.Tensor:
        """Up to ``frames`` frames -> (C, n) float32 (n < frames only at the end of the stream)."""
        frame_bytes = self.width * self.channels
        data = self._read_exact(frames * frame_bytes)
        data = data[: len(data) // frame_bytes * frame_bytes]  # a torn last frame is dropped
        if self.format == "s24le":
            b = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.int32)
            values = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8  # sign-extend 24 bits
            x = values.astype(np.float32) / RAW_FORMATS["s24le"][1]
        else:
            dtype, scale = RAW_FORMATS[self.format]
            x = np.frombuffer(data, dtype).astype(np.float32)
            if scale != 1.0:
                x /= scale
        return torch.from_numpy(np.ascontiguousarray(x.reshape(-1, self.channels).T))  # (C, n)


class StreamWriter:
    """Writes a (C, T) signal to an audio file block by block, atomically: the samples go to a
    temporary file in the destination folder, renamed over ``path`` by :meth:`close`;
    :meth:`abort` (or an exception inside ``with``) removes it and leaves ``path`` untouched.
    Subtypes and formats as for :func:`write`; non-finite samples are refused."""

    def __init__(self, path: PathLike, sample_rate: int, channels: int, subtype: str = "PCM_16"):
        self.path = Path(path)
        fmt = _WRITE_FORMATS.get(_extension(self.path))
        if fmt is None:
            raise AudioError(f"cannot write {self.path}: unknown audio extension '{self.path.suffix}'")
        if not soundfile.check_format(fmt, subtype):
            raise AudioError(f"cannot write {self.path}: subtype {subtype} is not available for {fmt}")
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.tmp = folder / f".{self.path.name}.{uuid.uuid4().hex[:12]}.tmp"
            self._fd = _create_exclusive(self.tmp)
        except OSError as exc:
            raise AudioError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self._handle = os.fdopen(self._fd, "w+b")
        self._sf = soundfile.SoundFile(self._handle, "w", samplerate=_check_rate(sample_rate, "sample_rate"),
                                       channels=int(channels), subtype=subtype, format=fmt)
        self.frames = 0

    def write(self, wav: torch.Tensor) -> None:
        """Appends (C, n) float samples."""
        array = wav.detach().to("cpu", torch.float32).numpy()
        if not _all_finite(array):
            raise AudioError(f"refusing to write {self.path}: the audio contains NaN or infinite samples")
        if array.shape[-1]:
            self._sf.write(np.ascontiguousarray(array.T))
            self.frames += array.shape[-1]

    def close(self) -> Path:
        """Finishes the file and renames it into place."""
        try:
            self._sf.close()
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            os.replace(self.tmp, self.path)
        except BaseException:
            self.abort()
            raise
        _fsync_folder(self.path.parent)
        return self.path

    def abort(self) -> None:
        """Drops the temporary file."""
        for close in (self._sf.close, self._handle.close):
            try:
                close()
            except Exception:
                pass
        try:
            self.tmp.unlink()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is None:
            self.close()
        else:
            self.abort()
