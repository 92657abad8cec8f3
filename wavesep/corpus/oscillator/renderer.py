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

import numpy as np

from wavesep.corpus.oscillator.drums import _render_drums
from wavesep.corpus.oscillator.dsp import _active_rms, _r
from wavesep.corpus.oscillator.pitched import _render_bass, _render_other
from wavesep.corpus.oscillator.song import _NOTE_NAMES, _plan_song, _roman
from wavesep.corpus.oscillator.vocals import _render_vocals

SOURCES = ("vocals", "drums", "bass", "other")
RENDERER_VERSION = 1


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


