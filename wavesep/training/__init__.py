"""Training: the loop, its configuration, distributed set-up and the command line."""

from wavesep.training.loop import (
    HISTORY_NAME,
    STAGES,
    TrainConfig,
    TrainResult,
    build_datasets_from_args,
    build_parser,
    evaluate,
    main,
    parse_args,
    resolve_device,
    setup_distributed,
    train,
)

__all__ = ["HISTORY_NAME", "STAGES", "TrainConfig", "TrainResult", "build_datasets_from_args",
           "build_parser", "evaluate", "main", "parse_args", "resolve_device", "setup_distributed",
           "train"]
