"""Synthetic singing of a melody: Sinsy (HTS singing voice), Festival singing mode,
eSpeak NG syllables re-pitched with the WORLD vocoder, and General MIDI choir samples.

Every method takes the same input, a list of :class:`SungNote` (times in seconds from the
start of the song, MIDI pitch, one syllable of lyric) and returns a mono float32 track
``(T,)`` at ``sample_rate`` Hz in which note k is sung from ``onset`` to ``onset+duration``
and everything outside the notes is silent (exact zeros) apart from a short release.

Voices are named ``"<method>:<voice>"`` (see :data:`VOICES`), each with the MIDI range
(:data:`RANGES`) that the melody is transposed into.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import importlib.util
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly

from wavesep.errors import DependencyError

INSTALL = {
    "sinsy": "pip install pysinsy",
    "festival": "apt-get install -y festival festvox-kallpc16k festvox-kdlpc16k",
    "espeak_world": "apt-get install -y espeak-ng && pip install pyworld",
    "gm_choir": "apt-get install -y fluidsynth fluid-soundfont-gm",
}

# Voices per method. Sinsy's one bundled voice is varied by its all-pass warping constant
# (alpha: vocal-tract length); eSpeak NG voices are "language+variant" with a formant shift.
VOICES = {
    "sinsy": ["f001_a0.50", "f001_a0.55", "f001_a0.60"],
    "festival": ["kal_diphone", "ked_diphone"],
    "espeak_world": ["en+m3", "en+f2", "de+m1", "de+f4", "it+m2", "it+f3", "en-us+m7",
                     "en-us+f5", "la+m4", "es+f1", "fr+m5", "nl+f3"],
    "gm_choir": ["52", "53", "54", "85"],
}
# Comfortable MIDI range of each voice family (melodies are transposed into it).
_MALE, _FEMALE = (45, 67), (55, 77)
RANGES = {"sinsy": (58, 77), "festival": (45, 65), "gm_choir": (52, 76)}

JAPANESE_SYLLABLES = ("ら", "ら", "あ", "か", "さ", "た", "な", "は", "ま", "や", "わ", "い", "き",
                      "し", "ち", "に", "み", "り", "う", "く", "す", "つ", "ぬ", "む", "ゆ", "る",
                      "え", "け", "せ", "て", "ね", "め", "れ", "お", "こ", "そ", "と", "の", "も",
                      "よ", "ろ", "が", "ど", "び")
# One syllable each: Festival's singing mode gives every syllable of a word its own duration.
ENGLISH_WORDS = ("love", "night", "heart", "day", "way", "home", "light", "sun", "rain", "sky",
                 "go", "be", "free", "mine", "time", "dream", "fly", "stay", "see", "oh", "la",
                 "my", "you", "know", "all", "now", "song", "road", "blue", "fire", "star", "hold",
                 "on", "down", "so", "far", "run", "we", "are", "young", "call", "me", "yeah",
                 "fall", "rise", "cold", "gold", "a", "round", "the", "wind", "sea", "true")


@dataclass(frozen=True)
class SungNote:
    """One sung note: ``onset``/``duration`` in seconds, MIDI ``pitch``, ``lyric`` syllable."""

    onset: float
    duration: float
    pitch: int
    lyric: str = ""


def method_of(voice: str) -> str:
    return voice.split(":", 1)[0]


def voice_range(voice: str) -> tuple:
    """(lowest, highest) MIDI pitch that ``voice`` ("method:name") sings comfortably."""
    method, name = voice.split(":", 1)
    if method == "espeak_world":
        return _FEMALE if "+f" in name else _MALE
    return RANGES[method]


def all_voices() -> list:
    return [f"{m}:{v}" for m, vs in VOICES.items() for v in vs]


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C libraries that print to file descriptor 2 (Sinsy warns per measure)."""
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(fd, 2)
        os.close(fd)
        os.close(devnull)


def _resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return x.astype(np.float32)
    ratio = Fraction(sr_out, sr_in)
    return resample_poly(x, ratio.numerator, ratio.denominator).astype(np.float32)


def _place(segment: np.ndarray, start_s: float, out: np.ndarray, sample_rate: int) -> None:
    start = int(round(start_s * sample_rate))
    if start < 0:
        segment, start = segment[-start:], 0
    end = min(len(out), start + len(segment))
    if end > start:
        out[start:end] += segment[: end - start]


def _phrases(notes: list, max_gap_s: float) -> list:
    """Split notes into phrases at rests longer than ``max_gap_s`` seconds."""
    out = []
    for n in notes:
        if out and n.onset - (out[-1][-1].onset + out[-1][-1].duration) <= max_gap_s:
            out[-1].append(n)
        else:
            out.append([n])
    return out


def _load_extension(package: str, module: str, install: str):
    """Import the compiled extension ``package/module*.so`` without running the package's
    ``__init__``: pysinsy's and pyworld's import pkg_resources, which recent setuptools no
    longer ships, only to read their own version or data paths."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise DependencyError(f"the Python package {package} is not installed; "
                              f"install it with: {install}")
    root = os.path.dirname(spec.origin)
    so = sorted(glob.glob(os.path.join(root, f"{module}*.so")))
    if not so:
        raise DependencyError(f"{package} at {root} lacks its compiled extension; "
                              f"reinstall it with: {install}")
    ext_spec = importlib.util.spec_from_file_location(module, so[0])
    mod = importlib.util.module_from_spec(ext_spec)
    ext_spec.loader.exec_module(mod)
    return mod, root


@functools.lru_cache(maxsize=1)
def load_pyworld():
    """The WORLD vocoder module of pyworld (dio, harvest, stonemask, cheaptrick, d4c, ...)."""
    return _load_extension("pyworld", "pyworld", "pip install pyworld")[0]


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


def _sing_sinsy(name: str, notes: list, num_samples: int, sample_rate: int, rng,
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


# ---------------------------------------------------------------------------- Festival

def _sing_festival(name: str, notes: list, num_samples: int, sample_rate: int, rng,
                   report: dict) -> np.ndarray:
    if shutil.which("text2wave") is None:
        raise DependencyError(f"Festival (text2wave) is not installed; "
                              f"install it with: {INSTALL['festival']}")
    out = np.zeros(num_samples, dtype=np.float32)
    phrases = _phrases(notes, max_gap_s=0.6)
    # Festival's note names sit an octave high and its BEATS use BPM/50: giving FREQ in Hz
    # and SECONDS avoids both quirks. Rests only exist after a syllable, so one document per
    # phrase, each placed at its first onset.
    with tempfile.TemporaryDirectory(prefix="wavesep_festival_") as tmp:
        script = [f"(voice_{name})"]
        for k, phrase in enumerate(phrases):
            parts = []
            for i, n in enumerate(phrase):
                freq = 440.0 * 2 ** ((n.pitch - 69) / 12)
                word = n.lyric if n.lyric.isascii() and n.lyric.isalpha() else \
                    str(rng.choice(ENGLISH_WORDS))
                parts.append(f'<PITCH FREQ="{freq:.2f}"><DURATION SECONDS="{n.duration:.3f}">'
                             f"{word}</DURATION></PITCH>")
                if i + 1 < len(phrase):
                    gap = phrase[i + 1].onset - (n.onset + n.duration)
                    if gap > 0.01:
                        parts.append(f'<REST SECONDS="{gap:.3f}"></REST>')
            doc = ('<?xml version="1.0"?>\n<!DOCTYPE SINGING PUBLIC "-//SINGING//DTD SINGING '
                   'mark up//EN" "Singing.v0_1.dtd" []>\n<SINGING BPM="60">\n'
                   + "\n".join(parts) + "\n</SINGING>\n")
            xml = os.path.join(tmp, f"p{k}.xml")
            with open(xml, "w") as fh:
                fh.write(doc)
            prefix = os.path.join(tmp, f"p{k}")
            script.append(f'(set! wsep_prefix "{prefix}") (set! wsep_count 0) '
                          f"(tts_file \"{xml}\" 'singing)")
        _run_festival(script, tmp, name)
        import soundfile as sf
        for k, phrase in enumerate(phrases):
            pieces, sr = [], 16000
            for j in range(10000):
                wav = os.path.join(tmp, f"p{k}_{j}.wav")
                if not os.path.isfile(wav):
                    break
                x, sr = sf.read(wav, dtype="float32")
                pieces.append(x)
            if pieces:
                _place(_resample(np.concatenate(pieces), sr, sample_rate), phrase[0].onset, out,
                       sample_rate)
    return out


# Festival synthesises a document as one or more utterances; each is saved as
# <prefix>_<n>.wav and the pieces of a phrase are joined in order afterwards.
_FESTIVAL_HELPERS = """
(require 'singing-mode)
(defvar wsep_prefix "")
(defvar wsep_count 0)
(define (wsep_save utt)
  (utt.save.wave utt (format nil "%s_%d.wav" wsep_prefix wsep_count) 'riff)
  (set! wsep_count (+ 1 wsep_count)))
(set! tts_hooks (list utt.synth wsep_save))
"""


def _run_festival(script: list, tmp: str, voice: str) -> None:
    path = os.path.join(tmp, "run.scm")
    with open(path, "w") as fh:
        fh.write(_FESTIVAL_HELPERS + "\n".join(script) + "\n")
    proc = subprocess.run(["festival", "-b", path], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise DependencyError(f"festival failed with voice {voice} ({proc.stderr.strip()[-300:]});"
                              f" install it with: {INSTALL['festival']}")


# ----------------------------------------------------------------------------- GM choir

def _sing_gm_choir(name: str, notes: list, num_samples: int, sample_rate: int, rng,
                   report: dict) -> np.ndarray:
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


# ------------------------------------------------------------------------------- driver

_METHODS = {"sinsy": _sing_sinsy, "festival": _sing_festival, "gm_choir": _sing_gm_choir}


def check_method(method: str) -> None:
    """Raise DependencyError (with the install line) unless ``method`` can run here."""
    if method == "sinsy":
        _sinsy_module()
    elif method == "festival":
        if shutil.which("festival") is None or shutil.which("text2wave") is None:
            raise DependencyError(f"Festival is not installed; install it with: "
                                  f"{INSTALL['festival']}")
        for v in VOICES["festival"]:
            if not glob.glob(f"/usr/share/festival/voices/*/{v}"):
                raise DependencyError(f"Festival voice {v} is not installed; install it with: "
                                      f"{INSTALL['festival']}")
    elif method == "espeak_world":
        from wavesep.corpus.singing import espeak as singing_espeak
        singing_espeak.check_available()
    elif method == "gm_choir":
        from wavesep.corpus.sampled import instruments as sampled_fluid
        sampled_fluid.check_available()
    else:
        raise ValueError(f"unknown singing method {method!r}; use one of {sorted(INSTALL)}")


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
    if method == "espeak_world":
        from wavesep.corpus.singing import espeak as singing_espeak
        fn = singing_espeak.sing
    else:
        fn = _METHODS.get(method)
        if fn is None:
            raise ValueError(f"unknown singing method {method!r} in voice {voice!r}")
    if not notes:
        return np.zeros(num_samples, dtype=np.float32)
    y = fn(name, notes, num_samples, sample_rate, rng, {} if report is None else report)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    return (y / peak).astype(np.float32) if peak > 0 else y
