"""Synthetic singing of a melody: Sinsy (HTS singing voice), Festival singing mode,
eSpeak NG syllables re-pitched with the WORLD vocoder, and General MIDI choir samples.

Every method takes the same input, a list of :class:`SungNote` (times in seconds from the
start of the song, MIDI pitch, one syllable of lyric) and returns a mono float32 track
``(T,)`` at ``sample_rate`` Hz in which note k is sung from ``onset`` to ``onset+duration``
and everything outside the notes is silent (exact zeros) apart from a short release.

Voices are named ``"<method>:<voice>"`` (see :data:`VOICES`), each with the MIDI range
(:data:`RANGES`) that the melody is transposed into.

One module per method, each with the same interface: ``check_available()`` (raises
:class:`~wavesep.errors.DependencyError` with the install line) and ``sing(name, notes,
num_samples, sample_rate, rng, report)``: :mod:`.sinsy`, :mod:`.festival`, :mod:`.espeak`
(method ``espeak_world``), :mod:`.choir` (method ``gm_choir``). This package is the registry and
the driver (:func:`check_method`, :func:`sing`); what the methods share is in :mod:`.common`.

May import: wavesep.errors, numpy/scipy and each method's own engine; the choir plays through
:mod:`wavesep.corpus.sampled.instruments` (imported when it sings). Used by the sampled renderer.
"""

from __future__ import annotations

import numpy as np

from wavesep.corpus.singing import choir, espeak, festival, sinsy
from wavesep.corpus.singing.common import (  # noqa: F401
    ENGLISH_WORDS,
    INSTALL,
    JAPANESE_SYLLABLES,
    RANGES,
    VOICES,
    SungNote,
    _load_extension,
    all_voices,
    load_pyworld,
    method_of,
    voice_range,
)


# ------------------------------------------------------------------------------- driver

_METHODS = {"sinsy": sinsy, "festival": festival, "espeak_world": espeak, "gm_choir": choir}


def check_method(method: str) -> None:
    """Raise DependencyError (with the install line) unless ``method`` can run here."""
    module = _METHODS.get(method)
    if module is None:
        raise ValueError(f"unknown singing method {method!r}; use one of {sorted(INSTALL)}")
    module.check_available()


def sing(voice: str, notes: list, num_samples: int, sample_rate: int,
         rng: np.random.Generator, report: dict | None = None) -> np.ndarray:
    """Sing ``notes`` with ``voice`` ("method:name").

    Args:
        voice: e.g. "sinsy:f001_a0.55", "festival:kal_diphone", "espeak_world:de+f4",
            "gm_choir:52" (see :func:`all_voices`).
        notes: SungNote list in time order, non-overlapping; empty lyrics get syllables
            drawn from ``rng``.
        num_samples: length T of the result.
        sample_rate: Hz.
        rng: the song's random generator (lyrics, expression), for reproducibility.
        report: if given, receives counts of repaired or dropped phrases
            ("sinsy_retries", "dropped_phrases").

    Returns:
        float32 (T,), roughly unit peak level, zero outside the notes.
    """
    method, name = voice.split(":", 1)
    module = _METHODS.get(method)
    if module is None:
        raise ValueError(f"unknown singing method {method!r} in voice {voice!r}")
    fn = module.sing
    if not notes:
        return np.zeros(num_samples, dtype=np.float32)
    y = fn(name, notes, num_samples, sample_rate, rng, {} if report is None else report)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    return (y / peak).astype(np.float32) if peak > 0 else y
