"""Audio files in and out: read, probe, resample, adapt channels, write.

The only wing of wavesep that touches audio files. Everything is a ``torch.Tensor`` of shape
(C, T) -- C channels, T samples (frames) -- with float samples at full scale 1.0, plus the sample
rate in Hz. Modules by concern: ``reading`` (info, read, the libsndfile and ffmpeg decoders),
``channels``, ``resampling`` (FIR and soxr, :class:`ResampleStream`), ``writing`` (atomic
writes), ``streams`` (:class:`PcmReader`, :class:`StreamWriter`), and ``common`` (helpers they
share). The wing may import torch, numpy, scipy, soundfile, soxr and :mod:`wavesep.errors`;
nothing else of wavesep. Callers use the names re-exported here (``audio.read``,
``audio.write``, ...), so a test that patches ``wavesep.audio.write`` reaches every caller.
"""

from wavesep.errors import AudioError  # noqa: F401

from .channels import CHANNEL_POLICIES, convert_channels
from .common import PathLike  # noqa: F401
from .reading import (  # noqa: F401
    FFMPEG_INSTALL_HINT,
    SOUNDFILE_EXTENSIONS,
    AudioInfo,
    MissingFFmpegError,
    info,
    read,
)
from .resampling import (  # noqa: F401
    RESAMPLE_BACKENDS,
    SOXR_QUALITY,
    ResampleStream,
    _lowpass_taps,
    resample,
    resample_reach,
    resampled_length,
)
from .streams import RAW_FORMATS, PcmReader, StreamWriter
from .writing import write

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
