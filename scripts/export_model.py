"""Exports a training run's best checkpoint as a bundled model (weights, config, metadata only).

    python scripts/export_model.py runs/default wavesep/pretrained/default.pt --note "..."

The training state (optimiser, RNG) is dropped; the metadata keeps the run's preset, task,
dataset, training arguments and summary (step, epoch, validation loss) so that the bundled
file documents how it was made.
"""

import argparse

from wavesep import checkpoint
from wavesep.postfilter import POSTFILTERS


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="training run directory (its best.pt) or a checkpoint file")
    p.add_argument("out", help="destination .pt file")
    p.add_argument("--note", default="", help="free text stored in the metadata")
    p.add_argument("--postfilter", choices=POSTFILTERS,
                   help="post-filter that separate/evaluate apply by default with this model (wavesep.postfilter)")
    args = p.parse_args(argv)
    ckpt = checkpoint.load(args.run)
    model = checkpoint.model_from_checkpoint(ckpt, str(args.run))
    metadata = dict(ckpt.get("metadata", {}))
    summary = (ckpt.get("training") or {}).get("summary")
    if summary:
        metadata["training_summary"] = summary
    if args.note:
        metadata["note"] = args.note
    if args.postfilter:
        metadata["postfilter"] = args.postfilter
    path = checkpoint.save(args.out, model, metadata)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): {model.num_parameters():,} parameters, "
          f"sources {list(model.sources)}, {model.sample_rate} Hz")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
