"""Exceptions raised by wavesep.

Every error a user can cause (a bad file, a wrong length, a missing dataset) is a
:class:`WavesepError`, whose message names the file or value at fault and what to do.
Command-line entry points catch ``WavesepError`` and print the message without a traceback.
"""


class WavesepError(Exception):
    """Base class of the errors that wavesep reports to users."""


class AudioError(WavesepError, ValueError):
    """An audio file cannot be read or written, or its samples are unusable."""


class DataError(WavesepError, ValueError):
    """A dataset root, track or stem is missing or inconsistent."""


class CheckpointError(WavesepError, ValueError):
    """A checkpoint file is missing, corrupt or of an unknown format."""


class DependencyError(WavesepError, RuntimeError):
    """An optional system or Python dependency is missing; the message says how to install it."""


class ModelError(WavesepError, RuntimeError):
    """A model produced unusable output (NaN or infinite estimates: diverged or corrupt weights,
    or an overflow in reduced precision)."""
