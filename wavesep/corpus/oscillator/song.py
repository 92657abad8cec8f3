"""The song plan of the oscillator renderer: tempo, metre, key, chord loop and sections, and the
harmony helpers every part reads from it (chords, scales, voicings). Times in seconds."""

from __future__ import annotations

import math

import numpy as np


_NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII")
# Scale degrees (0 = tonic) of common four-chord loops.
_PROGRESSIONS = {
    "major": ((0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4), (0, 3, 4, 3), (1, 4, 0, 0),
              (0, 2, 3, 4), (3, 4, 2, 5), (0, 3, 0, 4), (0, 4, 1, 3)),
    "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 6, 2), (5, 6, 0, 0),
              (0, 5, 3, 4), (0, 2, 5, 6)),
}


# ------------------------------------------------------------------------------- song plan


def _plan_song(rng: np.random.Generator, seconds: float) -> dict:
    """Tempo, key, chords and sections shared by every part."""
    beats_per_bar = 3 if rng.random() < 0.15 else 4
    bpm = float(rng.uniform(78, 150))
    beat = 60.0 / bpm
    bar = beat * beats_per_bar
    swing = float(rng.uniform(0.1, 0.3)) if rng.random() < 0.2 else 0.0
    mode = "major" if rng.random() < 0.55 else "minor"
    key = int(rng.integers(12))
    banks = _PROGRESSIONS[mode]
    progression = banks[int(rng.integers(len(banks)))]
    chords_per_bar = float(rng.choice([0.5, 1.0, 2.0], p=[0.2, 0.6, 0.2]))
    seventh = rng.random() < 0.3
    n_bars = max(1, math.ceil(seconds / bar) + 1)

    chord_len = bar / chords_per_bar
    chords = []
    t, i = 0.0, 0
    while t < n_bars * bar - 1e-9:
        degree = progression[i % len(progression)]
        pcs = _chord_pcs(key, mode, degree, seventh)
        chords.append({"start": t, "end": t + chord_len, "degree": degree, "pcs": pcs,
                       "root": pcs[0], "name": _chord_name(key, mode, degree)})
        t += chord_len
        i += 1

    bars_per_section = 4
    n_sections = math.ceil(n_bars / bars_per_section)
    sections = []
    for s in range(n_sections):
        if n_sections == 1:
            kind = str(rng.choice(["verse", "chorus"]))
        elif s == 0 and rng.random() < 0.4:
            kind = "intro"
        else:
            kind = str(rng.choice(["verse", "chorus", "break"], p=[0.45, 0.4, 0.15]))
        flags = {
            "intro": {"vocals": False, "drums": rng.random() < 0.5, "bass": rng.random() < 0.5},
            "verse": {"vocals": True, "drums": rng.random() < 0.9, "bass": rng.random() < 0.95},
            "chorus": {"vocals": True, "drums": True, "bass": True},
            "break": {"vocals": rng.random() < 0.3, "drums": False, "bass": rng.random() < 0.5},
        }[kind]
        b0 = s * bars_per_section
        b1 = min(n_bars, b0 + bars_per_section)
        sections.append({"kind": kind, "start": b0 * bar, "end": b1 * bar, "first_bar": b0,
                         "bars": b1 - b0, **{k: bool(v) for k, v in flags.items()}})
    if not any(s["vocals"] for s in sections):
        sections[-1]["vocals"] = True
    # Drums drop out for single bars now and then, besides whole sections.
    drum_bars = np.zeros(n_bars, bool)
    for s in sections:
        drum_bars[s["first_bar"]:s["first_bar"] + s["bars"]] = s["drums"]
    drop = rng.random(n_bars) < 0.08
    drop[0] = False
    drum_bars &= ~drop

    return {"bpm": bpm, "beat": beat, "bar": bar, "beats_per_bar": beats_per_bar, "swing": swing,
            "mode": mode, "key": key, "progression": progression, "chords": chords,
            "sections": sections, "n_bars": n_bars, "drum_bars": drum_bars,
            "seconds": seconds}


def _chord_pcs(key: int, mode: str, degree: int, seventh: bool) -> list:
    scale = _SCALES[mode]
    steps = (0, 2, 4, 6) if seventh else (0, 2, 4)
    return [(key + scale[(degree + s) % 7]) % 12 for s in steps]


def _chord_name(key: int, mode: str, degree: int) -> str:
    scale = _SCALES[mode]
    root = scale[degree]
    third = (scale[(degree + 2) % 7] - root) % 12
    fifth = (scale[(degree + 4) % 7] - root) % 12
    suffix = "dim" if fifth == 6 else ("m" if third == 3 else "")
    return _NOTE_NAMES[(key + root) % 12] + suffix


def _roman(degree: int, mode: str) -> str:
    scale = _SCALES[mode]
    third = (scale[(degree + 2) % 7] - scale[degree]) % 12
    return _ROMAN[degree] if third == 4 else _ROMAN[degree].lower()


def _chord_at(song: dict, t: float) -> dict:
    i = min(int(t / (song["chords"][0]["end"] - song["chords"][0]["start"])),
            len(song["chords"]) - 1)
    return song["chords"][max(i, 0)]


def _section_at(song: dict, t: float) -> dict:
    for s in song["sections"]:
        if s["start"] <= t < s["end"]:
            return s
    return song["sections"][-1]


def _scale_notes(song: dict, lo: int, hi: int) -> np.ndarray:
    pcs = {(song["key"] + s) % 12 for s in _SCALES[song["mode"]]}
    return np.array([m for m in range(lo, hi + 1) if m % 12 in pcs])


def _voicing(pcs, lo: int, hi: int, previous=None) -> list:
    """MIDI notes for pitch classes `pcs` within [lo, hi], each near the previous chord's notes."""
    centre = (lo + hi) / 2 if previous is None else float(np.mean(previous))
    notes = []
    for pc in pcs:
        candidates = [m for m in range(lo, hi + 1) if m % 12 == pc]
        notes.append(min(candidates, key=lambda m: abs(m - centre)))
    return sorted(set(notes))
