"""The built-in renderer of the synthetic corpus: songs made from oscillators and noise.

Needs only numpy and scipy. One call of :func:`render` makes one song from one seed:

* a plan shared by all parts: tempo, metre, key (major or natural minor), a looping chord
  progression, and sections (intro / verse / chorus / break) that switch parts on and off;
* ``vocals``: a sung melody in the scale, on the chords' tones at strong beats, crossing the
  register of the accompaniment. A glottal pulse (Rosenberg shape, band-limited wavetable) with
  portamento, delayed vibrato and drift is shaped, frame by frame in the STFT domain, by the
  formants of the syllable's vowel (Peterson & Barney averages, scaled per singer), with
  diphthongs and nasal onsets; consonants are noise bursts (plosives), fricatives (s, sh, f, h)
  and closures, plus aspiration and breaths before phrases. Phrases end in rests, whole bars or
  sections rest, and the first 0.45 s of every song are free of any vocal sound;
* ``drums``: kick, snare (or clap), closed/open hi-hat, toms and crash synthesised per song in a
  few variants, played from a groove (rock, four-on-the-floor, half-time, breakbeat, shuffle) with
  fills, ghost notes, open hats, timing and velocity humanisation and drop-out bars;
* ``bass``: a line on the chord roots (pulses, root-fifth, octaves, syncopation or a walking
  line) with one of four timbres;
* ``other``: one to three parts from a pad, an organ, an FM electric piano / plucked piano and an
  arpeggiated pluck with echo, voice-led across the chords; in some songs also a lead line with
  vibrato in the singer's register, answering the voice in its rests (the part most like a voice).

Every part is panned, gets its own feedback-delay-network room, and each stem is set to a random
level; the song is then scaled to a random mixture peak. All signals are made with array
operations: the only Python loops run over notes, events or STFT-sized blocks, never samples.

Shapes: stems are float32 ``(T, 2)`` (left, right), T = round(seconds * sample_rate); internally
mono signals are ``(T,)`` and stereo ones channel-first ``(2, T)``. Times are in seconds unless
a name says otherwise (``_beats``, ``count`` in samples).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import fft, signal

SOURCES = ("vocals", "drums", "bass", "other")
RENDERER_VERSION = 1

_TABLE_SIZE = 2048
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

# Average formant frequencies F1-F3 (Hz) of adult male speakers, Peterson & Barney (1952).
_VOWELS = {
    "i": (270, 2290, 3010), "I": (390, 1990, 2550), "E": (530, 1840, 2480),
    "ae": (660, 1720, 2410), "a": (730, 1090, 2440), "O": (570, 840, 2410),
    "U": (440, 1020, 2240), "u": (300, 870, 2240), "V": (640, 1190, 2390),
    "3": (490, 1350, 1690),
}
_VOWEL_NAMES = tuple(_VOWELS)
# Open vowels carry sung melodies more often than close ones.
_VOWEL_WEIGHTS = np.array([0.08, 0.08, 0.12, 0.1, 0.2, 0.12, 0.06, 0.08, 0.12, 0.04])
_NASALS = {"m": (280, 1000, 2200), "n": (280, 1500, 2500)}
_NOISE_KINDS = ("s", "sh", "f", "p", "t", "k", "breath")
# Centre (Hz, for the male scale) and log2 width (octaves) of each noise spectrum.
_NOISE_SHAPES = {"s": (6500, 0.45), "sh": (3000, 0.55), "f": (5000, 1.6), "p": (900, 1.2),
                 "t": (4500, 0.9), "k": (2000, 0.6), "breath": (1600, 1.5)}
_CONSONANTS = ("none", "p", "t", "k", "s", "sh", "f", "h", "m", "n")
_CONSONANT_WEIGHTS = np.array([0.25, 0.07, 0.1, 0.07, 0.1, 0.05, 0.05, 0.07, 0.12, 0.12])

# Earliest sung note (s): with the breath and consonant before it, the first 0.45 s of every
# song stay free of any vocal sound.
_FIRST_ONSET = 0.95
_GROOVES = ("rock", "four_on_floor", "half_time", "breakbeat", "shuffle")


def check_dependencies() -> None:
    """Nothing to check: numpy and scipy are installed with wavesep itself."""


def render(name: str, split: str, seed: int, seconds: float, sample_rate: int) -> tuple:
    """Render one song.

    Args:
        name: track name, only recorded in ``info``.
        split: "train", "valid" or "test"; recorded in ``info`` (this renderer draws all splits
            from the same distributions; the per-track seed already differs per split).
        seed: non-negative int; the same seed gives bit-identical stems.
        seconds: song length (> 0).
        sample_rate: Hz (44100 for MUSDB-like corpora; 8000 or more).

    Returns:
        ``(stems, info)``: stems maps "vocals", "drums", "bass", "other" to float32 arrays of
        shape (T, 2), T = round(seconds * sample_rate), at their final level (the mixture peak is
        between -10 and -1.5 dBFS); info is a JSON-serialisable description of the song.
    """
    rng = np.random.default_rng(seed)
    sr = int(sample_rate)
    n = int(round(seconds * sr))
    song = _plan_song(rng, seconds)
    parts_rng = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)]
    # Each stem has its own generator so that changing one part's code leaves the others' audio
    # (and the shared plan) unchanged.
    vocals, vocal_info = _render_vocals(song, parts_rng[0], sr, n)
    drums, drum_info = _render_drums(song, parts_rng[1], sr, n)
    bass, bass_info = _render_bass(song, parts_rng[2], sr, n)
    other, other_info = _render_other(song, parts_rng[3], sr, n)
    stems = {"vocals": vocals, "drums": drums, "bass": bass, "other": other}

    levels_db = {
        "vocals": -21.0 + rng.uniform(-3, 3),
        "drums": -20.0 + rng.uniform(-4, 3),
        "bass": -22.0 + rng.uniform(-4, 3),
        "other": -18.0 + rng.uniform(-4, 3),
    }
    for key in SOURCES:
        rms = _active_rms(stems[key], sr)
        if rms > 0:
            stems[key] = stems[key] * np.float32(10 ** (levels_db[key] / 20) / rms)
    mixture = stems["vocals"] + stems["drums"] + stems["bass"] + stems["other"]
    peak = float(np.max(np.abs(mixture))) if n else 0.0
    peak_db = rng.uniform(-10.0, -1.5)
    master = 10 ** (peak_db / 20) / peak if peak > 0 else 1.0
    for key in SOURCES:
        stems[key] = np.ascontiguousarray((stems[key] * np.float32(master)).T, dtype=np.float32)

    info = {
        "renderer": "oscillator",
        "renderer_version": RENDERER_VERSION,
        "name": name,
        "split": split,
        "seed": int(seed),
        "seconds": float(seconds),
        "sample_rate": sr,
        "tempo_bpm": _r(song["bpm"]),
        "beats_per_bar": song["beats_per_bar"],
        "swing": _r(song["swing"]),
        "key": _NOTE_NAMES[song["key"]],
        "mode": song["mode"],
        "progression": [_roman(d, song["mode"]) for d in song["progression"]],
        "chords": [[_r(c["start"]), _r(c["end"]), c["name"]] for c in song["chords"]
                   if c["start"] < seconds],
        "sections": [{k: (_r(v) if isinstance(v, float) else v) for k, v in s.items()}
                     for s in song["sections"] if s["start"] < seconds],
        "levels_db": {k: _r(v) for k, v in levels_db.items()},
        "mixture_peak_db": _r(peak_db),
        "vocals": vocal_info,
        "drums": drum_info,
        "bass": bass_info,
        "other": other_info,
    }
    return stems, info


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


# ------------------------------------------------------------------------------- primitives
# Internal stereo signals are channel-first float32 (2, T) so that each channel is contiguous;
# render() transposes the finished stems to (T, 2).


def _r(x: float, digits: int = 4) -> float:
    return round(float(x), digits)


def _midi_hz(m):
    return 440.0 * 2.0 ** ((np.asarray(m, dtype=np.float64) - 69.0) / 12.0)


class _Table(NamedTuple):
    """One cycle of a waveform, _TABLE_SIZE samples, with the slope to each next sample."""

    values: np.ndarray
    slopes: np.ndarray


def _table(amps, phases=None) -> _Table:
    """Wavetable of sum_k amps[k-1] * sin(2 pi k x + phases[k-1]), x in [0, 1)."""
    amps = np.asarray(amps, dtype=np.float64)
    k = amps.size
    if phases is None:
        phases = np.zeros(k)
    spec = np.zeros(_TABLE_SIZE // 2 + 1, dtype=np.complex128)
    # irfft of c_k gives sum Re(c_k e^{i 2 pi k x}) * 2/N, so -1j * e^{i phase} makes a sine.
    spec[1:k + 1] = amps * np.exp(1j * np.asarray(phases)) * (-1j) * (_TABLE_SIZE / 2)
    return _table_from_cycle(np.fft.irfft(spec, _TABLE_SIZE))


def _table_from_cycle(cycle: np.ndarray) -> _Table:
    wrapped = np.append(cycle, cycle[0])
    return _Table(cycle.astype(np.float32), np.diff(wrapped).astype(np.float32))


def _harmonics_below(f_max: float, sr: int, cap: int = 80) -> int:
    return int(max(1, min(cap, 0.45 * sr / max(f_max, 1.0))))


# Oscillator phases are uint32 fractions of a cycle: integer wrap-around keeps them exact over
# any song length, the top bits index the wavetable and the rest interpolate.
_FRAC_BITS = 32 - int(math.log2(_TABLE_SIZE))
_FRAC_MASK = np.uint32((1 << _FRAC_BITS) - 1)
_FRAC_SCALE = np.float32(2.0 ** -_FRAC_BITS)
_RADIANS_PER_UNIT = np.float32(2 * np.pi / 2.0 ** 32)


def _increment(freq: float, sr: int) -> np.uint32:
    return np.uint32(int(round(freq / sr * 2.0 ** 32)) % (1 << 32))


def _phase(freq: float, count: int, sr: int, start: float = 0.0) -> np.ndarray:
    """uint32 phase (count,) of a constant frequency, starting at `start` cycles."""
    return (np.arange(count, dtype=np.uint32) * _increment(freq, sr)
            + np.uint32(int(start * 2.0 ** 32) % (1 << 32)))


def _phase_track(freq: np.ndarray, sr: int) -> np.ndarray:
    """uint32 phase (n,) of a time-varying frequency (n,) in Hz (below sr/2)."""
    increments = np.round(np.asarray(freq, dtype=np.float64) * (2.0 ** 32 / sr))
    return np.cumsum(increments.astype(np.uint32), dtype=np.uint32)


def _lookup(table: _Table, phase: np.ndarray) -> np.ndarray:
    """Linear-interpolated wavetable read at uint32 `phase` -> float32."""
    i = (phase >> np.uint32(_FRAC_BITS)).astype(np.intp)
    frac = (phase & _FRAC_MASK).astype(np.float32) * _FRAC_SCALE
    return table.values[i] + frac * table.slopes[i]


def _sin(phase: np.ndarray) -> np.ndarray:
    """sin of a uint32 phase -> float32."""
    return np.sin(phase.astype(np.float32) * _RADIANS_PER_UNIT)


def _sin_cycles(phase_cycles: np.ndarray) -> np.ndarray:
    """sin(2 pi phase) of a float phase in cycles, wrapped in float64 before the float32 sine."""
    wrapped = (phase_cycles - np.floor(phase_cycles)).astype(np.float32)
    return np.sin(np.float32(2 * np.pi) * wrapped)


def _butter(kind: str, cutoff, sr: int, order: int = 2) -> np.ndarray:
    nyq = sr / 2
    if np.ndim(cutoff):
        wn = [min(max(c / nyq, 1e-4), 0.95) for c in cutoff]
    else:
        wn = min(max(cutoff / nyq, 1e-4), 0.95)
    return signal.butter(order, wn, btype=kind, output="sos")


def _place(out: np.ndarray, buf: np.ndarray, start: int) -> None:
    """Add `buf` into `out` from sample `start` on, cropped to out's bounds (last axis is time)."""
    n = out.shape[-1]
    length = buf.shape[-1]
    if start >= n or start + length <= 0:
        return
    b0 = max(0, -start)
    b1 = min(length, n - start)
    out[..., start + b0:start + b1] += buf[..., b0:b1]


def _pan(mono: np.ndarray, pan: float) -> np.ndarray:
    """Constant-power pan, pan in [-1, 1] (left .. right): (T,) -> (2, T)."""
    angle = (pan + 1) * np.pi / 4
    gains = np.array([math.cos(angle), math.sin(angle)], dtype=np.float32)
    return gains[:, None] * mono[None, :]


def _balance(x: np.ndarray, pan: float) -> np.ndarray:
    """Move a stereo (2, T) signal towards `pan` in [-1, 1], constant power."""
    angle = (pan + 1) * np.pi / 4
    gains = np.array([math.cos(angle), math.sin(angle)], dtype=np.float32) * np.float32(2 ** 0.5)
    return x * gains[:, None]


def _env(count: int, sr: int, attack: float, decay_tau: float, length: float,
         release: float) -> np.ndarray:
    """Note envelope: linear attack, exponential decay, held for `length` s, linear release.

    decay_tau = inf gives a sustained note. Returns float32 (count,).
    """
    t = np.arange(count, dtype=np.float32) * np.float32(1.0 / sr)
    env = np.minimum(t * np.float32(1.0 / max(attack, 1e-4)), np.float32(1))
    if np.isfinite(decay_tau):
        env *= np.exp(t * np.float32(-1.0 / decay_tau))
    env *= np.clip((np.float32(length + release) - t) * np.float32(1.0 / max(release, 1e-4)),
                   0, 1)
    return env


def _active_rms(x: np.ndarray, sr: int) -> float:
    """RMS over the 50 ms blocks within 40 dB of the loudest block; x is (T,) or (2, T)."""
    power = np.square(x, dtype=np.float32)
    if power.ndim == 2:
        power = power.mean(axis=0)
    block = max(1, int(0.05 * sr))
    n = power.shape[0] // block * block
    if n == 0:
        return float(np.sqrt(power.mean())) if power.size else 0.0
    power = power[:n].reshape(n // block, block).mean(axis=1, dtype=np.float64)
    top = power.max()
    if top <= 0:
        return 0.0
    return float(np.sqrt(power[power > top * 1e-4].mean()))


def _fdn_reverb(x: np.ndarray, sr: int, rt60: float, rng: np.random.Generator,
                predelay: float = 0.01, damping: float = 0.15) -> np.ndarray:
    """Stereo room of a mono signal: an 8-line feedback delay network, processed in blocks.

    Every delay is longer than the block, so each block only reads outputs of earlier blocks and
    the recursion runs block by block over vectors instead of sample by sample. A 3-tap smoothing
    filter in the loop makes high frequencies die away faster than low ones.
    (T,) -> (2, T) float32, about the input's energy.
    """
    if sr >= 32000:
        # The room's tail is dark anyway: run the network at half rate (pairs averaged on the
        # way in, linear interpolation on the way out) for half the cost.
        half = _fdn_reverb(0.5 * (x[0::2] + x[1::2]) if x.size % 2 == 0 else
                           0.5 * (x[0:-1:2] + x[1::2]), sr // 2, rt60, rng, predelay, damping)
        half = np.concatenate([half, half[:, -1:]], axis=1)
        out = np.empty((2, 2 * (half.shape[1] - 1)), dtype=np.float32)
        out[:, 0::2] = half[:, :-1]
        out[:, 1::2] = 0.5 * (half[:, :-1] + half[:, 1:])
        return np.pad(out, ((0, 0), (0, x.shape[0] - out.shape[1])))[:, :x.shape[0]]
    n = x.shape[0]
    lines = 8
    # Delays of 50-110 ms (mutually prime at 44.1 kHz): long enough for big blocks.
    base = np.array([2203, 2591, 2953, 3343, 3697, 4091, 4441, 4801], dtype=np.float64)
    delays = np.round(base * (sr / 44100.0) * rng.uniform(0.9, 1.2)).astype(np.int64)
    delays = np.maximum(delays, 16 + np.arange(lines))
    block = int(delays.min()) - 2
    gains = 10.0 ** (-3.0 * delays / (rt60 * sr))
    line_gains = gains.astype(np.float32)[:, None]  # (lines, 1)
    hist = int(delays.max()) + 2
    y = np.zeros((lines, hist + n), dtype=np.float32)  # line outputs after `hist` zeros
    inject = (rng.choice([-1.0, 1.0], size=lines) / lines).astype(np.float32)[:, None]
    xin = np.zeros(n, dtype=np.float32)
    pre = int(predelay * sr)
    if pre < n:
        xin[pre:] = x[:n - pre]
    h0, h1 = np.float32(damping), np.float32(1 - 2 * damping)
    taps = np.empty((lines, block + 2), dtype=np.float32)
    for start in range(0, n, block):
        width = min(n, start + block) - start
        for j in range(lines):
            a = hist + start - int(delays[j]) - 1
            taps[j, :width + 2] = y[j, a:a + width + 2]
        # Householder feedback (I - 2/N 11^T) diag(gains): a sum instead of a matrix product.
        u = line_gains * (h1 * taps[:, 1:width + 1] + h0 * (taps[:, :width] + taps[:, 2:width + 2]))
        u += inject * xin[start:start + width] - np.float32(2.0 / lines) * u.sum(axis=0)
        y[:, hist + start:hist + start + width] = u
    mix = rng.standard_normal((2, lines)).astype(np.float32) / np.float32(math.sqrt(lines))
    return mix @ y[:, hist:]


def _add_room(dry: np.ndarray, sr: int, rng: np.random.Generator, rt60: float,
              wet_db: float) -> np.ndarray:
    """dry (2, T) plus its room, the wet signal `wet_db` relative to the dry RMS."""
    if dry.shape[-1] == 0:
        return dry
    mono = dry.mean(axis=0)
    wet = _fdn_reverb(mono, sr, rt60, rng, predelay=float(rng.uniform(0.005, 0.03)))
    dry_rms = math.sqrt(float(np.mean(np.square(mono), dtype=np.float64))) + 1e-12
    wet_rms = math.sqrt(float(np.mean(np.square(wet), dtype=np.float64))) + 1e-12
    return dry + wet * np.float32(10 ** (wet_db / 20) * dry_rms / wet_rms)


# ------------------------------------------------------------------------------- vocals


class _Frames:
    """The STFT grid of the vocal synthesis: frames of ~23 ms, hop of half a frame.

    Analysis and synthesis both use the square root of a periodic Hann window, whose products
    overlap-add to exactly one at this hop. The frame centres are also the control grid on which
    pitch, loudness and formants are planned.
    """

    def __init__(self, sr: int, n: int):
        self.n_fft = int(2 ** round(math.log2(0.0232 * sr)))
        self.hop = self.n_fft // 2
        self.sr = sr
        self.n = n
        # The signal is padded by one frame on the left; frame f covers original samples
        # [f*hop - n_fft, f*hop), so its centre is f*hop - n_fft/2.
        self.padded = (math.ceil((n + 2 * self.n_fft) / self.hop) + 1) * self.hop
        self.count = (self.padded - self.n_fft) // self.hop + 1
        self.times = (np.arange(self.count) * self.hop - self.n_fft / 2) / sr
        self.window = np.sqrt(signal.get_window("hann", self.n_fft)).astype(np.float32)
        self.freqs = np.fft.rfftfreq(self.n_fft, 1.0 / sr)

    def span(self, t0: float, t1: float) -> slice:
        i0 = int(math.floor((t0 * self.sr + self.n_fft / 2) / self.hop))
        i1 = int(math.ceil((t1 * self.sr + self.n_fft / 2) / self.hop)) + 1
        return slice(min(max(i0, 0), self.count), min(max(i1, 0), self.count))

    def to_audio(self, values: np.ndarray) -> np.ndarray:
        """Frame-rate values (count,) -> audio rate (n,), linear interpolation, float32."""
        v = np.asarray(values, dtype=np.float32)
        ramp = np.arange(self.hop, dtype=np.float32) * np.float32(1.0 / self.hop)
        # Frame centres lie on a uniform grid, so each hop between two centres is one row.
        rows = v[:-1, None] + (v[1:] - v[:-1])[:, None] * ramp[None, :]  # (count-1, hop)
        first = self.n_fft // 2  # sample 0 lies n_fft/2 after the centre of frame 0
        return rows.reshape(-1)[first:first + self.n]

    def stft(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """(n,) -> complex64 (len(rows), n_fft/2 + 1): the spectra of the frames `rows` only."""
        padded = np.zeros(self.padded, dtype=np.float32)
        padded[self.n_fft:self.n_fft + self.n] = x
        frames = np.lib.stride_tricks.sliding_window_view(padded, self.n_fft)[::self.hop]
        return fft.rfft(frames[rows] * self.window, axis=1)

    def istft(self, spec: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Spectra of the frames `rows` -> (n,) by windowed overlap-add; other frames count as 0."""
        frames = fft.irfft(spec, self.n_fft, axis=1).astype(np.float32) * self.window
        blocks = np.zeros((self.padded // self.hop + 2, self.hop), dtype=np.float32)
        parts = frames.reshape(len(rows), 2, self.hop)  # (frames, half, hop)
        for q in range(2):
            blocks[rows + q] += parts[:, q]  # rows are distinct, so no update is lost
        return blocks.reshape(-1)[self.n_fft:self.n_fft + self.n]


def _window(t: np.ndarray, t0: float, t1: float, up: float, down: float) -> np.ndarray:
    """0 outside [t0, t1], rising over `up` s after t0 and falling over `down` s before t1."""
    return np.clip(np.minimum((t - t0) / max(up, 1e-4), (t1 - t) / max(down, 1e-4)), 0.0, 1.0)


def _resonance(freqs: np.ndarray, formant: np.ndarray, bandwidth: np.ndarray) -> np.ndarray:
    """|H(f)| of a two-pole resonator with unit gain at DC (the cascade formant model).

    freqs (bins,), formant and bandwidth (frames, 1) in Hz -> (frames, bins).
    """
    p = formant ** 2 + (bandwidth / 2) ** 2
    q = freqs[None, :] ** 2
    return p / np.sqrt((p - q) ** 2 + bandwidth ** 2 * q)


def _plan_melody(song: dict, rng: np.random.Generator, lo: int, hi: int) -> tuple:
    """Notes and phrases of the vocal line.

    Returns (notes, phrases): notes are dicts with start, dur (s), midi, syllable (None for a
    melisma continuing the previous vowel), phrases are (start, end) in seconds.
    """
    beat, bpb = song["beat"], song["beats_per_bar"]
    seconds = song["seconds"]
    scale = _scale_notes(song, lo, hi)
    durations = np.array([0.5, 1.0, 1.5, 2.0, 0.25, 0.75, 3.0])
    weights = np.array([0.3, 0.3, 0.12, 0.12, 0.04, 0.08, 0.04])
    notes, phrases = [], []
    pitch_index = int(np.searchsorted(scale, (lo + hi) / 2))
    bar_index = 0
    while bar_index < song["n_bars"]:
        t_bar = bar_index * song["bar"]
        section = _section_at(song, t_bar)
        length = 2 if (rng.random() < 0.5 and bar_index + 1 < song["n_bars"]) else 1
        if not section["vocals"] or rng.random() < 0.12:
            bar_index += 1
            continue
        pickup = float(rng.choice([0.0, 0.5, 1.0], p=[0.5, 0.3, 0.2]))
        rest = float(rng.choice([1.0, 1.5, 2.0], p=[0.5, 0.25, 0.25]))
        start_beats = pickup
        # Every track begins with silent vocals, as most songs do.
        while t_bar + start_beats * beat < _FIRST_ONSET:
            start_beats += 0.5
        end_beats = length * bpb - rest
        if end_beats - start_beats < 1.0 or t_bar + start_beats * beat >= seconds:
            bar_index += length
            continue
        phrase_notes = []
        pos = start_beats
        while pos < end_beats - 1e-6:
            d = float(rng.choice(durations, p=weights / weights.sum()))
            remaining = end_beats - pos
            if d > remaining or remaining - d < 0.5:
                d = remaining
            t = t_bar + pos * beat
            # Random walk on the scale, pulled to a chord tone on strong beats.
            step = int(rng.choice([-3, -2, -1, 0, 1, 2, 3, 4, -4],
                                  p=[0.05, 0.15, 0.25, 0.1, 0.25, 0.1, 0.05, 0.025, 0.025]))
            pitch_index = int(np.clip(pitch_index + step, 0, len(scale) - 1))
            if abs(pos - round(pos)) < 1e-6 and round(pos) % 2 == 0:
                pcs = _chord_at(song, t + 1e-6)["pcs"]
                tones = [i for i, m in enumerate(scale) if m % 12 in pcs]
                pitch_index = min(tones, key=lambda i: abs(i - pitch_index))
            if pitch_index in (0, len(scale) - 1):
                pitch_index += 2 if pitch_index == 0 else -2
                pitch_index = int(np.clip(pitch_index, 0, len(scale) - 1))
            melisma = bool(phrase_notes) and rng.random() < 0.12
            syllable = None
            if not melisma:
                vowel = str(rng.choice(_VOWEL_NAMES, p=_VOWEL_WEIGHTS / _VOWEL_WEIGHTS.sum()))
                consonant = str(rng.choice(_CONSONANTS,
                                           p=_CONSONANT_WEIGHTS / _CONSONANT_WEIGHTS.sum()))
                glide = str(rng.choice(["i", "u"])) if rng.random() < 0.12 else None
                syllable = {"vowel": vowel, "consonant": consonant, "glide": glide}
            phrase_notes.append({"start": t, "dur": d * beat, "midi": int(scale[pitch_index]),
                                 "syllable": syllable})
            pos += d
        # A short rest inside a long phrase now and then (a sung staccato).
        for note in phrase_notes[:-1]:
            if note["dur"] > 0.3 and rng.random() < 0.08:
                note["dur"] *= 0.6
        notes.extend(phrase_notes)
        phrases.append((phrase_notes[0]["start"],
                        phrase_notes[-1]["start"] + phrase_notes[-1]["dur"]))
        bar_index += length
    return notes, phrases


def _render_vocals(song: dict, rng: np.random.Generator, sr: int, n: int) -> tuple:
    """Sung melody: stereo (2, T) float32 (vowels at about unit RMS) and its info."""
    high = rng.random() < 0.5
    lo, hi = (55, 77) if high else (45, 67)
    shift = int(rng.integers(-3, 4))
    lo, hi = lo + shift, hi + shift
    formant_scale = (1.17 if high else 1.0) * rng.uniform(0.94, 1.06)
    notes, phrases = _plan_melody(song, rng, lo, hi)
    info = {"voice": "high" if high else "low", "range_midi": [lo, hi],
            "formant_scale": _r(formant_scale)}
    if not notes or n == 0:
        info.update(notes=[], vibrato_hz=0.0)
        return np.zeros((2, n), dtype=np.float32), info

    g = _Frames(sr, n)
    t = g.times
    frame_dt = g.hop / sr
    starts = np.array([x["start"] for x in notes])
    ends = starts + np.array([x["dur"] for x in notes])
    midis = np.array([x["midi"] for x in notes], dtype=np.float64)

    # --- pitch: portamento (two one-pole smoothers), delayed vibrato, slow drift, jitter
    current = np.clip(np.searchsorted(ends, t, side="right"), 0, len(notes) - 1)
    step = midis[current]
    tau = rng.uniform(0.02, 0.05)
    alpha = math.exp(-frame_dt / tau)
    smooth = step - step[0]
    for _ in range(2):
        smooth = signal.lfilter([1 - alpha], [1, -alpha], smooth)
    pitch = smooth + step[0]
    vib_rate = rng.uniform(4.8, 6.5)
    vib_depth = rng.uniform(0.15, 0.7)  # semitones
    vib_delay = rng.uniform(0.12, 0.3)
    onset = starts[np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(notes) - 1)]
    vib_ramp = np.clip((t - onset - vib_delay) / 0.25, 0, 1)
    wander = np.convolve(rng.standard_normal(g.count), np.hanning(64) / 32, mode="same")
    vib_phase = 2 * np.pi * np.cumsum(vib_rate * (1 + 0.05 * wander)) * frame_dt
    drift = np.convolve(rng.standard_normal(g.count), np.hanning(96) / 48, mode="same") * 0.12
    pitch = pitch + vib_depth * vib_ramp * np.sin(vib_phase) + drift
    pitch += 0.03 * rng.standard_normal(g.count)
    f0 = _midi_hz(pitch)

    # --- voicing amplitude, consonant noise and formant targets, all on the frame grid
    attack = rng.uniform(0.03, 0.07)
    release = rng.uniform(0.06, 0.14)
    amp = np.zeros(g.count)
    for p0, p1 in phrases:
        sl = g.span(p0 - attack, p1 + release)
        amp[sl] = np.maximum(amp[sl], _window(t[sl], p0 - attack / 2, p1 + release / 2,
                                              attack, release))
    noise_w = np.zeros((g.count, len(_NOISE_KINDS)))  # frame weights per noise kind
    noise_env = np.zeros(n, dtype=np.float32)  # audio-rate amplitude of the noise source

    def add_noise(kind: str, t0: float, t1: float, gain: float, up: float, down: float) -> None:
        sl = g.span(t0, t1)
        noise_w[sl, _NOISE_KINDS.index(kind)] += gain * _window(t[sl], t0, t1, up, down)
        i0, i1 = max(0, int(t0 * sr)), min(n, int(math.ceil(t1 * sr)) + 1)
        if i1 > i0:
            ta = np.arange(i0, i1) / sr
            noise_env[i0:i1] += (gain * _window(ta, t0, t1, up, down)).astype(np.float32)

    aspiration = np.zeros(g.count)
    breathiness = rng.uniform(0.02, 0.07)
    # (frame start time, F1, F2, F3) segments; formants are smoothed afterwards.
    segments = []
    syllable_log = []
    for i, note in enumerate(notes):
        s0 = note["start"]
        syl = note["syllable"]
        if syl is None:
            syllable_log.append([_r(s0), _r(note["dur"]), int(note["midi"]), "-"])
            continue
        vowel = _VOWELS[syl["vowel"]]
        cons = syl["consonant"]
        c_dur = 0.0
        if cons in ("p", "t", "k"):
            closure, burst = rng.uniform(0.03, 0.06), rng.uniform(0.015, 0.035)
            c_dur = closure + burst
            sl = g.span(s0 - c_dur - 0.02, s0 + 0.02)
            amp[sl] *= 1 - _window(t[sl], s0 - c_dur - 0.01, s0, 0.01, 0.012)
            add_noise(cons, s0 - burst, s0 - burst + 0.012, rng.uniform(0.6, 1.2), 0.001, 0.008)
            a_sl = g.span(s0 - burst, s0)
            aspiration[a_sl] += rng.uniform(0.1, 0.25) * _window(t[a_sl], s0 - burst, s0,
                                                                  0.005, 0.01)
        elif cons in ("s", "sh", "f"):
            c_dur = rng.uniform(0.06, 0.12)
            sl = g.span(s0 - c_dur - 0.02, s0 + 0.02)
            amp[sl] *= 1 - _window(t[sl], s0 - c_dur, s0, 0.015, 0.012)
            gain = rng.uniform(0.2, 0.45) * (0.5 if cons == "f" else 1.0)
            add_noise(cons, s0 - c_dur, s0 + 0.01, gain, 0.02, 0.02)
        elif cons == "h":
            c_dur = rng.uniform(0.05, 0.09)
            sl = g.span(s0 - c_dur - 0.02, s0 + 0.02)
            amp[sl] *= 1 - _window(t[sl], s0 - c_dur, s0, 0.015, 0.012)
            aspiration[sl] += rng.uniform(0.2, 0.4) * _window(t[sl], s0 - c_dur, s0 + 0.01,
                                                              0.015, 0.015)
        elif cons in ("m", "n"):
            c_dur = rng.uniform(0.05, 0.09)
            sl = g.span(s0 - c_dur - 0.02, s0 + 0.02)
            amp[sl] *= 1 - 0.6 * _window(t[sl], s0 - c_dur, s0, 0.01, 0.01)
            amp[sl] = np.maximum(amp[sl], 0.35 * _window(t[sl], s0 - c_dur, s0 + 0.01,
                                                          0.02, 0.01))
            segments.append((s0 - c_dur, *_NASALS[cons]))
        elif i > 0 and notes[i - 1]["start"] + notes[i - 1]["dur"] > s0 - 0.02:
            # A new vowel without consonant still has a small dip where the syllables meet.
            sl = g.span(s0 - 0.03, s0 + 0.03)
            amp[sl] *= 1 - 0.3 * _window(t[sl], s0 - 0.025, s0 + 0.025, 0.02, 0.02)
        segments.append((s0, *vowel))
        if syl["glide"] is not None and note["dur"] > 0.25:
            segments.append((s0 + 0.55 * note["dur"], *_VOWELS[syl["glide"]]))
        syllable_log.append([_r(s0), _r(note["dur"]), int(note["midi"]),
                             (cons if cons != "none" else "") + syl["vowel"]
                             + (syl["glide"] or "")])

    # A breath before most phrases, inside the rest that precedes them.
    for p0, _ in phrases:
        if rng.random() < 0.7 and p0 > 0.75:
            length = rng.uniform(0.2, 0.35)
            b1 = p0 - rng.uniform(0.08, 0.15)
            add_noise("breath", b1 - length, b1, rng.uniform(0.04, 0.1), 0.12, 0.06)

    # The shimmer of a real voice: a few percent of slow random loudness change.
    amp *= 1 + 0.04 * np.convolve(rng.standard_normal(g.count), np.hanning(16) / 8, "same")
    aspiration += breathiness * amp

    seg_t = np.array([s[0] for s in segments])
    seg_f = np.array([s[1:] for s in segments], dtype=np.float64)  # (segments, 3)
    which = np.clip(np.searchsorted(seg_t, t, side="right") - 1, 0, len(segments) - 1)
    formants = seg_f[which] * formant_scale  # (frames, 3)
    kernel = np.hanning(max(3, int(0.06 / frame_dt)) | 1)
    kernel /= kernel.sum()
    pad = kernel.size // 2
    formants = np.stack([np.convolve(np.pad(formants[:, j], pad, mode="edge"), kernel, "valid")
                         for j in range(3)], axis=1)
    # Singers raise F1 above a high f0 rather than let the pitch starve the first formant.
    formants[:, 0] = np.maximum(formants[:, 0], 1.1 * f0)
    bandwidths = np.array([70.0, 100.0, 150.0]) * rng.uniform(0.8, 1.3, size=3)

    # --- sources: band-limited glottal pulses at the sung pitch, and noise
    open_q, close_q = rng.uniform(0.35, 0.5), rng.uniform(0.12, 0.22)
    table = _glottal_table(open_q, close_q, _harmonics_below(float(f0.max()) * 1.03, sr, 200))
    glottal = _lookup(table, _phase_track(g.to_audio(f0), sr)) * g.to_audio(np.clip(amp, 0, None))
    noise_env += g.to_audio(aspiration)
    noise = rng.standard_normal(n, dtype=np.float32) * noise_env

    # --- the vocal tract: per-frame formant envelope applied in the STFT domain, only on the
    # frames that hear some voice (a frame reaches half a frame into its neighbours)
    near = np.ones(3)
    heard = (amp > 1e-4) | _noisy_frames(noise_w, aspiration)
    rows = np.flatnonzero(np.convolve(heard, near, "same") > 0)
    freqs = g.freqs.astype(np.float32)
    tract = (_resonance(freqs, np.float32([[3400 * formant_scale]]), np.float32([[250.0]]))
             * _resonance(freqs, np.float32([[4300 * formant_scale]]), np.float32([[300.0]])))
    tract = np.repeat(tract, rows.size, axis=0)  # (rows, bins)
    # High notes get wider formants: otherwise a harmonic landing on a narrow formant peak
    # makes single notes jump by 20 dB.
    widen = np.maximum(1.0, f0[rows, None] / 250.0).astype(np.float32)  # (rows, 1)
    for j in range(3):
        tract *= _resonance(freqs, formants[rows, j:j + 1].astype(np.float32),
                            np.float32(bandwidths[j]) * widen)
    voiced = g.istft(g.stft(glottal, rows) * tract, rows)
    level = _active_rms(voiced, sr)
    if level > 0:
        voiced *= np.float32(1 / level)
    # Noise spectra are unit mean square, so the noise gains are relative to the vowel's RMS.
    shapes = np.stack([_noise_shape(freqs, *_NOISE_SHAPES[k], formant_scale)
                       for k in _NOISE_KINDS]).astype(np.float32)  # (kinds, bins)
    tract /= np.sqrt(np.mean(np.square(tract), axis=1, keepdims=True)) + np.float32(1e-9)
    weights = noise_w[rows].astype(np.float32)
    asp = aspiration[rows, None].astype(np.float32)
    shape = (weights @ shapes + asp * tract) / (weights.sum(axis=1, keepdims=True) + asp
                                                + np.float32(1e-9))
    unvoiced = g.istft(g.stft(noise, rows) * shape, rows)
    mono = voiced + unvoiced

    pan = float(rng.uniform(-0.15, 0.15))
    rt60 = float(rng.uniform(0.4, 1.4))
    wet_db = float(rng.uniform(-18, -9))
    out = _add_room(_pan(mono, pan), sr, rng, rt60, wet_db)
    info.update(vibrato_hz=_r(vib_rate), vibrato_semitones=_r(vib_depth), pan=_r(pan),
                room_rt60=_r(rt60), room_wet_db=_r(wet_db),
                phrases=[[_r(a), _r(b)] for a, b in phrases],
                notes=syllable_log)
    return out, info


def _noisy_frames(noise_w: np.ndarray, aspiration: np.ndarray) -> np.ndarray:
    """Frames where any noise source (consonant, breath, aspiration) sounds."""
    return (noise_w.sum(axis=1) > 1e-6) | (aspiration > 1e-6)


def _glottal_table(open_q: float, close_q: float, harmonics: int) -> _Table:
    """Band-limited derivative of a Rosenberg glottal pulse (opening, closing quotients)."""
    x = np.arange(_TABLE_SIZE) / _TABLE_SIZE
    flow = np.where(x < open_q, 0.5 * (1 - np.cos(np.pi * x / open_q)),
                    np.where(x < open_q + close_q,
                             np.cos(np.pi * (x - open_q) / (2 * close_q)), 0.0))
    spectrum = np.fft.rfft(flow)
    k = np.arange(spectrum.size)
    # Differentiating (lip radiation) multiplies harmonic k by k; keep those below the limit.
    spectrum = spectrum * 1j * k
    spectrum[harmonics + 1:] = 0
    spectrum[0] = 0
    table = np.fft.irfft(spectrum, _TABLE_SIZE)
    table /= np.sqrt(np.mean(table ** 2)) + 1e-12
    return _table_from_cycle(table)


def _noise_shape(freqs: np.ndarray, centre: float, octaves: float, scale: float) -> np.ndarray:
    """Log-Gaussian band around `centre` * `scale` Hz, normalised to unit mean square."""
    f = np.maximum(freqs, 20.0)
    shape = np.exp(-0.5 * (np.log2(f / (centre * scale)) / octaves) ** 2)
    shape[freqs < 60] = 0
    return shape / (np.sqrt(np.mean(shape ** 2)) + 1e-12)


# ------------------------------------------------------------------------------- drums


def _drum_kit(rng: np.random.Generator, sr: int) -> dict:
    """A few variants of each drum sound for this song: name -> list of float32 (n,) buffers."""

    def t_axis(seconds):
        return np.arange(int(seconds * sr), dtype=np.float32) * np.float32(1.0 / sr)

    def noise(length):
        return rng.standard_normal(length, dtype=np.float32)

    def normalised(x):
        return (x / (np.max(np.abs(x)) + 1e-9)).astype(np.float32)

    kit = {}
    f_top, f_end = rng.uniform(110, 190), rng.uniform(42, 62)
    sweep_tau, decay = rng.uniform(0.02, 0.06), rng.uniform(0.12, 0.3)
    drive = rng.uniform(1.0, 3.0)
    kicks = []
    for _ in range(2):
        t = t_axis(min(0.7, 5 * decay)).astype(np.float64)
        f0 = f_top * rng.uniform(0.95, 1.05)
        # Closed-form phase of an exponential pitch sweep from f0 down to f_end.
        phase = f_end * t + (f0 - f_end) * sweep_tau * (1 - np.exp(-t / sweep_tau))
        body = _sin_cycles(phase) * np.exp(-t / decay).astype(np.float32)
        click = signal.sosfilt(_butter("low", 5000, sr), noise(t.size)) * np.exp(-t / 0.003)
        kicks.append(normalised(np.tanh(drive * (body + 0.25 * click.astype(np.float32)))))
    kit["kick"] = kicks

    clap = rng.random() < 0.3
    snares = []
    tone_f = rng.uniform(160, 240)
    snare_decay = rng.uniform(0.06, 0.16)
    for _ in range(3):
        t = t_axis(0.45)
        if clap:
            env = sum(np.where(t >= d, np.exp(-(t - d) / np.float32(0.006)), 0)
                      for d in (0.0, 0.011, 0.022))
            env = env + 0.6 * np.where(t >= 0.03, np.exp(-(t - 0.03) / np.float32(snare_decay)), 0)
            x = signal.sosfilt(_butter("band", (900, 3500), sr), noise(t.size)) * env
        else:
            t64 = t.astype(np.float64)
            tone = (_sin_cycles(tone_f * t64) * np.exp(-t / np.float32(0.05))
                    + 0.5 * _sin_cycles(1.8 * tone_f * t64) * np.exp(-t / np.float32(0.035)))
            rattle = signal.sosfilt(_butter("band", (1200, 9000), sr), noise(t.size))
            x = rng.uniform(0.3, 0.7) * tone + 1.5 * rattle * np.exp(-t / np.float32(snare_decay))
        snares.append(normalised(x))
    kit["snare"] = snares

    # Cymbals: noise plus the six detuned square waves of the classic analogue hi-hat.
    metal_f = np.array([205.3, 304.4, 369.6, 522.7, 540.0, 800.0]) * rng.uniform(1.5, 2.5)
    hp = _butter("high", min(7000.0, 0.4 * sr), sr, order=4)

    def cymbal(seconds, tau):
        t = t_axis(seconds)
        t64 = t.astype(np.float64)
        metal = sum(np.sign(_sin_cycles(f * t64 + rng.random())) for f in metal_f)
        x = signal.sosfilt(hp, 0.6 * noise(t.size) + 0.15 * metal) * np.exp(-t / np.float32(tau))
        return normalised(x)

    closed_tau = rng.uniform(0.012, 0.04)
    kit["hat"] = [cymbal(0.15, closed_tau) for _ in range(3)]
    kit["open_hat"] = [cymbal(0.6, rng.uniform(0.12, 0.25))]
    kit["crash"] = [cymbal(2.0, rng.uniform(0.5, 0.9))]
    toms = []
    for f in sorted(rng.uniform(90, 260, size=3)):
        t = t_axis(0.5).astype(np.float64)
        phase = 0.8 * f * t + 0.2 * f * 0.04 * (1 - np.exp(-t / 0.04))
        toms.append(normalised(_sin_cycles(phase) * np.exp(-t / rng.uniform(0.12, 0.25))))
    kit["tom"] = toms
    return kit


def _groove(name: str, steps: int, rng: np.random.Generator) -> list:
    """One bar of (step, drum, velocity) on a 16th-note grid of `steps` steps."""
    hits = []
    if name == "four_on_floor":
        hits += [(s, "kick", 1.0) for s in range(0, steps, 4)]
        hits += [(s, "snare", 0.9) for s in range(4, steps, 8)]
        hits += [(s, "open_hat" if rng.random() < 0.6 else "hat", 0.7) for s in range(2, steps, 4)]
    elif name == "half_time":
        hits += [(0, "kick", 1.0), (steps // 2 + 2, "kick", 0.8)]
        hits += [(steps // 2, "snare", 1.0)]
        hits += [(s, "hat", 0.6 + 0.2 * (s % 4 == 0)) for s in range(0, steps, 2)]
    elif name == "breakbeat":
        hits += [(0, "kick", 1.0), (10, "kick", 0.85), (11, "kick", 0.6)]
        hits += [(4, "snare", 1.0), (12, "snare", 1.0)]
        hits += [(s, "hat", 0.5 + 0.3 * (s % 2 == 0)) for s in range(steps)]
    else:  # rock and shuffle share the pattern; shuffle swings the off-beat 8ths
        hits += [(0, "kick", 1.0), (steps // 2, "kick", 0.9)]
        hits += [(s, "snare", 1.0) for s in range(4, steps, 8)]
        hits += [(s, "hat", 0.55 + 0.25 * (s % 4 == 0)) for s in range(0, steps, 2)]
    return [h for h in hits if h[0] < steps]


def _render_drums(song: dict, rng: np.random.Generator, sr: int, n: int) -> tuple:
    """Drum kit playing the song's groove, (2, T) float32, and its info."""
    groove = str(rng.choice(_GROOVES, p=[0.35, 0.2, 0.15, 0.15, 0.15]))
    swing = song["swing"] if groove != "shuffle" else max(song["swing"], 0.25)
    kit = _drum_kit(rng, sr)
    steps = song["beats_per_bar"] * 4
    step_s = song["beat"] / 4
    pans = {"kick": 0.0, "snare": float(rng.uniform(-0.1, 0.1)),
            "hat": float(rng.uniform(-0.5, 0.5)), "crash": float(rng.uniform(-0.6, 0.6)),
            "tom0": 0.0, "tom1": 0.0, "tom2": 0.0}
    for k, p in enumerate(np.linspace(-0.5, 0.5, 3) * rng.choice([-1, 1])):
        pans[f"tom{k}"] = float(p)
    tracks = {name: np.zeros(n, dtype=np.float32) for name in pans}
    section_starts = {s["first_bar"] for s in song["sections"]}
    events = 0
    for b in range(song["n_bars"]):
        if not song["drum_bars"][b]:
            continue
        hits = _groove(groove, steps, rng)
        # Variation: extra kicks, ghost snares, an open hat, a fill before a section change.
        hits += [(s, "kick", 0.7) for s in range(1, steps) if rng.random() < 0.05]
        hits += [(s, "snare", 0.25) for s in range(1, steps, 2) if rng.random() < 0.08]
        if rng.random() < 0.3:
            hits.append((steps - 2, "open_hat", 0.7))
        before_change = (b + 1) in section_starts or b == song["n_bars"] - 1
        if before_change and rng.random() < 0.6:
            fill_from = steps - 4 * int(rng.integers(1, 3))
            hits = [h for h in hits if h[0] < fill_from or h[1] == "kick"]
            for s in range(fill_from, steps, int(rng.choice([1, 2]))):
                drum = str(rng.choice(["snare", "tom0", "tom1", "tom2"]))
                hits.append((s, drum, 0.6 + 0.4 * rng.random()))
        if b in section_starts and b > 0 and rng.random() < 0.7:
            hits.append((0, "crash", 0.9))
        t_bar = b * song["bar"]
        for s, drum, vel in hits:
            t = t_bar + s * step_s + rng.normal(0, 0.004)
            if s % 4 == 2:
                t += swing * 2 * step_s
            vel = float(np.clip(vel * rng.uniform(0.85, 1.1), 0.05, 1.2))
            if drum.startswith("tom"):
                buf = kit["tom"][int(drum[3])]
            else:
                variants = kit[drum]
                buf = variants[int(rng.integers(len(variants)))]
            target = "hat" if drum == "open_hat" else drum
            _place(tracks[target], buf * np.float32(vel), int(round(t * sr)))
            events += 1
    gains = {"kick": rng.uniform(0.8, 1.0), "snare": rng.uniform(0.6, 0.9),
             "hat": rng.uniform(0.2, 0.4), "crash": rng.uniform(0.15, 0.3)}
    out = np.zeros((2, n), dtype=np.float32)
    for name, track in tracks.items():
        out += _pan(track * np.float32(gains.get(name, 0.6)), pans[name])
    rt60 = float(rng.uniform(0.2, 0.7))
    wet_db = float(rng.uniform(-20, -10))
    out = _add_room(out, sr, rng, rt60, wet_db)
    info = {"groove": groove, "swing": _r(swing), "events": events, "room_rt60": _r(rt60),
            "bars_playing": [int(b) for b in np.flatnonzero(song["drum_bars"])]}
    return out, info


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
