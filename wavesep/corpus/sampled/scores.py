"""Real scores for the sampled renderer: the music21 corpus, held-out piece pools, chords.

A :class:`Piece` is one score reduced to what a song needs: a melody line (to be sung), an
optional bass line, optional inner parts, a chord per slot (derived from all parts by
template matching) and the bar length. Times in a Piece are in quarter notes (q) from the
first bar line, so a pickup starts at a positive offset.

Piece ids are stable strings ("bach/bwv269.mxl", "essenFolksong/altdeu10.abc#17",
"palestrina/Agnus_01.krn"); :func:`split_of` maps an id to "train"/"valid"/"test" by a hash
that does not depend on the Python process, so the pools are disjoint and never change.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from dataclasses import dataclass, field

import numpy as np

from wavesep.errors import DependencyError

PIP_LINE = "pip install music21"

# Share of piece ids held out (by hash) for validation and for test songs.
HELD_OUT_VALID = 0.1
HELD_OUT_TEST = 0.1

# Families of pieces and the chance that a song is drawn from each.
FAMILY_WEIGHTS = {"chorale": 0.35, "folk": 0.45, "polyphony": 0.2}

PITCH_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
# Chord qualities as (MMA suffix, intervals above the root).
QUALITIES = [("", (0, 4, 7)), ("m", (0, 3, 7)), ("7", (0, 4, 7, 10)), ("m7", (0, 3, 7, 10)),
             ("dim", (0, 3, 6))]
_MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
_MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10, 11)  # harmonic minor's raised 7th included: V is major


@dataclass(frozen=True)
class ScoreNote:
    """A note in score time: ``onset``/``duration`` in quarter notes, MIDI ``pitch``."""

    onset: float
    duration: float
    pitch: int
    lyric: str = ""


@dataclass
class Piece:
    """One score reduced for rendering; all times in quarter notes from the first bar line."""

    piece_id: str
    family: str
    bar_q: float                      # quarter notes per bar
    length_q: float                   # whole bars
    melody: list                      # ScoreNote, monophonic
    bass: list                        # ScoreNote, may be empty
    inner: list = field(default_factory=list)  # list of lists of ScoreNote
    chords: list = field(default_factory=list)  # (onset_q, duration_q, root_pc, suffix)
    tonic: int = 0                    # pitch class of the key's tonic
    mode: str = "major"
    title: str = ""
    meter: str = "duple"              # "duple", "triple" or "compound" (6/8-like)


def music21_corpus():
    """Import music21's corpus module, or raise DependencyError with the pip line."""
    try:
        from music21 import corpus
    except ImportError as exc:
        raise DependencyError(f"the Python package music21 (scores) is not installed; "
                              f"install it with: {PIP_LINE}") from exc
    return corpus


def _corpus_root() -> str:
    corpus = music21_corpus()
    return os.path.dirname(corpus.__file__)


def split_of(piece_id: str) -> str:
    """'train', 'valid' or 'test' for a piece id, from a stable hash (SHA-1) of the id."""
    h = int(hashlib.sha1(piece_id.encode("utf-8")).hexdigest()[:8], 16) / 2 ** 32
    if h < HELD_OUT_TEST:
        return "test"
    if h < HELD_OUT_TEST + HELD_OUT_VALID:
        return "valid"
    return "train"


@functools.lru_cache(maxsize=None)
def catalogue() -> dict:
    """Every usable piece id, by family: {family: sorted list of ids}.

    Folk ids name one tune of a multi-tune ABC file by its ``X:`` number.
    """
    root = _corpus_root()
    out = {"chorale": [], "folk": [], "polyphony": []}
    for name in sorted(os.listdir(os.path.join(root, "bach"))):
        if name.endswith(".mxl"):
            out["chorale"].append(f"bach/{name}")
    for folder in ("essenFolksong", "airdsAirs", "oneills1850", "nottingham-dataset"):
        d = os.path.join(root, folder)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if not name.endswith(".abc") or name.startswith("test"):
                continue
            with open(os.path.join(d, name), encoding="latin-1") as fh:
                numbers = re.findall(r"^X:\s*(\d+)", fh.read(), flags=re.M)
            out["folk"].extend(f"{folder}/{name}#{x}" for x in dict.fromkeys(numbers))
    for name in sorted(os.listdir(os.path.join(root, "monteverdi"))):
        if name.endswith(".mxl"):
            out["polyphony"].append(f"monteverdi/{name}")
    for name in sorted(os.listdir(os.path.join(root, "palestrina"))):
        if name.endswith(".krn"):
            out["polyphony"].append(f"palestrina/{name}")
    return out


def pool(family: str, split: str) -> list:
    """Piece ids of one family whose hash puts them in ``split``."""
    return [p for p in catalogue()[family] if split_of(p) == split]


def _clean_lyric(text) -> str:
    if not text:
        return ""
    first = str(text).split("\n")[0]
    return re.sub(r"[^\w']", "", first.replace("\xad", ""))


def _part_notes(part, top_only: bool) -> list:
    """Notes of a music21 part with ties merged; chords reduced to their top (melody) or all.

    Ties are merged here in one pass (music21's stripTies re-sorts the stream per tie and is
    quadratic on long Palestrina movements).
    """
    notes: list = []
    open_ties: dict = {}  # pitch -> index in notes of the note a tie continues
    for el in part.flatten().notes:
        onset, dur = float(el.offset), float(el.quarterLength)
        if dur <= 0:
            continue
        if el.isChord:
            pitches = [p.midi for p in el.pitches]
            pitches = [max(pitches)] if top_only else pitches
        else:
            pitches = [el.pitch.midi]
        tie = el.tie.type if el.tie is not None else None
        lyric = _clean_lyric(getattr(el, "lyric", None))
        for p in pitches:
            k = open_ties.get(p)
            if tie in ("continue", "stop") and k is not None:
                prev = notes[k]
                notes[k] = ScoreNote(prev.onset, onset + dur - prev.onset, prev.pitch, prev.lyric)
                if tie == "stop":
                    del open_ties[p]
                continue
            notes.append(ScoreNote(onset, dur, int(p), lyric))
            if tie == "start":
                open_ties[p] = len(notes) - 1
    order = sorted(range(len(notes)), key=lambda i: (notes[i].onset, -notes[i].pitch))
    notes = [notes[i] for i in order]
    if top_only:
        mono = []
        for n in notes:
            if mono and n.onset < mono[-1].onset + 1e-6:
                continue  # same onset: keep the highest
            if mono and mono[-1].onset + mono[-1].duration > n.onset:
                last = mono[-1]
                mono[-1] = ScoreNote(last.onset, n.onset - last.onset, last.pitch, last.lyric)
            mono.append(n)
        notes = mono
    return notes


def _shift(notes: list, dq: float) -> list:
    return [ScoreNote(n.onset + dq, n.duration, n.pitch, n.lyric) for n in notes]


@functools.lru_cache(maxsize=32)
def load_piece(piece_id: str) -> Piece | None:
    """Parse a corpus piece; None when it cannot serve as a song (too short, no melody).

    Cached per process: callers must not modify the returned Piece.

    Raises:
        DependencyError: music21 is not installed.
    """
    corpus = music21_corpus()
    from music21 import converter

    family = _family_of(piece_id)
    path, _, number = piece_id.partition("#")
    try:
        if number:
            score = converter.parse(os.path.join(_corpus_root(), path), number=int(number))
        else:
            score = corpus.parse(path)
    except Exception:  # noqa: BLE001 - a corpus file music21 cannot read is skipped, not fatal
        return None
    parts = list(getattr(score, "parts", [])) or [score]
    parts = [p for p in parts if len(p.flatten().notes) > 0]
    if not parts:
        return None
    ts = parts[0].recurse().getElementsByClass("TimeSignature")
    bar_q = float(ts[0].barDuration.quarterLength) if ts else 4.0
    numerator, denominator = (ts[0].numerator, ts[0].denominator) if ts else (4, 4)
    if bar_q < 1.5 or bar_q > 8:
        bar_q, numerator, denominator = 4.0, 4, 4
    if denominator == 8 and numerator in (6, 12):
        meter = "compound"
    elif numerator in (3, 9):
        meter = "triple"
    else:
        meter = "duple"
    measures = parts[0].getElementsByClass("Measure")
    pickup = 0.0
    if len(measures) > 1:
        first = float(measures[0].duration.quarterLength)
        if 0 < first < bar_q - 1e-6:
            pickup = bar_q - first  # pad the pickup bar to a whole bar
    melody = _shift(_part_notes(parts[0], top_only=True), pickup)
    if len(melody) < 8:
        return None
    bass = _shift(_part_notes(parts[-1], top_only=False), pickup) if len(parts) > 1 else []
    inner = [_shift(_part_notes(p, top_only=False), pickup) for p in parts[1:-1]]
    end = max(n.onset + n.duration for n in melody + bass + [x for i in inner for x in i])
    length_q = float(np.ceil(end / bar_q - 1e-6) * bar_q)
    tonic, mode = _key_of(melody + bass + [x for i in inner for x in i])
    title = ""
    if score.metadata is not None:
        title = str(score.metadata.title or "")
    piece = Piece(piece_id, family, bar_q, length_q, melody, bass, inner, [], tonic, mode, title,
                  meter)
    piece.chords = derive_chords(piece)
    return piece


def _family_of(piece_id: str) -> str:
    if piece_id.startswith("bach/"):
        return "chorale"
    if piece_id.startswith(("monteverdi/", "palestrina/")):
        return "polyphony"
    return "folk"


def _pc_histogram(notes: list, start: float = 0.0, end: float = float("inf"),
                  weight: float = 1.0, out=None) -> np.ndarray:
    h = np.zeros(12) if out is None else out
    for n in notes:
        overlap = min(n.onset + n.duration, end) - max(n.onset, start)
        if overlap > 0:
            h[n.pitch % 12] += weight * overlap
    return h


# Krumhansl-Kessler key profiles (major, minor), the standard published probe-tone ratings.
_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def _key_of(notes: list) -> tuple:
    """(tonic pitch class, 'major'|'minor') by correlation with the key profiles."""
    h = _pc_histogram(notes)
    best = (-2.0, 0, "major")
    for tonic in range(12):
        for mode, prof in (("major", _KK_MAJOR), ("minor", _KK_MINOR)):
            r = np.corrcoef(h, np.roll(prof, tonic))[0, 1] if h.any() else 0.0
            if r > best[0]:
                best = (r, tonic, mode)
    return best[1], best[2]


def chord_name(root: int, suffix: str, transpose: int = 0) -> str:
    """MMA chord symbol, e.g. (9, 'm', 2) -> 'Bm'."""
    return PITCH_NAMES[(root + transpose) % 12] + suffix


def derive_chords(piece: Piece) -> list:
    """One chord per slot (a beat for chorales, half a bar or a bar otherwise).

    Each slot scores every (root, quality) template against the duration-weighted pitch
    classes sounding in the slot (bass notes count double and favour the root); melody-only
    pieces are restricted to chords built on the key's scale and prefer to keep the previous
    chord, so a lone tune still gets a plausible, slowly moving harmonisation.

    Returns:
        list of (onset_q, duration_q, root_pc, suffix), consecutive equal chords merged.
    """
    polyphonic = bool(piece.bass)
    if piece.family == "chorale":
        slot = 1.0
    elif piece.bar_q in (3.0, 1.5) or not polyphonic:
        slot = piece.bar_q if piece.bar_q <= 3.0 else piece.bar_q / 2
    else:
        slot = piece.bar_q / 2
    scale = _MAJOR_SCALE if piece.mode == "major" else _MINOR_SCALE
    in_key = {(piece.tonic + s) % 12 for s in scale}
    templates = []
    for root in range(12):
        for suffix, ivs in QUALITIES:
            tones = {(root + i) % 12 for i in ivs}
            diatonic = tones <= in_key
            if not polyphonic and not diatonic:
                continue
            prior = 0.15 if diatonic else 0.0
            degree = (root - piece.tonic) % 12
            if degree in (0, 5, 7):  # I, IV, V carry most folk harmony
                prior += 0.1
            if len(ivs) == 4 or suffix == "dim":
                prior -= 0.1  # only when the extra tone is really there
            templates.append((root, suffix, np.array([1.0 if pc in tones else -0.6
                                                      for pc in range(12)]), prior))
    chords = []
    prev = None
    n_slots = int(round(piece.length_q / slot))
    for k in range(n_slots):
        start, end = k * slot, (k + 1) * slot
        h = _pc_histogram(piece.melody, start, end)
        for part in piece.inner:
            _pc_histogram(part, start, end, out=h)
        bass_h = _pc_histogram(piece.bass, start, end, weight=2.0)
        h = h + bass_h
        total = h.sum()
        if total <= 0:
            choice = prev or (piece.tonic, "" if piece.mode == "major" else "m")
        else:
            h = h / total
            best, choice = -1e9, None
            bass_pc = int(np.argmax(bass_h)) if bass_h.any() else None
            for root, suffix, vec, prior in templates:
                score = float(vec @ h) + prior
                if bass_pc is not None and bass_pc == root:
                    score += 0.15
                if prev == (root, suffix):
                    score += 0.1 if polyphonic else 0.25
                if score > best:
                    best, choice = score, (root, suffix)
        if chords and chords[-1][2:] == choice:
            onset, dur, r, s = chords[-1]
            chords[-1] = (onset, dur + slot, r, s)
        else:
            chords.append((start, slot, choice[0], choice[1]))
        prev = choice
    return chords
