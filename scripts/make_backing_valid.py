"""Writes a validation folder of rendered vocals over real, held-out backing recordings.

    python scripts/make_backing_valid.py --corpus corpora/sampled10h --backing corpora/backing \
        --out corpora/backing-valid
    wavesep-evaluate --stems corpora/backing-valid --model default --out results-backing-valid

Each validation song of the rendered corpus (its ``valid`` split) gives one track: 20 s of its
vocals (from 14 s on) and, as the accompaniment, 20 s of one of the backing recordings that
``train.py --backing`` holds out (the stems layout's validation share; song k gets held-out
recording k mod their number, from 30% of its length on), scaled to the RMS of the song's own
accompaniment over the same 20 s. Files: ``OUT/<song>/vocals.wav``, ``accompaniment.wav`` and
``mixture.wav`` (their sum), 22.05 kHz stereo float32. A model trained with ``--backing`` never
saw these recordings, and no model saw these vocals.
"""

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from wavesep.data import list_tracks

START_SECONDS = 14.0
SECONDS = 20.0
RATE = 22050


def _read(path, start_seconds, rate=RATE):
    info = sf.info(str(path))
    start = int(start_seconds * info.samplerate)
    x, r = sf.read(str(path), start=start, frames=int(SECONDS * info.samplerate), dtype="float32", always_2d=True)
    if x.shape[1] == 1:
        x = np.repeat(x, 2, axis=1)
    if r != rate:
        x = soxr.resample(x, r, rate).astype(np.float32)
    n = int(SECONDS * rate)
    return np.pad(x, ((0, max(0, n - len(x))), (0, 0)))[:n]  # (T, 2)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", required=True, help="rendered corpus (python -m wavesep.synth)")
    p.add_argument("--backing", required=True, help="backing folder (python -m wavesep.corpus.backing)")
    p.add_argument("--out", required=True, help="output stems folder")
    args = p.parse_args(argv)
    songs = list_tracks("synthetic", args.corpus, "valid")
    held = list_tracks("stems", args.backing, "valid", sources=("accompaniment",))
    out = Path(args.out)
    for k, song in enumerate(songs):
        stems = {name: ref.path for name, ref in zip(song.stem_names, song.stems)}
        vocals = _read(stems["vocals"], START_SECONDS)
        acc = sum(_read(stems[s], START_SECONDS) for s in song.stem_names if s != "vocals")
        rec = held[k % len(held)]
        length = sf.info(rec.stems[0].path).duration
        backing = _read(rec.stems[0].path, 0.3 * length)
        scale = np.sqrt(np.mean(acc.astype(np.float64) ** 2) / max(np.mean(backing.astype(np.float64) ** 2), 1e-20))
        backing = (backing * scale).astype(np.float32)
        folder = out / song.name
        folder.mkdir(parents=True, exist_ok=True)
        for name, x in (("vocals", vocals), ("accompaniment", backing), ("mixture", vocals + backing)):
            sf.write(folder / f"{name}.wav", x, RATE, subtype="FLOAT")
        print(f"{song.name}: vocals over {rec.name} (x {scale:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
