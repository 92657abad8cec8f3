"""Evaluation metrics as pure functions on arrays (no file access).

- :func:`bss_eval_v4`: BSS Eval v4 (SDR, ISR, SIR, SAR per 1 s frame), matching museval.
- :mod:`wavesep.metrics.musical_noise`: isolated-peak spot rate and kurtosis ratio.
- :mod:`wavesep.metrics.oracle`: ideal ratio mask (IRM2) oracle estimates.
- :mod:`wavesep.metrics.aggregate`: museval-format JSON and SiSEC 2018 aggregation.
"""

from wavesep.metrics import aggregate, musical_noise, oracle
from wavesep.metrics.bss import bss_eval_v4

__all__ = ["bss_eval_v4", "musical_noise", "oracle", "aggregate"]
