"""wavesep.metrics.bss_eval_v4 against museval itself (mode "v4") on short generated tracks."""

import museval
import numpy as np
import pytest
import scipy.signal
import torch

from wavesep.errors import AudioError, DependencyError, WavesepError
from wavesep.metrics import bss_eval_v4
from wavesep.metrics.bss import _block_levinson, _solve_block_toeplitz

TOLERANCE_DB = 0.01


def make_track(num_sources, seconds, sample_rate, num_channels=2, seed=0):
    """Reference images and distorted estimates, both (S, T, C) float64.

    References: band-passed noise plus a harmonic tone under a slow envelope, panned with a
    small inter-channel delay, over a faint noise floor (so that, as with real recordings, no
    band is numerically empty). Estimates: each reference through a short random filter, with
    channel crosstalk, leakage of the other sources, additive noise and a gain drift.
    """
    rng = np.random.default_rng(seed)
    length = int(seconds * sample_rate)
    time_s = np.arange(length) / sample_rate
    refs = np.empty((num_sources, length, num_channels))
    for s in range(num_sources):
        low, high = 60.0 * (s + 1), min(0.4 * sample_rate, 900.0 * (s + 1) ** 1.5)
        sos = scipy.signal.butter(2, [low, high], btype="band", fs=sample_rate, output="sos")
        voice = scipy.signal.sosfilt(sos, rng.standard_normal(length))
        for k in range(1, 4):
            voice += 0.3 / k * np.sin(2 * np.pi * 110.0 * (s + 1) * k * time_s + rng.uniform(0, 6))
        voice *= 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * time_s + rng.uniform(0, 6))
        for c in range(num_channels):
            delayed = np.roll(voice, int(rng.integers(0, 12)))
            refs[s, :, c] = rng.uniform(0.4, 1.0) * delayed + 1e-3 * rng.standard_normal(length)
    ests = np.empty_like(refs)
    gain_drift = np.linspace(0.85, 1.15, length)[:, None]
    for s in range(num_sources):
        taps = rng.standard_normal(24) * np.exp(-np.arange(24) / 4.0) * 0.3
        taps[0] += 1.0
        ests[s] = scipy.signal.lfilter(taps, 1.0, refs[s], axis=0)
        ests[s] += 0.15 * refs[s][:, ::-1]  # crosstalk between channels
        for k in range(num_sources):
            if k != s:
                ests[s] += rng.uniform(0.05, 0.25) * refs[k]
        ests[s] += 0.03 * rng.standard_normal((length, num_channels))
        ests[s] *= gain_drift
    return refs, ests


def museval_v4(refs, ests, sample_rate, window_seconds=1.0, hop_seconds=1.0):
    # the same sample counts as museval.eval_mus_track derives from seconds
    return museval.evaluate(
        refs, ests, win=int(window_seconds * sample_rate), hop=int(hop_seconds * sample_rate)
    )


def assert_matches(ours, theirs):
    for name, a, b in zip(("SDR", "ISR", "SIR", "SAR"), ours, theirs):
        assert a.shape == b.shape, name
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{name} NaN positions")
        np.testing.assert_allclose(a, b, rtol=0, atol=TOLERANCE_DB, err_msg=name)


@pytest.mark.parametrize(
    "num_sources, seconds, sample_rate, num_channels",
    [
        (2, 4.0, 8000, 2),
        (3, 4.5, 11025, 2),  # the last half second is a partial window, dropped
        (4, 3.0, 8000, 2),
        (2, 3.0, 8000, 1),
    ],
)
def test_matches_museval(num_sources, seconds, sample_rate, num_channels):
    refs, ests = make_track(num_sources, seconds, sample_rate, num_channels, seed=num_sources)
    theirs = museval_v4(refs, ests, sample_rate)
    ours = bss_eval_v4(refs, ests, sample_rate)
    assert ours[0].shape == (num_sources, int(seconds))
    assert all(np.isfinite(m).all() for m in ours)
    assert_matches(ours, theirs)


def test_silent_windows_are_nan_where_museval_has_them():
    sample_rate = 8000
    refs, ests = make_track(2, 5.0, sample_rate, seed=7)
    refs[1, 1 * sample_rate : 2 * sample_rate] = 0.0  # a silent reference second
    ests[1, 3 * sample_rate : 4 * sample_rate] = 0.0  # a silent estimate second
    # channels cancelling out count as silent for museval (it sums over channels)
    ests[0, 4 * sample_rate : 5 * sample_rate, 1] = -ests[0, 4 * sample_rate : 5 * sample_rate, 0]
    # silent except one sample: not silent
    refs[0, 2 * sample_rate : 3 * sample_rate] = 0.0
    refs[0, 2 * sample_rate + 100] = 0.01
    theirs = museval_v4(refs, ests, sample_rate)
    ours = bss_eval_v4(refs, ests, sample_rate)
    nan_frames = np.isnan(ours[0]).all(axis=0)
    np.testing.assert_array_equal(nan_frames, [False, True, False, True, True])
    assert_matches(ours, theirs)


def test_overlapping_windows_and_an_exact_frame_match_museval():
    sample_rate = 8000
    refs, ests = make_track(2, 4.0, sample_rate, seed=3)
    # a first frame where an estimate equals its reference exactly
    ests[1, : 3 * sample_rate // 2] = refs[1, : 3 * sample_rate // 2]
    theirs = museval_v4(refs, ests, sample_rate, window_seconds=1.5, hop_seconds=0.5)
    ours = bss_eval_v4(refs, ests, sample_rate, window_seconds=1.5, hop_seconds=0.5)
    assert ours[0].shape == (2, 6)
    # there the SDR error is zero: ours is +inf, museval's is rounding noise far above 300 dB
    assert ours[0][1, 0] == np.inf and theirs[0][1, 0] > 300
    theirs[0][1, 0] = np.inf
    assert_matches(ours, theirs)


def test_track_shorter_than_window_gives_one_frame_like_museval():
    sample_rate = 8000
    refs, ests = make_track(2, 0.7, sample_rate, seed=5)
    theirs = museval_v4(refs, ests, sample_rate)
    ours = bss_eval_v4(refs, ests, sample_rate)
    assert ours[0].shape == (2, 1)
    assert_matches(ours, theirs)


def test_float32_and_explicit_cpu_give_the_same_values():
    refs, ests = make_track(2, 2.0, 8000, seed=11)
    refs32, ests32 = refs.astype(np.float32), ests.astype(np.float32)
    reference = bss_eval_v4(refs32.astype(np.float64), ests32.astype(np.float64), 8000)
    for a, b in zip(bss_eval_v4(refs32, ests32, 8000, device="cpu"), reference):
        np.testing.assert_array_equal(a, b)


def dense_block_toeplitz(blocks):
    """(2n-1, m, m) blocks, R(k) at row k + n - 1 -> the (n m, n m) matrix with block (a, b)
    equal to R(b - a), written out entry by entry."""
    n = (blocks.shape[0] + 1) // 2
    m = blocks.shape[1]
    dense = np.empty((n * m, n * m))
    for a in range(n):
        for b in range(n):
            dense[a * m : (a + 1) * m, b * m : (b + 1) * m] = blocks[b - a + n - 1]
    return dense


def test_block_levinson_matches_a_dense_solve():
    # normal equations of a random multichannel least-squares fit: symmetric positive
    # definite block Toeplitz, as in BSS Eval
    rng = np.random.default_rng(0)
    n, m, q = 40, 3, 2
    sig = rng.standard_normal((m, 600)) + 0.5 * np.roll(rng.standard_normal((m, 600)), 1, axis=1)
    blocks = np.empty((2 * n - 1, m, m))
    for lag in range(-(n - 1), n):
        shifted = np.roll(np.pad(sig, ((0, 0), (n, n))), lag, axis=1)
        blocks[lag + n - 1] = shifted @ np.pad(sig, ((0, 0), (n, n))).T
    rhs = rng.standard_normal((n, m, q))
    expected = np.linalg.solve(dense_block_toeplitz(blocks), rhs.reshape(n * m, q))
    solved = _block_levinson(blocks, rhs).reshape(n * m, q)
    np.testing.assert_allclose(solved, expected, rtol=1e-9, atol=1e-12)


def test_block_toeplitz_solver_falls_back_when_a_leading_section_is_singular():
    # R(0) = 0 stops the recursion at once, yet the whole matrix [[0, 1], [1, 0]] is regular
    blocks = np.array([[[1.0]], [[0.0]], [[1.0]]])
    rhs = np.array([[[2.0]], [[3.0]]])
    np.testing.assert_allclose(_solve_block_toeplitz(blocks, rhs).ravel(), [3.0, 2.0])


def test_shape_mismatch_is_a_clear_value_error():
    refs, ests = make_track(2, 1.0, 8000)
    with pytest.raises(ValueError, match=r"shape \(2, 8000, 2\).*\(2, 7999, 2\)"):
        bss_eval_v4(refs, ests[:, :-1], 8000)
    with pytest.raises(AudioError, match="sources, samples, channels"):
        bss_eval_v4(refs[0], ests[0], 8000)
    with pytest.raises(WavesepError, match="shape"):
        bss_eval_v4(refs[:1], ests, 8000)


def test_unusable_inputs_are_rejected():
    refs, ests = make_track(2, 1.0, 8000)
    silent = ests.copy()
    silent[1] = 0.0
    with pytest.raises(AudioError, match=r"estimates of source index\(es\) \[1\] are silent"):
        bss_eval_v4(refs, silent, 8000)
    broken = refs.copy()
    broken[0, 10, 1] = np.nan
    with pytest.raises(AudioError, match="NaN or infinite"):
        bss_eval_v4(broken, ests, 8000)
    with pytest.raises(AudioError, match="window=0"):
        bss_eval_v4(refs, ests, 8000, window_seconds=1e-5)
    with pytest.raises(AudioError, match="hop=0"):
        bss_eval_v4(refs, ests, 8000, hop_seconds=1e-5)
    with pytest.raises(AudioError, match="positive finite"):
        bss_eval_v4(refs, ests, float("nan"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_request_without_cuda_names_the_fix():
    refs, ests = make_track(2, 1.0, 8000)
    with pytest.raises(DependencyError, match="device='cpu'"):
        bss_eval_v4(refs, ests, 8000, device="cuda")
