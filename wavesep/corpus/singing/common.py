"""What every singing method shares: the note type, the voices and their ranges, lyrics, audio
helpers, and the loader of compiled extensions (pysinsy, pyworld)."""

from __future__ import annotations

import contextlib
import functools
import glob
import importlib.util
import os
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
