import pytest
import torch
import torch.nn.functional as F

from wavesep.layers import (
    Decimate,
    DifferenceOutput,
    DirectOutput,
    DownBlock,
    LearnedUpsample,
    LinearUpsample,
    UpBlock,
    ZeroMeanConv1d,
    centre_crop,
    crop_and_concat,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ---------------------------------------------------------------- ZeroMeanConv1d


def test_zero_mean_kernel_sums_to_zero_per_channel_pair():
    conv = ZeroMeanConv1d(3, 5, 15)
    with torch.no_grad():
        conv.weight.add_(1.0)  # a raw weight far from zero mean
    sums = conv.effective_weight.sum(dim=-1)  # (F_out, F_in)
    assert sums.shape == (5, 3)
    assert torch.allclose(sums, torch.zeros_like(sums), atol=1e-5)  # float32 rounding of 15 taps ~1
    assert not torch.allclose(conv.weight.sum(dim=-1), torch.zeros(5, 3), atol=1e-3)


def test_zero_mean_conv_ignores_constant_offset():
    conv = ZeroMeanConv1d(2, 4, 15)
    x = torch.randn(3, 2, 200)
    offset = torch.tensor([0.7, -2.5]).view(1, 2, 1)  # a different constant per input channel
    assert torch.allclose(conv(x), conv(x + offset), atol=1e-5)
    # An unconstrained conv with the same raw weight does see the offset.
    plain = torch.nn.Conv1d(2, 4, 15)
    plain.load_state_dict(conv.state_dict())
    assert not torch.allclose(plain(x), plain(x + offset), atol=1e-3)


def test_zero_mean_conv_gradient_reaches_raw_weight():
    conv = ZeroMeanConv1d(2, 4, 15)
    x = torch.randn(2, 2, 100)
    conv(x).pow(2).sum().backward()
    g = conv.weight.grad
    assert g is not None and g.abs().sum() > 0
    # The gradient through W - mean(W) has zero sum over the taps.
    assert torch.allclose(g.sum(dim=-1), torch.zeros(4, 2), atol=1e-4)


def test_zero_mean_conv_is_a_drop_in_for_conv1d():
    conv = ZeroMeanConv1d(2, 4, 5, padding=2, bias=False)
    ref = F.conv1d(torch.ones(1, 2, 9), conv.effective_weight, padding=2)
    assert torch.allclose(conv(torch.ones(1, 2, 9)), ref)
    assert isinstance(conv, torch.nn.Conv1d)


# ---------------------------------------------------------------- resampling


@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_linear_upsample_valid_inserts_exact_midpoints(n):
    x = torch.randn(2, 3, n, dtype=torch.float64)
    y = LinearUpsample("valid")(x)
    assert y.shape[-1] == 2 * n - 1
    assert torch.equal(y[..., ::2], x)  # originals kept
    assert torch.allclose(y[..., 1::2], (x[..., :-1] + x[..., 1:]) / 2, rtol=0, atol=1e-15)


def test_linear_upsample_same_doubles_length_and_holds_the_end():
    x = torch.randn(1, 2, 10)
    y = LinearUpsample("same")(x)
    assert y.shape[-1] == 20
    assert torch.equal(y[..., ::2], x)
    assert torch.allclose(y[..., 1:-1:2], (x[..., :-1] + x[..., 1:]) / 2)
    assert torch.equal(y[..., -1], x[..., -1])


@pytest.mark.parametrize("mode", ["valid", "same"])
def test_learned_upsample_at_one_half_equals_linear(mode):
    x = torch.randn(2, 6, 33)
    learned = LearnedUpsample(6, mode)
    assert torch.all(torch.sigmoid(learned.logit) == 0.5)
    assert torch.equal(learned(x), LinearUpsample(mode)(x))


def test_learned_upsample_weights_per_feature():
    x = torch.randn(1, 2, 5)
    up = LearnedUpsample(2)
    with torch.no_grad():
        up.logit[:] = torch.tensor([[2.0], [-1.0]])
    w = torch.sigmoid(up.logit)  # (F, 1)
    y = up(x)
    assert torch.allclose(y[..., 1::2], w * x[..., :-1] + (1 - w) * x[..., 1:])
    y.sum().backward()
    assert up.logit.grad is not None and up.logit.grad.abs().sum() > 0


def test_decimate_keeps_every_other_sample_and_inverts_valid_upsampling_length():
    x = torch.arange(11.0).view(1, 1, 11)
    d = Decimate("valid")
    assert torch.equal(d(x), x[..., ::2])
    assert d.output_length(11) == 6
    for n in range(1, 40):
        assert d.output_length(LinearUpsample("valid").output_length(n)) == n
    with pytest.raises(ValueError):
        d.output_length(10)
    with pytest.raises(ValueError):
        Decimate("same").output_length(9)


# ---------------------------------------------------------------- crops


def test_centre_crop_and_concat():
    x = torch.arange(10.0).view(1, 1, 10)
    assert centre_crop(x, 6).flatten().tolist() == [2, 3, 4, 5, 6, 7]
    assert centre_crop(x, 7).flatten().tolist() == [1, 2, 3, 4, 5, 6, 7]  # odd difference: extra from end
    with pytest.raises(ValueError):
        centre_crop(x, 11)
    skip = torch.randn(2, 3, 20)
    y = torch.randn(2, 4, 16)
    out = crop_and_concat(skip, y)
    assert out.shape == (2, 7, 16)
    assert torch.equal(out[:, :3], skip[..., 2:18]) and torch.equal(out[:, 3:], y)


# ---------------------------------------------------------------- blocks and length arithmetic


@pytest.mark.parametrize("mode", ["valid", "same"])
def test_block_lengths_match_forward_and_inverse(mode):
    down = DownBlock(2, 8, 15, mode)
    up = UpBlock(8, 8, 8, 5, mode)
    for want in [1, 5, 16, 33]:
        n = down.input_length(want)
        assert down.output_length(n) >= want
        feats, skip = down(torch.randn(1, 2, n))
        assert feats.shape[-1] == down.output_length(n)
        assert skip.shape[-1] == down.skip_length(n)
        m = up.input_length(want)
        assert up.output_length(m) >= want
        big_skip = torch.randn(1, 8, up.upsampled_length(m) + 4)
        assert up(torch.randn(1, 8, m), big_skip).shape[-1] == up.output_length(m)
    # the inverse is the smallest such input
    n = down.input_length(20)
    if mode == "valid":
        with pytest.raises(ValueError):
            down.output_length(n - 1)  # even length before decimation
        assert down.output_length(n - 2) < 20


def test_difference_head_sums_exactly_to_cropped_mixture():
    head = DifferenceOutput(in_channels=6, audio_channels=2, num_sources=4)
    feats = torch.randn(3, 6, 50, dtype=torch.float64)
    mix = torch.randn(3, 2, 70, dtype=torch.float64)
    head = head.double()
    y = head(feats, mix)
    assert y.shape == (3, 4, 2, 50)
    assert torch.allclose(y.sum(dim=1), centre_crop(mix, 50), rtol=0, atol=1e-12)
    assert sum(p.numel() for p in head.parameters()) == (6 + 2) * 2 * 3 + 2 * 3


def test_direct_head_shapes_and_activation():
    head = DirectOutput(in_channels=6, audio_channels=1, num_sources=2, activation="tanh")
    linear = DirectOutput(in_channels=6, audio_channels=1, num_sources=2, activation="linear")
    linear.load_state_dict(head.state_dict())
    feats, mix = torch.randn(2, 6, 10) * 5, torch.randn(2, 1, 14)
    y = head(feats, mix)
    assert y.shape == (2, 2, 1, 10)
    z = linear(feats, mix)
    assert z.abs().max() > 1  # the test input drives the pre-activation beyond the tanh range
    assert torch.allclose(y, torch.tanh(z))


@pytest.mark.parametrize("kwargs", [{}, {"padding": 3}, {"stride": 2}, {"dilation": 3, "padding": "same"},
                                    {"stride": 3, "dilation": 2, "padding": 1}])
def test_zero_mean_conv_length_arithmetic_matches_forward(kwargs):
    conv = ZeroMeanConv1d(1, 2, 7, **kwargs)
    for n in range(conv.input_length(1), 60):
        assert conv(torch.randn(1, 1, n)).shape[-1] == conv.output_length(n)
    for want in [1, 5, 20]:
        m = conv.input_length(want)
        assert conv.output_length(m) >= want
        assert m == 1 or conv.input_length(1) > m - 1 or conv.output_length(m - 1) < want
    if not kwargs:
        with pytest.raises(ValueError):
            conv.output_length(6)


@pytest.mark.parametrize("mode", ["valid", "same"])
@pytest.mark.parametrize("upsampling", ["linear", "learned"])
def test_up_block_inference_path_equals_the_concatenating_one(mode, upsampling):
    # Without autograd, UpBlock writes the skip and the upsampled features into one buffer; with
    # it, it upsamples and concatenates. The two must agree (to float rounding, here exactly).
    torch.manual_seed(0)
    block = UpBlock(6, 5, 7, kernel_size=5, mode=mode, upsampling=upsampling)
    if upsampling == "learned":
        with torch.no_grad():
            block.upsample.logit.normal_()
    x = torch.randn(2, 6, 33)
    skip = torch.randn(2, 5, 80 if mode == "valid" else 66)
    with torch.enable_grad():
        reference = block(x, skip).detach()
    with torch.inference_mode():
        fast = block(x, skip)
    assert fast.shape == reference.shape
    assert (fast - reference).abs().max() <= 1e-6


def test_whole_network_inference_path_equals_training_path():
    from wavesep import WaveUNet, presets

    torch.manual_seed(0)
    model = WaveUNet(presets.get("tiny")).eval()
    mix = torch.randn(2, 2, model.input_length(3000))
    with torch.enable_grad():
        reference = model(mix).detach()
    with torch.no_grad():
        assert (model(mix) - reference).abs().max() <= 1e-5
