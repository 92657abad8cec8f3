"""Reading and probing audio files: :func:`read` returns a (C, T) float tensor -- C channels, T
samples (frames) -- on the usual full scale of [-1, 1] for integer formats, with its sample rate
in Hz; :func:`info` reads what a file holds from its header.

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
import json
import os
import shutil
import stat
import struct
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Optional

import numpy as np
import soundfile
import torch

from wavesep.errors import AudioError, DependencyError
from .channels import CHANNEL_POLICIES, _convert_channels_for
from .common import _BLOCK_FRAMES, PathLike, _all_finite, _check_rate, _extension
from .resampling import resample

__all__ = ["AudioInfo", "MissingFFmpegError", "info", "read"]

# Extensions that libsndfile decodes itself. Any other extension goes to ffmpeg.
SOUNDFILE_EXTENSIONS = frozenset(
    {
        "wav", "wave", "bwf", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff", "aifc",
        "au", "snd", "caf", "w64", "rf64", "sd2", "voc", "htk", "sf", "ircam", "nist",
        "sph", "paf", "svx", "iff", "xi", "mat", "avr", "pvf", "wve", "sds",
    }
)
FFMPEG_INSTALL_HINT = (
    "install ffmpeg (Debian/Ubuntu: `apt-get install ffmpeg`, macOS: `brew install ffmpeg`, "
    "conda: `conda install -c conda-forge ffmpeg`) so that `ffmpeg` and `ffprobe` are on the PATH"
)
# Largest surplus of decoded samples over the container's duration taken as codec padding.
_MAX_CODEC_PADDING = 8192


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
