import pytest
import torch
import torch.nn.functional as F

from wavesep import WaveUNet, WaveUNetConfig, presets
from wavesep.layers import DownBlock, centre_crop
from wavesep.model import MULTI_TASK, VOCALS_TASK

# The paper's table (REFERENCE.md section 1): sample rate, channels, sources, input, output, params.
PAPER = {
    "M1": (22050, 1, 2, 16384, 16384, 10_263_028),
    "M2": (22050, 1, 2, 16384, 16384, 10_263_002),
    "M3": (22050, 1, 2, 147443, 16389, 10_263_002),
    "M4": (22050, 2, 2, 147443, 16389, 10_263_390),
    "M5": (22050, 2, 2, 147443, 16389, 10_265_550),
    "M6": (22050, 2, 4, 147443, 16389, 10_263_498),
    "M5-HighSR": (44100, 2, 2, 147443, 16389, 10_265_550),
}


def small_config(**changes) -> WaveUNetConfig:
    """A 4-level network: fast, with the same structure as the paper's."""
    base = dict(levels=4, filters=6, growth=4, down_kernel=15, up_kernel=5)
    base.update(changes)
    return WaveUNetConfig(**base)


def randomised(model: WaveUNet) -> WaveUNet:
    """Re-draws all parameters (incl. learned-upsampling logits) so outputs are far from trivial."""
    torch.manual_seed(1234)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    return model.eval()


@pytest.mark.parametrize("name", list(PAPER))
def test_paper_presets_sizes_and_parameter_counts(name):
    rate, channels, sources, n_in, n_out, params = PAPER[name]
    cfg = presets.get(name)
    with torch.device("meta"):
        model = WaveUNet(cfg)
    assert model.sample_rate == rate and model.channels == channels and model.num_sources == sources
    assert model.input_length(16384) == n_in
    assert model.output_length(n_in) == n_out
    assert model.num_parameters() == params
    if cfg.conv_mode == "valid":
        assert model.context == (65527, 65527)


def test_preset_api():
    names = presets.names()
    for name in ["M1", "M2", "M3", "M4", "M5", "M6", "M5-HighSR", "tiny", "small"]:
        assert name in names
        assert isinstance(presets.get(name), WaveUNetConfig)
    assert presets.get("M6").sources == MULTI_TASK
    assert presets.get("M4").sources == VOCALS_TASK
    with pytest.raises(ValueError, match="unknown preset"):
        presets.get("M7")


def test_config_is_frozen_and_round_trips():
    cfg = presets.get("M5")
    with pytest.raises(Exception):
        cfg.levels = 3
    assert WaveUNetConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        WaveUNetConfig(output="difference", sources=("vocals",))
    with pytest.raises(ValueError):
        WaveUNetConfig(conv_mode="causal")


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("sources", [VOCALS_TASK, MULTI_TASK])
@pytest.mark.parametrize("output", ["difference", "direct"])
def test_shapes_for_several_valid_lengths(channels, sources, output):
    model = WaveUNet(small_config(channels=channels, sources=sources, output=output)).eval()
    for want in [1, 100, 1000]:
        n = model.input_length(want)
        out = model(torch.randn(2, channels, n))
        assert out.shape == (2, len(sources), channels, model.output_length(n))
        assert out.shape[-1] >= want
        assert model.output_length(n - 1 + model.stride + 1) == model.output_length(n) + model.stride


def test_input_length_is_the_smallest_valid_input():
    model = WaveUNet(small_config())
    for want in [1, 17, 300, 4097]:
        n = model.input_length(want)
        assert model.output_length(n) >= want
        assert not model.is_valid_length(n - 1)
        smaller = n - model.stride
        assert smaller < 0 or not model.is_valid_length(smaller) or model.output_length(smaller) < want


def test_invalid_length_error_names_nearest_valid_lengths():
    model = WaveUNet(small_config())
    n = model.input_length(500)
    with pytest.raises(ValueError) as info:
        model(torch.randn(1, 2, n + 3))
    assert str(n) in str(info.value) and str(n + model.stride) in str(info.value)
    with pytest.raises(ValueError, match="the shortest"):
        model.output_length(5)
    with pytest.raises(ValueError, match="expected a mixture"):
        model(torch.randn(1, 3, n))


def test_same_mode_keeps_length():
    model = WaveUNet(small_config(conv_mode="same", channels=1, output="direct")).eval()
    assert model.input_length(1000) == 1008  # multiple of 2**4
    assert model.output_length(1008) == 1008
    assert model(torch.randn(1, 1, 1008)).shape == (1, 2, 1, 1008)
    assert not model.is_valid_length(1000)


def test_difference_output_sums_to_cropped_mixture():
    model = randomised(WaveUNet(small_config(sources=MULTI_TASK).replace(output="difference"))).double()
    n = model.input_length(300)
    mix = torch.randn(2, 2, n, dtype=torch.float64)
    est = model(mix)
    assert torch.allclose(est.sum(dim=1), centre_crop(mix, est.shape[-1]), rtol=0, atol=1e-12)


def test_output_is_aligned_with_the_centre_of_the_input():
    # With a direct, linear head whose weights only read the mixture, the estimate is the mixture
    # itself: it must come from the input samples [left, left + T_out).
    model = WaveUNet(small_config(output="direct", output_activation="linear")).eval()
    with torch.no_grad():
        model.head.conv.weight.zero_()
        model.head.conv.bias.zero_()
        for c in range(2):
            model.head.conv.weight[c, c, 0] = 1.0  # source 0, channel c <- mixture channel c
    n = model.input_length(200)
    mix = torch.randn(1, 2, n)
    est = model(mix)
    left = model.context[0]
    assert torch.equal(est[0, 0], mix[0, :, left : left + est.shape[-1]])
    assert sum(model.context) == n - est.shape[-1]


def test_encoder_is_a_polyphase_component_of_dilated_convolutions():
    """Conv-then-decimate, repeated, equals the a-trous stack (dilations 1, 2, 4, ...) sampled
    every 2**L samples (REFERENCE.md section 1)."""
    torch.manual_seed(0)
    blocks = [DownBlock(1, 3, 5), DownBlock(3, 4, 5), DownBlock(4, 2, 5)]
    n = blocks[0].input_length(blocks[1].input_length(blocks[2].input_length(20)))
    x = torch.randn(2, 1, n, dtype=torch.float64)
    y = x
    skips = []
    for b in blocks:
        b.double()
        y, skip = b(y)
        skips.append(skip)
    z = x
    for level, b in enumerate(blocks):
        dilation = 2**level
        z = F.leaky_relu(F.conv1d(z, b.conv.weight, b.conv.bias, dilation=dilation), 0.2)
        assert torch.allclose(skips[level], z[..., :: 2**level], atol=1e-12)
    assert torch.allclose(y, z[..., :: 2 ** len(blocks)], atol=1e-12)
    # another polyphase component is a different signal
    other = z[..., 1::8]
    m = min(other.shape[-1], y.shape[-1])
    assert not torch.allclose(y[..., :m], other[..., :m])


@pytest.mark.parametrize("upsampling", ["linear", "learned"])
def test_model_is_shift_equivariant_for_multiples_of_the_stride(upsampling):
    model = randomised(WaveUNet(small_config(upsampling=upsampling))).double()
    n = model.input_length(200)
    k = 3
    x = torch.randn(1, 2, n + k * model.stride, dtype=torch.float64)
    full = model(x)
    for j in range(k + 1):
        s = j * model.stride
        part = model(x[..., s : s + n])
        assert torch.allclose(part, full[..., s : s + part.shape[-1]], rtol=0, atol=1e-10)


def test_shift_not_multiple_of_stride_changes_the_decimation_phase():
    # The property chunked inference relies on is specific to multiples of the stride: a shift by
    # half the stride puts the encoder on another phase and changes the result.
    model = randomised(WaveUNet(small_config())).double()
    n = model.input_length(200)
    s = model.stride // 2
    x = torch.randn(1, 2, n + model.stride, dtype=torch.float64)
    full = model(x[..., : n + model.stride])
    part = model(x[..., s : s + n])
    # compare the samples that would coincide if the model were equivariant for this shift
    assert not torch.allclose(part[..., : part.shape[-1] - s], full[..., s : part.shape[-1]], atol=1e-6)


def test_float32_and_float64_agree():
    torch.manual_seed(0)
    model = WaveUNet(small_config(output_activation="linear"))  # default init: activations of order 1
    n = model.input_length(300)
    x = torch.randn(2, 2, n)
    y32 = model(x)
    y64 = model.double()(x.double())
    assert y32.dtype == torch.float32 and y64.dtype == torch.float64
    assert (y32.double() - y64).abs().max() <= 1e-5 * y64.abs().max()


def test_zero_mean_first_layer_in_model():
    model = randomised(WaveUNet(small_config(zero_mean_first=True)))
    n = model.input_length(300)
    x = torch.randn(1, 2, n)
    # the first layer ignores a DC offset; the rest of the network sees the same features
    with torch.no_grad():
        a, _ = model.downs[0](x)
        b, _ = model.downs[0](x + 0.5)
    assert torch.allclose(a, b, atol=1e-5)
    assert type(model.downs[1].conv).__name__ == "Conv1d"


def test_torch_export_matches_eager():
    model = randomised(WaveUNet(presets.get("tiny")))
    n = model.input_length(1000)
    x = torch.randn(1, 2, n)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        want = model(x)
    got = exported.module()(x)
    assert torch.allclose(got, want, atol=1e-6)


def test_inference_forward_compiles_as_one_graph():
    # The inference path (copy-free up blocks) must not split torch.compile's graph: fullgraph=True
    # raises on any graph break. The compiled output equals eager (float32 rounding only).
    torch.manual_seed(0)
    model = WaveUNet(presets.get("tiny")).eval()
    x = 0.1 * torch.randn(1, model.channels, 8003)  # a valid input length of "tiny"
    with torch.inference_mode():
        eager = model(x)
        compiled = torch.compile(model, fullgraph=True, dynamic=False)(x)
    assert compiled.shape == eager.shape
    assert (compiled - eager).abs().max().item() < 1e-5
