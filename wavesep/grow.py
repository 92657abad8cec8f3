"""Warm starts: initialise a Wave-U-Net from a trained one of the same or a smaller depth.

A network with more levels has a longer context but costs more to train from scratch. When a
trained network has the same widths (``filters``, ``growth``) and fewer levels, its weights map
onto the deeper network level by level, so the deeper one starts close to the trained function:

- down blocks 1..L and the output head are copied;
- the small network's bottleneck (level L + 1, kernel ``down_kernel``, ``F_L -> F_{L+1}``) has the
  shape of the deep network's down block L + 1 and is copied there;
- the small network's up block of level i is copied to the deep network's up block of level i;
- the new up block of level L + 1 passes its skip (the copied bottleneck's features) through a
  centre-tap identity and gives the new, deeper features zero weight, so at the start the
  decoder sees the small network's bottleneck output (after one extra LeakyReLU, which only
  changes negative values); the deeper levels and the new bottleneck keep their random weights.

Gradients reach the zero weights, so training opens the new context gradually.
"""

from __future__ import annotations

import torch

from .model import WaveUNet

# Fields that must agree for weights to carry over (levels may grow).
_SAME = ("sources", "channels", "filters", "growth", "down_kernel", "up_kernel", "upsampling", "conv_mode",
         "output", "output_activation", "zero_mean_first", "sample_rate")


def check_compatible(source: WaveUNet, target: WaveUNet) -> None:
    """ValueError naming the differences when ``source`` cannot initialise ``target``."""
    a, b = source.config, target.config
    diffs = [f"{k} {getattr(a, k)!r} vs {getattr(b, k)!r}" for k in _SAME if getattr(a, k) != getattr(b, k)]
    if b.levels < a.levels:
        diffs.append(f"levels {a.levels} > {b.levels} (a network can only grow)")
    if b.levels > a.levels and a.conv_mode != "valid":
        diffs.append("growing needs conv_mode 'valid'")
    if diffs:
        raise ValueError("the trained model cannot initialise this one: " + "; ".join(diffs))


@torch.no_grad()
def init_from(target: WaveUNet, source: WaveUNet) -> WaveUNet:
    """Copies ``source``'s weights into ``target`` (same levels: all of them; fewer levels: as
    described in the module docstring). Returns ``target``; raises ValueError if incompatible."""
    check_compatible(source, target)
    small, deep = source.config.levels, target.config.levels
    if small == deep:
        target.load_state_dict(source.state_dict())
        return target
    for i in range(small):
        target.downs[i].load_state_dict(source.downs[i].state_dict())
    target.downs[small].conv.load_state_dict(source.bottleneck.state_dict())
    # ups run deepest first: source.ups[k] is level small - k, target.ups[k + deep - small] the same level.
    for k in range(small):
        target.ups[k + deep - small].load_state_dict(source.ups[k].state_dict())
    target.head.load_state_dict(source.head.state_dict())
    bridge = target.ups[deep - small - 1].conv  # level small + 1: input = [skip (F_{small+1}), deeper]
    features = target.config.level_filters(small + 1)
    weight = torch.zeros_like(bridge.weight)  # (F_out = F_{small+1}, F_skip + F_deeper, K)
    centre = weight.shape[-1] // 2
    weight[torch.arange(features), torch.arange(features), centre] = 1.0
    bridge.weight.copy_(weight)
    bridge.bias.zero_()
    return target
