"""Full-track inference (wavesep.apply): exactness against one whole-signal forward pass,
resampling, channels, clipping, devices and side effects.

The reference in every exactness test is computed independently of wavesep.apply: the whole
mixture zero-padded by the model's context (to a valid length) and run through the model once.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from wavesep import WaveUNet, WaveUNetConfig, audio
from wavesep.apply import (
    CHANNEL_POLICIES,
    clip_stems,
    plan_tiles,
    receptive_margin,
    resolve_device,
    separate,
)
from wavesep.errors import AudioError

RATE = 22050
TOL = 1e-5


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def make_model(channels=2, sources=2, conv_mode="valid", output="difference", seed=0, **changes):
    """A 4-level network with random weights of a non-trivial scale (outputs of order 1)."""
    names = ("bass", "drums", "other", "vocals")[-sources:] if sources != 2 else ("accompaniment", "vocals")
    cfg = WaveUNetConfig(
        levels=4, filters=6, growth=4, channels=channels, sources=names, conv_mode=conv_mode,
        output=output, output_activation="linear", **changes,
    )
    gen = torch.Generator().manual_seed(seed)
    model = WaveUNet(cfg)
    with torch.no_grad():
        for p in model.parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 4
            p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))
    return model.eval()


def whole_pass(model, mix):
    """One forward pass over the whole zero-padded mixture (B, C, T) -> (B, S, C, T)."""
    length = mix.shape[-1]
    if model.config.conv_mode == "valid":
        left = model.context[0]
        n = model.input_length(length)
        padded = F.pad(mix, (left, n - length - left))
    else:
        n = -(-length // model.stride) * model.stride
        padded = F.pad(mix, (0, n - length))
    with torch.no_grad():
        return model(padded)[..., :length]


def reference_tiling(model, mix):
    """The reference implementation's procedure: non-overlapping windows of the minimal output
    length (16389 for the paper's M4: not a multiple of the stride), each with its own input."""
    left, right = model.context
    w_in = model.input_length(1)
    w_out = model.output_length(w_in)
    length = mix.shape[-1]
    count = -(-length // w_out)
    padded = F.pad(mix, (left, count * w_out - length + right))
    with torch.no_grad():
        outs = [model(padded[..., i * w_out : i * w_out + w_in]) for i in range(count)]
    return torch.cat(outs, dim=-1)[..., :length]


def noise(*shape, seed=1, scale=0.5):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


# ------------------------------------------------------------------------------ exactness


@pytest.mark.parametrize("channels,sources", [(1, 2), (2, 2), (2, 4)])
@pytest.mark.parametrize("length", [1, 37, 1000, 12345])
def test_tiled_equals_one_whole_pass(channels, sources, length):
    model = make_model(channels, sources)
    mix = noise(2, channels, length)
    segment = 0.02  # 441 samples: many windows for the longer signals
    plan = plan_tiles(model, length, segment)
    if length > 1000:
        assert plan.num_windows >= 20
    ref = whole_pass(model, mix)
    assert ref.abs().max() > 0.1  # a meaningful reference
    out = separate(model, mix, RATE, segment_seconds=segment, batch_size=3, device="cpu")
    assert out.shape == (2, sources, channels, length)
    assert (out - ref).abs().max() <= TOL
    # (C, T) in, (S, C, T) out, same values.
    single = separate(model, mix[1], RATE, segment_seconds=segment, batch_size=1, device="cpu")
    assert single.shape == (sources, channels, length)
    assert (single - ref[1]).abs().max() <= TOL


def test_tracks_shorter_than_the_context():
    model = make_model()
    assert model.context[0] > 100
    mix = noise(2, 100)
    out = separate(model, mix, RATE, device="cpu")
    assert (out - whole_pass(model, mix[None])[0]).abs().max() <= TOL


@pytest.mark.parametrize("length", [5, 3001, 20000])
def test_same_convolution_models_are_exact_too(length):
    model = make_model(conv_mode="same")
    mix = noise(1, 2, length)
    plan = plan_tiles(model, length, 0.02)
    if length == 20000:
        assert plan.num_windows > 3 and plan.input_length < length
    out = separate(model, mix, RATE, segment_seconds=0.02, batch_size=2, device="cpu")
    assert (out - whole_pass(model, mix)).abs().max() <= TOL


def test_the_reference_procedure_is_not_exact():
    """Negative control: windows whose hop is not a multiple of the stride (the reference code's
    procedure) sit on other decimation phases and differ from the whole pass."""
    model = make_model()
    mix = noise(1, 2, 3000)
    w_out = model.output_length(model.input_length(1))
    assert w_out % model.stride != 0
    ref = whole_pass(model, mix)
    assert (reference_tiling(model, mix) - ref).abs().max() > 1e-2


def test_plan_windows():
    model = make_model()
    for length in (1, 999, 10_000, 123_457):
        plan = plan_tiles(model, length, 0.05)
        assert plan.hop % model.stride == 0
        assert all((s - plan.starts[0]) % model.stride == 0 for s in plan.starts)
        assert plan.output_length == model.output_length(plan.input_length)
        # The kept ranges tile [0, length) in order.
        pos = 0
        for start, (k0, k1) in zip(plan.starts, plan.keeps):
            assert start + plan.lead + k0 == pos and 0 <= k0 < k1 <= plan.output_length
            pos = start + plan.lead + k1
        assert pos == length
        # Bounded windows: never longer than asked for (plus the context).
        assert plan.input_length <= model.input_length(round(0.05 * RATE))
    same = make_model(conv_mode="same")
    assert receptive_margin(same) % same.stride == 0


# ------------------------------------------------------------------------------ resampling


@pytest.mark.parametrize("rate", [44100, 48000, 16000])
def test_resampled_path_equals_whole_signal_resampling(rate, monkeypatch):
    import wavesep.tiling as tiling_module

    # Small rolling blocks so that several blocks are stitched.
    monkeypatch.setattr(tiling_module, "_INPUT_BLOCK", 700)
    model = make_model(output="direct")
    length = 9000
    mix = noise(2, 2, length)
    # The separation path resamples with libsoxr (wavesep.audio.ResampleStream).
    at_model = audio.resample(mix, rate, RATE, backend="soxr")
    ref = audio.resample(whole_pass(model, at_model), RATE, rate, backend="soxr")
    ref = F.pad(ref, (0, max(0, length - ref.shape[-1])))[..., :length]
    out = separate(model, mix, rate, segment_seconds=0.02, batch_size=2, device="cpu")
    assert out.shape == (2, 2, 2, length)
    assert (out - ref).abs().max() <= TOL


@pytest.mark.parametrize("sources, residual, expected", [
    (4, None, 2),            # bass, drums, other, vocals: "other" takes the residual by default
    (4, "vocals", 3),
    (2, None, 0),            # accompaniment, vocals: "accompaniment" by default
    (2, "vocals", 1),
])
def test_resampled_difference_stems_add_up_to_the_mixture(sources, residual, expected):
    model = make_model(sources=sources)
    mix = noise(2, 7001, scale=0.3)
    out = separate(model, mix, 44100, segment_seconds=0.05, device="cpu", residual_source=residual)
    assert out.shape == (sources, 2, 7001)
    assert (out.sum(dim=0) - mix).abs().max() <= TOL
    # The others are the model's estimates resampled back; only the residual source is completed.
    ref = audio.resample(whole_pass(model, audio.resample(mix, 44100, RATE, backend="soxr")[None])[0],
                         RATE, 44100, backend="soxr")
    others = [s for s in range(sources) if s != expected]
    assert (out[others] - ref[others, :, :7001]).abs().max() <= TOL
    # The residual source holds what the model cannot represent above its Nyquist frequency.
    assert (out[expected] - ref[expected, :, :7001]).abs().max() > TOL


def test_unknown_residual_source_is_refused():
    with pytest.raises(ValueError, match="residual_source"):
        separate(make_model(), noise(2, 1000), 44100, device="cpu", residual_source="drums")


# ------------------------------------------------------------------------------ channels


def test_mono_input_to_stereo_model_is_averaged_back_to_mono():
    model = make_model(channels=2)
    mono = noise(1, 2000)
    out = separate(model, mono, RATE, device="cpu")
    assert out.shape == (2, 1, 2000)
    ref = whole_pass(model, mono.expand(2, -1)[None])[0].mean(dim=1, keepdim=True)
    assert (out - ref).abs().max() <= TOL


def test_stereo_input_to_mono_model_is_separated_channel_by_channel():
    model = make_model(channels=1)
    stereo = noise(2, 2000)
    out = separate(model, stereo, RATE, device="cpu")
    assert out.shape == (2, 2, 2000)
    for c in range(2):
        ref = whole_pass(model, stereo[c : c + 1][None])[0, :, 0]
        assert (out[:, c] - ref).abs().max() <= TOL


def test_more_channels_follow_the_policy():
    model = make_model(channels=2)
    six = noise(6, 1500)
    with pytest.raises(AudioError, match="channel policy"):
        separate(model, six, RATE, device="cpu")
    first = separate(model, six, RATE, device="cpu", channel_policy="first")
    assert first.shape == (2, 2, 1500)
    assert (first - whole_pass(model, six[None, :2])[0]).abs().max() <= TOL
    down = separate(model, six, RATE, device="cpu", channel_policy="downmix")
    ref = whole_pass(model, six.mean(0, keepdim=True).expand(2, -1)[None])[0]
    assert down.shape == (2, 2, 1500) and (down - ref).abs().max() <= TOL
    split = separate(model, six, RATE, device="cpu", channel_policy="split")
    assert split.shape == (2, 6, 1500)
    ref4 = whole_pass(model, six[4:5].expand(2, -1)[None])[0].mean(dim=1)
    assert (split[:, 4] - ref4).abs().max() <= TOL
    assert "split" in CHANNEL_POLICIES


# ------------------------------------------------------------------------------ clipping


def test_clip_modes():
    model = make_model(output="direct")
    mix = noise(2, 3000, scale=3.0)  # loud enough for the estimates to exceed 1
    raw = separate(model, mix, RATE, device="cpu")
    peak = raw.abs().max()
    assert peak > 1.5
    assert torch.equal(separate(model, mix, RATE, device="cpu", clip="none"), raw)
    clamped = separate(model, mix, RATE, device="cpu", clip="clamp")
    assert torch.equal(clamped, raw.clamp(-1, 1))
    rescaled = separate(model, mix, RATE, device="cpu", clip="rescale")
    assert torch.allclose(rescaled, raw / peak, atol=1e-6)
    assert rescaled.abs().max() == pytest.approx(1.0, abs=1e-6)
    # Quiet tracks are left alone; each track of a batch gets its own factor.
    both = torch.stack([raw, raw * (0.5 / peak)])
    clip_stems(both, "rescale")
    assert both[0].abs().max() == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(both[1], raw * (0.5 / peak))
    with pytest.raises(ValueError, match="clip"):
        clip_stems(raw, "soft")


# ------------------------------------------------------------------------------ inputs


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_samples_are_refused(bad):
    mix = noise(2, 1000)
    mix[1, 777] = bad
    with pytest.raises(AudioError, match="sample 777"):
        separate(make_model(), mix, RATE, device="cpu")


def test_silence_and_empty_input():
    model = make_model()
    out = separate(model, torch.zeros(2, 5000), RATE, device="cpu")
    assert torch.isfinite(out).all()
    assert (out - whole_pass(model, torch.zeros(1, 2, 5000))[0]).abs().max() <= TOL
    empty = separate(model, torch.zeros(2, 0), 44100, device="cpu")
    assert empty.shape == (2, 2, 0)


def test_bad_arguments():
    model = make_model()
    mix = noise(2, 100)
    with pytest.raises(ValueError):
        separate(model, mix, RATE, device="cpu", precision="int8")
    with pytest.raises(ValueError):
        separate(model, mix, RATE, device="cpu", batch_size=0)
    with pytest.raises(ValueError):
        separate(model, mix, RATE, device="cpu", segment_seconds=0)
    with pytest.raises(ValueError):
        separate(model, mix[0], RATE, device="cpu")
    with pytest.raises(ValueError):
        separate(model, mix, RATE, device="tpu")


# ------------------------------------------------------------------------------ side effects


def test_model_is_not_modified():
    model = make_model()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = [p.requires_grad for p in model.parameters()]
    separate(model, noise(2, 3000), RATE, device="cpu", segment_seconds=0.02)
    assert model.training
    assert [p.requires_grad for p in model.parameters()] == params
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert next(model.parameters()).device.type == "cpu"


def test_progress_reports_fractions_up_to_one():
    seen = []
    separate(make_model(), noise(2, 5000), RATE, device="cpu", segment_seconds=0.02, batch_size=4,
             progress=seen.append)
    assert len(seen) >= 3
    assert all(0 < a < b for a, b in zip(seen, seen[1:]))
    assert seen[-1] == 1.0


def test_reduced_precision_runs_and_stays_close():
    model = make_model()
    mix = noise(2, 4000)
    full = separate(model, mix, RATE, device="cpu")
    half = separate(model, mix, RATE, device="cpu", precision="bfloat16")
    assert half.dtype == torch.float32
    err = (half - full).abs().max() / full.abs().max()
    assert 0 < err < 0.05  # bfloat16 has 8 bits of mantissa: close, but not identical


def test_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("batch_size", [None, 3])
def test_cuda_matches_cpu(batch_size):
    model = make_model()
    mix = noise(2, 2, 20000)
    cpu = separate(model, mix, RATE, device="cpu", segment_seconds=0.05)
    gpu = separate(model, mix, RATE, device="cuda", segment_seconds=0.05, batch_size=batch_size)
    assert next(model.parameters()).device.type == "cpu"
    assert (gpu - cpu).abs().max() <= 1e-4
    half = separate(model, mix, RATE, device="cuda", segment_seconds=0.05, precision="float16")
    assert (half - cpu).abs().max() / cpu.abs().max() < 0.05


def test_auto_precision_follows_native_bfloat16(monkeypatch):
    import wavesep.devices as devices_module
    from wavesep.apply import native_bfloat16, resolve_precision

    monkeypatch.setattr(devices_module, "_cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    assert native_bfloat16("cpu") and resolve_precision("auto", "cpu") == "bfloat16"
    monkeypatch.setattr(devices_module, "_cpu_flags", lambda: frozenset({"amx_bf16"}))
    assert resolve_precision("auto", "cpu") == "bfloat16"
    monkeypatch.setattr(devices_module, "_cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert not native_bfloat16("cpu") and resolve_precision("auto", "cpu") is None
    assert resolve_precision("float32", "cpu") is None and resolve_precision(None, "cpu") is None
    assert resolve_precision("bfloat16", "cpu") == "bfloat16"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("float64", "cpu")
    # "auto" without native bfloat16 is exactly float32.
    model, mix = make_model(), noise(2, 4000)
    assert torch.equal(separate(model, mix, RATE, device="cpu", precision="auto"),
                       separate(model, mix, RATE, device="cpu", precision="float32"))
