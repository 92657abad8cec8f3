"""Evaluation metrics as pure functions on arrays (no file access)."""

from wavesep.metrics.bss import bss_eval_v4

__all__ = ["bss_eval_v4"]
