"""Singing method ``gm_choir``: the General MIDI choir / voice samples played by FluidSynth."""

from __future__ import annotations

import numpy as np

from wavesep.corpus.singing.common import _phrases


# ----------------------------------------------------------------------------- GM choir

def check_available() -> None:
    """Raise DependencyError (with the install line) unless FluidSynth and the GM soundfont are here."""
    from wavesep.corpus.sampled import instruments

    instruments.check_available()


def sing(name: str, notes: list, num_samples: int, sample_rate: int, rng,
         report: dict) -> np.ndarray:
    # imported here: the sampled renderer imports this package, so a module-level import of
    # its instruments would make the two packages import each other
    from wavesep.corpus.sampled import instruments as fl

    events = tuple(fl.NoteEvent(n.onset, n.duration, n.pitch, int(rng.integers(80, 110)))
                   for n in notes)
    stereo = fl.render([fl.Instrument(fl.GM_SOUNDFONT, 0, int(name), events)], num_samples,
                       sample_rate)
    # The choir presets release for up to 1.5 s; a singer stops within a breath, so the
    # sound fades out over 0.25 s after each phrase's last note.
    gate = np.zeros(num_samples, dtype=np.float32)
    fade = int(0.25 * sample_rate)
    ramp = (0.5 + 0.5 * np.cos(np.linspace(0, np.pi, fade))).astype(np.float32)
    for phrase in _phrases(notes, max_gap_s=0.3):
        a = min(num_samples, int(phrase[0].onset * sample_rate))
        b = min(num_samples, int((phrase[-1].onset + phrase[-1].duration) * sample_rate))
        gate[a:b] = 1.0
        end = min(num_samples, b + fade)
        gate[b:end] = np.maximum(gate[b:end], ramp[: end - b])
    return (stereo.mean(axis=1) * gate).astype(np.float32)
