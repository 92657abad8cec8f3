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
Gradually is slow: with Adam a weight moves about one learning rate per step, and less when its
gradient's sign wanders, so after 750 steps at lr 1e-4 the weights from the new channels into
the trained ones of a widened ``deep`` had an RMS of 0.001-0.002 against the trained blocks'
0.014-0.048 (benchmarks/RESULTS.md, eleventh session): the network still followed its narrow
function.

- Width by duplication (``widen="duplicate"``, Net2WiderNet of Chen, Goodfellow and Shlens, 2016;
  same number of levels only). Each new channel of a feature tensor copies a trained channel
  chosen at random: its incoming weights and bias are that channel's (times ``1 + noise * N(0, 1)``
  per weight, which breaks the copies' symmetry), and every weight reading a copied channel is
  divided by the number of its copies, so with ``noise=0`` the network computes exactly the
  trained function (up to rounding, through LeakyReLU too) and every channel carries signal from
  the first step.
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


WIDEN_MODES = ("zero", "duplicate")


def _channel_map(n_source: int, n_target: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(g, scale): target channel c copies source channel g[c] (the first n_source map to
    themselves, the rest to random ones); scale[c] = 1 / (number of target channels copying g[c])."""
    extra = torch.randint(0, n_source, (n_target - n_source,), generator=generator)
    g = torch.cat([torch.arange(n_source), extra])
    counts = torch.bincount(g, minlength=n_source).to(torch.float64)
    return g, (1.0 / counts)[g]


def _duplicate_conv(target, source, rows, parts, noise: float, generator: torch.Generator) -> None:
    """target.weight (O_t, I_t, K) = source.weight[g_out] read through each input part's map:
    ``rows`` = (g_out, n_source_out) or None for the identity; ``parts`` = list of (source offset,
    (g, scale)) in the order of the target's concatenated inputs. New rows get multiplicative noise."""
    ws = source.weight.detach().to(torch.float64)  # (O_s, I_s, K)
    cols, scales = [], []
    for offset, (g, scale) in parts:
        cols.append(offset + g)
        scales.append(scale)
    cols, scales = torch.cat(cols), torch.cat(scales)
    g_out = rows[0] if rows is not None else torch.arange(ws.shape[0])
    w = ws[g_out][:, cols] * scales[None, :, None]  # (O_t, I_t, K)
    n_trained = rows[1] if rows is not None else ws.shape[0]
    if noise and w.shape[0] > n_trained:
        w[n_trained:] *= 1 + noise * torch.randn(w[n_trained:].shape, generator=generator, dtype=torch.float64)
    target.weight.copy_(w.to(target.weight.dtype))
    if source.bias is not None:
        target.bias.copy_(source.bias.detach()[g_out])


def _duplicate_width(target: WaveUNet, source: WaveUNet, noise: float, seed: int) -> WaveUNet:
    a, b = source.config, target.config
    if a.levels != b.levels:
        raise ValueError(f"widening by duplication keeps the levels ({a.levels} vs {b.levels}); "
                         "grow the depth first with widen='zero'")
    generator = torch.Generator().manual_seed(seed)
    levels = a.levels
    identity = lambda n: (torch.arange(n), torch.ones(n, dtype=torch.float64))  # noqa: E731
    # feature tensors: D_i = down level i's output, U_i = up level i's, B = the bottleneck's
    down = {i: _channel_map(a.level_filters(i), b.level_filters(i), generator) for i in range(1, levels + 1)}
    up = {i: _channel_map(a.level_filters(i), b.level_filters(i), generator) for i in range(1, levels + 1)}
    up[levels + 1] = _channel_map(a.level_filters(levels + 1), b.level_filters(levels + 1), generator)  # B
    for i in range(levels):  # down block of level i + 1 reads the audio or D_i
        inputs = identity(a.channels) if i == 0 else down[i]
        _duplicate_conv(target.downs[i].conv, source.downs[i].conv, (down[i + 1][0], a.level_filters(i + 1)),
                        [(0, inputs)], noise, generator)
    _duplicate_conv(target.bottleneck, source.bottleneck, (up[levels + 1][0], a.level_filters(levels + 1)),
                    [(0, down[levels])], noise, generator)
    for k in range(levels):  # ups run deepest first; level's input = [D_level, U_{level+1} upsampled]
        level = levels - k
        tu, su = target.ups[k], source.ups[k]
        _duplicate_conv(tu.conv, su.conv, (up[level][0], a.level_filters(level)),
                        [(0, down[level]), (a.level_filters(level), up[level + 1])], noise, generator)
        for name, p in su.upsample.named_parameters():  # one row per feature of U_{level+1}
            getattr(tu.upsample, name).copy_(p.detach()[up[level + 1][0]])
    _duplicate_conv(target.head.conv, source.head.conv, None,
                    [(0, identity(a.channels)), (a.channels, up[1])], noise, generator)
    return target


@torch.no_grad()
def init_from(target: WaveUNet, source: WaveUNet, widen: str = "zero", noise: float = 0.0,
              seed: int = 0) -> WaveUNet:
    """Copies ``source``'s weights into ``target`` (same size: all of them; more levels or wider
    levels: as described in the module docstring). ``widen``: "zero" (new channels start with zero
    weight into the trained ones) or "duplicate" (new channels copy trained ones, same levels only;
    ``noise``: relative noise on the copies' incoming weights, ``seed``: which channels are copied
    and the noise). Returns ``target``; raises ValueError if incompatible."""
    if widen not in WIDEN_MODES:
        raise ValueError(f"widen must be one of {WIDEN_MODES}, not {widen!r}")
    check_compatible(source, target)
    if widen == "duplicate":
        return _duplicate_width(target, source, noise, seed)
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
