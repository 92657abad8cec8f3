"""Train a Wave-U-Net separator: ``python train.py --help`` (see :mod:`wavesep.train`).

Under torchrun (``torchrun --nproc_per_node=N train.py ...``) it trains with DistributedDataParallel.
"""

from wavesep.train import main

if __name__ == "__main__":
    raise SystemExit(main())
