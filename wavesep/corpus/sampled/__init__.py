"""The sampled renderer: public-domain scores, MMA grooves, FluidSynth instruments, singers, rooms.

Its interface to :mod:`wavesep.corpus.command` is :func:`render` and :func:`check_dependencies`;
the parts are :mod:`.scores` (pieces), :mod:`.grooves` (MMA accompaniment), :mod:`.instruments`
(FluidSynth), :mod:`.effects` (rooms, EQ), :mod:`.arrangement` (one song from them) and
:mod:`.statistics` (variety of a written corpus). The singers are :mod:`wavesep.corpus.singing`.

:mod:`.arrangement` is about 600 lines because :func:`render` is one cohesive thing: the plan of
one song, from the piece to the mixed stems, read best top to bottom.
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
