"""The oscillator renderer: songs from wavetable oscillators, a formant voice and a drum kit.

Its interface to :mod:`wavesep.corpus.command` is :func:`render` and :func:`check_dependencies`.
"""

from wavesep.corpus.oscillator.renderer import RENDERER_VERSION, SOURCES, check_dependencies, render

__all__ = ["RENDERER_VERSION", "SOURCES", "check_dependencies", "render"]
