"""Training data: track discovery, the decoded-track cache, augmentation and the datasets.

- :mod:`.tracks`: which tracks a dataset has (MUSDB18 / MUSDB18-HQ via musdb, the synthetic
  corpus by its splits.json, folders of stems), as :class:`TrackSpec` lists; decodes nothing;
- :mod:`.cache`: each track decoded, resampled and converted once, then memory-mapped from disk;
- :mod:`.augment`: the augmentations of training windows (gain, channel swap, sign, remix);
- :mod:`.production`: the production chain of training windows (vocal chain, instrument colour,
  bus compression, limiting, loudness) that makes rendered songs sound more like records;
- :mod:`.datasets`: :class:`TrainWindows`, :class:`ValidationSet` and :func:`build_datasets`,
  the contract with :mod:`wavesep.training` (see there for shapes);
- :mod:`.rendered`: :class:`RenderedWindows`, training windows of songs rendered on the fly by a
  callable it is given (an endless training set that needs no disk).

Everything public is re-exported here (``from wavesep.data import build_datasets``).

May import: wavesep.audio (decoding), the shared basics (atomic, errors) and the model's task
constants (wavesep.model). It reads corpora from disk, or takes songs from a callable, and never
imports wavesep.corpus; training and evaluation import it, never the reverse.
"""

from wavesep.data.datasets import *  # noqa: F401,F403
from wavesep.data.datasets import __all__ as _datasets_all
from wavesep.data.rendered import RenderedWindows

__all__ = [*_datasets_all, "RenderedWindows"]
