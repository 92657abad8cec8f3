"""Averages the weights of checkpoints of one network (a model soup, or WiSE-FT interpolation).

    python scripts/average_weights.py OUT.pt runs/x-e1.pt runs/x-e2.pt               # uniform soup
    python scripts/average_weights.py OUT.pt wavesep/pretrained/default.pt runs/x-e1.pt --weights 0.5 0.5

Writes OUT.pt (weights, config and metadata only; the first checkpoint's metadata plus
``averaged_from``), atomically; it never replaces one of its inputs.
"""

import argparse
import sys
from pathlib import Path

from wavesep import checkpoint
from wavesep.errors import WavesepError
from wavesep.training.averaging import average_checkpoints


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", help="destination .pt file")
    p.add_argument("checkpoints", nargs="+", help="checkpoint files or run folders (same network)")
    p.add_argument("--weights", nargs="+", type=float, default=[],
                   help="one factor per checkpoint, normalised to sum 1 (default: uniform)")
    args = p.parse_args(argv)
    out = Path(args.out)
    try:
        if any(out.resolve() == checkpoint.resolve(c).resolve() for c in args.checkpoints):
            raise WavesepError(f"{out} is one of the inputs; choose another output file")
        model, metadata = average_checkpoints(args.checkpoints, args.weights)
        path = checkpoint.save(out, model, metadata)
    except WavesepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    shares = ", ".join(f"{Path(c).name} {w:.3g}" for c, w in metadata["averaged_from"])
    print(f"wrote {path}: {shares}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
