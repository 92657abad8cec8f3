"""Singing method ``sinsy``: Sinsy (HTS singing voice synthesis, pysinsy) sings Japanese syllables
from a MusicXML score written per phrase; diverging phrases are sung again or dropped."""

from __future__ import annotations

import functools
import os
import tempfile

import numpy as np

from wavesep.corpus.singing.common import (
    INSTALL,
    JAPANESE_SYLLABLES,
    SungNote,
    _load_extension,
    _phrases,
    _place,
    _quiet_stderr,
    _resample,
)
from wavesep.errors import DependencyError


# ------------------------------------------------------------------------------ Sinsy

@functools.lru_cache(maxsize=1)
def _sinsy_module():
    mod, root = _load_extension("pysinsy", "sinsy", INSTALL["sinsy"])
    voice = os.path.join(root, "htsvoice", "nitech_jp_song070_f001.htsvoice")
    if not os.path.isfile(voice):
        raise DependencyError(f"pysinsy at {root} lacks its bundled voice {voice}; "
                              f"reinstall it with: {INSTALL['sinsy']}")
    return mod, os.path.join(root, "_dic"), voice


_SINSY_DIVISIONS = 960  # MusicXML divisions per quarter; the score runs at 60 BPM, 1 q = 1 s


def _sinsy_xml(notes: list, start_s: float) -> str:
    """A one-part MusicXML score at 60 BPM (a quarter note lasts one second) in 4/4 bars."""
    bar = 4 * _SINSY_DIVISIONS
    events = []  # (duration_divisions, pitch or None, lyric)
    t = int(round(start_s * _SINSY_DIVISIONS))
    cursor = t - _SINSY_DIVISIONS // 2  # Sinsy expects a leading rest
    for n in notes:
        on = int(round(n.onset * _SINSY_DIVISIONS))
        off = max(on + 1, int(round((n.onset + n.duration) * _SINSY_DIVISIONS)))
        if on > cursor:
            events.append((on - cursor, None, ""))
        events.append((off - max(on, cursor), n.pitch, n.lyric))
        cursor = off
    events.append((_SINSY_DIVISIONS // 2, None, ""))
    steps = ["C", "C", "D", "D", "E", "F", "F", "G", "G", "A", "A", "B"]
    alters = [0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1, 0]
    measures, current, fill = [], [], 0
    for dur, pitch, lyric in events:
        first = True
        while dur > 0:
            take = min(dur, bar - fill)
            tie_next = take < dur
            if pitch is None:
                current.append(f"<note><rest/><duration>{take}</duration></note>")
            else:
                ties = ("" if first else '<tie type="stop"/>') + \
                    ('<tie type="start"/>' if tie_next else "")
                tied = ("" if first else '<tied type="stop"/>') + \
                    ('<tied type="start"/>' if tie_next else "")
                lyr = (f"<lyric><syllabic>single</syllabic><text>{lyric}</text></lyric>"
                       if first else "")
                current.append(
                    f"<note><pitch><step>{steps[pitch % 12]}</step>"
                    f"<alter>{alters[pitch % 12]}</alter><octave>{pitch // 12 - 1}</octave>"
                    f"</pitch><duration>{take}</duration>{ties}"
                    f"<notations>{tied}</notations>{lyr}</note>")
            dur -= take
            fill += take
            first = False
            if fill == bar:
                measures.append(current)
                current, fill = [], 0
    if current:
        current.append(f"<note><rest/><duration>{bar - fill}</duration></note>")
        measures.append(current)
    body = []
    for i, m in enumerate(measures, start=1):
        head = ""
        if i == 1:
            head = (f"<attributes><divisions>{_SINSY_DIVISIONS}</divisions><key><fifths>0"
                    "</fifths></key><time><beats>4</beats><beat-type>4</beat-type></time>"
                    "</attributes><direction><sound tempo=\"60\"/></direction>")
        body.append(f'<measure number="{i}">{head}{"".join(m)}</measure>')
    return ('<?xml version="1.0" encoding="UTF-8"?><score-partwise version="3.0"><part-list>'
            '<score-part id="P1"><part-name>Voice</part-name></score-part></part-list>'
            f'<part id="P1">{"".join(body)}</part></score-partwise>')


# Sinsy's synthesis filter sometimes diverges (samples of 1e10 and more) for some lyric and
# pitch contexts. A phrase whose peak passes this (in Sinsy's int16 scale; normal singing
# peaks near 2e4) is sung again with other syllables, then dropped if it still diverges.
_SINSY_MAX_PEAK = 65536.0
_SINSY_RETRY_SYLLABLES = ("ら", "る", "の", "み")


def check_available() -> None:
    """Raise DependencyError (with the install line) unless pysinsy and its voice load."""
    _sinsy_module()


def sing(name: str, notes: list, num_samples: int, sample_rate: int, rng,
         report: dict) -> np.ndarray:
    mod, dic, voice_file = _sinsy_module()
    alpha = float(name.split("_a")[1])
    out = np.zeros(num_samples, dtype=np.float32)
    engine = mod.Sinsy()
    with _quiet_stderr():
        engine.setLanguages("j", dic)
        if not engine.loadVoices(voice_file):
            raise DependencyError(f"Sinsy could not load its voice {voice_file}; "
                                  f"reinstall it with: {INSTALL['sinsy']}")
    # One score per phrase keeps each score short (Sinsy's cost grows with score length)
    # and lets each phrase start exactly on time.
    lead = 0.5  # the leading rest written by _sinsy_xml, in seconds
    for phrase in _phrases(notes, max_gap_s=1.5):
        start = phrase[0].onset
        lyrics = [n.lyric or str(rng.choice(JAPANESE_SYLLABLES)) for n in phrase]
        wav = None
        for attempt, syllable in enumerate((None,) + _SINSY_RETRY_SYLLABLES):
            local = [SungNote(n.onset - start + lead, n.duration, n.pitch, syllable or lyric)
                     for n, lyric in zip(phrase, lyrics)]
            candidate, sr = _sinsy_phrase(engine, local, lead, alpha)
            if candidate is not None and candidate.size and np.all(np.isfinite(candidate)) \
                    and np.max(np.abs(candidate)) < _SINSY_MAX_PEAK:
                wav = candidate
                break
            report["sinsy_retries"] = report.get("sinsy_retries", 0) + 1
        if wav is None:
            report["dropped_phrases"] = report.get("dropped_phrases", 0) + 1
            continue
        wav = _resample(wav / 32768.0, int(sr), sample_rate)
        # keep only the phrase itself: Sinsy breathes faintly in the rests around it
        end = local[-1].onset + local[-1].duration + 0.3
        keep = slice(int((lead - 0.2) * sample_rate), int(end * sample_rate))
        gated = np.zeros_like(wav)
        gated[keep] = wav[keep]
        _place(gated, start - lead, out, sample_rate)
    return out


def _sinsy_phrase(engine, local: list, lead: float, alpha: float) -> tuple:
    """Sing one phrase: (float64 samples in int16 scale, or None on a score error; rate)."""
    with tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False, encoding="utf-8") as fh:
        fh.write(_sinsy_xml(local, lead))
        path = fh.name
    try:
        with _quiet_stderr():
            engine.setAlpha(alpha)
            engine.clearScore()
            if not engine.loadScoreFromMusicXML(path):
                return None, 0
            wav, sr = engine.synthesize()
    finally:
        os.unlink(path)
    return np.asarray(wav, dtype=np.float64), int(sr)
