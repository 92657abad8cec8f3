"""Training: the paper's two-stage recipe with exact resume, DDP and logging, and its command line.

- :mod:`.config`: :class:`TrainConfig` (the recipe) and :class:`TrainResult` (how a run ended);
- :mod:`.loop`: :func:`train`, the loop itself (stages, early stopping, checkpoints, history);
- :mod:`.validation`: :func:`evaluate`, the validation loss and SDR;
- :mod:`.distributed`, :mod:`.rng`: devices and process groups; random states of a run;
- :mod:`.averaging`: weight averaging of checkpoints (model soups, WiSE-FT);
- :mod:`.cli`: ``python train.py``, ``wavesep train``, ``wavesep-train``.

May import: the network (wavesep.model, wavesep.grow), wavesep.checkpoint, the shared basics,
wavesep.apply and wavesep.metrics (for validation SDR), and wavesep.data and wavesep.corpus (the
command line only: datasets, and the song stream of --render; the loop takes any datasets
following its contract). Nothing else imports this wing, apart from
the command shims (wavesep.train, wavesep.cli).
"""

from wavesep.training.cli import build_datasets_from_args, build_parser, main, parse_args
from wavesep.training.config import HISTORY_NAME, STAGES, TrainConfig, TrainResult
from wavesep.training.distributed import resolve_device, setup_distributed
from wavesep.training.loop import train
from wavesep.training.validation import evaluate

__all__ = ["HISTORY_NAME", "STAGES", "TrainConfig", "TrainResult", "build_datasets_from_args",
           "build_parser", "evaluate", "main", "parse_args", "resolve_device", "setup_distributed",
           "train"]
