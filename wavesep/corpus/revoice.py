"""Recorded voices for rendered songs: a corpus's vocal melodies sung again with real speech.

The rendered singers (Sinsy, Festival diphones, eSpeak, choir samples) are far duller than a
produced voice and have none of its consonants and breath; a network trained on them hears real
sibilants as drums. This module keeps each rendered song's vocal line (its pitch contour, timing
and level, read back from the rendered vocals) and sings it again with the spectral envelope and
aperiodicity of recorded human speech, through the WORLD vocoder:

- the speech bank: every recording of the Debian package ``fillets-ng-data-cs`` (1.8 h of Czech
  dialogue by several actors, 22.05/44.1 kHz; GPL-2+ game data in Debian main) is analysed with
  WORLD (5 ms frames) and cut into voiced runs of 50 ms to 1.5 s, each with up to 120 ms of the
  unvoiced sounds before and after it (consonants, breath). Frames are stored coded (60-dim
  spectral envelope, band aperiodicity), one bank per speaker;
- a song: the rendered vocals' F0 (dio + stonemask) gives voiced runs, cut into notes where the
  pitch steps (legato lines); each note is given a speech run whose voiced frames are stretched
  over it, its consonants placed just before (for a legato note, over the end of the previous
  one) and after, the rendered F0 contour (glides, vibrato) replacing the spoken one; the
  envelope is shifted in frequency towards the register (formants up for high voices); every run
  is brought to the rendered vocals' RMS over the same span, and the channels keep the rendered
  stem's balance; a room (RT60 0.3-1.6 s, wet 0.1-0.4) is added, as a produced voice's stem holds
  its reverb;
- production (:class:`Production`, off unless asked): the room on a share of the songs only, a
  high-pass (a vocal chain's low cut) and, on a share of the songs, a double-tracked voice (two
  more takes of the same words, 10-30 ms late and a few cents off, one per side), as produced
  voices are wide where a dry voice is a point source.

Output: ``OUT/voices/<split>/<track>/vocals.flac`` (22.05 kHz, the rendered stem's channels,
16-bit), aligned sample for sample with the corpus track of the same name, which
``train.py --voices OUT/voices`` reads (:class:`wavesep.data.datasets.TrainWindows`), and
``OUT/valid-stems/<track>/{vocals,accompaniment,mixture}.flac``: the validation songs with
their new voices, a stems folder for ``wavesep-evaluate --stems``.

    python -m wavesep.corpus.revoice corpora/revoice --corpus corpora/sampled10h --jobs 2

Steps resume: the bank is kept in ``OUT/bank`` and finished tracks are skipped.

May import: wavesep.errors, wavesep.atomic, wavesep.corpus.backing (apt download) and
wavesep.corpus.singing (pyworld loader, formant shift); numpy, scipy, soundfile.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from scipy.signal import butter, fftconvolve, medfilt, resample_poly, sosfilt

from ..errors import WavesepError
from .backing import fetch
from .singing.common import load_pyworld
from .singing.espeak import _formant_shift

DEFAULT_PACKAGES = ("fillets-ng-data-cs",)
RATE = 22050            # Hz: analysis and output rate (the models' rate)
FRAME_MS = 5.0
SP_DIMS = 60
MARGIN = 24             # frames (120 ms) of unvoiced sound kept before and after a speech run
MIN_RUN, MAX_RUN = 10, 300  # frames: speech runs of 50 ms .. 1.5 s
DEFAULT_REVERB = (0.1, 0.4)  # wet gain range of the room on the new voice


class RevoiceError(WavesepError):
    """A step of the revoiced corpus failed (a package, a file, a track)."""


@dataclass(frozen=True)
class Production:
    """How a new voice is produced after it is sung (all draws per song).

    Attributes:
        reverb: (low, high) wet gain range of the room; (0, 0): never a room.
        room_share: share of the songs (0..1) that get the room.
        highpass: (low, high) Hz: a 2nd-order Butterworth high-pass at a cutoff drawn from this
            range, before the room; (0, 0): none.
        double_share: share of the songs (0..1) whose voice is double-tracked: two more takes of
            the same words (the same speech runs), each 10-30 ms late and 3-15 cents off, one
            per channel, at ``double_db`` below the lead; then the sum is brought back to the
            lead's level per channel.
        double_db: (low, high) dB of each extra take against the lead, e.g. (-9, -3).

    The default is the v3 recipe (a room on every song, wet 0.1-0.4, nothing else).
    """

    reverb: tuple = DEFAULT_REVERB
    room_share: float = 1.0
    highpass: tuple = (0.0, 0.0)
    double_share: float = 0.0
    double_db: tuple = (-9.0, -3.0)


# ---------------------------------------------------------------------------------- bank


def speaker_of(path: Path) -> str:
    """The speaker group of a Fish Fillets dialogue file: ``m`` (small fish), ``v`` (big fish),
    or ``other`` (every other character, one file each)."""
    parts = path.stem.split("-")
    if len(parts) >= 3 and parts[1] in ("m", "v"):
        return parts[1]
    return "other"


def _mono(x: np.ndarray) -> np.ndarray:
    return x if x.ndim == 1 else x.mean(axis=1)


def _to_rate(x: np.ndarray, rate: int) -> np.ndarray:
    if rate == RATE:
        return x
    r = Fraction(RATE, rate)
    return resample_poly(x, r.numerator, r.denominator)


def analyse(x: np.ndarray, f0_ceil: float = 700.0) -> tuple:
    """WORLD analysis of mono float64 ``x`` at 22.05 kHz: (f0 (N,), sp (N, 513), ap (N, 513))."""
    pw = load_pyworld()
    x = np.ascontiguousarray(x, dtype=np.float64)
    f0, t = pw.dio(x, RATE, f0_floor=60.0, f0_ceil=f0_ceil, frame_period=FRAME_MS)
    f0 = pw.stonemask(x, f0, t, RATE)
    sp = pw.cheaptrick(x, f0, t, RATE)
    ap = pw.d4c(x, f0, t, RATE)
    return f0, sp, ap


def runs(mask: np.ndarray) -> list:
    """[(start, stop)] of the runs of True in a 1-D bool array."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    d = np.diff(m.astype(np.int8))
    return list(zip(np.nonzero(d == 1)[0].tolist(), np.nonzero(d == -1)[0].tolist()))


def speech_segments(f0: np.ndarray) -> list:
    """[(start, nucleus_start, nucleus_end, stop)] frame indices of the usable voiced runs of a
    speech recording, with up to MARGIN unvoiced frames around each (not into another run)."""
    voiced = runs(f0 > 0)
    out = []
    for k, (a, b) in enumerate(voiced):
        if not MIN_RUN <= b - a <= MAX_RUN:
            continue
        prev_end = voiced[k - 1][1] if k else 0
        next_start = voiced[k + 1][0] if k + 1 < len(voiced) else len(f0)
        out.append((max(prev_end, a - MARGIN), a, b, min(next_start, b + MARGIN)))
    return out


def build_bank(out: Path, files: Sequence[Path]) -> dict:
    """Analyses ``files`` into ``out/bank/<speaker>.npz`` (skips speakers already there).

    Each bank holds ``sp`` (N, 60) float32 coded envelopes, ``ap`` (N, B) float32 coded
    aperiodicity, ``f0`` (N,) Hz (0 unvoiced) and ``segments`` (M, 4) int64 rows of
    (start, nucleus start, nucleus end, stop) into those frames. Returns {speaker: segments}.
    """
    import soundfile as sf

    pw = load_pyworld()
    bank_dir = out / "bank"
    bank_dir.mkdir(parents=True, exist_ok=True)
    groups: dict = {}
    for f in files:
        groups.setdefault(speaker_of(f), []).append(f)
    result = {}
    for speaker, members in sorted(groups.items()):
        path = bank_dir / f"{speaker}.npz"
        if path.exists():
            with np.load(path) as z:
                result[speaker] = len(z["segments"])
            continue
        sps, aps, f0s, segs, offset = [], [], [], [], 0
        for f in sorted(members):
            try:
                x, rate = sf.read(str(f), dtype="float64")
            except Exception as exc:  # a broken file is skipped, and said
                print(f"skipping {f}: {exc}", file=sys.stderr)
                continue
            x = _to_rate(_mono(x), rate)
            if x.size < RATE // 4:
                continue
            f0, sp, ap = analyse(x)
            for (s, a, b, e) in speech_segments(f0):
                n = e - s
                sps.append(pw.code_spectral_envelope(np.ascontiguousarray(sp[s:e]), RATE, SP_DIMS).astype(np.float32))
                aps.append(pw.code_aperiodicity(np.ascontiguousarray(ap[s:e]), RATE).astype(np.float32))
                f0s.append(f0[s:e].astype(np.float32))
                segs.append((offset, offset + a - s, offset + b - s, offset + n))
                offset += n
        if not segs:
            continue
        tmp = bank_dir / f".{speaker}.tmp.npz"
        np.savez(tmp, sp=np.concatenate(sps), ap=np.concatenate(aps), f0=np.concatenate(f0s),
                 segments=np.asarray(segs, dtype=np.int64))
        os.replace(tmp, path)
        result[speaker] = len(segs)
    return result


@functools.lru_cache(maxsize=4)
def _cached_bank(path: str) -> dict:
    """:func:`load_bank`, once per worker process and bank (each is read-only after loading)."""
    return load_bank(Path(path))


def load_bank(path: Path) -> dict:
    with np.load(path) as z:
        bank = {k: z[k] for k in ("sp", "ap", "f0", "segments")}
    bank["median_f0"] = float(np.median(bank["f0"][bank["f0"] > 0]))
    return bank


# ---------------------------------------------------------------------------------- a song


def target_contour(vocals: np.ndarray, rate: int) -> tuple:
    """The vocal line of a rendered stem: (f0 (N,) Hz, 0 where unvoiced, frame RMS (N,), mono
    22.05 kHz signal). ``vocals`` is (C, T) at ``rate`` Hz."""
    pw = load_pyworld()
    x = _to_rate(np.asarray(vocals, dtype=np.float64).mean(axis=0), rate)
    x = np.ascontiguousarray(x)
    f0, t = pw.dio(x, RATE, f0_floor=70.0, f0_ceil=1100.0, frame_period=FRAME_MS)
    f0 = pw.stonemask(x, f0, t, RATE)
    centres = np.clip((t * RATE).astype(int), 0, max(x.size - 1, 0))
    half = 256
    sq = np.concatenate([[0.0], np.cumsum(x * x)])
    lo, hi = np.clip(centres - half, 0, x.size), np.clip(centres + half, 0, x.size)
    rms = np.sqrt((sq[hi] - sq[lo]) / np.maximum(hi - lo, 1))
    loud = rms > 10 ** (-50 / 20) * max(rms.max(), 1e-12)
    voiced = (f0 > 0) & loud
    # bridge gaps of up to 3 frames inside a note, drop blips under 40 ms
    for a, b in runs(~voiced):
        if 0 < a and b < voiced.size and b - a <= 3:
            voiced[a:b] = True
            f0[a:b] = np.interp(np.arange(a, b), [a - 1, b], [f0[a - 1], f0[b]])
    for a, b in runs(voiced):
        if b - a < 8:
            voiced[a:b] = False
    f0 = np.where(voiced, f0, 0.0)
    for a, b in runs(voiced):  # octave blips out, in log pitch
        if b - a >= 3:
            f0[a:b] = np.exp(medfilt(np.log(f0[a:b]), 3))
    return f0, rms, x


def note_starts(f0: np.ndarray, semitones: float = 0.75, window: int = 16, spacing: int = 20) -> list:
    """Frames inside the voiced runs of ``f0`` (Hz per 5 ms frame) where a new note starts: the
    mean pitch of the ``window`` frames after differs from that of the ``window`` frames before
    by ``semitones`` or more (a local maximum of that difference, ``spacing`` frames apart; the
    80 ms means average vibrato out), at least 10 frames from a run's ends."""
    starts = []
    for a, b in runs(f0 > 0):
        if b - a < 2 * window:
            continue
        st = 12 * np.log2(f0[a:b])
        c = np.concatenate([[0.0], np.cumsum(st)])
        k = np.arange(window, b - a - window + 1)
        jump = np.abs((c[k + window] - c[k]) - (c[k] - c[k - window])) / window
        order = np.argsort(-jump)
        chosen = []
        for j in order:
            if jump[j] < semitones:
                break
            pos = int(k[j])
            if 10 <= pos <= b - a - 10 and all(abs(pos - q) >= spacing for q in chosen):
                chosen.append(pos)
        starts.extend(a + q for q in sorted(chosen))
    return starts


def split_notes(f0: np.ndarray) -> list:
    """[(start, stop, joined)]: the voiced runs of ``f0`` cut at :func:`note_starts`; ``joined``
    is True for a note that follows the previous one with no gap (legato)."""
    cuts = set(note_starts(f0))
    notes = []
    for a, b in runs(f0 > 0):
        edges = [a] + sorted(c for c in cuts if a < c < b) + [b]
        for k in range(len(edges) - 1):
            notes.append((edges[k], edges[k + 1], k > 0))
    return notes


def sing_line(f0: np.ndarray, target: np.ndarray, bank: dict, rng: np.random.Generator,
              formant: float) -> np.ndarray:
    """Sings the notes of ``f0`` (:func:`split_notes`) with speech runs drawn from ``bank``: one
    speech run per note, its consonants before it (for a legato note, in the last frames of the
    previous one, unvoiced as spoken) and after it.

    Args:
        f0: (N,) target F0 in Hz per 5 ms frame, 0 where silent.
        target: mono rendered vocals at 22.05 kHz (T,), whose RMS each run is matched to.
        bank: :func:`load_bank` output.
        rng: random generator (segment choice).
        formant: envelope frequency factor (> 1 moves formants up).

    Returns:
        float32 (T,) mono at 22.05 kHz.
    """
    pw = load_pyworld()
    n = f0.size
    fft = 2 * (513 - 1)
    out = np.zeros(target.size, dtype=np.float64)
    notes = split_notes(f0)
    if not notes:
        return out.astype(np.float32)
    segs = bank["segments"]
    # phrases: notes less than 0.3 s apart are synthesised together
    phrases, cur = [], [notes[0]]
    for note in notes[1:]:
        if note[0] - cur[-1][1] < 60:
            cur.append(note)
        else:
            phrases.append(cur)
            cur = [note]
    phrases.append(cur)
    for phrase in phrases:
        p0 = max(0, phrase[0][0] - MARGIN)
        p1 = min(n, phrase[-1][1] + MARGIN)
        m = p1 - p0
        code_sp = np.zeros((m, SP_DIMS), dtype=np.float64)
        code_ap = np.zeros((m, bank["ap"].shape[1]), dtype=np.float64)  # coded 0 = aperiodic
        have = np.zeros(m, dtype=bool)
        out_f0 = np.zeros(m)
        spans = []
        for k, (a, b, joined) in enumerate(phrase):
            s, na, nb, e = (int(v) for v in segs[rng.integers(len(segs))])
            length = b - a
            src = np.linspace(na, nb - 1, length).round().astype(int)
            gap_before = a - (phrase[k - 1][1] if k else p0)
            gap_after = (phrase[k + 1][0] if k + 1 < len(phrase) else p1) - b
            if joined:  # the consonants take the last frames of the previous note
                onset = min(na - s, 12, (a - phrase[k - 1][0]) // 3)
            else:
                onset = min(na - s, max(gap_before - 2, 0))
            coda = min(e - nb, max(gap_after // 2, 0))
            idx = np.concatenate([np.arange(na - onset, na), src, np.arange(nb, nb + coda)])
            pos = np.arange(a - onset, b + coda) - p0
            code_sp[pos] = bank["sp"][idx]
            code_ap[pos] = bank["ap"][idx]
            have[pos] = True
            out_f0[a - p0:b - p0] = f0[a:b]
            if onset:  # the consonants voiced as spoken, on the sung pitch
                out_f0[a - onset - p0:a - p0] = np.where(bank["f0"][na - onset:na] > 0, f0[a - onset:a], 0.0)
            spans.append((a - onset, b + coda, a, b))
        sp = pw.decode_spectral_envelope(np.ascontiguousarray(code_sp), RATE, fft)
        sp[~have] = 1e-16
        if formant != 1.0:
            sp = _formant_shift(sp, formant)
        ap = pw.decode_aperiodicity(np.ascontiguousarray(code_ap), RATE, fft)
        ap[~have] = 1.0
        y = pw.synthesize(np.ascontiguousarray(out_f0), np.ascontiguousarray(sp),
                          np.ascontiguousarray(ap), RATE, FRAME_MS)
        start = int(round(p0 * FRAME_MS * RATE / 1000))
        # each note at the rendered voice's level over its own span; the gain is a per-frame
        # curve interpolated over each 5 ms frame, so a change between notes is a ramp, not a
        # step (a step would put a click into the voice)
        per_sample = FRAME_MS * RATE / 1000
        gain = np.ones(m)
        for (u0, u1, a, b) in spans:
            j0 = int(round((a - p0) * per_sample))
            j1 = min(y.size, int(round((b - p0) * per_sample)))
            own = np.sqrt(np.mean(y[j0:j1] ** 2)) if j1 > j0 else 0.0
            t0, t1 = start + j0, min(target.size, start + j1)
            want = np.sqrt(np.mean(target[t0:t1] ** 2)) if t1 > t0 else 0.0
            gain[u0 - p0:u1 - p0] = want / own if own > 0 else 0.0
        y = y * np.interp(np.arange(y.size), np.arange(m) * per_sample, gain)
        stop = min(out.size, start + y.size)
        out[start:stop] += y[: stop - start]
    return out.astype(np.float32)


def _delayed(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` (N, ...) moved ``n`` >= 0 steps later, zero-filled, same length."""
    out = np.zeros_like(x)
    out[n:] = x[: x.shape[0] - n] if n > 0 else x
    return out


def revoice(vocals: np.ndarray, rate: int, bank: dict, rng: np.random.Generator,
            reverb: Optional[tuple] = None, production: Optional[Production] = None,
            prod_rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """A rendered vocals stem sung again with a speech bank's voice.

    Args:
        vocals: (C, T) float rendered vocals at ``rate`` Hz.
        rate: Hz.
        bank: :func:`load_bank` output (one speaker).
        rng: random generator (formant factor, segment choice, then the room).
        reverb: (low, high): a room (:func:`wavesep.corpus.sampled.effects.room_ir`, RT60
            0.3-1.6 s, stereo) added at a wet gain drawn from U(low, high), as a produced voice
            carries its reverb in the stem; None: dry. The dry part is the same either way.
            Ignored when ``production`` is given (its ``reverb`` counts).
        production: :class:`Production`; None: only ``reverb``.
        prod_rng: random generator for the production choices (room or not, cutoff, takes), so
            that ``rng``'s draws (the lead voice and the room) stay those of a run without them;
            None: ``np.random.default_rng(0)``.

    Returns:
        (C, T') float32 at 22.05 kHz, T' = T * 22050 / rate rounded like resample_poly, each
        channel the new voice times that channel's share of the rendered stem's level (plus
        the production, if any).
    """
    if production is None:
        production = Production(reverb=reverb if reverb is not None else (0.0, 0.0))
    prod_rng = prod_rng if prod_rng is not None else np.random.default_rng(0)
    f0, _, target = target_contour(vocals, rate)
    voiced = f0[f0 > 0]
    register = float(np.median(voiced)) if voiced.size else bank["median_f0"]
    # formants follow the register a little (a soprano's are higher than a bass's), plus a spread
    formant = float(np.clip((register / bank["median_f0"]) ** 0.15 * rng.uniform(0.94, 1.06), 0.9, 1.25))
    choices = copy.deepcopy(rng)  # the lead's segment choices, replayed by the double takes
    y = sing_line(f0, target, bank, rng, formant).astype(np.float64)
    channels = np.asarray(vocals, dtype=np.float64)
    level = np.sqrt(np.mean(channels ** 2, axis=1))
    mono = np.sqrt(np.mean(channels.mean(axis=0) ** 2))
    gains = level / mono if mono > 0 else np.ones(channels.shape[0])
    sos = None
    if production.highpass[1] > 0:
        cutoff = float(prod_rng.uniform(*production.highpass))
        sos = butter(2, cutoff, btype="highpass", fs=RATE, output="sos")
        y = sosfilt(sos, y)
    out = gains[:, None] * y[None, :]
    if prod_rng.random() < production.double_share and np.any(y):
        hop = int(round(RATE * FRAME_MS / 1000))
        for c in range(2):
            lag = int(prod_rng.integers(2, 7))  # frames: 10-30 ms
            cents = float(prod_rng.uniform(3, 15)) * (1 if prod_rng.random() < 0.5 else -1)
            take = sing_line(_delayed(f0, lag) * 2 ** (cents / 1200), _delayed(target, lag * hop),
                             bank, copy.deepcopy(choices), formant).astype(np.float64)
            if sos is not None:
                take = sosfilt(sos, take)
            gain = 10 ** (float(prod_rng.uniform(*production.double_db)) / 20)
            out[c % out.shape[0]] += gain * gains[c % out.shape[0]] * take[: y.size]
        lead = np.sqrt(np.mean((gains[:, None] * y[None, :]) ** 2, axis=1))
        now = np.sqrt(np.mean(out ** 2, axis=1))
        out *= np.where(now > 0, lead / np.maximum(now, 1e-12), 1.0)[:, None]
    room = production.reverb[1] > 0 and prod_rng.random() < production.room_share
    if room and np.any(y):
        from .sampled.effects import room_ir

        ir, _ = room_ir(rng, RATE)
        wet = float(rng.uniform(production.reverb[0], production.reverb[1]))
        dry = out.copy()
        for c in range(out.shape[0]):
            out[c] += wet * fftconvolve(dry[c], ir[c % ir.shape[0]])[: y.size]
    return out.astype(np.float32)


# ------------------------------------------------------------------------------- corpus


def _track_dirs(corpus: Path, split: str) -> list:
    splits = json.loads((corpus / "splits.json").read_text())
    names = splits.get(split) or []
    folder = "test" if split == "test" else "train"
    return [corpus / folder / n for n in names]


def _render_one(job: tuple) -> Optional[str]:
    import soundfile as sf

    track, dest, bank_dir, seed, valid_dir, production = job
    if (dest / "vocals.flac").exists() and (valid_dir is None or (valid_dir / "mixture.flac").exists()):
        return None
    banks = sorted(Path(bank_dir).glob("*.npz"))
    rng = np.random.default_rng(seed)
    bank = _cached_bank(str(banks[int(rng.integers(len(banks)))]))
    vocals, rate = sf.read(str(track / "vocals.wav"), dtype="float32", always_2d=True)
    new = revoice(vocals.T, rate, bank, rng, production=production,
                  prod_rng=np.random.default_rng(tuple(seed) + (1,)))
    new = np.clip(new, -1.0, 1.0)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / ".vocals.tmp.flac"
    sf.write(str(tmp), new.T, RATE, subtype="PCM_16")
    os.replace(tmp, dest / "vocals.flac")
    if valid_dir is not None:
        acc = None
        for stem in ("drums", "bass", "other"):
            x, r = sf.read(str(track / f"{stem}.wav"), dtype="float64", always_2d=True)
            acc = x if acc is None else acc + x
        acc = np.stack([_to_rate(c, r) for c in acc.T])[:, : new.shape[1]]
        voc = new[:, : acc.shape[1]].astype(np.float64)
        valid_dir.mkdir(parents=True, exist_ok=True)
        for name, sig in (("vocals", voc), ("accompaniment", acc), ("mixture", voc + acc)):
            tmp = valid_dir / f".{name}.tmp.flac"
            sf.write(str(tmp), np.clip(sig, -1, 1).T, RATE, subtype="PCM_16")
            os.replace(tmp, valid_dir / f"{name}.flac")
    return track.name


def render(out: Path, corpus: Path, splits: Sequence[str] = ("train", "valid"), jobs: int = 2,
           seed: int = 0, limit: Optional[int] = None, production: Optional[Production] = None) -> int:
    """New vocals for every track of ``splits`` of ``corpus`` (``production``: see
    :class:`Production`, default its v3 recipe); returns how many were written."""
    production = production if production is not None else Production()
    todo = []
    for split in splits:
        for k, track in enumerate(_track_dirs(corpus, split)[:limit]):
            dest = out / "voices" / ("train" if split != "test" else "test") / track.name
            valid_dir = out / "valid-stems" / track.name if split == "valid" else None
            todo.append((track, dest, str(out / "bank"), (seed, k, sum(map(ord, split))), valid_dir, production))
    done = 0
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        for name in pool.map(_render_one, todo, chunksize=4):
            if name is not None:
                done += 1
                if done % 25 == 0:
                    print(f"{done} tracks revoiced", flush=True)
    return done


def speech_files(out: Path) -> list:
    return sorted(p for p in (out / "x").rglob("*.ogg") if p.is_file())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m wavesep.corpus.revoice", description=__doc__.splitlines()[0])
    p.add_argument("out", help="output folder")
    p.add_argument("--corpus", required=True, help="a rendered corpus (python -m wavesep.synth)")
    p.add_argument("--splits", nargs="+", default=["train", "valid"], choices=["train", "valid", "test"])
    p.add_argument("--packages", nargs="+", default=list(DEFAULT_PACKAGES), help="Debian packages of speech")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="at most this many tracks per split (a quick look)")
    p.add_argument("--reverb", type=float, nargs=2, metavar=("LOW", "HIGH"), default=list(DEFAULT_REVERB),
                   help="wet gain range of a room added to the new voice (default 0.1 0.4; 0 0: dry)")
    p.add_argument("--room-share", type=float, default=1.0, help="share of the songs given the room (default 1)")
    p.add_argument("--highpass", type=float, nargs=2, metavar=("LOW", "HIGH"), default=[0.0, 0.0],
                   help="cutoff range in Hz of a high-pass on the voice (default 0 0: none), e.g. 80 150")
    p.add_argument("--double-share", type=float, default=0.0,
                   help="share of the songs whose voice is double-tracked, one take per side (default 0)")
    p.add_argument("--double-db", type=float, nargs=2, metavar=("LOW", "HIGH"), default=[-9.0, -3.0],
                   help="level range in dB of each double take against the lead (default -9 -3)")
    args = p.parse_args(argv)
    for name in ("room_share", "double_share"):
        if not 0 <= getattr(args, name) <= 1:
            p.error(f"--{name.replace('_', '-')} must be within 0..1")
    if args.highpass[0] > args.highpass[1] or args.highpass[1] >= RATE / 2:
        p.error(f"--highpass LOW HIGH needs 0 <= LOW <= HIGH < {RATE // 2}")
    production = Production(reverb=tuple(args.reverb), room_share=args.room_share, highpass=tuple(args.highpass),
                            double_share=args.double_share, double_db=tuple(args.double_db))
    out, corpus = Path(args.out), Path(args.corpus)
    try:
        if not (corpus / "splits.json").exists():
            raise RevoiceError(f"{corpus} is not a rendered corpus (no splits.json)")
        fetch(out, args.packages)
        files = speech_files(out)
        if not files:
            raise RevoiceError(f"no speech recordings (.ogg) under {out / 'x'}")
        counts = build_bank(out, files)
        print("speech bank: " + ", ".join(f"{k} {v} runs" for k, v in sorted(counts.items())), flush=True)
        n = render(out, corpus, args.splits, args.jobs, args.seed, args.limit, production)
        print(f"revoiced {n} tracks into {out / 'voices'}")
    except (WavesepError, OSError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
