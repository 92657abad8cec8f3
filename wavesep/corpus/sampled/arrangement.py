"""Realistic offline songs: real scores, sampled instruments, real drum kits, synthetic singing.

The offline stand-in for MUSDB18 that wavesep.synth writes with ``--renderer sampled``,
in the spirit of Slakh2100 (real scores rendered with sampled instruments) plus sung
vocals. One song is assembled from one timeline:

* a piece from the music21 corpus (Bach chorales, Essen/Scottish/Irish folk songs,
  Palestrina and Monteverdi), transposed so its melody fits the chosen singer;
* sections (intro, verses, instrumental breaks) cut from the piece; the voice sings the
  melody in verses only and rests elsewhere, where a lead instrument may take the tune;
* accompaniment from an MMA groove playing the chords derived from the piece (drums, bass,
  chords/arpeggios), plus the score's own bass and inner parts on random GM programs;
* rendering with FluidSynth (FluidR3 GM instruments; GM or recorded AVL drum kits), singing
  with Sinsy, eSpeak NG + WORLD, Festival or GM choir samples (wavesep.corpus.singing);
* panning, per-stem levels and shelving EQ, and a shared seeded room (exponentially
  decaying noise) with a send level per stem.

Stems: "vocals" (the sung melody only), "drums", "bass", "other" (everything else), each
float32 ``(T, 2)`` with ``T = round(seconds * sample_rate)``. Everything random is drawn from
one generator seeded by ``(seed, name, split)``: the same arguments give the same audio.
Validation and test songs use pieces held out by hash (wavesep.corpus.sampled.scores.split_of).

At about 600 lines this module is one cohesive thing: :func:`render`, the plan of one song from
the piece to the mixed stems, with the small helpers it reads top to bottom.
"""

from __future__ import annotations

import math
import zlib
from bisect import bisect_right
from dataclasses import dataclass

import numpy as np

from wavesep.corpus import singing
from wavesep.corpus.sampled import effects
from wavesep.corpus.sampled import grooves as mma
from wavesep.corpus.sampled import instruments as fluid
from wavesep.corpus.sampled import scores
from wavesep.errors import DataError, DependencyError

STEMS = ("vocals", "drums", "bass", "other")
SPLITS = ("train", "valid", "test")

# Chance of each singing method per song (renormalised over the methods installed).
SINGING_WEIGHTS = {"sinsy": 0.3, "espeak_world": 0.35, "festival": 0.15, "gm_choir": 0.2}

BASS_PROGRAMS = (32, 33, 33, 34, 35, 36, 37, 38, 39, 43)
HARMONY_PROGRAMS = (0, 1, 2, 3, 4, 5, 6, 7, 11, 16, 17, 18, 19, 21, 24, 25, 26, 27, 28, 29,
                    40, 41, 42, 44, 46, 48, 49, 50, 56, 57, 60, 61, 68, 69, 70, 71, 73, 80, 81,
                    88, 89, 90, 92, 94, 95)
LEAD_PROGRAMS = (0, 11, 22, 26, 29, 30, 40, 56, 65, 66, 68, 71, 73, 80, 81)
# Voice-like GM programs never go to "other": they would teach the model that singing-like
# timbres are accompaniment.
VOICE_LIKE = frozenset((52, 53, 54, 85, 91))
# (name, soundfont, bank, program, lowest and highest drum note the kit plays)
DRUM_KITS = (
    ("avl_black_pearl", fluid.AVL_DRUM_SOUNDFONTS["avl_black_pearl"], 0, 0, 0.2),
    ("avl_red_zeppelin", fluid.AVL_DRUM_SOUNDFONTS["avl_red_zeppelin"], 0, 0, 0.2),
    ("gm_standard", fluid.GM_SOUNDFONT, 128, 0, 0.14),
    ("gm_room", fluid.GM_SOUNDFONT, 128, 8, 0.1),
    ("gm_power", fluid.GM_SOUNDFONT, 128, 16, 0.1),
    ("gm_electronic", fluid.GM_SOUNDFONT, 128, 24, 0.04),
    ("gm_tr808", fluid.GM_SOUNDFONT, 128, 25, 0.04),
    ("gm_jazz", fluid.GM_SOUNDFONT, 128, 32, 0.08),
    ("gm_brush", fluid.GM_SOUNDFONT, 128, 40, 0.1),
)
_AVL_NOTES = range(36, 71)  # drum notes both AVL kits play (measured: 36..70 sound)

# Target RMS (dBFS, over the active part of each stem) before the random per-song offsets;
# the corpus writer rescales the whole song afterwards, so only the ratios matter.
_BASE_LEVEL_DB = {"vocals": -18.0, "drums": -20.0, "bass": -22.0, "other": -21.0}
_LEVEL_SPREAD_DB = {"vocals": (-4.0, 4.0), "drums": (-4.0, 2.0), "bass": (-4.0, 2.0),
                    "other": (-3.0, 3.0)}


# Range of the median melody note length in seconds, by family: sets the tempo. Chorales are
# hymns (slow quarter notes); folk tunes move like pop melodies.
_MEDIAN_NOTE_S = {"chorale": (0.45, 0.85), "folk": (0.28, 0.55), "polyphony": (0.35, 0.7)}


@dataclass(frozen=True)
class Section:
    """A span of the piece placed in the song: times in quarter notes."""

    kind: str          # "intro", "verse" (sung) or "break" (voice rests)
    song_q: float      # start in the song
    piece_q: float     # start in the piece
    length_q: float


def available_methods() -> list:
    """Singing methods whose dependencies are installed, in SINGING_WEIGHTS order."""
    out = []
    for method in SINGING_WEIGHTS:
        try:
            singing.check_method(method)
        except DependencyError:
            continue
        out.append(method)
    return out


def check_dependencies() -> None:
    """Raise DependencyError naming the first missing package and its install line.

    Needs: libfluidsynth + FluidR3 GM + AVL drum soundfonts, mma (with its groove database)
    and mido, music21, and every singing backend (pysinsy, festival with two voices,
    espeak-ng + pyworld).
    """
    fluid.check_available()
    mma.check_available()
    scores.music21_corpus()
    for method in SINGING_WEIGHTS:
        singing.check_method(method)


def _rng_for(name: str, split: str, seed: int) -> np.random.Generator:
    # crc32 is stable across processes (Python's hash() of a str is not)
    return np.random.default_rng([int(seed) % 2 ** 64, zlib.crc32(name.encode()),
                                  zlib.crc32(split.encode())])


def _choose_piece(split: str, rng: np.random.Generator) -> scores.Piece:
    families = list(scores.FAMILY_WEIGHTS)
    weights = np.array([scores.FAMILY_WEIGHTS[f] for f in families])
    for _ in range(40):
        family = families[rng.choice(len(families), p=weights / weights.sum())]
        ids = scores.pool(family, split)
        if not ids:
            continue
        piece = scores.load_piece(ids[int(rng.integers(len(ids)))])
        if piece is None:
            continue
        pitches = [n.pitch for n in piece.melody]
        if max(pitches) - min(pitches) > 20 or piece.length_q < 4 * piece.bar_q:
            continue  # unsingable range or too short to build a song from
        return piece
    raise DataError(f"no usable piece found for split {split!r} after 40 draws; "
                    "check that the music21 corpus is complete (pip install music21)")


def _choose_transposition(piece: scores.Piece, voice: str, rng) -> int:
    lo = min(n.pitch for n in piece.melody)
    hi = max(n.pitch for n in piece.melody)
    vlo, vhi = singing.voice_range(voice)
    fits = [t for t in range(-30, 31) if lo + t >= vlo - 1 and hi + t <= vhi + 1]
    if not fits:
        return int(round((vlo + vhi) / 2 - (lo + hi) / 2))
    return int(fits[int(rng.integers(len(fits)))])


def _mma_bar_q(piece: scores.Piece) -> float:
    if piece.meter == "compound":
        return 3.0
    if piece.meter == "triple":
        return piece.bar_q
    return 4.0


def _plan_sections(piece: scores.Piece, unit_q: float, total_q: float, rng,
                   max_intro_q: float) -> list:
    """Intro (at most ``max_intro_q``, none if that is under one unit), then verses with
    instrumental breaks between some of them, until total_q."""
    length = math.ceil(piece.length_q / unit_q - 1e-6) * unit_q
    bars = piece.bar_q
    # longer pieces are sung in windows of 8..16 bars taken in order, so instrumental breaks
    # come between sung passages as in a song, not only after a whole chorale
    window = length
    if length > 12 * bars:
        window = max(unit_q, round(rng.uniform(8, 16) * bars / unit_q) * unit_q)
    pos = 0.0 if window == length else float(rng.integers(0, int(length // unit_q))) * unit_q
    sections, t = [], 0.0
    if max_intro_q >= unit_q and rng.random() < 0.7:
        intro = max(unit_q, math.ceil(rng.choice([1, 2, 4]) * bars / unit_q) * unit_q)
        intro = min(intro, window, math.floor(max_intro_q / unit_q) * unit_q)
        sections.append(Section("intro", t, (pos + window - intro) % length, intro))
        t += intro
    p_break = rng.uniform(0.3, 0.8)
    verses = 0
    while t < total_q:
        sections.append(Section("verse", t, pos % length, window))
        t += window
        verses += 1
        if window < length:
            pos = (pos + window) % length
        if t < total_q and rng.random() < p_break:
            brk = max(2 * bars, math.ceil(window / 2 / unit_q) * unit_q)
            brk = min(brk, window)
            sections.append(Section("break", t, pos % length, brk))
            t += brk
    return sections


def _piece_span(notes: list, start_q: float, length_q: float, piece_len: float) -> list:
    """Notes of a piece starting in [start, start+length) (wrapping), re-timed from 0."""
    out = []
    end = start_q + length_q
    for n in notes:
        for shift in (0.0, piece_len):
            onset = n.onset + shift
            if start_q - 1e-6 <= onset < end - 1e-6:
                dur = min(n.duration, end - onset)
                out.append(scores.ScoreNote(onset - start_q, dur, n.pitch, n.lyric))
    out.sort(key=lambda n: (n.onset, n.pitch))  # wrapped notes come first in piece order
    return out


def _is_bass_track(track) -> bool:
    """An MMA track that plays the bass: named Bass*/Walk* and low (MMA's "Bass-High" parts
    are guitars)."""
    if track.drums or not track.name.lower().startswith(("bass", "walk")):
        return False
    return float(np.median([n[2] for n in track.notes])) < 55


def _chord_spans(beat_chords: list, beat_s: float, limit_s: float) -> list:
    """(onset_s, duration_s, root_pc, suffix) of each run of equal chords in a per-beat list."""
    spans = []
    for k, chord in enumerate(beat_chords):
        if k * beat_s >= limit_s:
            break
        if spans and spans[-1][2:] == chord:
            on, dur, r, q = spans[-1]
            spans[-1] = (on, dur + beat_s, r, q)
        else:
            spans.append((k * beat_s, beat_s, chord[0], chord[1]))
    return spans


def _octave_fit(pitches: list, lo: int, hi: int) -> int:
    """Octave shift (in semitones) putting the median of ``pitches`` inside [lo, hi]."""
    if not pitches:
        return 0
    med = float(np.median(pitches))
    shift = 0
    while med + shift > hi:
        shift -= 12
    while med + shift < lo:
        shift += 12
    return shift


def _lyrics(method: str, voice: str, piece: scores.Piece, rng) -> tuple:
    """(use_piece_lyrics, vocabulary) for this song's singer."""
    if method == "gm_choir":
        return False, ("",)
    if method == "sinsy":
        k = int(rng.integers(6, 14))
        return False, tuple(rng.choice(singing.JAPANESE_SYLLABLES, size=k, replace=False))
    if method == "festival":
        words = singing.ENGLISH_WORDS
        return False, tuple(rng.choice(words, size=int(rng.integers(6, 14)), replace=False))
    from wavesep.corpus.singing import espeak as singing_espeak
    lang = voice.split(":", 1)[1].split("+")[0].split("-")[0]
    piece_lang = {"chorale": "de", "polyphony": "la" if piece.piece_id.startswith("palestrina")
                  else "it"}.get(piece.family)
    sung = [n.lyric for n in piece.melody if n.lyric]
    # the piece's own words only in the singer's language, and only when few enough
    # distinct syllables keep the per-syllable analysis cheap
    use_piece = (piece_lang == lang and len(sung) > len(piece.melody) // 2
                 and len(set(sung)) <= 40)
    words = singing_espeak.WORDS.get(lang, singing_espeak.WORDS["en"])
    k = min(len(words), int(rng.integers(6, 12)))
    return use_piece, tuple(rng.choice(words, size=k, replace=False))


def _velocity(rng, base: float, n: int) -> np.ndarray:
    return np.clip(np.round(base + rng.normal(0, 6, n)), 20, 127).astype(int)


def render(name: str, split: str, seed: int, seconds: float, sample_rate: int, *,
           voice: str | None = None) -> tuple[dict, dict]:
    """Render one song.

    Args:
        name: track name (part of the random seed).
        split: "train", "valid" or "test"; valid/test songs use held-out pieces only.
        seed: integer seed; with ``name`` and ``split`` it fixes every random choice.
        seconds: song length in seconds.
        sample_rate: Hz.
        voice: force a singer ("method:name", see wavesep.corpus.singing.all_voices) instead of
            drawing one; for benchmarks and listening tests.

    Returns:
        (stems, info): stems maps "vocals", "drums", "bass", "other" to float32 (T, 2),
        T = round(seconds * sample_rate), at the song's own relative levels (not normalised
        for headroom); info is a JSON-serialisable description of every choice made.

    Raises:
        DependencyError: a renderer, score library or singing backend is missing.
        DataError: no usable piece in the split's pool.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if seconds <= 0 or sample_rate <= 0:
        raise ValueError(f"seconds and sample_rate must be positive, got {seconds}, "
                         f"{sample_rate}")
    fluid.check_available()
    mma.check_available()
    rng = _rng_for(name, split, seed)
    num_samples = int(round(seconds * sample_rate))

    # --- singer, piece, key and tempo
    methods = available_methods()
    if not methods:
        singing.check_method("sinsy")  # raises with an install line
    w = np.array([SINGING_WEIGHTS[m] for m in methods])
    method = methods[rng.choice(len(methods), p=w / w.sum())]
    drawn = f"{method}:{singing.VOICES[method][int(rng.integers(len(singing.VOICES[method])))]}"
    if voice is None:
        voice = drawn
    else:
        if voice not in singing.all_voices():
            raise ValueError(f"unknown voice {voice!r}; use one of {singing.all_voices()}")
        method = singing.method_of(voice)
        singing.check_method(method)
    # a song whose voice is mostly absent teaches little: redraw the piece until the verses
    # keep the singer busy for at least a quarter of the song (long intros, late entries)
    for attempt in range(8):
        piece = _choose_piece(split, rng)
        transpose = _choose_transposition(piece, voice, rng)
        durs = np.array([n.duration for n in piece.melody])
        lo_s, hi_s = _MEDIAN_NOTE_S[piece.family]
        target = rng.uniform(lo_s, hi_s)  # seconds for the median melody note
        qpm = float(np.clip(60.0 * np.median(durs) / target, 50.0, 170.0))
        qpm = float(np.round(qpm * rng.uniform(0.9, 1.1), 1))
        spq = 60.0 / qpm
        mma_bar = _mma_bar_q(piece)
        groove_pool = mma.grooves()[piece.meter] or mma.grooves()["duple"]
        groove = groove_pool[int(rng.integers(len(groove_pool)))]
        unit = float(np.lcm(int(round(piece.bar_q * 4)), int(round(mma_bar * 4)))) / 4.0
        total_q = seconds / spq + unit
        max_intro_q = min(8.0, seconds / 5) / spq
        sections = _plan_sections(piece, unit, total_q, rng, max_intro_q)
        piece_len = math.ceil(piece.length_q / unit - 1e-6) * unit
        verse_spans = [(sec.song_q * spq + n.onset * spq, (sec.song_q + n.onset + n.duration) * spq)
                       for sec in sections if sec.kind == "verse"
                       for n in _piece_span(piece.melody, sec.piece_q, sec.length_q, piece_len)]
        if _union_length(verse_spans, seconds) >= 0.25 * seconds:
            break

    def song_notes(notes, kinds, shift=0, jitter_s=0.0):
        out = []
        for sec in sections:
            if sec.kind not in kinds:
                continue
            for n in _piece_span(notes, sec.piece_q, sec.length_q, piece_len):
                onset = (sec.song_q + n.onset) * spq
                if jitter_s:
                    onset = max(0.0, onset + rng.normal(0, jitter_s))
                out.append((onset, n.duration * spq, n.pitch + transpose + shift, n.lyric))
        return out

    # --- vocals: melody in verses
    use_piece_lyrics, vocab = _lyrics(method, voice, piece, rng)
    verse_lyrics: dict = {}
    sung = []
    for sec in sections:
        if sec.kind != "verse":
            continue
        span = _piece_span(piece.melody, sec.piece_q, sec.length_q, piece_len)
        key = (sec.piece_q, len(span))
        if key not in verse_lyrics or rng.random() < 0.4:  # repeated verses often reuse words
            verse_lyrics[key] = [str(rng.choice(vocab)) for _ in span]
        for n, word in zip(span, verse_lyrics[key]):
            onset = (sec.song_q + n.onset) * spq
            if onset >= seconds:
                break
            lyric = n.lyric if use_piece_lyrics and n.lyric else word
            # a breath: notes end a little early
            sung.append(singing.SungNote(onset, max(0.08, n.duration * spq - 0.03),
                                         n.pitch + transpose, lyric))
    # the singer draws from its own generator: how many draws it makes depends on the
    # synthesiser's output, and later choices must not
    sing_rng = np.random.default_rng(int(rng.integers(2 ** 63)))
    sing_report: dict = {}
    vocals_mono = singing.sing(voice, sung, num_samples, sample_rate, sing_rng, sing_report)

    # --- MMA accompaniment following the piece's chords
    chord_onsets = [c[0] for c in piece.chords]
    section_starts = [sec.song_q for sec in sections]
    mma_seed = int(rng.integers(1, 2 ** 31 - 1))
    for attempt in range(6):
        beat_q = mma_bar / groove.beats
        n_bars = int(math.ceil(total_q / mma_bar)) + 1
        chart, beat_chords = [], []  # symbols per bar; (root pc, suffix) per beat
        for b in range(n_bars):
            bar = []
            for k in range(groove.beats):
                q = b * mma_bar + k * beat_q
                sec = sections[max(0, bisect_right(section_starts, q) - 1)]
                pq = (sec.piece_q + min(q - sec.song_q, sec.length_q - 1e-6)) % piece_len
                c = piece.chords[max(0, bisect_right(chord_onsets, pq + 1e-6) - 1)]
                bar.append(scores.chord_name(c[2], c[3], transpose))
                beat_chords.append(((c[2] + transpose) % 12, c[3]))
            chart.append(bar)
        tracks = mma.render_chart(groove, chart, qpm / beat_q, mma_seed)
        if any(t.drums for t in tracks):
            break
        # some grooves (boogie-woogie piano, ballad intros) have no drums: take another
        groove = groove_pool[int(rng.integers(len(groove_pool)))]
    spb = beat_q * spq  # seconds per MMA beat

    def mma_events(track, shift=0, keep=None):
        ev = []
        for on, dur, pitch, vel in track.notes:
            if keep is not None and not keep(on * spb):
                continue
            p = pitch + shift
            if 0 <= p <= 127:
                ev.append(fluid.NoteEvent(on * spb, dur * spb, p, vel))
        return tuple(ev)

    # sections without drums: some intros, and sometimes the first verse
    no_drums = []
    for i, sec in enumerate(sections if seconds >= 30 else []):
        early = (sec.song_q + sec.length_q) * spq <= 0.4 * seconds
        if (sec.kind == "intro" and rng.random() < 0.35) or \
                (sec.kind == "verse" and i <= 1 and early and rng.random() < 0.15):
            no_drums.append((sec.song_q * spq, (sec.song_q + sec.length_q) * spq))

    def drums_on(t):
        return not any(a <= t < b for a, b in no_drums)

    # --- drums
    kit_w = np.array([k[4] for k in DRUM_KITS])
    kit = DRUM_KITS[rng.choice(len(DRUM_KITS), p=kit_w / kit_w.sum())]
    drum_notes = []
    for tr in tracks:
        if tr.drums:
            drum_notes.extend(mma_events(tr, keep=drums_on))
    if kit[2] == 0:  # AVL kits: map the GM kick 35 to 36, drop what they cannot play
        drum_notes = [fluid.NoteEvent(n.onset, n.duration, 36 if n.pitch == 35 else n.pitch,
                                      n.velocity) for n in drum_notes]
        drum_notes = [n for n in drum_notes if n.pitch in _AVL_NOTES]
    drums = fluid.render([fluid.Instrument(kit[1], kit[2], kit[3], tuple(drum_notes),
                                           pan=float(rng.uniform(-0.1, 0.1)))],
                         num_samples, sample_rate)

    # --- bass: the score's bass line or the groove's
    bass_program = int(rng.choice(BASS_PROGRAMS))
    groove_bass = [t for t in tracks if _is_bass_track(t)]
    prefer_score = rng.random() < 0.45
    if piece.bass and (prefer_score or not groove_bass):
        bass_source = "score"
    else:
        bass_source = "groove" if groove_bass else "chords"
    if bass_source == "score":
        raw = song_notes(piece.bass, ("intro", "verse", "break"), jitter_s=0.006)
        # one note at a time: the lowest of simultaneous notes
        raw.sort(key=lambda x: (round(x[0], 3), x[2]))
        mono = []
        for x in raw:
            if mono and abs(mono[-1][0] - x[0]) < 1e-3:
                continue
            mono.append(x)
        shift = _octave_fit([x[2] for x in mono], 36, 47)
        vel = _velocity(rng, rng.uniform(80, 105), len(mono))
        bass_events = tuple(fluid.NoteEvent(o, d * 0.95, p + shift, int(v))
                            for (o, d, p, _), v in zip(mono, vel) if 0 <= p + shift <= 127)
    elif bass_source == "groove":
        bass_events = []
        for tr in groove_bass:
            pitches = [n[2] for n in tr.notes]
            bass_events.extend(mma_events(tr, _octave_fit(pitches, 33, 50)))
        bass_events = tuple(bass_events)
    else:  # a groove without a bass part (e.g. accordion waltzes): roots on chord changes
        bass_events = tuple(fluid.NoteEvent(on, dur * 0.95, 36 + root, int(v))
                            for (on, dur, root, _), v in zip(
                                _chord_spans(beat_chords, spb, seconds),
                                _velocity(rng, 95, len(beat_chords))))
    bass = fluid.render([fluid.Instrument(fluid.GM_SOUNDFONT, 0, bass_program, bass_events,
                                          pan=float(rng.uniform(-0.1, 0.1)))],
                        num_samples, sample_rate)

    # --- other: groove harmony tracks, the score's inner parts, lead in breaks, doubling
    others, other_info = [], []

    def add_other(role, program, events, pan):
        if events and len(others) < 16:
            others.append(fluid.Instrument(fluid.GM_SOUNDFONT, 0, int(program), tuple(events),
                                           pan=float(pan)))
            other_info.append({"role": role, "program": int(program),
                               "name": _program_name(int(program))})

    use_inner = bool(piece.inner) and rng.random() < 0.7
    if use_inner:
        shared = int(rng.choice(HARMONY_PROGRAMS))
        for i, part in enumerate(piece.inner):
            program = shared if rng.random() < 0.6 else int(rng.choice(HARMONY_PROGRAMS))
            raw = song_notes(part, ("intro", "verse", "break"), jitter_s=0.008)
            vel = _velocity(rng, rng.uniform(60, 90), len(raw))
            ev = [fluid.NoteEvent(o, d * rng.uniform(0.85, 1.0), p, int(v))
                  for (o, d, p, _), v in zip(raw, vel) if 0 <= p <= 127]
            add_other(f"inner{i + 1}", program, ev, rng.uniform(-0.7, 0.7))
    harmony_tracks = [t for t in tracks if not t.drums and not _is_bass_track(t)]
    keep_p = 0.35 if use_inner else 0.75
    kept = [t for t in harmony_tracks if rng.random() < keep_p]
    if not kept and harmony_tracks and not use_inner:
        kept = [harmony_tracks[int(rng.integers(len(harmony_tracks)))]]
    for tr in kept:
        program = tr.program
        if program in VOICE_LIKE or rng.random() < 0.5:
            program = int(rng.choice(HARMONY_PROGRAMS))
        pitches = [n[2] for n in tr.notes]
        add_other(f"groove:{tr.name}", program, mma_events(tr, _octave_fit(pitches, 52, 72)),
                  rng.uniform(-0.8, 0.8))
    if rng.random() < 0.65:  # a lead instrument plays the tune while the voice rests
        program = int(rng.choice(LEAD_PROGRAMS))
        raw = song_notes(piece.melody, ("break",) if rng.random() < 0.8 else ("break", "intro"),
                         jitter_s=0.005)
        shift = _octave_fit([x[2] for x in raw], 62, 76)
        vel = _velocity(rng, rng.uniform(85, 110), len(raw))
        add_other("lead", program, [fluid.NoteEvent(o, d * 0.95, p + shift, int(v))
                                    for (o, d, p, _), v in zip(raw, vel)],
                  rng.uniform(-0.3, 0.3))
    if rng.random() < 0.15:  # an instrument doubles the singer, softly
        program = int(rng.choice(LEAD_PROGRAMS))
        raw = song_notes(piece.melody, ("verse",), shift=12 * int(rng.choice([-1, 0, 0, 1])))
        vel = _velocity(rng, rng.uniform(45, 70), len(raw))
        add_other("doubling", program, [fluid.NoteEvent(o, d * 0.9, p, int(v))
                                        for (o, d, p, _), v in zip(raw, vel) if 0 <= p <= 127],
                  rng.uniform(-0.5, 0.5))
    if not others:  # nothing harmonic left: a keyboard or pad comps the chords
        comp = []
        for on, dur, root, suffix in _chord_spans(beat_chords, spb, seconds):
            ivs = dict(scores.QUALITIES)[suffix]
            low = 55 + (root + 5) % 12  # root between G3 and F#4
            comp.extend(fluid.NoteEvent(on, dur * 0.9, low + i, 75) for i in ivs)
        add_other("comping", int(rng.choice(HARMONY_PROGRAMS)), comp, rng.uniform(-0.5, 0.5))
    other = fluid.render(others, num_samples, sample_rate)

    # --- vocals to stereo, room, levels
    pan = float(rng.uniform(-0.15, 0.15))
    vocals = np.stack([vocals_mono * math.sqrt(0.5 - pan / 2),
                       vocals_mono * math.sqrt(0.5 + pan / 2)], axis=1).astype(np.float32)
    stems = {"vocals": vocals, "drums": drums, "bass": bass, "other": other}
    ir, rt60 = effects.room_ir(rng, sample_rate)
    ir_f, n_fft = effects.room_spectrum(ir, num_samples)
    wets = {"vocals": rng.uniform(0.05, 0.35), "drums": rng.uniform(0.03, 0.25),
            "bass": rng.uniform(0.0, 0.08), "other": rng.uniform(0.08, 0.35)}
    levels, eq = {}, {}
    for s in STEMS:
        x = effects.apply_room(stems[s], ir_f, n_fft,
                               float(wets[s]) if rng.random() < 0.85 else 0.0)
        x, eq[s] = effects.random_eq(x, rng, sample_rate)
        rms = effects.active_rms(x, sample_rate)
        lo, hi = _LEVEL_SPREAD_DB[s]
        level_db = _BASE_LEVEL_DB[s] + float(rng.uniform(lo, hi))
        gain = 10 ** (level_db / 20) / rms if rms > 0 else 0.0
        stems[s] = (x * gain).astype(np.float32)
        levels[s] = round(level_db, 2)

    vocal_time = _union_length([(n.onset, n.onset + n.duration) for n in sung], seconds)
    info = {
        "renderer": "sampled",
        "seed": int(seed),
        "name": name,
        "split": split,
        "piece": piece.piece_id,
        "piece_family": piece.family,
        "piece_title": piece.title,
        "piece_split": scores.split_of(piece.piece_id),
        "meter": piece.meter,
        "key": scores.PITCH_NAMES[(piece.tonic + transpose) % 12] + (
            "" if piece.mode == "major" else "m"),
        "transposition": transpose,
        "tempo_qpm": qpm,
        "groove": groove.name,
        "singing_method": method,
        "voice": voice,
        "lyrics": "piece" if use_piece_lyrics else "generated",
        "singing_report": sing_report,
        "drum_kit": kit[0],
        "bass_program": bass_program,
        "bass_name": _program_name(bass_program),
        "bass_source": bass_source,
        "other_instruments": other_info,
        "room_rt60_s": round(rt60, 3),
        "room_wet": {s: round(float(v), 3) for s, v in wets.items()},
        "stem_level_db": levels,
        "stem_eq": eq,
        "sections": [{"kind": s.kind, "start_s": round(s.song_q * spq, 3),
                      "end_s": round(min(seconds, (s.song_q + s.length_q) * spq), 3)}
                     for s in sections if s.song_q * spq < seconds],
        "vocal_notes": len(sung),
        "vocal_phrases_s": _phrase_spans(sung, seconds),
        "vocal_activity": round(vocal_time / seconds, 4),
        "seconds": float(seconds),
        "sample_rate": int(sample_rate),
    }
    return stems, info


def _phrase_spans(notes: list, limit: float, max_gap_s: float = 0.5) -> list:
    """[start, end] seconds of the sung phrases (notes closer than ``max_gap_s`` merged)."""
    spans: list = []
    for n in notes:
        a, b = n.onset, min(limit, n.onset + n.duration)
        if a >= limit:
            break
        if spans and a - spans[-1][1] <= max_gap_s:
            spans[-1][1] = max(spans[-1][1], b)
        else:
            spans.append([a, b])
    return [[round(a, 3), round(b, 3)] for a, b in spans]


def _union_length(intervals: list, limit: float) -> float:
    total, end = 0.0, -1.0
    for a, b in sorted(intervals):
        a, b = max(a, end), min(b, limit)
        if b > a:
            total += b - a
            end = b
    return total


_GM_NAMES: dict = {}


def _program_name(program: int) -> str:
    if program not in _GM_NAMES:
        _GM_NAMES[program] = fluid.preset_name(fluid.GM_SOUNDFONT, 0, program) or str(program)
    return _GM_NAMES[program]


