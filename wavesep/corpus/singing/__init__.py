"""Singing voices for the sampled renderer."""

from wavesep.corpus.singing.methods import (  # noqa: F401
    ENGLISH_WORDS,
    INSTALL,
    JAPANESE_SYLLABLES,
    RANGES,
    VOICES,
    SungNote,
    _load_extension,
    all_voices,
    check_method,
    load_pyworld,
    method_of,
    sing,
    voice_range,
)
