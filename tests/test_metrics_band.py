"""High-band recovery (wavesep.metrics.band) against closed-form cases."""

import math

import numpy as np
import pytest

from wavesep.metrics.band import high_band_recovery

SR = 44100


def _tones(freqs, amps, n=SR * 2, channels=2):
    t = np.arange(n) / SR
    x = sum(a * np.sin(2 * np.pi * f * t) for f, a in zip(freqs, amps))
    return np.tile(x, (channels, 1))


def test_a_lowpassed_estimate_recovers_nothing_and_a_perfect_one_everything():
    # a 1 kHz and a 15 kHz tone at amplitudes 1 and 0.5: the top band holds 0.25 / 1.25 of it
    ref = _tones([1000.0, 15000.0], [1.0, 0.5])
    low = _tones([1000.0], [1.0])
    r = high_band_recovery(ref, low, SR)
    assert r["recovered"] == pytest.approx(0.0, abs=1e-6)
    assert r["energy_ratio"] == pytest.approx(0.0, abs=1e-6)
    assert r["reference_share"] == pytest.approx(0.25 / 1.25, rel=1e-3)
    assert high_band_recovery(ref, ref, SR)["recovered"] == pytest.approx(1.0, abs=1e-12)


def test_half_amplitude_recovers_three_quarters():
    # E_h = R_h / 2: error energy 1/4 of the band's, so 3/4 recovered, energy ratio 1/4
    ref = _tones([300.0, 13000.0], [1.0, 0.4])
    est = _tones([300.0, 13000.0], [1.0, 0.2])
    r = high_band_recovery(ref, est, SR)
    assert r["recovered"] == pytest.approx(0.75, abs=1e-3)
    assert r["energy_ratio"] == pytest.approx(0.25, abs=1e-3)


def test_empty_band_is_nan_and_shapes_are_checked():
    ref = _tones([1000.0], [1.0], n=1000)
    assert math.isnan(high_band_recovery(ref, ref, 22050)["recovered"])  # nothing above 11.025 kHz
    with pytest.raises(ValueError):
        high_band_recovery(ref, ref[:, :10], SR)
