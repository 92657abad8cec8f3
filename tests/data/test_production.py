"""Production augmentation (wavesep.data.production): shapes, determinism, exact sums, ceilings."""

import numpy as np
import pytest

from wavesep.data import production as P

SR = 22050
NAMES = ("bass", "drums", "other", "vocals")


def _stems(seed=0, channels=2, length=20000, scale=0.05):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((len(NAMES), channels, length)) * scale).astype(np.float32)


def test_produce_is_a_pure_function_of_the_rng():
    a, b = _stems(), _stems()
    P.produce(a, np.random.default_rng(7), SR, NAMES)
    P.produce(b, np.random.default_rng(7), SR, NAMES)
    np.testing.assert_array_equal(a, b)
    c = _stems()
    P.produce(c, np.random.default_rng(8), SR, NAMES)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("channels", [1, 2])
def test_produce_keeps_shape_dtype_and_finiteness(channels):
    for seed in range(10):
        s = _stems(channels=channels)
        out = P.produce(s, np.random.default_rng(seed), SR, NAMES)
        assert out is s and s.shape == (4, channels, 20000) and s.dtype == np.float32
        assert np.isfinite(s).all()


def test_master_is_one_gain_for_all_stems_so_the_mixture_stays_their_sum():
    s = _stems()
    before = s.copy()
    P.master(s, np.random.default_rng(3), SR)
    # every stem is multiplied by the same per-sample gain: ratios agree across stems
    ratio = s / before
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:1, :1], ratio.shape), rtol=1e-4)


def test_master_levels_and_ceiling():
    levels = []
    for seed in range(40):
        s = _stems(seed, scale=0.3)  # loud input: the limiter / peak guard must act
        P.master(s, np.random.default_rng(seed), SR)
        mix = s.sum(axis=0)
        assert np.abs(mix).max() <= 0.99 + 1e-5
        levels.append(20 * np.log10(np.sqrt(np.mean(mix.astype(np.float64) ** 2))))
    assert min(levels) < -20 and max(levels) > -14  # both quiet and loud (mastered) windows occur


def test_limiter_gain_holds_the_ceiling_exactly():
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((2, 5000)) * 0.8
    g = P._limiter_gain(mix, 0.5, 23)
    assert np.max(np.abs(mix) * g[None]) <= 0.5 + 1e-12
    assert (g <= 1).all() and (g > 0).all()


def test_vocal_chain_keeps_the_level_and_adds_a_tail():
    # a short burst followed by silence: reverb or echo leave energy after it in most draws
    v = np.zeros((2, 30000), dtype=np.float32)
    v[:, :3000] = np.random.default_rng(1).standard_normal((2, 3000)) * 0.1
    tails = 0
    for seed in range(20):
        out = P.vocal_chain(v, np.random.default_rng(seed), SR)
        assert out.shape == v.shape
        np.testing.assert_allclose(np.sqrt(np.mean(out.astype(np.float64) ** 2)),
                                   np.sqrt(np.mean(v.astype(np.float64) ** 2)), rtol=1e-4)
        tails += np.abs(out[:, 8000:]).max() > 1e-3
    assert tails >= 12  # reverb has probability 0.8


def test_silent_stems_stay_silent():
    s = np.zeros((4, 2, 5000), dtype=np.float32)
    P.produce(s, np.random.default_rng(0), SR, NAMES)
    assert not s.any()


def test_some_windows_are_mono_and_bass_is_often_centred():
    mono = centred_bass = 0
    for seed in range(60):
        s = _stems(seed)
        P.produce(s, np.random.default_rng(seed), SR, NAMES)
        mono += np.allclose(s[:, 0], s[:, 1])
        centred_bass += np.allclose(s[0, 0], s[0, 1])
    assert 4 <= mono <= 24  # probability 0.2
    assert centred_bass >= 35  # 0.7 + 0.3 * 0.2


def test_brighten_lifts_the_top_band_against_the_voice_band_and_keeps_the_level():
    from wavesep.data.production import brighten

    rate = 22050
    t = np.arange(rate) / rate
    low, high = np.sin(2 * np.pi * 400 * t), 0.01 * np.sin(2 * np.pi * 9000 * t)
    stem = np.stack([low + high, low + high]).astype(np.float32)
    for seed in range(5):
        out = brighten(stem, np.random.default_rng(seed), rate)
        assert out.shape == stem.shape and out.dtype == np.float32
        np.testing.assert_allclose(np.sqrt(np.mean(out.astype(np.float64) ** 2)),
                                   np.sqrt(np.mean(stem.astype(np.float64) ** 2)), rtol=1e-5)
        spec = np.abs(np.fft.rfft(out[0, rate // 2:]))  # after the filters' start-up, 2 Hz bins
        before = np.abs(np.fft.rfft(stem[0, rate // 2:]))
        lift = 20 * np.log10(spec[4500] / spec[200]) - 20 * np.log10(before[4500] / before[200])
        # two shelves of +3..+15 dB and 0..+10 dB: between +3 and +25 dB at 9 kHz against 400 Hz
        assert 3.0 - 0.5 < lift < 25.0 + 0.5
    assert np.array_equal(brighten(stem, np.random.default_rng(3), rate), brighten(stem, np.random.default_rng(3), rate))
    silent = np.zeros((2, 100), np.float32)
    assert not brighten(silent, np.random.default_rng(0), rate).any()
