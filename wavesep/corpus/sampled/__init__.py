"""The sampled renderer: public-domain scores, MMA grooves, FluidSynth instruments, singers, rooms.

Its interface to :mod:`wavesep.corpus.command` is :func:`render` and :func:`check_dependencies`;
the parts are :mod:`.scores` (pieces), :mod:`.grooves` (MMA accompaniment), :mod:`.instruments`
(FluidSynth), :mod:`.effects` (rooms, EQ) and :mod:`.arrangement` (one song from them).
"""

from wavesep.corpus.sampled.arrangement import (
    SINGING_WEIGHTS,
    SPLITS,
    STEMS,
    available_methods,
    check_dependencies,
    corpus_statistics,
    render,
)

__all__ = ["SINGING_WEIGHTS", "SPLITS", "STEMS", "available_methods", "check_dependencies",
           "corpus_statistics", "render"]
