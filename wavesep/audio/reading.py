"""Audio files in and out: read, probe, resample, adapt channels, write.

This is the only module of wavesep that touches audio files. Everything it returns is a
``torch.Tensor`` of shape (C, T) -- C channels, T samples (frames) -- with float samples on the
usual full scale of [-1, 1] for integer formats, together with the sample rate in Hz.

Decoding backends:

* soundfile (libsndfile) for the formats it knows: wav, flac, ogg (Vorbis/Opus), mp3, aiff, caf,
  w64, rf64, au, ... It is tried first for those extensions.
* ffmpeg (a subprocess decoding to 32-bit float WAV on a pipe) for any other extension
  (mp4/m4a/aac/stem.mp4, mka, webm, wma, ...), and as a fallback when soundfile fails on one of its
  own extensions (e.g. an mp3 payload in a .wav). Without ffmpeg on the PATH those files raise
  :class:`MissingFFmpegError`, which says how to install it.

Every problem a user can cause raises :class:`~wavesep.errors.AudioError` naming the file.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import shutil
import stat
import struct
import subprocess
import uuid
from fractions import Fraction
from pathlib import Path
from typing import Optional, Union

import numpy as np
import soundfile
import torch
from scipy.signal import firwin, resample_poly

from wavesep.errors import AudioError, DependencyError

__all__ = [
    "AudioInfo",
    "CHANNEL_POLICIES",
    "MissingFFmpegError",
    "PcmReader",
    "RAW_FORMATS",
    "StreamWriter",
    "convert_channels",
    "info",
    "read",
    "RESAMPLE_BACKENDS",
    "ResampleStream",
    "resample",
    "resample_reach",
    "resampled_length",
    "write",
]

PathLike = Union[str, os.PathLike]

# Extensions that libsndfile decodes itself. Any other extension goes to ffmpeg.
SOUNDFILE_EXTENSIONS = frozenset(
    {
        "wav", "wave", "bwf", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff", "aifc",
        "au", "snd", "caf", "w64", "rf64", "sd2", "voc", "htk", "sf", "ircam", "nist",
        "sph", "paf", "svx", "iff", "xi", "mat", "avr", "pvf", "wve", "sds",
    }
)

# Container formats that write() can produce, by extension.
_WRITE_FORMATS = {
    "wav": "WAV", "wave": "WAV", "flac": "FLAC", "ogg": "OGG", "oga": "OGG", "mp3": "MP3",
    "aif": "AIFF", "aiff": "AIFF", "caf": "CAF", "w64": "W64", "rf64": "RF64", "au": "AU",
}

CHANNEL_POLICIES = ("error", "downmix", "first")

FFMPEG_INSTALL_HINT = (
    "install ffmpeg (Debian/Ubuntu: `apt-get install ffmpeg`, macOS: `brew install ffmpeg`, "
    "conda: `conda install -c conda-forge ffmpeg`) so that `ffmpeg` and `ffprobe` are on the PATH"
)

# Resampling filter: a Kaiser-windowed sinc with _ZERO_CROSSINGS zero crossings of the lower
# Nyquist frequency on each side. Measured response: passband flat within 0.0001 dB up to 0.9 x
# the lower Nyquist, stopband below -99 dB from the lower Nyquist up (no audible aliasing).
_ZERO_CROSSINGS = 64
_ROLLOFF = 0.95
_KAISER_BETA = 10.0
# The separation path's resampler: libsoxr (python-soxr) at its "VHQ" recipe, whose streamed output
# equals its one-shot output sample for sample whatever the block sizes (tested), and which is
# about 40x faster than the FIR above (benchmarks/bench_audio.py measures both filters' response).
SOXR_QUALITY = "VHQ"
RESAMPLE_BACKENDS = ("fir", "soxr")
_SOXR_BLOCK = 1 << 18
# Largest surplus of decoded samples over the container's duration taken as codec padding.
_MAX_CODEC_PADDING = 8192
# Input frames per resampling block: bounds the scratch memory (tens of MB) whatever the length.
_BLOCK_FRAMES = 1 << 20


class MissingFFmpegError(AudioError, DependencyError):
    """A file needs ffmpeg to be decoded and ffmpeg is not on the PATH.

    It is both an :class:`AudioError` (the file cannot be read) and a :class:`DependencyError`
    (installing ffmpeg fixes it), so either ``except`` clause catches it.
    """


@dataclasses.dataclass(frozen=True)
class AudioInfo:
    """What an audio file holds, read from its header where possible.

    Attributes:
        path: the file, as given.
        sample_rate: samples per second per channel (Hz).
        channels: number of channels C.
        frames: number of samples per channel T at ``sample_rate``: what :func:`read` returns
            when ``frames_exact``. Otherwise (ffmpeg formats whose container counts time more
            coarsely than one sample, e.g. Matroska in milliseconds) an estimate from the
            container's duration, within that resolution.
        frames_exact: whether ``frames`` is sample-exact (always for soundfile formats, mp3 and
            ogg included; for ffmpeg formats when the stream's time base is one sample or finer,
            as in mp4/m4a).
        duration_seconds: ``frames / sample_rate`` (s).
        format: container, e.g. ``"WAV"``, ``"FLAC"`` (soundfile) or ffmpeg's format name such
            as ``"mov,mp4,m4a,3gp,3g2,mj2"``.
        subtype: sample encoding or codec, e.g. ``"PCM_16"``, ``"FLOAT"``, ``"VORBIS"`` or
            ffmpeg's codec name such as ``"aac"``.
        streams: number of audio streams (1 for soundfile formats; 5 for a MUSDB .stem.mp4).
            The other fields describe stream 0.
        backend: ``"soundfile"`` or ``"ffmpeg"``, the decoder :func:`read` will use.
    """

    path: str
    sample_rate: int
    channels: int
    frames: int
    frames_exact: bool
    duration_seconds: float
    format: str
    subtype: str
    streams: int
    backend: str


# ----------------------------------------------------------------------------------------------
# Paths and backends


def _extension(path: Path) -> str:
    return path.suffix.lower().lstrip(".")


def _check_readable(path: PathLike) -> Path:
    """Return ``path`` as a Path after checking it names a readable, non-empty regular file."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise AudioError(f"audio file not found: {p} (check the path)") from None
    except PermissionError:
        raise AudioError(
            f"permission denied while looking up audio file {p}: a parent folder is not "
            "accessible (check its permissions)"
        ) from None
    except OSError as exc:
        raise AudioError(f"cannot access audio file {p}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(f"{p} is a directory, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        raise AudioError(f"{p} is not a regular file (device, pipe or socket); give an audio file")
    if st.st_size == 0:
        raise AudioError(
            f"audio file {p} is empty (0 bytes); it was probably not written completely"
        )
    try:
        # The stat above succeeds on unreadable files; opening is the real permission check.
        with open(p, "rb"):
            pass
    except PermissionError:
        raise AudioError(
            f"permission denied reading audio file {p} (check its permissions, e.g. `ls -l`)"
        ) from None
    except OSError as exc:
        raise AudioError(f"cannot open audio file {p}: {exc.strerror or exc}") from None
    return p


def _ffmpeg_executable(name: str = "ffmpeg") -> Optional[str]:
    # Looked up on every call so that a PATH change (or a test) takes effect immediately.
    return shutil.which(name)


def _missing_ffmpeg(path: Path, detail: str = "") -> MissingFFmpegError:
    why = f" ({detail})" if detail else ""
    return MissingFFmpegError(
        f"cannot read {path}: the '.{_extension(path) or '(none)'}' format needs ffmpeg, which is "
        f"not on the PATH{why}; {FFMPEG_INSTALL_HINT}, or convert the file to wav/flac first"
    )


class _DecodeFailure(Exception):
    """ffmpeg could not decode a file; ``str(self)`` is ffmpeg's own explanation."""


def _corrupt(path: Path, *reasons: str) -> AudioError:
    detail = "; ".join(r for r in reasons if r)
    return AudioError(
        f"cannot decode audio file {path}: it is corrupt, truncated or not an audio format "
        f"wavesep can read ({detail})"
    )


def _check_rate(value, name: str) -> int:
    try:
        as_int = int(value)
        ok = as_int == value and as_int > 0
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise AudioError(f"{name} must be a positive whole number of Hz, got {value!r}")
    return as_int


# ----------------------------------------------------------------------------------------------
# soundfile backend


def _sf_name(path: Path):
    # soundfile encodes a str name strictly, which fails on names that are not valid in the file
    # system's encoding (bytes like b"\xff" on Linux come back from os.listdir as surrogates);
    # the bytes themselves always work on POSIX.
    return str(path) if os.name == "nt" else os.fsencode(path)


def _wav_announced_frames(path: Path) -> Optional[int]:
    """The frames the data chunk of a RIFF/WAVE file announces when the file holds fewer bytes
    than that (a truncated copy or download); None otherwise, and for other formats and for the
    size placeholders (0, 0xFFFFFFFF) that streaming writers leave."""
    with open(path, "rb") as f:
        size_total = os.fstat(f.fileno()).st_size
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos, block_align = 12, 0
        while pos + 8 <= size_total:
            f.seek(pos)
            chunk = f.read(24)
            chunk_id, size = chunk[:4], int.from_bytes(chunk[4:8], "little")
            if chunk_id == b"fmt " and len(chunk) >= 22:
                block_align = int.from_bytes(chunk[20:22], "little")
            elif chunk_id == b"data":
                if size in (0, 0xFFFFFFFF) or not block_align or pos + 8 + size <= size_total:
                    return None
                return size // block_align
            pos += 8 + size + (size & 1)
    return None


def _check_complete(path: Path, frames: int) -> None:
    announced = _wav_announced_frames(path)
    if announced is not None and announced > frames:
        raise AudioError(
            f"audio file {path} is truncated: its header announces {announced} frames but it "
            f"holds {frames}; it was probably not copied or downloaded completely (copy it again, "
            "or re-save what it holds, e.g. `ffmpeg -i FILE whole.wav`)"
        )


def _sf_read(path: Path, start: int, frames: Optional[int], np_dtype: str):
    """Decode with libsndfile. Returns ((T, C) array, sample rate, total frames in file).

    The array is the transposed view of a (C, T) array filled block by block, so the caller's
    (C, T) layout costs no second copy of the whole signal.
    """
    with soundfile.SoundFile(_sf_name(path)) as f:
        total = f.frames
        if 0 < start < total:
            f.seek(start)
        if start >= total:
            return np.zeros((0, f.channels), dtype=np_dtype), f.samplerate, total
        want = total - start if frames is None else min(frames, total - start)
        out = np.empty((f.channels, want), dtype=np_dtype)  # (C, T)
        pos = 0
        while pos < want:
            block = f.read(min(_BLOCK_FRAMES, want - pos), dtype=np_dtype, always_2d=True)  # (T_b, C)
            if not len(block):
                break
            out[:, pos : pos + len(block)] = block.T
            pos += len(block)
        if frames is None:  # a header that undercounts: read on to the real end
            rest = f.read(-1, dtype=np_dtype, always_2d=True)
            if len(rest):
                out = np.concatenate([out[:, :pos], rest.T], axis=1)
                pos = out.shape[1]
        return out[:, :pos].T, f.samplerate, total


# ----------------------------------------------------------------------------------------------
# ffmpeg backend


def _run(cmd: list) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, check=False)


def _stderr_tail(proc: subprocess.CompletedProcess) -> str:
    text = proc.stderr.decode("utf-8", "replace").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return "ffmpeg: " + (" | ".join(lines[-3:]) if lines else f"exit status {proc.returncode}")


def _parse_float_wav(data: bytes):
    """Parse the 32-bit float WAV that ffmpeg writes on a pipe. Returns ((T, C) array, rate)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise _DecodeFailure("ffmpeg produced no audio")
    pos, channels, rate = 12, None, None
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = pos + 8
        if chunk_id == b"fmt ":
            _, channels, rate = struct.unpack_from("<HHI", data, body)
            (bits,) = struct.unpack_from("<H", data, body + 14)
            if bits != 32:
                raise _DecodeFailure(f"unexpected {bits}-bit output from ffmpeg")
        elif chunk_id == b"data":
            if channels is None or not channels or not rate:
                break
            # On a pipe ffmpeg cannot seek back to fill in sizes, so it leaves 0xFFFFFFFF
            # (or 0): the samples simply run to the end of the stream.
            end = len(data) if size in (0, 0xFFFFFFFF) else min(len(data), body + size)
            count = (end - body) // (4 * channels) * channels
            samples = np.frombuffer(data, dtype="<f4", count=count, offset=body)
            return samples.reshape(-1, channels), rate
        pos = body + size + (size & 1)
    raise _DecodeFailure("ffmpeg output has no audio data")


def _ffmpeg_read(path: Path, start: int, frames: Optional[int], stream: int):
    """Decode with ffmpeg. Returns ((T, C) float32 array, sample rate).

    Raises _DecodeFailure when ffmpeg cannot decode the file, so that the caller can report it
    together with soundfile's reason.
    """
    exe = _ffmpeg_executable("ffmpeg")
    if exe is None:
        raise _missing_ffmpeg(path)
    # The file: prefix stops ffmpeg from reading names like "a:b.m4a" as a protocol.
    cmd = [exe, "-nostdin", "-hide_banner", "-loglevel", "error",
           "-i", "file:" + str(path.resolve()), "-map", f"0:a:{stream}", "-vn", "-sn", "-dn",
           "-map_metadata", "-1", "-bitexact"]
    if start or frames is not None:
        # atrim counts decoded samples, so the cut is sample-exact (unlike -ss on packets).
        trim = f"atrim=start_sample={start}"
        if frames is not None:
            trim += f":end_sample={start + frames}"
        cmd += ["-af", trim]
    cmd += ["-c:a", "pcm_f32le", "-f", "wav", "pipe:1"]
    proc = _run(cmd)
    if proc.returncode != 0:
        tail = _stderr_tail(proc)
        if "matches no streams" in tail:
            raise AudioError(f"{path} has no audio stream number {stream} ({tail})")
        raise _DecodeFailure(tail)
    data, rate = _parse_float_wav(proc.stdout)
    # ffmpeg drops the encoder delay but keeps the padding of the last codec frame (e.g. up to
    # 1023 extra samples for AAC in mp4); the container's duration says where the audio ends.
    # A larger surplus means the header is wrong rather than padded, so the decoder wins then.
    try:
        probed = _ffprobe_info(path, stream)
    except _DecodeFailure:
        probed = None
    if probed is not None and probed.frames_exact and probed.sample_rate == rate:
        keep = probed.frames - start
        if 0 <= data.shape[0] - keep <= _MAX_CODEC_PADDING:
            data = data[: max(keep, 0)]
    return data, rate


def _ffprobe_info(path: Path, stream: int = 0) -> Optional[AudioInfo]:
    """Header facts of audio stream ``stream`` by ffprobe; None when ffprobe is not installed."""
    exe = _ffmpeg_executable("ffprobe")
    if exe is None:
        return None
    cmd = [exe, "-v", "error", "-select_streams", "a",
           "-show_entries", "stream=codec_name,sample_rate,channels,duration,duration_ts,time_base"
           ":format=format_name,duration", "-of", "json", "file:" + str(path.resolve())]
    proc = _run(cmd)
    if proc.returncode != 0:
        raise _DecodeFailure(_stderr_tail(proc).replace("ffmpeg:", "ffprobe:", 1))
    try:
        probed = json.loads(proc.stdout.decode("utf-8", "replace") or "{}")
    except json.JSONDecodeError:
        raise _DecodeFailure("unreadable ffprobe output") from None
    streams = probed.get("streams") or []
    if len(streams) <= stream:
        raise AudioError(
            f"{path} has no audio stream number {stream} ({len(streams)} audio streams)"
        )
    first, fmt = streams[stream], probed.get("format") or {}
    rate = int(first.get("sample_rate") or 0)
    if rate <= 0:
        raise _DecodeFailure("ffprobe: no sample rate in the stream header")
    frames, exact = 0, False
    ts, base = first.get("duration_ts"), first.get("time_base")
    if ts not in (None, "N/A") and base and "/" in base:
        num, den = (int(v) for v in base.split("/"))
        ticks = Fraction(int(ts) * num * rate, den)  # duration in samples
        frames = round(ticks)
        # A time base coarser than one sample (Matroska counts milliseconds) only bounds T.
        exact = Fraction(num * rate, den) <= 1 and ticks.denominator == 1
    else:
        duration = first.get("duration") or fmt.get("duration")
        if duration not in (None, "N/A"):
            frames = round(float(duration) * rate)
    return AudioInfo(str(path), rate, int(first.get("channels") or 0), frames, exact, frames / rate,
                     fmt.get("format_name", "unknown"), first.get("codec_name", "unknown"),
                     len(streams), "ffmpeg")


# ----------------------------------------------------------------------------------------------
# Public API


def info(path: PathLike) -> AudioInfo:
    """Describe an audio file without decoding it (header only), where the format allows.

    Args:
        path: the audio file.

    Returns:
        :class:`AudioInfo` of the file (stream 0 for multi-stream containers).

    Raises:
        AudioError: missing, unreadable, empty or corrupt file.
        MissingFFmpegError: the format needs ffmpeg and it is not installed.
    """
    p = _check_readable(path)
    sf_error = ""
    if _extension(p) in SOUNDFILE_EXTENSIONS or _ffmpeg_executable("ffmpeg") is None:
        try:
            sfi = soundfile.info(_sf_name(p))
        except (soundfile.SoundFileError, RuntimeError) as exc:
            sf_error = f"soundfile: {exc}"
        else:
            _check_complete(p, sfi.frames)
            return AudioInfo(str(path), sfi.samplerate, sfi.channels, sfi.frames, True,
                             sfi.frames / sfi.samplerate if sfi.samplerate else 0.0,
                             sfi.format, sfi.subtype, 1, "soundfile")
    if _ffmpeg_executable("ffmpeg") is None:
        if _extension(p) in SOUNDFILE_EXTENSIONS:
            raise _corrupt(p, sf_error)
        raise _missing_ffmpeg(p)
    try:
        probed = _ffprobe_info(p)
    except _DecodeFailure as failure:
        raise _corrupt(p, sf_error, str(failure)) from None
    if probed is not None:
        return dataclasses.replace(probed, path=str(path))
    # ffmpeg without ffprobe: decoding the whole file is the only way left to know its length.
    try:
        data, rate = _ffmpeg_read(p, 0, None, 0)
    except _DecodeFailure as failure:
        raise _corrupt(p, sf_error, str(failure)) from None
    return AudioInfo(str(path), rate, data.shape[1], data.shape[0], True, data.shape[0] / rate,
                     "unknown", "unknown", 1, "ffmpeg")


def read(
    path: PathLike,
    sample_rate: Optional[int] = None,
    channels: Optional[int] = None,
    dtype: torch.dtype = torch.float32,
    *,
    channel_policy: str = "error",
    check_finite: bool = True,
    start: int = 0,
    frames: Optional[int] = None,
    stream: int = 0,
    allow_truncated: bool = False,
) -> tuple[torch.Tensor, int]:
    """Read an audio file into a (C, T) float tensor.

    Files with a libsndfile extension (wav, flac, ogg, mp3, aiff, ...) are decoded by soundfile,
    falling back to ffmpeg if soundfile fails; other extensions (mp4, m4a, aac, stem.mp4, mka,
    ...) are decoded by ffmpeg, or, without ffmpeg, by soundfile if it recognises the content.
    Integer formats (8/16/24/32-bit) come back scaled to [-1, 1]; float files as stored.

    Args:
        path: the audio file.
        sample_rate: if given, resample to this rate (Hz) with :func:`resample`.
        channels: if given, adapt to this many channels with :func:`convert_channels`.
        dtype: ``torch.float32`` (default) or ``torch.float64``.
        channel_policy: what to do when ``channels`` needs more than a mono/stereo conversion
            (see :func:`convert_channels`): ``"error"`` (default), ``"downmix"`` or ``"first"``.
        check_finite: raise :class:`AudioError` if any sample is NaN or infinite (default). With
            False such samples are returned as they are.
        start: first frame to read, counted at the file's own sample rate (before resampling).
        frames: number of frames to read from ``start`` at the file's own rate; ``None`` reads
            to the end. Fewer frames come back when the file ends earlier. soundfile seeks
            straight to ``start``; ffmpeg decodes from the beginning and drops what precedes it.
        stream: audio stream to decode in multi-stream containers (a MUSDB .stem.mp4 has
            0 mixture, 1 drums, 2 bass, 3 other, 4 vocals). Needs ffmpeg when not 0.
        allow_truncated: read what a truncated wav holds instead of raising.

    Returns:
        ``(wav, sample_rate)``: ``wav`` a CPU tensor (C, T) of ``dtype``; ``sample_rate`` the
        rate of ``wav`` in Hz (the requested one when ``sample_rate`` was given).

    Raises:
        AudioError: missing path, permission denied, directory, empty (0-byte) file, corrupt
            or truncated file (a wav whose header announces more frames than it holds), no audio
            samples, NaN/Inf samples, bad arguments, or a channel layout that
            ``channel_policy`` refuses. The message names the file.
        MissingFFmpegError: the format needs ffmpeg and it is not on the PATH.
    """
    if dtype not in (torch.float32, torch.float64):
        raise AudioError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
        raise AudioError(f"start must be a whole number of frames >= 0, got {start!r} ({path})")
    if frames is not None and (
        isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1
    ):
        raise AudioError(f"frames must be a whole number >= 1 or None, got {frames!r} ({path})")
    if isinstance(stream, bool) or not isinstance(stream, (int, np.integer)) or stream < 0:
        raise AudioError(f"stream must be a whole number >= 0, got {stream!r} ({path})")
    if sample_rate is not None:
        sample_rate = _check_rate(sample_rate, "sample_rate")
    if channels is not None and (
        isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1
    ):
        raise AudioError(f"channels must be a whole number >= 1 or None, got {channels!r} ({path})")
    if channel_policy not in CHANNEL_POLICIES:
        raise AudioError(
            f"channel_policy must be one of {CHANNEL_POLICIES}, got {channel_policy!r}"
        )
    p = _check_readable(path)
    start, frames, stream = int(start), None if frames is None else int(frames), int(stream)
    np_dtype = "float64" if dtype == torch.float64 else "float32"
    have_ffmpeg = _ffmpeg_executable("ffmpeg") is not None

    data, rate, total = None, None, None
    sf_error = ""
    if stream == 0 and (_extension(p) in SOUNDFILE_EXTENSIONS or not have_ffmpeg):
        try:
            data, rate, total = _sf_read(p, start, frames, np_dtype)
        except (soundfile.SoundFileError, RuntimeError) as exc:
            sf_error = f"soundfile: {exc}"
        else:
            if not allow_truncated:
                _check_complete(p, total)
    if data is None:
        if not have_ffmpeg:
            if stream != 0:
                raise _missing_ffmpeg(p, f"reading audio stream {stream} needs it")
            if _extension(p) in SOUNDFILE_EXTENSIONS:
                raise _corrupt(p, sf_error, "ffmpeg is not installed, so it was not tried")
            raise _missing_ffmpeg(p, "soundfile does not recognise it" if sf_error else "")
        try:
            data, rate = _ffmpeg_read(p, start, frames, stream)
        except _DecodeFailure as failure:
            raise _corrupt(p, sf_error, str(failure)) from None

    if data.shape[0] == 0:
        if start and (total is None or start >= total):
            where = f" of {total} frames" if total is not None else ""
            raise AudioError(f"start={start} is at or past the end of {p}{where}; nothing to read")
        raise AudioError(f"audio file {p} contains no audio samples (0 frames)")
    samples = np.ascontiguousarray(data.T)  # (T, C) -> (C, T)
    if not samples.flags.writeable:  # mono from ffmpeg is still a view of its read-only output
        samples = samples.copy()
    wav = torch.from_numpy(samples).to(dtype)
    if check_finite and not _all_finite(wav):
        bad = ~torch.isfinite(wav)
        first = int(bad.any(dim=0).nonzero()[0, 0])
        raise AudioError(
            f"audio file {p} contains {int(bad.sum())} NaN or infinite samples (first at frame "
            f"{start + first}); fix or re-export the file (or pass check_finite=False)"
        )

    # Both steps are linear and act per channel, so their order does not change the result;
    # dropping channels first (or adding them last) just saves resampling work.
    fewer_channels = channels is not None and channels < wav.shape[0]
    if fewer_channels:
        wav = _convert_channels_for(wav, channels, channel_policy, p)
    if sample_rate is not None and sample_rate != rate:
        wav = resample(wav, rate, sample_rate)
        rate = sample_rate
    if channels is not None and not fewer_channels:
        wav = _convert_channels_for(wav, channels, channel_policy, p)
    return wav, int(rate)


def _all_finite(wav) -> bool:
    """Whether a (C, T) tensor or array holds only finite values, checked in blocks (no
    temporary as large as the signal)."""
    check = torch.isfinite if isinstance(wav, torch.Tensor) else np.isfinite
    for t0 in range(0, wav.shape[-1], _BLOCK_FRAMES):
        if not bool(check(wav[..., t0 : t0 + _BLOCK_FRAMES]).all()):
            return False
    return True


def _convert_channels_for(wav: torch.Tensor, channels: int, policy: str, path: Path):
    try:
        return convert_channels(wav, channels, policy)
    except AudioError as exc:
        raise AudioError(f"{path}: {exc}") from None


def convert_channels(wav: torch.Tensor, channels: int, policy: str = "error") -> torch.Tensor:
    """Adapt a (C, T) signal to ``channels`` channels.

    Always done, whatever ``policy``: same count -> ``wav`` itself; mono -> N channels by
    duplication; stereo -> mono by the mean of the two channels. Every other case (more than
    two input channels, or stereo to more than two) is ambiguous and follows ``policy``:

    * ``"error"`` (default): raise :class:`AudioError` asking the caller to choose a policy,
      since a silent choice could drop or blend channels the user cares about;
    * ``"downmix"``: the mean of all channels (mono), duplicated to ``channels``;
    * ``"first"``: the first ``channels`` channels (error if there are fewer).

    Args:
        wav: tensor (C, T).
        channels: wanted number of channels (>= 1).
        policy: one of :data:`CHANNEL_POLICIES`.

    Returns:
        Tensor (channels, T), same dtype and device: ``wav`` itself when the count already
        matches, otherwise a new tensor (duplicated channels are real copies, safe to modify).
    """
    if policy not in CHANNEL_POLICIES:
        raise AudioError(f"channel policy must be one of {CHANNEL_POLICIES}, got {policy!r}")
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1:
        raise AudioError(f"channels must be a whole number >= 1, got {channels!r}")
    if wav.dim() != 2:
        raise AudioError(f"expected audio of shape (C, T), got shape {tuple(wav.shape)}")
    have = wav.shape[0]
    if have == channels:
        return wav
    if have == 1:
        return wav.repeat(channels, 1)
    if have == 2 and channels == 1:
        return wav.mean(dim=0, keepdim=True)
    if policy == "downmix":
        return wav.mean(dim=0, keepdim=True).repeat(channels, 1)
    if policy == "first":
        if have < channels:
            raise AudioError(
                f"cannot take the first {channels} channels of audio with only {have} channels; "
                "use the 'downmix' channel policy instead"
            )
        return wav[:channels].clone()
    raise AudioError(
        f"audio has {have} channels and {channels} are wanted: choose how to convert them with "
        "the channel policy 'downmix' (mean of all channels, then duplicated) or 'first' "
        f"(keep the first {channels} channels)"
    )


def resampled_length(frames: int, orig_sr: int, new_sr: int) -> int:
    """Number of samples :func:`resample` returns: ``round(frames * new_sr / orig_sr)``.

    Exact rational arithmetic, with halves rounded up (``floor(x + 1/2)``).
    """
    orig_sr = _check_rate(orig_sr, "orig_sr")
    new_sr = _check_rate(new_sr, "new_sr")
    return (2 * int(frames) * new_sr + orig_sr) // (2 * orig_sr)


def resample_reach(orig_sr: int, new_sr: int) -> int:
    """How far the :func:`resample` filter sees, in input samples at ``orig_sr``.

    Output sample n (at time ``n / new_sr``) depends only on the input samples i with
    ``|i / orig_sr - n / new_sr| <= reach / orig_sr``. A block resampled with ``reach`` input
    samples of context on each side therefore equals the whole-signal result. 0 when the rates
    are equal.
    """
    orig_sr = _check_rate(orig_sr, "orig_sr")
    new_sr = _check_rate(new_sr, "new_sr")
    if orig_sr == new_sr:
        return 0
    g = math.gcd(orig_sr, new_sr)
    up, down = new_sr // g, orig_sr // g
    return -(-(_ZERO_CROSSINGS * max(up, down)) // up)  # ceil(half filter length / up)


@functools.lru_cache(maxsize=16)
def _lowpass_taps(up: int, down: int) -> np.ndarray:
    """Anti-aliasing / anti-imaging FIR at the upsampled rate (odd length, centred)."""
    max_rate = max(up, down)
    taps = firwin(2 * _ZERO_CROSSINGS * max_rate + 1, _ROLLOFF / max_rate,
                  window=("kaiser", _KAISER_BETA))
    taps.setflags(write=False)
    return taps


class ResampleStream:
    """Streaming band-limited resampling of a (C, T) signal with libsoxr (quality "VHQ").

    ``process(block)`` takes the next (C, n) input samples (any n >= 0) and returns the (C, m)
    output samples that can be computed so far; ``flush()`` ends the stream and returns the rest.
    Whatever the block sizes, the concatenated output is the same, sample for sample, as
    ``resample(whole, orig_sr, new_sr, backend="soxr")``, and its length is exactly
    :func:`resampled_length` of the total input length. The filter is linear phase and centred
    (output sample n sits at time ``n / new_sr``); it holds back a few milliseconds of output
    until the input it needs has arrived (the stream's delay), and takes the signal as zero
    beyond its ends. Equal rates pass the samples through.

    Args:
        orig_sr, new_sr: input and output sample rates (Hz).
        channels: C.

    Blocks are float tensors on any device; outputs are float32 on the CPU.
    """

    def __init__(self, orig_sr: int, new_sr: int, channels: int):
        self.orig_sr = _check_rate(orig_sr, "orig_sr")
        self.new_sr = _check_rate(new_sr, "new_sr")
        self.channels = int(channels)
        self.consumed = 0  # input samples received
        self.produced = 0  # output samples returned
        self._held = np.zeros((0, self.channels), np.float32)  # (m, C): produced beyond the cap
        self._done = False
        self._soxr = None
        if self.orig_sr != self.new_sr:
            try:
                import soxr
            except ImportError:  # pragma: no cover - install_requires has it
                raise DependencyError("resampling needs python-soxr: `pip install soxr`") from None
            self._soxr = soxr.ResampleStream(self.orig_sr, self.new_sr, self.channels,
                                             dtype="float32", quality=SOXR_QUALITY)

    def _emit(self, y: np.ndarray, cap: int) -> torch.Tensor:
        # Never more than resampled_length(consumed) so far: the total is exact at flush.
        if len(self._held):
            y = np.concatenate([self._held, y])
        take = max(0, min(len(y), cap - self.produced))
        self._held = y[take:]
        self.produced += take
        return torch.from_numpy(np.ascontiguousarray(y[:take].T))  # (C, take)

    def process(self, block: torch.Tensor) -> torch.Tensor:
        """The next (C, n) input samples -> the (C, m) output samples now computable."""
        if self._done:
            raise RuntimeError("ResampleStream.process after flush")
        if block.dim() != 2 or block.shape[0] != self.channels:
            raise ValueError(f"expected a block of shape ({self.channels}, n), got {tuple(block.shape)}")
        x = block.detach().to("cpu", torch.float32)
        self.consumed += x.shape[-1]
        if self._soxr is None:
            self.produced += x.shape[-1]
            return x.clone()
        y = self._soxr.resample_chunk(np.ascontiguousarray(x.numpy().T))  # (m, C)
        return self._emit(y, resampled_length(self.consumed, self.orig_sr, self.new_sr))

    def flush(self) -> torch.Tensor:
        """Ends the stream: the remaining (C, m) output samples."""
        if self._done:
            raise RuntimeError("ResampleStream.flush called twice")
        self._done = True
        if self._soxr is None:
            return torch.zeros(self.channels, 0)
        total = resampled_length(self.consumed, self.orig_sr, self.new_sr)
        y = self._soxr.resample_chunk(np.zeros((0, self.channels), np.float32), last=True)
        out = self._emit(y, total)
        if self.produced < total:  # soxr returns exactly `total` (tested); this is a safety net
            out = torch.cat([out, torch.zeros(self.channels, total - self.produced)], dim=-1)
            self.produced = total
        return out


def _resample_soxr(wav: torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    lead, length = wav.shape[:-1], wav.shape[-1]
    rows = wav.detach().to("cpu", torch.float32).reshape(math.prod(lead), length)  # (rows, T)
    stream = ResampleStream(orig_sr, new_sr, rows.shape[0])
    out = torch.empty(rows.shape[0], resampled_length(length, orig_sr, new_sr))  # (rows, T_out)
    done = 0
    # Blocks of 2**18 frames: bounded scratch memory, and faster than one call (measured).
    for t0 in range(0, length, _SOXR_BLOCK):
        y = stream.process(rows[:, t0 : t0 + _SOXR_BLOCK])
        out[:, done : done + y.shape[-1]] = y
        done += y.shape[-1]
    out[:, done:] = stream.flush()
    return out.reshape(*lead, out.shape[-1]).to(wav.dtype).to(wav.device)


def resample(wav: torch.Tensor, orig_sr: int, new_sr: int, backend: str = "fir") -> torch.Tensor:
    """Band-limited resampling of a (..., T) signal from ``orig_sr`` to ``new_sr`` Hz.

    ``backend="soxr"`` uses libsoxr ("VHQ"), the resampler of the separation path
    (:class:`ResampleStream`, whose streamed output this equals); it computes in float32. The
    rest of this docstring describes the default ``backend="fir"``, which the training data
    (and its decode cache) uses.

    Polyphase filtering (``scipy.signal.resample_poly``) by the reduced ratio
    ``new_sr/g : orig_sr/g`` with ``g = gcd(orig_sr, new_sr)``, through a linear-phase
    Kaiser-windowed sinc (64 zero crossings each side, cut-off at 0.95 x the lower Nyquist): flat
    within 0.0001 dB up to 0.9 x the lower Nyquist, below -99 dB from the lower Nyquist up. The
    filter is centred, so output sample n sits at time ``n / new_sr`` exactly like input
    sample i at ``i / orig_sr`` (no delay); the signal is taken as zero outside [0, T).

    Output length: exactly ``round(T * new_sr / orig_sr)``, halves rounded up (see
    :func:`resampled_length`). Long signals are processed in blocks of about 2**20 input
    frames, so the scratch memory stays some tens of MB over the output itself (a 10-minute stereo
    track needs no more than its result).

    Args:
        wav: float tensor (..., T) (float32 or float64), any device; computed on the CPU in the
            tensor's dtype and returned on its device. Not differentiable.
        orig_sr: sample rate of ``wav`` (Hz).
        new_sr: wanted sample rate (Hz).
        backend: "fir" (default, described here) or "soxr" (libsoxr "VHQ", float32).

    Returns:
        Tensor (..., round(T * new_sr / orig_sr)). When ``orig_sr == new_sr``, ``wav`` itself.
    """
    orig_sr = _check_rate(orig_sr, "orig_sr")
    new_sr = _check_rate(new_sr, "new_sr")
    if backend not in RESAMPLE_BACKENDS:
        raise ValueError(f"backend must be one of {RESAMPLE_BACKENDS}, got {backend!r}")
    if orig_sr == new_sr:
        return wav
    if not torch.is_floating_point(wav) or wav.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"resample needs a float32 or float64 tensor, got {wav.dtype}")
    if backend == "soxr":
        return _resample_soxr(wav, orig_sr, new_sr)
    g = math.gcd(orig_sr, new_sr)
    up, down = new_sr // g, orig_sr // g
    lead, length = wav.shape[:-1], wav.shape[-1]
    n_out = resampled_length(length, orig_sr, new_sr)
    x = wav.detach().to("cpu").reshape(math.prod(lead), length).numpy()  # (rows, T)
    out = np.empty((x.shape[0], n_out), dtype=x.dtype)  # (rows, T_out)
    taps = _lowpass_taps(up, down).astype(x.dtype)
    half_len = (len(taps) - 1) // 2
    # Output n is the dot product of the taps with the inputs i where |n*down - i*up| <= half_len.
    # A block that starts at input a = m*down starts at output m*up, so with `context` input
    # samples either side (a multiple of `down`, keeping segment starts on that grid) each block
    # gives exactly the samples that one call over the whole signal would.
    context = down * -(-(half_len // up + 2) // down)
    step_in = down * max(1, _BLOCK_FRAMES // down)
    step_out = step_in // down * up
    for block_start in range(0, length, step_in):
        n0 = block_start // down * up
        n1 = min(n0 + step_out, n_out)
        if n0 >= n1:
            break
        seg_start = max(block_start - context, 0)
        seg_end = min(block_start + step_in + context, length)
        y = resample_poly(x[:, seg_start:seg_end], up, down, axis=-1, window=taps,
                          padtype="constant")  # (rows, T_seg_out)
        k0 = n0 - seg_start // down * up
        out[:, n0:n1] = y[:, k0 : k0 + n1 - n0]
    return torch.from_numpy(out).reshape(*lead, n_out).to(wav.device)


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


# ----------------------------------------------------------------------------------------------
# Streams: PCM from a pipe in, audio files written as the samples come


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
