"""Warm starts (wavesep.grow): copying and growing trained weights."""

import pytest
import torch

from wavesep import WaveUNet, WaveUNetConfig
from wavesep.grow import init_from

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _net(levels, seed, filters=6, growth=4, **changes):
    torch.manual_seed(seed)
    model = WaveUNet(WaveUNetConfig(levels=levels, filters=filters, growth=growth, **changes))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.3)  # far from the default initialisation
    return model.eval()


def _outputs(small, deep, output_samples=300, seed=0, dtype=torch.float32):
    """Both networks on the same audio: (small's, deep's) estimates (B, S, C, T) of the same
    output samples. Small's input starts a multiple of 2**levels into deep's, so that both
    decimate the same samples."""
    n_small, n_deep = small.input_length(output_samples), deep.input_length(output_samples)
    x = torch.randn(2, 2, n_deep, generator=torch.Generator().manual_seed(seed), dtype=dtype)  # (B, C, T)
    stride = 2**small.config.levels
    pad = (n_deep - n_small) // 2 // stride * stride
    with torch.no_grad():
        a, b = small(x[..., pad : pad + n_small]), deep(x)
    shift = pad + small.context[0] - deep.context[0]  # deep's output index of small's output 0
    assert shift >= 0 and shift + a.shape[-1] <= b.shape[-1]
    return a, b[..., shift : shift + a.shape[-1]]


def test_same_levels_copies_every_weight():
    small, other = _net(4, 0), _net(4, 1)
    init_from(other, small)
    a, b = _outputs(small, other)
    assert torch.equal(a, b)


@pytest.mark.parametrize("upsampling", ["linear", "learned"])
@pytest.mark.parametrize("extra", [1, 2])
def test_growing_preserves_the_function_when_the_activation_is_linear(upsampling, extra):
    # With slope 1 the extra LeakyReLU of the bridge block is the identity, so the grown network
    # must compute exactly the small one: a closed-form check of the level-by-level mapping.
    small = _net(3, 0, negative_slope=1.0, upsampling=upsampling)
    deep = _net(3 + extra, 1, negative_slope=1.0, upsampling=upsampling)
    init_from(deep, small)
    a, b = _outputs(small, deep)
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_growing_with_leaky_relu_starts_close_and_leaves_the_new_levels_trainable():
    torch.manual_seed(0)
    small = WaveUNet(WaveUNetConfig(levels=3, filters=6, growth=4)).eval()  # default initialisation
    deep = WaveUNet(WaveUNetConfig(levels=5, filters=6, growth=4)).eval()
    a, b = _outputs(small, deep)
    error_random = (b - a).pow(2).sum()
    init_from(deep, small)
    a, b = _outputs(small, deep)
    # only negative bottleneck features differ (one extra LeakyReLU): close, not equal
    assert not torch.equal(a, b)
    assert (b - a).pow(2).sum() < 1e-3 * error_random
    # gradients reach the new levels through the zero-initialised bridge weights
    x = torch.randn(1, 2, deep.input_length(100))
    deep(x).pow(2).mean().backward()
    bridge = deep.ups[1].conv.weight.grad  # level 4: [skip (F_4), deeper features]
    assert bridge[:, deep.config.level_filters(4) :].abs().sum() > 0


@pytest.mark.parametrize("upsampling", ["linear", "learned"])
@pytest.mark.parametrize("output", ["difference", "direct"])
@pytest.mark.parametrize("zero_mean_first", [False, True])
@pytest.mark.parametrize("widen", ["zero", "duplicate"])
def test_widening_computes_exactly_the_trained_function(upsampling, output, zero_mean_first, widen):
    # "zero": new channels only feed zero weights, whatever the activation. "duplicate"
    # (Net2WiderNet, no noise): a copy h_k = h_j of a channel, read with weight w / 2 by both,
    # gives w h_j again, through LeakyReLU too. Either way the output must not change (in float64,
    # so that only rounding of the order of 1e-12 is left).
    opts = dict(upsampling=upsampling, output=output, zero_mean_first=zero_mean_first)
    narrow = _net(3, 0, **opts).double()
    wide = _net(3, 1, filters=9, growth=7, **opts).double()
    a, b = _outputs(narrow, wide, dtype=torch.float64)
    assert not torch.allclose(a, b)
    init_from(wide, narrow, widen=widen, seed=3)
    a, b = _outputs(narrow, wide, dtype=torch.float64)
    torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("upsampling", ["linear", "learned"])
def test_growing_deeper_and_wider_at_once_preserves_the_function_when_linear(upsampling):
    small = _net(3, 0, negative_slope=1.0, upsampling=upsampling).double()
    big = _net(5, 1, filters=8, growth=6, negative_slope=1.0, upsampling=upsampling).double()
    init_from(big, small)
    a, b = _outputs(small, big, dtype=torch.float64)
    torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-10)


def test_widened_channels_start_silent_and_receive_gradients():
    narrow = _net(3, 0)
    wide = _net(3, 1, filters=8, growth=6)
    init_from(wide, narrow)
    up = wide.ups[0].conv  # level 3: [skip (F_3 = 20 of which 14 trained), bottleneck (26, 18 trained)]
    trained_out = narrow.config.level_filters(3)
    new_skip = slice(narrow.config.level_filters(3), wide.config.level_filters(3))
    assert up.weight[:trained_out, new_skip].abs().sum() == 0  # new channels feed trained ones nothing
    assert up.weight[trained_out:].abs().sum() > 0  # new outputs keep their random weights
    x = torch.randn(1, 2, wide.input_length(100))
    wide.train()
    wide(x).pow(2).mean().backward()
    assert up.weight.grad[:trained_out, new_skip].abs().sum() > 0  # training can open them


def test_duplicated_channels_carry_signal_from_the_start_and_noise_breaks_their_symmetry():
    narrow = _net(3, 0).double()
    exact, noisy = _net(3, 1, filters=8, growth=6).double(), _net(3, 1, filters=8, growth=6).double()
    init_from(exact, narrow, widen="duplicate", seed=3)
    init_from(noisy, narrow, widen="duplicate", noise=0.01, seed=3)
    up = exact.ups[0].conv  # level 3: [skip (F_3 = 20 of which 14 trained), bottleneck (26, 18 trained)]
    trained_out = narrow.config.level_filters(3)  # also the trained skip channels
    new_skip = slice(trained_out, exact.config.level_filters(3))
    assert (up.weight[:trained_out, new_skip].abs().sum(dim=(0, 2)) > 0).all()  # every new channel is read
    # each new output row is a trained row (read through the input maps), and the noise changes it
    assert not torch.equal(noisy.ups[0].conv.weight[trained_out:], up.weight[trained_out:])
    torch.testing.assert_close(noisy.ups[0].conv.weight[:trained_out], up.weight[:trained_out])
    a, b = _outputs(narrow, noisy, dtype=torch.float64)
    change = (b - a).pow(2).sum() / a.pow(2).sum()
    assert 0 < change < 1e-3  # close to the trained function (1% noise), not equal to it
    # the seed picks the copied channels
    other = _net(3, 1, filters=8, growth=6).double()
    init_from(other, narrow, widen="duplicate", seed=4)
    assert not torch.equal(other.ups[0].conv.weight, up.weight)


def test_widening_by_duplication_keeps_the_levels_and_unknown_modes_are_refused():
    with pytest.raises(ValueError, match="keeps the levels"):
        init_from(_net(4, 1, filters=8, growth=6), _net(3, 0), widen="duplicate")
    with pytest.raises(ValueError, match="widen must be one of"):
        init_from(_net(3, 1), _net(3, 0), widen="random")


@pytest.mark.parametrize(
    "changes, words",
    [
        (dict(filters=4), "filters 6 > 4"),
        (dict(growth=2), "growth 4 > 2"),
        (dict(down_kernel=9), "down_kernel 15 vs 9"),
        (dict(sources=("a", "b", "c")), "sources"),
        (dict(sample_rate=44100), "sample_rate"),
        (dict(levels=2), "can only grow"),
    ],
)
def test_incompatible_networks_are_refused_with_the_differences(changes, words):
    small = _net(3, 0)
    config = dict(levels=4, filters=6, growth=4)
    config.update(changes)
    with pytest.raises(ValueError, match=words):
        init_from(WaveUNet(WaveUNetConfig(**config)), small)
