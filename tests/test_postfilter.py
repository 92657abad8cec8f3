"""Post-filters (wavesep.postfilter) and their use by apply, Separator and the CLIs."""

import math

import pytest
import torch

from wavesep import postfilter
from wavesep.api import Separator
from wavesep.apply import separate
from wavesep.postfilter import ratio_mask, resolve

from test_apply import make_model

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

RATE = 44100


def _tone(freq, seconds=1.0, amp=0.5, channels=2):
    t = torch.arange(int(seconds * RATE)) / RATE
    return (amp * torch.sin(2 * math.pi * freq * t)).expand(channels, -1).clone()  # (C, T)


def test_refined_estimates_add_up_to_the_mixture():
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(2, 30000, generator=g) * 0.3  # (C, T)
    estimates = torch.stack([mix * 0.3 + 0.05 * torch.randn(2, 30000, generator=g), mix * 0.7])  # (S, C, T)
    out = ratio_mask(mix, estimates)
    assert out.shape == estimates.shape
    torch.testing.assert_close(out.sum(dim=0), mix, atol=1e-5, rtol=0)


def test_broadband_errors_of_the_estimates_are_removed():
    # Two tones far apart in frequency, estimated with independent white noise on top (the kind
    # of error a waveform network spreads over the spectrum). Where the mixture holds nothing the
    # mask cannot let anything through, and at each tone the right estimate dominates the mask,
    # so the refined estimates are much closer to the truth than the estimates were.
    g = torch.Generator().manual_seed(2)
    low, high = _tone(220), _tone(3520, amp=0.3)
    estimates = torch.stack([low, high]) + 0.05 * torch.randn(2, *low.shape, generator=g)  # (S, C, T)
    refined = ratio_mask(low + high, estimates)
    for k, truth in enumerate((low, high)):
        before = (estimates[k] - truth).pow(2).sum()
        after = (refined[k] - truth).pow(2).sum()
        assert after < 0.03 * before


def test_silent_estimates_split_the_mixture_equally_and_short_signals_pass_through():
    mix = _tone(440)
    out = ratio_mask(mix, torch.zeros(2, *mix.shape))
    torch.testing.assert_close(out, torch.stack([mix, mix]) / 2, atol=1e-5, rtol=0)
    short = torch.randn(3, 2, 100)
    assert torch.equal(ratio_mask(short.sum(0), short), short)
    with pytest.raises(ValueError, match=r"expected mix \(C, T\)"):
        ratio_mask(mix, torch.zeros(2, 1, mix.shape[-1]))


def test_resolve_follows_the_model_metadata_for_auto():
    assert resolve("auto", {"postfilter": "ratio-mask"}) == "ratio-mask"
    assert resolve(None, {}) == "none" and resolve("auto", None) == "none"
    assert resolve("none", {"postfilter": "ratio-mask"}) == "none"
    with pytest.raises(ValueError, match="wiener"):
        resolve("wiener")


def test_separate_applies_it_to_the_whole_estimates_at_the_input_rate():
    model = make_model()
    g = torch.Generator().manual_seed(1)
    mix = torch.randn(2, 20000, generator=g) * 0.2
    plain = separate(model, mix, RATE)
    masked = separate(model, mix, RATE, postfilter="ratio-mask")
    torch.testing.assert_close(masked, ratio_mask(mix, plain), atol=1e-6, rtol=0)
    assert not torch.allclose(masked, plain, atol=1e-3)
    with pytest.raises(ValueError, match="postfilter"):
        separate(model, mix, RATE, postfilter="wiener")


def test_separator_takes_the_models_choice_unless_told_otherwise():
    model = make_model()
    model.metadata = {"postfilter": "ratio-mask"}
    assert Separator(model, device="cpu").postfilter == "ratio-mask"
    assert Separator(model, device="cpu", postfilter="none").postfilter == "none"
    model.metadata = {}
    assert Separator(model, device="cpu").postfilter == "none"
    assert postfilter.POSTFILTERS == ("none", "ratio-mask")


# ------------------------------------------------------------------------------ block-wise


@pytest.mark.parametrize("length", [100, 8191, 8192, 8193, 12288, 30001])
@pytest.mark.parametrize("block", [1, 997, 4096, 8192, 50000])
def test_stream_equals_the_whole_track_filter(length, block):
    from wavesep.postfilter import RatioMaskStream, ratio_mask

    if block == 1 and length > 9000:
        pytest.skip("one-sample blocks: the short lengths cover them")
    gen = torch.Generator().manual_seed(length)
    mix = torch.randn(2, length, generator=gen)
    est = torch.randn(3, 2, length, generator=gen)
    ref = ratio_mask(mix, est)
    stream = RatioMaskStream(3, 2)
    parts = [stream.process(mix[:, i : i + block], est[..., i : i + block]) for i in range(0, length, block)]
    parts.append(stream.flush())
    out = torch.cat(parts, dim=-1)
    assert out.shape == ref.shape
    assert (out - ref).abs().max() <= 1e-5
    if length >= 8192:
        assert (out - est).abs().max() > 0.1  # it did filter


def test_stream_holds_back_less_than_one_frame():
    from wavesep.postfilter import N_FFT, RatioMaskStream

    stream = RatioMaskStream(2, 1)
    received = returned = 0
    for _ in range(40):
        x = torch.randn(1, 1000)
        received += 1000
        returned += stream.process(x, torch.stack([x, x]) * 0.5).shape[-1]
        if received >= N_FFT:
            assert received - returned <= N_FFT - 1
    with pytest.raises(RuntimeError):
        stream.flush() + stream.flush()


@pytest.mark.parametrize("sources", [2, 4])
def test_stream_for_estimates_that_add_up_to_the_mixture(sources):
    from wavesep.postfilter import RatioMaskStream, ratio_mask

    gen = torch.Generator().manual_seed(sources)
    est = torch.randn(sources, 2, 30011, generator=gen)
    mix = est.sum(dim=0)
    ref = ratio_mask(mix, est)
    stream = RatioMaskStream(sources, 2, sums_to_mix=True)
    out = torch.cat([stream.process(mix[:, :12345], est[..., :12345]),
                     stream.process(mix[:, 12345:], est[..., 12345:]), stream.flush()], dim=-1)
    assert (out - ref).abs().max() <= 1e-5
    assert (out.sum(dim=0) - mix).abs().max() <= 1e-5
