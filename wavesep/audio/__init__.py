"""Audio files in and out: read, probe, resample, adapt channels, write.

The only wing of wavesep that touches audio files. Everything is a ``torch.Tensor`` of shape
(C, T) -- C channels, T samples -- with float samples at full scale 1.0, plus the sample rate in
Hz. It may import torch, numpy, scipy, soundfile, soxr and :mod:`wavesep.errors`; nothing else of
wavesep.
"""

from .reading import (  # noqa: F401
    AudioError, AudioInfo, CHANNEL_POLICIES, FFMPEG_INSTALL_HINT, MissingFFmpegError, PcmReader, RAW_FORMATS, RESAMPLE_BACKENDS,
    SOUNDFILE_EXTENSIONS, SOXR_QUALITY, PathLike,
    ResampleStream, StreamWriter, _lowpass_taps, convert_channels, info, read, resample,
    resample_reach, resampled_length, write,
)
from .reading import __all__  # noqa: F401
