"""The sampled renderer: public-domain scores, MMA grooves, FluidSynth instruments, singers, rooms.

Its interface to :mod:`wavesep.corpus.command` is :func:`render` and :func:`check_dependencies`;
the parts are :mod:`.scores` (pieces), :mod:`.grooves` (MMA accompaniment), :mod:`.instruments`
(FluidSynth), :mod:`.effects` (rooms, EQ), :mod:`.arrangement` (one song from them) and
:mod:`.statistics` (variety of a written corpus). The singers are :mod:`wavesep.corpus.singing`.

May import: wavesep.corpus.singing, wavesep.errors, and its engines (libfluidsynth through ctypes,
the ``mma`` command, music21); a missing one is reported with its install line.
"""

from wavesep.corpus.sampled.arrangement import (
    SINGING_WEIGHTS,
    SPLITS,
    STEMS,
    available_methods,
    check_dependencies,
    render,
)
from wavesep.corpus.sampled.statistics import corpus_statistics

__all__ = ["SINGING_WEIGHTS", "SPLITS", "STEMS", "available_methods", "check_dependencies",
           "corpus_statistics", "render"]
