"""Singing from speech: eSpeak NG speaks each syllable, the WORLD vocoder sings it.

Each syllable is spoken once (an espeak-ng process per syllable, cached), analysed with WORLD
(F0, spectral envelope, aperiodicity at 5 ms frames) and split into onset consonants, vowel
nucleus (the voiced frames) and coda. On the song's timeline the onset consonants come just
before the note so the vowel starts on the beat, the nucleus is stretched over the note,
and a new F0 contour replaces the spoken one: the score pitch with a glide from the
previous note, delayed vibrato and slow random drift. The spectral envelope is warped along
frequency (formant shift) per voice, so one eSpeak voice yields several singers.

Output: mono float32 ``(T,)`` at the requested sample rate, zeros outside the phrases.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly

from wavesep.corpus.singing.common import _phrases, load_pyworld
from wavesep.errors import DependencyError

INSTALL = "apt-get install -y espeak-ng && pip install pyworld"
FRAME_MS = 5.0

WORDS = {
    "en": ("love", "night", "heart", "day", "way", "home", "light", "sun", "rain", "sky", "go",
           "free", "mine", "time", "dream", "fly", "stay", "oh", "la", "my", "you", "know", "now",
           "song", "road", "blue", "fire", "star", "hold", "down", "so", "far", "run", "we"),
    "de": ("Liebe", "Nacht", "Herz", "Tag", "Weg", "Licht", "Sonne", "Himmel", "ich", "du", "so",
           "mein", "dein", "Zeit", "Traum", "bleib", "oh", "la", "wir", "Lied", "Stern", "hier"),
    "it": ("amore", "notte", "cuore", "sole", "cielo", "mio", "tu", "la", "va", "per", "sempre",
           "mare", "luna", "core", "vita", "canto", "bella", "oh", "ah", "fa", "no"),
    "es": ("amor", "noche", "sol", "cielo", "mi", "tu", "la", "vida", "mar", "luna", "canto",
           "oh", "ay", "no", "si", "ya", "flor"),
    "fr": ("amour", "nuit", "coeur", "jour", "ciel", "moi", "toi", "la", "vie", "mer", "lune",
           "chant", "oh", "non", "oui", "beau"),
    "la": ("a", "men", "glo", "ri", "a", "de", "o", "san", "ctus", "pa", "cem", "do", "mi",
           "ne", "ky", "ri", "e", "lu", "ja"),
    "nl": ("liefde", "nacht", "hart", "dag", "weg", "licht", "zon", "mijn", "jij", "la", "oh",
           "zee", "maan", "lied"),
}


def _speak(voice: str, text: str) -> tuple:
    """Speak ``text`` with eSpeak NG voice ``voice``: (float64 samples, sample rate).

    One process per syllable: libespeak-ng keeps state between calls in one process (the
    same text comes out a few samples longer or shorter), and the corpus must not depend on
    what was rendered before.
    """
    import soundfile as sf

    exe = shutil.which("espeak-ng")
    if exe is None:
        raise DependencyError(f"espeak-ng is not installed; install it with: {INSTALL}")
    with tempfile.TemporaryDirectory(prefix="wavesep_espeak_") as tmp:
        path = os.path.join(tmp, "s.wav")
        proc = subprocess.run([exe, "-v", voice, "-s", "130", "-w", path, "--", text],
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0 or not os.path.isfile(path):
            raise DependencyError(f"espeak-ng failed for voice {voice!r} "
                                  f"({proc.stderr.strip()[-200:]}); install it with: {INSTALL}")
        x, fs = sf.read(path, dtype="float64")
    return (x if x.ndim == 1 else x.mean(axis=1)), int(fs)


def check_available() -> None:
    """Raise DependencyError unless espeak-ng and pyworld can be used."""
    if shutil.which("espeak-ng") is None:
        raise DependencyError(f"espeak-ng is not installed; install it with: {INSTALL}")
    load_pyworld()


@functools.lru_cache(maxsize=4096)
def _analysed_syllable(voice: str, text: str, formant: float = 1.0) -> tuple:
    """WORLD analysis of one spoken syllable, its envelope warped by ``formant``:
    (f0, sp, ap, nucleus_start, nucleus_end, fs), or None when nothing voiced was spoken."""
    pw = load_pyworld()
    x, fs = _speak(voice, text)
    # trim leading/trailing silence so frame 0 is the start of the syllable
    env = np.abs(x) > 0.01 * (np.abs(x).max() if x.size else 1.0)
    if x.size < fs // 20 or not env.any():
        return None
    idx = np.nonzero(env)[0]
    x = np.ascontiguousarray(x[max(0, idx[0] - 40): idx[-1] + 40])
    f0, t = pw.dio(x, fs, f0_floor=60.0, f0_ceil=700.0, frame_period=FRAME_MS)
    f0 = pw.stonemask(x, f0, t, fs)
    sp = pw.cheaptrick(x, f0, t, fs)
    if formant != 1.0:
        sp = _formant_shift(sp, formant)
    ap = pw.d4c(x, f0, t, fs)
    voiced = np.nonzero(f0 > 0)[0]
    if voiced.size < 3:
        return None
    return f0, sp, ap, int(voiced[0]), int(voiced[-1]) + 1, fs


def _formant_shift(sp: np.ndarray, factor: float) -> np.ndarray:
    """Warp a (frames, bins) spectral envelope along frequency: peaks move up by ``factor``."""
    bins = sp.shape[1]
    src = np.arange(bins) / factor
    lo = np.clip(np.floor(src).astype(int), 0, bins - 1)
    hi = np.clip(lo + 1, 0, bins - 1)
    w = np.clip(src - lo, 0, 1)
    out = sp[:, lo] * (1 - w) + sp[:, hi] * w
    out[:, src > bins - 1] = sp[:, -1:] * 1e-3
    return out


def _voice_parts(name: str) -> tuple:
    """'de+f4' -> (espeak voice, language, formant factor, vibrato depth in cents)."""
    lang = name.split("+")[0].split("-")[0]
    h = sum(ord(c) for c in name)
    formant = 0.94 + 0.02 * (h % 6)           # 0.94 .. 1.04, fixed per voice
    vibrato = 25.0 + 8.0 * (h % 5)            # 25 .. 57 cents
    return name, lang, formant, vibrato


def sing(name: str, notes: list, num_samples: int, sample_rate: int, rng,
         report: dict | None = None) -> np.ndarray:
    """Sing ``notes`` (singing.SungNote) with eSpeak NG voice ``name`` (e.g. "de+f4").

    Returns:
        float32 (T,) at ``sample_rate``.
    """
    pw = load_pyworld()
    voice, lang, formant, vib_cents = _voice_parts(name)
    words = WORDS.get(lang, WORDS["en"])
    fs = None
    hop = FRAME_MS / 1000.0
    out = np.zeros(num_samples, dtype=np.float32)
    vib_rate = float(rng.uniform(4.8, 6.5))
    prev_pitch = None
    for phrase in _phrases(notes, max_gap_s=0.4):
        lead = 0.15  # seconds of room before the first vowel for onset consonants
        t0 = phrase[0].onset - lead
        end = phrase[-1].onset + phrase[-1].duration + 0.15
        n_frames = int(np.ceil((end - t0) / hop)) + 1
        f0 = np.zeros(n_frames)
        sp = ap = None
        filled = np.zeros(n_frames, dtype=bool)
        for note in phrase:
            text = note.lyric if note.lyric else str(rng.choice(words))
            syl = _analysed_syllable(voice, text, formant)
            if syl is None:
                syl = _analysed_syllable(voice, "la", formant)
                if syl is None:
                    continue
            s_f0, s_sp, s_ap, v0, v1, fs = syl
            if sp is None:
                sp = np.full((n_frames, s_sp.shape[1]), 1e-12)
                ap = np.ones((n_frames, s_ap.shape[1]))
            onset_frames = min(v0, int(0.12 / hop))
            coda_frames = min(len(s_f0) - v1, int(0.12 / hop))
            note_frames = max(2, int(round(note.duration / hop)))
            coda_frames = min(coda_frames, note_frames // 3)
            nuc_frames = max(2, note_frames - coda_frames)
            # frame map: onset consonants at natural speed, nucleus stretched, coda
            src = np.concatenate([
                np.arange(v0 - onset_frames, v0),
                np.linspace(v0, v1 - 1, nuc_frames),
                np.arange(v1, v1 + coda_frames)]).round().astype(int)
            start = int(round((note.onset - t0) / hop)) - onset_frames
            src = src[max(0, -start):]
            start = max(0, start)
            stop = min(n_frames, start + len(src))
            src = src[: stop - start]
            sp[start:stop] = s_sp[src]
            ap[start:stop] = s_ap[src]
            # pitch: score note, a glide from the previous note, delayed vibrato, slow drift
            target = 440.0 * 2 ** ((note.pitch - 69) / 12)
            k = np.arange(stop - start)
            tsec = (k - onset_frames) * hop
            cents = np.zeros(len(k))
            if prev_pitch is not None and abs(prev_pitch - note.pitch) < 12:
                glide = np.clip(1 - tsec / 0.06, 0, 1)
                cents += 100.0 * (prev_pitch - note.pitch) * glide
            ramp = np.clip((tsec - 0.25) / 0.3, 0, 1)
            cents += vib_cents * ramp * np.sin(2 * np.pi * vib_rate * tsec + rng.uniform(0, 6.3))
            drift = np.cumsum(rng.normal(0, 0.6, len(k)))
            cents += np.clip(drift - drift.mean(), -15, 15)
            contour = target * 2 ** (cents / 1200.0)
            # consonants keep their own voicing; the stretched nucleus is voiced throughout
            voiced = s_f0[src] > 0
            nucleus = (k >= onset_frames) & (k < onset_frames + nuc_frames)
            voiced[nucleus] = True
            f0[start:stop] = np.where(voiced, contour, 0.0)
            filled[start:stop] = True
            prev_pitch = note.pitch
        if sp is None or fs is None:
            continue
        f0[~filled] = 0.0
        y = pw.synthesize(np.ascontiguousarray(f0), np.ascontiguousarray(sp),
                          np.ascontiguousarray(ap), fs, FRAME_MS)
        ratio = Fraction(sample_rate, fs)
        y = resample_poly(y, ratio.numerator, ratio.denominator).astype(np.float32)
        start = int(round(t0 * sample_rate))
        if start < 0:
            y, start = y[-start:], 0
        stop = min(num_samples, start + len(y))
        if stop > start:
            out[start:stop] += y[: stop - start]
    return out
