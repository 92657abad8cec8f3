"""Singing method ``festival``: Festival's singing mode (diphone voices) sings English words."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile

import numpy as np

from wavesep.corpus.singing.common import ENGLISH_WORDS, INSTALL, VOICES, _phrases, _place, _resample
from wavesep.errors import DependencyError


# ---------------------------------------------------------------------------- Festival

def check_available() -> None:
    """Raise DependencyError (with the install line) unless Festival and its voices are here."""
    if shutil.which("festival") is None or shutil.which("text2wave") is None:
        raise DependencyError(f"Festival is not installed; install it with: "
                              f"{INSTALL['festival']}")
    for v in VOICES["festival"]:
        if not glob.glob(f"/usr/share/festival/voices/*/{v}"):
            raise DependencyError(f"Festival voice {v} is not installed; install it with: "
                                  f"{INSTALL['festival']}")


def sing(name: str, notes: list, num_samples: int, sample_rate: int, rng,
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
