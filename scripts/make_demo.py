"""Regenerates wavesep/resources/demo.flac, the demo song of the README's first command.

It renders held-out test song 1 of the sampled corpus (seed 0, 48 s songs, the same song as
`sampled-s0-test-0001` in the default model's corpus: a piece never used for training) and keeps
an excerpt with singing, as 16-bit FLAC at 44.1 kHz stereo (under 1 MB).

    python scripts/make_demo.py [--out wavesep/resources/demo.flac] [--start 20 --seconds 8]

Needs the sampled renderer's packages (README: "Rendered corpus").
"""

import argparse
import tempfile
from pathlib import Path

from wavesep import audio
from wavesep.corpus import command as synth


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "wavesep/resources/demo.flac"))
    p.add_argument("--start", type=float, default=20.0, help="excerpt start (s)")
    p.add_argument("--seconds", type=float, default=8.0, help="excerpt length (s)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        synth.build_corpus(tmp, tracks=0, seconds=48, seed=0, valid_tracks=0, test_tracks=2, renderer="sampled")
        mix, rate = audio.read(Path(tmp) / "test/sampled-s0-test-0001/mixture.wav")
    a, n = int(args.start * rate), int(args.seconds * rate)
    path = audio.write(args.out, mix[:, a : a + n], rate, subtype="PCM_16")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, {n / rate:.1f} s at {rate} Hz)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
