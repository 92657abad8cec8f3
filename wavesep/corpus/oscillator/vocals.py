"""The ``vocals`` part of the oscillator renderer: a melody planned in the scale, sung by a glottal
pulse shaped frame by frame by vowel formants, with consonants, aspiration and breaths."""

from __future__ import annotations

import math

import numpy as np
from scipy import fft, signal

from wavesep.corpus.oscillator.dsp import (
    _active_rms,
    _add_room,
    _harmonics_below,
    _lookup,
    _midi_hz,
    _pan,
    _phase_track,
    _r,
    _Table,
    _table_from_cycle,
    _TABLE_SIZE,
)
from wavesep.corpus.oscillator.song import _chord_at, _scale_notes, _section_at


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
