"""The pitched accompaniment of the oscillator renderer: ``bass`` (a line on the chord roots) and
``other`` (pads, organ, electric / plucked piano, arpeggios and an optional lead line)."""

from __future__ import annotations

import numpy as np

from wavesep.corpus.oscillator.dsp import (
    _active_rms,
    _add_room,
    _balance,
    _env,
    _harmonics_below,
    _lookup,
    _midi_hz,
    _pan,
    _phase,
    _phase_track,
    _place,
    _r,
    _RADIANS_PER_UNIT,
    _sin,
    _table,
)
from wavesep.corpus.oscillator.song import _scale_notes, _section_at, _voicing


# ------------------------------------------------------------------------------- pitched parts


def _bass_note(name: str, rng: np.random.Generator):
    """Note renderer for the bass: (freq Hz, samples, length s, velocity, sr) -> float32 (n,)."""
    decay = rng.uniform(0.3, 1.2)
    cutoff_tau = np.float32(rng.uniform(0.05, 0.25))

    def note(freq, count, length, vel, sr):
        phase = _phase(freq, count, sr)
        env = _env(count, sr, 0.005, decay * 3 if name == "sub" else decay, length, 0.03)
        if name == "sub":
            x = np.tanh(1.5 * (_sin(phase) + 0.2 * _sin(phase * np.uint32(2))))
        elif name == "fm":
            t = np.arange(count, dtype=np.float32) * np.float32(1.0 / sr)
            index = np.float32(vel * 2.5) * np.exp(-t / cutoff_tau)
            x = np.sin(phase.astype(np.float32) * _RADIANS_PER_UNIT + index * _sin(phase))
        else:
            # A filter sweep without a filter: the bright table fades into a dark one.
            harm = np.arange(1, _harmonics_below(freq, sr, 40) + 1)
            if name == "square":
                bright = _table(np.where(harm % 2 == 1, 1.0 / harm, 0.1 / harm))
            else:
                bright = _table(1.0 / harm)
            dark = _table((1.0 / harm ** 2.5)[:6])
            t = np.arange(count, dtype=np.float32) * np.float32(1.0 / sr)
            w = np.exp(-t / cutoff_tau) * np.float32(vel)
            d = _lookup(dark, phase)
            x = d + w * (_lookup(bright, phase) - d)
        return x * (env * np.float32(vel))

    return note


def _render_bass(song: dict, rng: np.random.Generator, sr: int, n: int) -> tuple:
    """Bass line on the chord roots, (2, T) float32, and its info."""
    timbre = str(rng.choice(["sub", "saw", "square", "fm"]))
    pattern = str(rng.choice(["whole", "pulse", "root_fifth", "octave", "syncopated", "walking"],
                             p=[0.1, 0.25, 0.2, 0.15, 0.15, 0.15]))
    legato = rng.uniform(0.6, 1.0)
    note_fn = _bass_note(timbre, rng)
    beat = song["beat"]
    mono = np.zeros(n, dtype=np.float32)
    chords = song["chords"]
    played = 0
    for ci, chord in enumerate(chords):
        if chord["start"] >= n / sr or not _section_at(song, chord["start"])["bass"]:
            continue
        # Roots between E1 and D#2, as on a four-string bass.
        root = 28 + (chord["root"] - 4) % 12
        length_beats = (chord["end"] - chord["start"]) / beat
        next_root = 28 + (chords[(ci + 1) % len(chords)]["root"] - 4) % 12
        third = 28 + (chord["pcs"][1] - 4) % 12
        third += 12 if third < root else 0
        if pattern == "whole":
            seq = [(0.0, length_beats, root)]
        elif pattern == "pulse":
            seq = [(b, 0.5, root) for b in np.arange(0, length_beats, 0.5)]
        elif pattern == "root_fifth":
            seq = [(b, 1.0, root if int(b) % 2 == 0 else root + 7)
                   for b in np.arange(0, length_beats, 1.0)]
        elif pattern == "octave":
            seq = [(b, 0.5, root + 12 * (int(b * 2) % 2)) for b in np.arange(0, length_beats, 0.5)]
        elif pattern == "syncopated":
            seq = [(b, 0.5, root + (7 if i == 3 else 0))
                   for i, b in enumerate((0, 0.75, 1.5, 2.0, 2.75, 3.5)) if b < length_beats]
        else:  # walking quarters: root, third, fifth, a step into the next root
            walk = [root, third, root + 7, next_root + int(rng.choice([-1, 1]))]
            seq = [(float(b), 1.0, walk[i % 4]) for i, b in enumerate(np.arange(0, length_beats))]
        for off, dur, midi in seq:
            t0 = chord["start"] + off * beat + rng.normal(0, 0.003)
            length = dur * beat * (legato if dur < 2 else 0.95)
            vel = float(np.clip(rng.normal(0.85, 0.08), 0.5, 1.0))
            buf = note_fn(float(_midi_hz(midi)), int((length + 0.04) * sr), length, vel, sr)
            _place(mono, buf, int(round(t0 * sr)))
            played += 1
    pan = float(rng.uniform(-0.05, 0.05))
    return _pan(mono, pan), {"timbre": timbre, "pattern": pattern, "notes": played, "pan": _r(pan)}


def _keys_note(kind: str, rng: np.random.Generator):
    """Note renderer for a comping instrument -> function(freq, count, length, vel, sr) -> (n,)."""
    ratio = np.uint32(rng.choice([1, 2, 3]))
    index0 = rng.uniform(1.5, 4.5)
    decay = rng.uniform(0.6, 1.6)

    def note(freq, count, length, vel, sr):
        phase = _phase(freq, count, sr)
        t = np.arange(count, dtype=np.float32) * np.float32(1.0 / sr)
        # Low notes ring longer, as on a piano.
        env = _env(count, sr, 0.003, decay * min(1.5, 220.0 / freq) + 0.15, length, 0.08)
        if kind == "epiano":
            index = np.float32(index0 * vel) * np.exp(t * np.float32(-1 / 0.3))
            x = np.sin(phase.astype(np.float32) * _RADIANS_PER_UNIT + index * _sin(phase * ratio))
        else:  # piano-like: a bright attack fading into a darker, slightly detuned string
            harm = np.arange(1, _harmonics_below(freq, sr, 40) + 1)
            bright = _table(1.0 / harm)
            dark = _table((1.0 / harm ** 1.8)[:14])
            w = np.exp(t * np.float32(-1 / 0.25))
            d = _lookup(dark, _phase(freq * 1.0012, count, sr, 0.3))
            x = d + w * (_lookup(bright, phase) - d)
        return x * (env * np.float32(vel))

    return note


def _sustained_note(kind: str, rng: np.random.Generator):
    """Note renderer for pads and organ -> function(freq, count, length, vel, sr) -> (2, n)."""
    detune = rng.uniform(0.002, 0.008)
    attack = rng.uniform(0.08, 0.6) if kind == "pad" else 0.01
    release = rng.uniform(0.2, 0.8) if kind == "pad" else 0.05
    drawbars = rng.uniform(0, 1, size=9) * np.array([1, 1, 0.8, 0.6, 0.5, 0.4, 0.4, 0.3, 0.3])
    trem_rate = rng.uniform(4, 7)
    brightness = rng.uniform(6, 20)  # harmonic number where the pad's spectrum has fallen by 1/e

    def note(freq, count, length, vel, sr):
        env = _env(count, sr, attack, np.inf, length, release) * np.float32(vel)
        harm = np.arange(1, _harmonics_below(freq * (1 + detune), sr, 40) + 1)
        if kind == "pad":
            # Two detuned voices, one per side, beat slowly against each other.
            table = _table(np.exp(-harm / brightness) / harm ** 0.8)
            left = _lookup(table, _phase(freq * (1 - detune), count, sr, 0.13))
            right = _lookup(table, _phase(freq * (1 + detune), count, sr, 0.71))
            return np.stack([left * env, right * env])
        partials = np.zeros(harm.size)
        for h, level in zip((1, 2, 3, 4, 5, 6, 8, 10, 12), drawbars):
            if h <= harm.size:
                partials[h - 1] = level
        partials[0] = max(partials[0], 0.5)
        x = _lookup(_table(partials), _phase(freq, count, sr)) * env
        trem = _sin(_phase(trem_rate, count, sr))
        return np.stack([x * (1 + 0.15 * trem), x * (1 - 0.15 * trem)])

    return note


def _chords_in(song: dict, seconds: float, on_sections: list):
    for chord in song["chords"]:
        if chord["start"] >= seconds:
            break
        if on_sections[song["sections"].index(_section_at(song, chord["start"]))]:
            yield chord


def _render_other(song: dict, rng: np.random.Generator, sr: int, n: int) -> tuple:
    """Harmonic accompaniment: a bed (pad/organ) and comping/arpeggio parts, (2, T) float32."""
    bed = str(rng.choice(["pad", "organ", "none"], p=[0.5, 0.2, 0.3]))
    rhythm = str(rng.choice(["epiano", "piano", "pluck", "piano+pluck", "none"],
                            p=[0.25, 0.25, 0.2, 0.15, 0.15]))
    if bed == "none" and rhythm == "none":
        rhythm = "piano"
    parts = ([bed] if bed != "none" else []) + (rhythm.split("+") if rhythm != "none" else [])
    if rng.random() < 0.4:
        parts.append("lead")
    beat = song["beat"]
    seconds = n / sr
    out = np.zeros((2, n), dtype=np.float32)
    part_info = []
    for part in parts:
        pan = float(rng.uniform(-0.6, 0.6))
        # The first part plays in every section, the others in most.
        on_sections = [part == parts[0] or rng.random() < 0.8 for _ in song["sections"]]
        previous = None
        played = 0
        if part in ("pad", "organ"):
            fn = _sustained_note(part, rng)
            lo = int(rng.integers(48, 56))
            part_out = np.zeros((2, n), dtype=np.float32)
            for chord in _chords_in(song, seconds, on_sections):
                voicing = _voicing(chord["pcs"], lo, lo + 18, previous)
                previous = voicing
                length = chord["end"] - chord["start"]
                for m in voicing:
                    buf = fn(float(_midi_hz(m)), int((length + 1.0) * sr), length, 0.5, sr)
                    _place(part_out, buf, int(round(chord["start"] * sr)))
                    played += 1
            width = np.float32(rng.uniform(0.3, 1.0))
            mid = part_out.mean(axis=0, keepdims=True)
            part_out = _balance(mid + (part_out - mid) * width, pan)
        elif part in ("epiano", "piano"):
            fn = _keys_note(part, rng)
            lo = int(rng.integers(50, 60))
            comp = str(rng.choice(["sustain", "quarters", "offbeats", "syncopated", "broken"]))
            mono = np.zeros(n, dtype=np.float32)
            for chord in _chords_in(song, seconds, on_sections):
                voicing = _voicing(chord["pcs"], lo, lo + 16, previous)
                previous = voicing
                length_beats = (chord["end"] - chord["start"]) / beat
                hits = {"sustain": [(0.0, length_beats)],
                        "quarters": [(b, 0.9) for b in np.arange(0, length_beats)],
                        "offbeats": [(b + 0.5, 0.4) for b in np.arange(0, length_beats)],
                        "syncopated": [(b, 1.2) for b in (0, 1.5, 2.5, 3.5) if b < length_beats],
                        "broken": [(b, 0.9) for b in np.arange(0, length_beats, 0.5)]}[comp]
                for j, (off, dur) in enumerate(hits):
                    notes = voicing if comp != "broken" else [voicing[j % len(voicing)]]
                    vel = float(np.clip(rng.normal(0.7, 0.12), 0.3, 1.0))
                    t0 = chord["start"] + off * beat
                    length = dur * beat
                    for m in notes:
                        # A strummed chord: each note a few milliseconds after the previous.
                        buf = fn(float(_midi_hz(m)), int((length + 0.3) * sr), length, vel, sr)
                        _place(mono, buf, int(round((t0 + 0.006 * rng.random()) * sr)))
                        played += 1
            part_out = _pan(mono, pan)
        elif part == "lead":
            mono, played = _lead_line(song, rng, sr, n)
            part_out = _pan(mono, pan)
        else:  # pluck arpeggio with a ping-pong echo
            lo = int(rng.integers(57, 66))
            direction = str(rng.choice(["up", "down", "updown", "random"]))
            rate = 0.25 if (song["bpm"] < 110 and rng.random() < 0.5) else 0.5
            decay = rng.uniform(0.1, 0.35)
            harm_cap = int(rng.integers(8, 24))
            count = int(3.5 * decay * sr)
            tt = np.arange(count, dtype=np.float32) * np.float32(1.0 / sr)
            fade = np.exp(tt * np.float32(-1 / (0.4 * decay)))
            env = _env(count, sr, 0.002, decay, count / sr - 0.01, 0.01)
            mono = np.zeros(n, dtype=np.float32)
            for chord in _chords_in(song, seconds, on_sections):
                voicing = _voicing(chord["pcs"], lo, lo + 12, None)
                pool = voicing + [m + 12 for m in voicing]
                if direction == "down":
                    pool = pool[::-1]
                elif direction == "updown":
                    pool = pool + pool[-2:0:-1]
                length_beats = (chord["end"] - chord["start"]) / beat
                for j, off in enumerate(np.arange(0, length_beats, rate)):
                    m = pool[j % len(pool)] if direction != "random" else int(rng.choice(pool))
                    freq = float(_midi_hz(m))
                    harm = np.arange(1, _harmonics_below(freq, sr, harm_cap) + 1)
                    phase = _phase(freq, count, sr)
                    d = _lookup(_table(1.0 / harm[:3] ** 2), phase)
                    x = (d + fade * (_lookup(_table(1.0 / harm), phase) - d)) * env
                    vel = np.float32(np.clip(rng.normal(0.7, 0.1), 0.3, 1.0))
                    _place(mono, x * vel, int(round((chord["start"] + off * beat) * sr)))
                    played += 1
            part_out = _pan(mono, pan)
            delay = int(round(beat * 0.75 * sr))
            feedback = rng.uniform(0.25, 0.45)
            dry = part_out.copy()
            for tap in range(1, 4):
                if tap * delay >= n:
                    break
                # Odd echoes come back from the other side.
                source = dry[::-1] if tap % 2 else dry
                gain = np.float32(feedback ** tap)
                part_out[:, tap * delay:] += source[:, :n - tap * delay] * gain
        rms = _active_rms(part_out, sr)
        level_db = float(rng.uniform(-6, 0))
        if rms > 0:
            part_out *= np.float32(10 ** (level_db / 20) / rms)
        out += part_out
        part_info.append({"part": part, "pan": _r(pan), "level_db": _r(level_db), "notes": played,
                          "sections": [bool(x) for x in on_sections]})
    rt60 = float(rng.uniform(0.5, 1.8))
    wet_db = float(rng.uniform(-15, -6))
    out = _add_room(out, sr, rng, rt60, wet_db)
    return out, {"parts": part_info, "room_rt60": _r(rt60), "room_wet_db": _r(wet_db)}


def _lead_line(song: dict, rng: np.random.Generator, sr: int, n: int) -> tuple:
    """A melodic instrument in the singer's register, answering the voice in its rests.

    A pitched, vibrato-laden line where the vocals are: the part of a real arrangement that
    most resembles a voice. Returns (mono (T,) float32, number of notes).
    """
    lo = int(rng.integers(55, 66))
    scale = _scale_notes(song, lo, lo + 17)
    harm_cap = int(rng.integers(10, 40))
    odd_only = rng.random() < 0.4
    vib_rate, vib_depth = rng.uniform(4.5, 6.5), rng.uniform(0.002, 0.012)
    beat = song["beat"]
    mono = np.zeros(n, dtype=np.float32)
    pitch_index = len(scale) // 2
    played = 0
    for b in range(song["n_bars"]):
        t_bar = b * song["bar"]
        if t_bar >= n / sr:
            break
        sings = _section_at(song, t_bar)["vocals"]
        if rng.random() > (0.3 if sings else 0.75):
            continue
        pos = float(rng.choice([0.0, 0.5, 1.0, 2.0]))
        while pos < song["beats_per_bar"]:
            dur = float(rng.choice([0.5, 1.0, 1.5, 2.0], p=[0.4, 0.3, 0.15, 0.15]))
            pitch_index = int(np.clip(pitch_index + rng.integers(-2, 3), 0, len(scale) - 1))
            freq = float(_midi_hz(scale[pitch_index]))
            length = dur * beat * 0.9
            count = int((length + 0.05) * sr)
            t = np.arange(count, dtype=np.float32) * np.float32(1.0 / sr)
            ramp = np.clip((t - np.float32(0.15)) * np.float32(4), 0, 1)
            wobble = 1 + vib_depth * ramp * _sin(_phase(vib_rate, count, sr))
            harm = np.arange(1, _harmonics_below(freq * 1.02, sr, harm_cap) + 1)
            amps = np.where(harm % 2 == 1, 1.0, 0.15 if odd_only else 1.0) / harm
            x = _lookup(_table(amps), _phase_track(freq * wobble, sr))
            vel = np.float32(np.clip(rng.normal(0.75, 0.1), 0.4, 1.0))
            _place(mono, x * _env(count, sr, 0.02, np.inf, length, 0.05) * vel,
                   int(round((t_bar + pos * beat) * sr)))
            played += 1
            pos += dur
    return mono, played
