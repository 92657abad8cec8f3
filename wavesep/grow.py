"""Warm starts: initialise a Wave-U-Net from a trained one of the same or a smaller size.

A larger network costs more to train from scratch. When a trained network has fewer levels
(a shorter context) or narrower levels (fewer feature channels), its weights map onto the larger
one so that it starts from (nearly) the trained function:

- Depth. Down blocks 1..L and the output head are copied; the small network's bottleneck (level
  L + 1, kernel ``down_kernel``, ``F_L -> F_{L+1}``) has the shape of the deep network's down
  block L + 1 and is copied there; the small network's up block of level i is copied to the deep
  network's up block of level i; the new up block of level L + 1 passes its skip (the copied
  bottleneck's features) through a centre-tap identity and gives the new, deeper features zero
  weight, so at the start the decoder sees the small network's bottleneck output (after one
  extra LeakyReLU, which only changes negative values); the deeper levels and the new
  bottleneck keep their random weights.
- Width (``filters`` and ``growth`` at least the trained network's). Every convolution's trained
  weights fill the first output channels and the trained input channels of each concatenated
  part (an up block's skip, then its upsampled features; the head's mixture, then its
  features). The new output channels keep their random weights and every weight from a new
  channel into a trained one is zero, so the new channels do not change the output: the wider
  network computes exactly the trained function.

Gradients reach the zero weights, so training opens the new context and channels gradually.
"""

from __future__ import annotations

import torch

from .model import WaveUNet

# Fields that must agree for weights to carry over (levels, filters and growth may grow).
_SAME = ("sources", "channels", "down_kernel", "up_kernel", "upsampling", "conv_mode",
         "output", "output_activation", "zero_mean_first", "sample_rate")


def check_compatible(source: WaveUNet, target: WaveUNet) -> None:
    """ValueError naming the differences when ``source`` cannot initialise ``target``."""
    a, b = source.config, target.config
    diffs = [f"{k} {getattr(a, k)!r} vs {getattr(b, k)!r}" for k in _SAME if getattr(a, k) != getattr(b, k)]
    if b.levels < a.levels:
        diffs.append(f"levels {a.levels} > {b.levels} (a network can only grow)")
    if b.levels > a.levels and a.conv_mode != "valid":
        diffs.append("growing needs conv_mode 'valid'")
    for name in ("filters", "growth"):
        if getattr(b, name) < getattr(a, name):
            diffs.append(f"{name} {getattr(a, name)} > {getattr(b, name)} (a network can only grow)")
    if diffs:
        raise ValueError("the trained model cannot initialise this one: " + "; ".join(diffs))


def _copy_conv(target, source, parts) -> None:
    """Copies ``source``'s weights (O_s, I_s, K) and bias into ``target``'s first O_s output
    channels. ``parts`` lists the input blocks as (source offset, target offset, channels); the
    target's other input channels of those outputs get zero weight, its other outputs are kept."""
    w, ws = target.weight, source.weight  # (O_t, I_t, K), (O_s, I_s, K)
    out = ws.shape[0]
    w[:out].zero_()
    for s0, t0, n in parts:
        w[:out, t0 : t0 + n] = ws[:, s0 : s0 + n]
    if source.bias is not None:
        target.bias[:out] = source.bias


def _copy_upsample(target, source) -> None:
    """Learned upsampling weights (one row per feature) go to the first features; linear has none."""
    for name, p in source.upsample.named_parameters():
        getattr(target.upsample, name)[: p.shape[0]] = p


@torch.no_grad()
def init_from(target: WaveUNet, source: WaveUNet) -> WaveUNet:
    """Copies ``source``'s weights into ``target`` (same size: all of them; more levels or wider
    levels: as described in the module docstring). Returns ``target``; raises ValueError if
    incompatible."""
    check_compatible(source, target)
    a, b = source.config, target.config
    small, deep = a.levels, b.levels
    if (small, a.filters, a.growth) == (deep, b.filters, b.growth):
        target.load_state_dict(source.state_dict())
        return target
    fa, fb = a.level_filters, b.level_filters  # channels of a level, 1-based; levels + 1 = bottleneck
    for i in range(small):  # down block of level i + 1: input = the audio or level i's features
        n_in = a.channels if i == 0 else fa(i)
        _copy_conv(target.downs[i].conv, source.downs[i].conv, [(0, 0, n_in)])
    bottleneck = target.downs[small].conv if deep > small else target.bottleneck
    _copy_conv(bottleneck, source.bottleneck, [(0, 0, fa(small))])
    # ups run deepest first: source.ups[k] is level small - k, target.ups[k + deep - small] the same level.
    for k in range(small):
        level = small - k
        tu, su = target.ups[k + deep - small], source.ups[k]
        # input = [skip (F_level), upsampled features of level + 1]
        _copy_conv(tu.conv, su.conv, [(0, 0, fa(level)), (fa(level), fb(level), fa(level + 1))])
        _copy_upsample(tu, su)
    _copy_conv(target.head.conv, source.head.conv, [(0, 0, a.channels), (a.channels, b.channels, fa(1))])
    if deep > small:
        bridge = target.ups[deep - small - 1].conv  # level small + 1: input = [skip (F_{small+1}), deeper]
        weight = torch.zeros_like(bridge.weight)  # (F_out, F_skip + F_deeper, K)
        centre = weight.shape[-1] // 2
        features = fa(small + 1)  # the copied bottleneck's trained features
        weight[torch.arange(features), torch.arange(features), centre] = 1.0
        bridge.weight.copy_(weight)
        bridge.bias.zero_()
    return target
