"""Tests of the ideal-ratio-mask oracle (wavesep.metrics.oracle)."""

import numpy as np
import pytest

from wavesep.errors import AudioError
from wavesep.metrics import oracle


def _sdr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Plain SDR, 10 log10(|s|^2 / |s - s_hat|^2), no projection or filters."""
    error = np.sum((reference - estimate) ** 2)
    return 10.0 * np.log10(np.sum(reference**2) / error)


@pytest.mark.parametrize("power", [1.0, 2.0])
@pytest.mark.parametrize("dtype, atol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_estimates_sum_to_mixture(power, dtype, atol):
    rng = np.random.default_rng(0)
    sources = rng.standard_normal((3, 12345, 2)).astype(dtype)  # odd T
    estimates = oracle.ideal_ratio_mask(sources, n_fft=512, hop=128, power=power)
    assert estimates.shape == sources.shape
    assert estimates.dtype == dtype
    np.testing.assert_allclose(estimates.sum(axis=0), sources.sum(axis=0), rtol=0, atol=atol)


@pytest.mark.parametrize("length", [100, 4097, 12345])
def test_single_source_is_returned_unchanged(length):
    # mask is 1 everywhere, so this checks that the STFT / overlap-add round trip is exact
    # and that the output has exactly T samples, including T shorter than one window
    rng = np.random.default_rng(1)
    source = rng.standard_normal((1, length, 2))
    estimate = oracle.ideal_ratio_mask(source, n_fft=512, hop=128)
    assert estimate.shape == (1, length, 2)
    np.testing.assert_allclose(estimate, source, rtol=0, atol=1e-12)


def test_disjoint_spectra_are_recovered():
    sample_rate = 44100
    t = np.arange(2 * sample_rate) / sample_rate
    low = np.sin(2 * np.pi * 220.0 * t)
    high = np.sin(2 * np.pi * 5000.0 * t + 0.3)
    # channels carry different levels, so a mix-up between channels would show
    sources = np.stack(
        [np.stack([0.8 * low, 0.3 * low], axis=-1), np.stack([0.2 * high, 0.9 * high], axis=-1)]
    )  # (S=2, T, C=2)
    estimates = oracle.ideal_ratio_mask(sources)  # SiSEC settings: 4096 / 1024, power 2
    for j in range(2):
        for c in range(2):
            assert _sdr_db(sources[j, :, c], estimates[j, :, c]) > 30.0


def test_overlapping_sources_are_not_separated_perfectly():
    # two independent white noises share every cell: the mask cannot undo that, so the oracle
    # must be far from perfect (guards against a bug that returns the sources themselves)
    rng = np.random.default_rng(2)
    sources = rng.standard_normal((2, 20000, 1))
    estimates = oracle.ideal_ratio_mask(sources, n_fft=512, hop=128)
    for j in range(2):
        assert 0.0 < _sdr_db(sources[j, :, 0], estimates[j, :, 0]) < 15.0


def test_ratio_masks_values_and_sum():
    rng = np.random.default_rng(3)
    spectra = rng.standard_normal((3, 40, 30)) + 1j * rng.standard_normal((3, 40, 30))
    spectra[:, 5, 7] = 0.0  # a cell where every source is silent
    spectra[1, 9, 2] = 0.0  # a cell where one source is silent
    for power in (0.5, 1.0, 2.0):
        masks = oracle.ratio_masks(spectra, power)
        assert masks.shape == spectra.shape
        assert masks.min() >= 0.0 and masks.max() <= 1.0
        np.testing.assert_allclose(masks.sum(axis=0), 1.0, rtol=0, atol=1e-12)
        np.testing.assert_allclose(masks[:, 5, 7], 1.0 / 3.0)
        assert masks[1, 9, 2] == 0.0
        with np.errstate(invalid="ignore"):  # 0 / 0 in the all-silent cell, left out below
            direct = np.abs(spectra) ** power / np.sum(np.abs(spectra) ** power, axis=0)
        keep = np.ones(spectra.shape[1:], dtype=bool)
        keep[5, 7] = False
        np.testing.assert_allclose(masks[:, keep], direct[:, keep], rtol=1e-12)


@pytest.mark.parametrize("scale, dtype", [(1e-200, np.complex128), (1e25, np.complex64)])
def test_ratio_masks_survive_extreme_scales(scale, dtype):
    # |X|^2 underflows (1e-400) or overflows float32 (1e50) here; the masks must not care
    rng = np.random.default_rng(4)
    spectra = rng.standard_normal((2, 50)) + 1j * rng.standard_normal((2, 50))
    expected = oracle.ratio_masks(spectra, 2.0)
    with np.errstate(all="raise"):
        masks = oracle.ratio_masks((spectra * scale).astype(dtype), 2.0)
    np.testing.assert_allclose(masks, expected, rtol=1e-5)


@pytest.mark.parametrize(
    "sources, kwargs",
    [
        (np.zeros((2, 1000)), {}),  # missing channel axis
        (np.zeros((2, 1000, 1), dtype=np.int16), {}),  # integer PCM
        (np.full((2, 1000, 1), np.nan), {}),
        (np.zeros((2, 1000, 1)), {"n_fft": 512, "hop": 300}),  # less than 50 % overlap
        (np.zeros((2, 1000, 1)), {"power": 0.0}),
    ],
)
def test_bad_input_raises_audio_error(sources, kwargs):
    with pytest.raises(AudioError):
        oracle.ideal_ratio_mask(sources, **kwargs)
