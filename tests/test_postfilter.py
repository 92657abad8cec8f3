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
    assert postfilter.POSTFILTERS == ("none", "ratio-mask", "ratio-mask-fullband")


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


# ------------------------------------------------------------------------------ full band

MODEL_RATE = 22050  # make_model()'s


def _bin_tone(k, amp, seconds=1.5, n_fft=postfilter.N_FFT):
    """A stereo tone at the centre of STFT bin k (of n_fft at RATE) whose phase advances by a
    whole turn every hop when k is a multiple of 4: every frame's spectrum is the same."""
    t = torch.arange(int(seconds * RATE), dtype=torch.float64)
    return (amp * torch.sin(2 * math.pi * k * t / n_fft)).float().expand(2, -1).clone()  # (C, T)


def test_top_band_bins_follow_the_model_nyquist_frequency():
    from wavesep.postfilter import top_band_bins

    n = 8192
    for rate in (44100, 48000, 96000):
        b0, b1, k0 = top_band_bins(n, rate, MODEL_RATE)
        freq = [k * rate / n for k in range(n // 2 + 1)]  # Hz of each bin
        nyquist = MODEL_RATE / 2
        assert freq[b0 - 1] < 0.63 * nyquist <= freq[b0] and freq[b1 - 1] < 0.95 * nyquist <= freq[b1]
        assert freq[k0 - 1] < nyquist <= freq[k0]
    # the bin at exactly 11025 Hz (44.1 kHz, 8192) belongs to the top band
    assert top_band_bins(n, 44100, MODEL_RATE)[2] == 2048
    assert top_band_bins(n, MODEL_RATE, MODEL_RATE) is None and top_band_bins(n, 16000, MODEL_RATE) is None
    assert top_band_bins(n, None, MODEL_RATE) is None
    with pytest.raises(ValueError, match="no bin"):
        top_band_bins(8, 44100, MODEL_RATE)
    with pytest.raises(ValueError, match="positive"):
        top_band_bins(n, 0, MODEL_RATE)


def test_top_band_takes_the_weighted_mean_mask_of_the_band_below():
    # Closed form. Two tones in the reference band (0.63-0.95 x 11025 Hz): A at bin 1400
    # (7.5 kHz), 80% vocals in the estimates, and B at bin 1800 (9.7 kHz), 10% vocals; one tone
    # H at bin 2800 (15.1 kHz), above the model's Nyquist frequency, which the estimates give
    # wholly to the accompaniment (a "difference"-output model's residual). A bin-centred tone
    # under a Hann window fills exactly 3 bins with magnitudes amp * n/4 * (1/2, 1, 1/2), so the
    # mixture-weighted mean vocals mask of the band is (0.8 a_A + 0.1 a_B) / (a_A + a_B) in every
    # frame, and a mask constant over time and over the top band passes H scaled by it.
    from wavesep.postfilter import ratio_mask_fullband

    a_a, a_b, a_h = 0.3, 0.5, 0.2
    tone_a, tone_b, tone_h = _bin_tone(1400, a_a), _bin_tone(1800, a_b), _bin_tone(2800, a_h)
    mix = tone_a + tone_b + tone_h
    estimates = torch.stack([0.2 * tone_a + 0.9 * tone_b + tone_h, 0.8 * tone_a + 0.1 * tone_b])  # (S, C, T)
    share = (0.8 * a_a + 0.1 * a_b) / (a_a + a_b)
    inner = slice(postfilter.N_FFT, -postfilter.N_FFT)  # away from the reflected ends
    full = ratio_mask_fullband(mix, estimates, RATE, MODEL_RATE)
    expected_vocals = 0.8 * tone_a + 0.1 * tone_b + share * tone_h
    assert (full[1, :, inner] - expected_vocals[:, inner]).abs().max() < 1e-3
    torch.testing.assert_close(full.sum(dim=0), mix, atol=1e-5, rtol=0)
    # the plain ratio mask keeps H out of the vocals
    plain = ratio_mask(mix, estimates)
    assert (plain[1, :, inner] - (0.8 * tone_a + 0.1 * tone_b)[:, inner]).abs().max() < 1e-3


def test_fullband_weighs_each_frames_band_by_the_mixture():
    # Noise in the band whose vocals share changes between the two halves of the signal, plus a
    # loud vocal tone in the band: the mask above the model's Nyquist frequency follows each
    # frame's band, weighted by the mixture's magnitude (the tone's 3 bins count for much more
    # than 3 of the band's 655). Expected values computed with numpy from the signals' own spectra,
    # one frame in each half.
    import numpy as np

    from wavesep.postfilter import N_FFT, ratio_mask_fullband, top_band_bins

    g = torch.Generator().manual_seed(5)
    length = 12 * N_FFT
    half = length // 2
    noise = torch.randn(2, length, generator=g) * 0.1  # (C, T)
    gains = torch.where(torch.arange(length) < half, 0.7, 0.2)  # vocals share of the noise
    seconds = length / RATE
    tone_v, tone_h = _bin_tone(1600, 0.3, seconds=seconds), _bin_tone(2800, 0.2, seconds=seconds)
    vocals, accompaniment = noise * gains + tone_v, noise * (1 - gains) + tone_h
    mix = vocals + accompaniment
    out = ratio_mask_fullband(mix, torch.stack([accompaniment, vocals]), RATE, MODEL_RATE)
    b0, b1, k0 = top_band_bins(N_FFT, RATE, MODEL_RATE)
    window = np.hanning(N_FFT + 1)[:-1]  # periodic Hann, as torch.hann_window
    hop = N_FFT // 4

    def spectrum(x, frame):  # one channel's frame -> (F,) complex128
        return np.fft.rfft(x[0, frame].double().numpy() * window)

    for centre in (half // 2 // hop * hop, (half + length) // 2 // hop * hop):  # a frame in each half
        frame = slice(centre - N_FFT // 2, centre + N_FFT // 2)
        spec_v, spec_a, spec_x = (spectrum(x, frame) for x in (vocals, accompaniment, mix))
        mask_v = np.abs(spec_v) / (np.abs(spec_v) + np.abs(spec_a))
        weight = np.abs(spec_x[b0:b1])
        expected = float((mask_v[b0:b1] * weight).sum() / weight.sum())
        assert expected - mask_v[b0:b1].mean() > 0.05  # the weighting matters here
        # The refined vocals' top band in that frame (H alone there): expected x the mixture's.
        measured = np.abs(spectrum(out[1], frame)[k0:]).max() / np.abs(spec_x[k0:]).max()
        assert measured == pytest.approx(expected, abs=0.01)


def test_fullband_at_or_below_the_model_rate_is_the_ratio_mask():
    from wavesep.postfilter import RatioMaskStream, ratio_mask_fullband

    g = torch.Generator().manual_seed(3)
    mix = torch.randn(2, 20000, generator=g)
    est = torch.randn(3, 2, 20000, generator=g)
    for rate in (MODEL_RATE, 16000):
        assert torch.equal(ratio_mask_fullband(mix, est, rate, MODEL_RATE), ratio_mask(mix, est))
        streams = [RatioMaskStream(3, 2), RatioMaskStream(3, 2, sample_rate=rate, model_rate=MODEL_RATE)]
        outs = [torch.cat([s.process(mix, est), s.flush()], dim=-1) for s in streams]
        assert torch.equal(outs[0], outs[1])
    assert not torch.allclose(ratio_mask_fullband(mix, est, RATE, MODEL_RATE), ratio_mask(mix, est), atol=1e-3)


@pytest.mark.parametrize("rate", [44100, 48000])
def test_fullband_stems_add_up_to_the_mixture(rate):
    from wavesep.postfilter import ratio_mask_fullband

    g = torch.Generator().manual_seed(4)
    mix = torch.randn(2, 30000, generator=g) * 0.3
    estimates = torch.stack([mix * 0.3 + 0.05 * torch.randn(2, 30000, generator=g), mix * 0.7,
                             torch.zeros(2, 30000)])  # (S, C, T), one silent estimate
    out = ratio_mask_fullband(mix, estimates, rate, MODEL_RATE)
    torch.testing.assert_close(out.sum(dim=0), mix, atol=1e-5, rtol=0)
    silent = ratio_mask_fullband(mix, torch.zeros_like(estimates), rate, MODEL_RATE)  # equal split
    torch.testing.assert_close(silent, torch.stack([mix] * 3) / 3, atol=1e-5, rtol=0)


@pytest.mark.parametrize("rate,length,block", [
    (44100, 8193, 1), (44100, 30001, 997), (44100, 30001, 50000), (48000, 12288, 4096), (96000, 30001, 8192),
])
def test_fullband_stream_equals_the_whole_track_filter(rate, length, block):
    from wavesep.postfilter import RatioMaskStream, ratio_mask_fullband

    gen = torch.Generator().manual_seed(length)
    mix = torch.randn(2, length, generator=gen)
    est = torch.randn(3, 2, length, generator=gen)
    ref = ratio_mask_fullband(mix, est, rate, MODEL_RATE)
    stream = RatioMaskStream(3, 2, sample_rate=rate, model_rate=MODEL_RATE)
    parts = [stream.process(mix[:, i : i + block], est[..., i : i + block]) for i in range(0, length, block)]
    parts.append(stream.flush())
    out = torch.cat(parts, dim=-1)
    assert out.shape == ref.shape and (out - ref).abs().max() <= 1e-5
    assert (out - ratio_mask(mix, est)).abs().max() > 0.1  # the top band differs from the plain mask


@pytest.mark.parametrize("sources", [2, 4])
def test_fullband_stream_for_estimates_that_add_up_to_the_mixture(sources):
    from wavesep.postfilter import RatioMaskStream, ratio_mask_fullband

    gen = torch.Generator().manual_seed(sources)
    est = torch.randn(sources, 2, 30011, generator=gen)
    mix = est.sum(dim=0)
    ref = ratio_mask_fullband(mix, est, RATE, MODEL_RATE)
    stream = RatioMaskStream(sources, 2, sums_to_mix=True, sample_rate=RATE, model_rate=MODEL_RATE)
    out = torch.cat([stream.process(mix[:, :12345], est[..., :12345]),
                     stream.process(mix[:, 12345:], est[..., 12345:]), stream.flush()], dim=-1)
    assert (out - ref).abs().max() <= 1e-5
    assert (out.sum(dim=0) - mix).abs().max() <= 1e-5


@pytest.mark.parametrize("rate", [RATE, MODEL_RATE])
def test_separate_applies_the_fullband_filter_block_by_block(rate):
    from wavesep.postfilter import make_stream, ratio_mask_fullband

    model = make_model()
    assert model.sample_rate == MODEL_RATE
    g = torch.Generator().manual_seed(6)
    mix = torch.randn(2, 40000, generator=g) * 0.2
    plain = separate(model, mix, rate)
    full = separate(model, mix, rate, postfilter="ratio-mask-fullband")
    assert (full - ratio_mask_fullband(mix, plain, rate, MODEL_RATE)).abs().max() <= 1e-5
    assert (full.sum(dim=0) - mix).abs().max() <= 1e-5
    masked = separate(model, mix, rate, postfilter="ratio-mask")
    if rate == MODEL_RATE:
        assert torch.equal(full, masked)
    else:
        assert (full - masked).abs().max() > 1e-3
    assert make_stream("none", 2, 2, rate, MODEL_RATE) is None
    with pytest.raises(ValueError, match="postfilter"):
        make_stream("wiener", 2, 2, rate, MODEL_RATE)
