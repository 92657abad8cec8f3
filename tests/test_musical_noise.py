"""Tests of the musical-noise metrics (wavesep.metrics.musical_noise) on inputs whose
properties are known: Gaussian noise, spectral subtraction of noise, tone bursts, silence."""

import math
import warnings

import numpy as np
import pytest
import scipy.signal

from wavesep.errors import AudioError
from wavesep.metrics import musical_noise

SAMPLE_RATE = 16000  # default analysis STFT at this rate: 1024 / 256


def _white(seconds: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(int(seconds * SAMPLE_RATE))


def _coloured(seconds: float, seed: int) -> np.ndarray:
    # first-order low-pass at 500 Hz plus a little white: about 25 dB of spectral tilt
    white = _white(seconds, seed)
    b, a = scipy.signal.butter(1, 500, fs=SAMPLE_RATE)
    return scipy.signal.lfilter(b, a, white) + 0.02 * white


def _spectral_subtraction(noisy: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """Magnitude spectral subtraction: |Y| = max(|X| - alpha * N, beta * |X|), noisy phase.

    N(f) is the noise magnitude sqrt(mean_t |X|^2) taken from the input itself (pure noise);
    beta = 0 is plain half-wave rectification, beta > 0 a spectral floor. The processing STFT
    (512 / 128) differs from the analysis STFT of the metrics on purpose.
    """
    _, _, spec = scipy.signal.stft(noisy, nperseg=512, noverlap=384)
    noise_mag = np.sqrt(np.mean(np.abs(spec) ** 2, axis=1, keepdims=True))
    mag = np.maximum(np.abs(spec) - alpha * noise_mag, beta * np.abs(spec))
    _, out = scipy.signal.istft(mag * np.exp(1j * np.angle(spec)), nperseg=512, noverlap=384)
    return out[: len(noisy)]


def _hann_burst(frequency: float, amplitude: float, n_fft: int) -> np.ndarray:
    t = np.arange(n_fft) / SAMPLE_RATE
    return amplitude * scipy.signal.get_window("hann", n_fft) * np.sin(2 * np.pi * frequency * t)


def test_kurtosis_of_white_gaussian_noise_is_six():
    # Closed form: P = |X|^2 is exponential, E[P^4] / E[P^2]^2 = 24 / 4 = 6. 30 s gives
    # 1872 frames x 511 bins ~ 9.6e5 cells; the delta-method standard deviation of the
    # estimate is sqrt(1188 / n) ~ 0.035 for independent cells (0.04 measured over 40 seeds,
    # the overlap and the Hann window correlate neighbours), so 0.3 is more than 7 sigma.
    assert musical_noise.kurtosis(_white(30.0, seed=0), SAMPLE_RATE) == pytest.approx(6.0, abs=0.3)


def test_kurtosis_of_coloured_noise_exceeds_six():
    # pooling bands of different level makes a scale mixture of exponentials: heavier tail
    assert musical_noise.kurtosis(_coloured(8.0, seed=0), SAMPLE_RATE) > 12.0


@pytest.mark.parametrize("make_noise", [_white, _coloured], ids=["white", "coloured"])
def test_spectral_subtraction_creates_musical_noise_and_a_floor_reduces_it(make_noise):
    noise = make_noise(8.0, seed=1)
    rectified = _spectral_subtraction(noise, alpha=1.0, beta=0.0)
    floored = _spectral_subtraction(noise, alpha=1.0, beta=0.3)

    spots_noise = musical_noise.spot_rate(noise, SAMPLE_RATE)
    spots_rectified = musical_noise.spot_rate(rectified, SAMPLE_RATE)
    spots_floored = musical_noise.spot_rate(floored, SAMPLE_RATE)
    kr_rectified = musical_noise.kurtosis_ratio(noise, rectified, SAMPLE_RATE)
    kr_floored = musical_noise.kurtosis_ratio(noise, floored, SAMPLE_RATE)

    # measured (white): 30 -> 424 spots/s, KR 8.2; with the floor 196 spots/s, KR 3.9
    assert spots_noise > 0
    assert spots_rectified > 5.0 * spots_noise
    assert kr_rectified > 3.0
    assert spots_floored < 0.7 * spots_rectified
    assert kr_floored < 0.7 * kr_rectified
    assert musical_noise.kurtosis_ratio(noise, rectified, SAMPLE_RATE, log=True) == pytest.approx(
        math.log(kr_rectified)
    )


def test_spots_carry_energy_after_subtraction():
    noise = _white(8.0, seed=2)
    plain = musical_noise.spot_rate(noise, SAMPLE_RATE, return_details=True)
    processed = musical_noise.spot_rate(
        _spectral_subtraction(noise, alpha=1.0, beta=0.0), SAMPLE_RATE, return_details=True
    )
    assert plain.duration_seconds == pytest.approx(8.0)
    assert plain.n_channels == 1
    assert plain.rate == pytest.approx(plain.n_spots / 8.0)
    # for noise (P exponential with mean s) the cells above tau * s hold a share
    # (1 + tau) * exp(-tau) = (1 + tau) * p_fa ~ 0.0079 of the energy; musical noise far more
    assert 0.005 < plain.energy_share < 0.012
    assert processed.energy_share > 0.1


def test_isolated_tone_bursts_are_spots_and_a_steady_tone_is_not():
    n_fft = 1024
    background = _white(4.0, seed=3)
    # a burst of one window whose peak cell is 15 dB above the mean noise cell power:
    # peak |X| = A * sum(w^2) / 2 against E|X|^2 = sum(w^2) for unit white noise
    window_energy = np.sum(scipy.signal.get_window("hann", n_fft) ** 2)
    amplitude = math.sqrt(10 ** 1.5 * window_energy) / (window_energy / 2)
    with_bursts = background.copy()
    # 60 bursts in second 1, on a grid far apart in time (7 hops) and frequency (1 kHz)
    for k in range(10):
        start = SAMPLE_RATE + k * 1600
        for frequency in (1100.0, 2200.0, 3300.0, 4400.0, 5500.0, 6600.0):
            with_bursts[start : start + n_fft] += _hann_burst(frequency, amplitude, n_fft)
    # the same frequencies held steady through second 2, 25 dB above the noise cells: long
    # unbroken ridges, not spots (a tone near the threshold would break into fragments that
    # do count: the measure sees intermittent peaks, by design)
    with_tones = background.copy()
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    # a steady sine of amplitude B has peak |X| = B * sum(w) / 2 = B * n_fft / 4
    tone_amplitude = 4.0 * math.sqrt(10**2.5 * window_energy) / n_fft
    for frequency in (1100.0, 2200.0, 3300.0, 4400.0, 5500.0, 6600.0):
        with_tones[2 * SAMPLE_RATE : 3 * SAMPLE_RATE] += tone_amplitude * np.sin(
            2 * np.pi * frequency * t
        )

    base = musical_noise.spot_rate_frames(background, SAMPLE_RATE)
    bursts = musical_noise.spot_rate_frames(with_bursts, SAMPLE_RATE)
    tones = musical_noise.spot_rate_frames(with_tones, SAMPLE_RATE)
    assert bursts.shape == base.shape == (4,)
    assert 50 <= bursts[1] - base[1] <= 66
    # elsewhere only the noise spots remain; the bursts raise the median (hence the
    # threshold) of their 18 bins a little, which can remove a few of them
    np.testing.assert_allclose(np.delete(bursts, 1), np.delete(base, 1), atol=5)
    np.testing.assert_allclose(tones, base, atol=5)

    # with a one-cell limit the bursts (5 to 10 cells each) are no longer counted
    strict_base = musical_noise.spot_rate_frames(background, SAMPLE_RATE, max_spot_cells=1)
    strict = musical_noise.spot_rate_frames(with_bursts, SAMPLE_RATE, max_spot_cells=1)
    assert strict[1] - strict_base[1] < 10


def test_pass_through_and_gain_invariance():
    noise = _white(6.0, seed=4)
    processed = _spectral_subtraction(noise, alpha=1.0, beta=0.0)
    assert musical_noise.kurtosis_ratio(processed, processed, SAMPLE_RATE) == 1.0
    assert musical_noise.kurtosis_ratio(noise, noise, SAMPLE_RATE, log=True) == 0.0

    reference_rate = musical_noise.spot_rate(processed, SAMPLE_RATE, return_details=True)
    reference_kurtosis = musical_noise.kurtosis(processed, SAMPLE_RATE)
    for gain in (0.1, 10.0):
        scaled = musical_noise.spot_rate(gain * processed, SAMPLE_RATE, return_details=True)
        assert scaled.n_spots == reference_rate.n_spots
        assert scaled.energy_share == pytest.approx(reference_rate.energy_share, rel=1e-6)
        assert musical_noise.kurtosis(gain * processed, SAMPLE_RATE) == pytest.approx(
            reference_kurtosis, rel=1e-9
        )
        assert musical_noise.kurtosis_ratio(noise, gain * processed, SAMPLE_RATE) == pytest.approx(
            musical_noise.kurtosis_ratio(noise, processed, SAMPLE_RATE), rel=1e-9
        )


def test_channels_are_averaged():
    left = _white(4.0, seed=5)
    right = _spectral_subtraction(_white(4.0, seed=6), alpha=1.0, beta=0.0)
    stereo = np.stack([left, right])  # (C=2, T)
    rate_left = musical_noise.spot_rate(left, SAMPLE_RATE)
    rate_right = musical_noise.spot_rate(right, SAMPLE_RATE)
    stereo_rate = musical_noise.spot_rate(stereo, SAMPLE_RATE)
    assert stereo_rate == pytest.approx((rate_left + rate_right) / 2)
    kurt = musical_noise.kurtosis(stereo, SAMPLE_RATE)
    assert kurt == pytest.approx(
        (musical_noise.kurtosis(left, SAMPLE_RATE) + musical_noise.kurtosis(right, SAMPLE_RATE)) / 2
    )
    # a silent channel has no kurtosis and is left out of the mean
    with_silence = np.stack([left, np.zeros_like(left)])
    assert musical_noise.kurtosis(with_silence, SAMPLE_RATE) == pytest.approx(
        musical_noise.kurtosis(left, SAMPLE_RATE)
    )


def test_silent_and_partly_silent_input():
    silence = np.zeros((2, 3 * SAMPLE_RATE))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning (0/0, log 0) fails the test
        details = musical_noise.spot_rate(silence, SAMPLE_RATE, return_details=True)
        assert details.rate == 0.0 and details.n_spots == 0 and details.energy_share == 0.0
        np.testing.assert_array_equal(musical_noise.spot_rate_frames(silence, SAMPLE_RATE), 0.0)
        assert math.isnan(musical_noise.kurtosis(silence, SAMPLE_RATE))
        assert math.isnan(musical_noise.kurtosis_ratio(silence, silence, SAMPLE_RATE))

        # silent more than half of the time: band medians are zero, results stay finite
        half = np.concatenate([np.zeros(3 * SAMPLE_RATE), _white(2.0, seed=7)])
        assert np.isfinite(musical_noise.spot_rate(half, SAMPLE_RATE))
        assert np.isfinite(musical_noise.spot_rate_frames(half, SAMPLE_RATE)).all()
        assert np.isfinite(musical_noise.kurtosis(half, SAMPLE_RATE))


def test_frames_follow_bss_eval_framing_and_add_up():
    processed = _spectral_subtraction(_white(5.5, seed=8), alpha=1.0, beta=0.0)
    frames = musical_noise.spot_rate_frames(processed, SAMPLE_RATE)
    assert frames.shape == (5,)  # the last half second is dropped
    whole = musical_noise.spot_rate(processed[: 5 * SAMPLE_RATE], SAMPLE_RATE)
    # every spot of a 5 s signal falls in exactly one of its five 1 s frames
    assert musical_noise.spot_rate_frames(processed[: 5 * SAMPLE_RATE], SAMPLE_RATE).mean() == (
        pytest.approx(whole, rel=1e-12)
    )
    # overlapping frames: 2 s windows every 0.5 s over 5.5 s -> floor((5.5 - 2) / 0.5) + 1
    overlapping = musical_noise.spot_rate_frames(
        processed, SAMPLE_RATE, window_seconds=2.0, hop_seconds=0.5
    )
    assert overlapping.shape == (8,)
    # shorter than one window: one frame over the whole signal, rate per its own duration
    short = processed[: SAMPLE_RATE // 2]
    np.testing.assert_allclose(
        musical_noise.spot_rate_frames(short, SAMPLE_RATE),
        [musical_noise.spot_rate(short, SAMPLE_RATE)],
    )


def test_default_stft_scales_with_sample_rate():
    assert musical_noise.default_stft(44100) == (2048, 512)
    assert musical_noise.default_stft(48000) == (2048, 512)
    assert musical_noise.default_stft(22050) == (1024, 256)
    assert musical_noise.default_stft(16000) == (1024, 256)
    assert musical_noise.default_stft(96000) == (4096, 1024)


def test_frequency_band_selection():
    # white noise through a band-pass: inside the pass band the spectrum is white again
    noise = _white(30.0, seed=9)
    sos = scipy.signal.butter(8, [2000, 4000], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    band = scipy.signal.sosfilt(sos, noise)
    assert musical_noise.kurtosis(band, SAMPLE_RATE) > 20.0
    inside = musical_noise.kurtosis(band, SAMPLE_RATE, fmin=2600, fmax=3400)
    assert inside == pytest.approx(6.0, abs=0.5)
    with pytest.raises(AudioError):
        musical_noise.kurtosis(noise, SAMPLE_RATE, fmin=3001, fmax=3010)  # between bins


@pytest.mark.parametrize(
    "call",
    [
        lambda: musical_noise.spot_rate(np.zeros((48000, 2)), 16000),  # (T, C) instead of (C, T)
        lambda: musical_noise.spot_rate(np.zeros(500), 16000),  # shorter than n_fft
        lambda: musical_noise.spot_rate(np.zeros(16000), 16000, p_fa=1.5),
        lambda: musical_noise.spot_rate(np.zeros(16000), 16000, max_spot_cells=0),
        lambda: musical_noise.spot_rate(np.full(16000, np.nan), 16000),
        lambda: musical_noise.spot_rate(np.zeros(16000), 0),
        lambda: musical_noise.kurtosis_ratio(np.zeros(16000), np.zeros(17000), 16000),
        lambda: musical_noise.spot_rate_frames(np.zeros(16000), 16000, window_seconds=1e-6),
    ],
)
def test_bad_input_raises_audio_error(call):
    with pytest.raises(AudioError):
        call()
