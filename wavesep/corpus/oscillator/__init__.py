"""The oscillator renderer: songs from wavetable oscillators, a formant voice and a drum kit.

Its interface to :mod:`wavesep.corpus.command` is :func:`render` and :func:`check_dependencies`
(:mod:`.renderer`). Imports run one way: renderer -> parts (:mod:`.vocals`, :mod:`.drums`,
:mod:`.pitched`) -> :mod:`.song` (the plan and its harmony) and :mod:`.dsp` (signal primitives).
Needs only numpy and scipy.
"""

from wavesep.corpus.oscillator.renderer import RENDERER_VERSION, SOURCES, check_dependencies, render

__all__ = ["RENDERER_VERSION", "SOURCES", "check_dependencies", "render"]
