"""Tests of wavesep.data.augment: each augmentation on its own, the config, and determinism."""

import numpy as np
import pytest

from wavesep.data import augment as aug
from wavesep.data.augment import AugmentConfig


def _stems(channels=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((4, channels, 1000)).astype(np.float32)  # (S_all, C, T)


def test_random_gain_scales_each_stem_by_one_factor_in_range():
    stems = _stems()
    out = aug.random_gain(stems.copy(), np.random.default_rng(1), 0.7, 1.0)
    ratios = out / stems  # (S_all, C, T): constant per stem
    for k in range(stems.shape[0]):
        assert np.allclose(ratios[k], ratios[k, 0, 0], rtol=1e-6)
        assert 0.7 <= ratios[k, 0, 0] <= 1.0
    assert len({round(float(r), 6) for r in ratios[:, 0, 0]}) == stems.shape[0]


def test_random_gain_distribution_is_uniform_on_the_range():
    # Over many draws the factors fill [0.7, 1.0] with mean 0.85 (std of U(a, b) is (b - a) / sqrt(12)).
    ones = np.ones((20000, 1, 1), dtype=np.float64)
    g = aug.random_gain(ones, np.random.default_rng(2), 0.7, 1.0)[:, 0, 0]
    assert g.min() >= 0.7 and g.max() <= 1.0
    assert abs(g.mean() - 0.85) < 0.005
    assert abs(g.std() - 0.3 / np.sqrt(12)) < 0.003


def test_swap_channels_exchanges_left_and_right_of_some_stems():
    stems = _stems()
    out = aug.swap_channels(stems.copy(), np.random.default_rng(3), prob=0.5)
    swapped = [k for k in range(4) if np.array_equal(out[k], stems[k, ::-1])]
    kept = [k for k in range(4) if np.array_equal(out[k], stems[k])]
    assert sorted(swapped + kept) == [0, 1, 2, 3]
    always = aug.swap_channels(stems.copy(), np.random.default_rng(3), prob=1.0)
    assert np.array_equal(always, stems[:, ::-1])


def test_swap_channels_leaves_mono_alone():
    stems = _stems(channels=1)
    assert np.array_equal(aug.swap_channels(stems.copy(), np.random.default_rng(0), prob=1.0), stems)


def test_flip_sign_negates_whole_stems():
    stems = _stems()
    out = aug.flip_sign(stems.copy(), np.random.default_rng(4), prob=0.5)
    for k in range(4):
        assert np.array_equal(out[k], stems[k]) or np.array_equal(out[k], -stems[k])
    assert np.array_equal(aug.flip_sign(stems.copy(), np.random.default_rng(4), prob=1.0), -stems)
    assert np.array_equal(aug.flip_sign(stems.copy(), np.random.default_rng(4), prob=0.0), stems)


def test_remix_takes_each_stem_from_the_draw_function():
    calls = []

    def draw(rng, k):
        calls.append(k)
        return np.full((2, 5), float(k) + rng.random())

    out = aug.remix(np.random.default_rng(0), 3, draw)
    assert out.shape == (3, 2, 5)
    assert calls == [0, 1, 2]
    assert [int(out[k, 0, 0]) for k in range(3)] == [0, 1, 2]


def test_apply_is_deterministic_in_the_generator_and_keeps_mixture_sum():
    stems = _stems()
    cfg = AugmentConfig(gain=True, channel_swap=True, sign_flip=True)
    a = aug.apply(stems.copy(), np.random.default_rng(7), cfg)
    b = aug.apply(stems.copy(), np.random.default_rng(7), cfg)
    c = aug.apply(stems.copy(), np.random.default_rng(8), cfg)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # Each augmented stem is +-g * (the stem or its channel swap) with g in [0.7, 1].
    for k in range(4):
        for candidate in (stems[k], stems[k, ::-1]):
            ratio = a[k] / candidate
            if np.allclose(ratio, ratio[0, 0], rtol=1e-5):
                assert 0.7 <= abs(ratio[0, 0]) <= 1.0
                break
        else:
            pytest.fail(f"stem {k} is not a scaled, possibly swapped copy of the input")


def test_apply_with_nothing_enabled_is_the_identity():
    stems = _stems()
    assert np.array_equal(aug.apply(stems.copy(), np.random.default_rng(0), AugmentConfig.none()), stems)
    assert not AugmentConfig.none().enabled
    paper = AugmentConfig.paper()
    assert paper.gain and not (paper.channel_swap or paper.sign_flip or paper.remix)


def test_config_from_value_and_validation():
    assert AugmentConfig.from_value(True) == AugmentConfig()
    assert AugmentConfig.from_value(False) == AugmentConfig.none()
    assert AugmentConfig.from_value({"remix": True}).remix
    with pytest.raises(ValueError, match="unknown augmentation options"):
        AugmentConfig.from_value({"pitch": True})
    with pytest.raises(ValueError, match="gain_low"):
        AugmentConfig(gain_low=1.2, gain_high=1.0)
    with pytest.raises(ValueError, match="sign_flip_prob"):
        AugmentConfig(sign_flip_prob=2.0)
    assert AugmentConfig.from_value(AugmentConfig().to_dict()) == AugmentConfig()


def test_random_level_sets_the_mixture_rms_to_a_drawn_level():
    stems = _stems()
    levels = []
    for seed in range(200):
        out = aug.random_level(stems.copy(), np.random.default_rng(seed), -40.0, -10.0)
        ratios = out / stems  # one factor for all stems
        assert np.allclose(ratios, ratios[0, 0, 0], rtol=1e-5)
        levels.append(10 * np.log10(np.mean(np.square(out.sum(axis=0), dtype=np.float64))))
        # The drawn level is the first draw of the generator, U(-40, -10): recompute it here.
        assert abs(levels[-1] - np.random.default_rng(seed).uniform(-40.0, -10.0)) < 1e-3
    assert -40.0 <= min(levels) < -37.0 and -13.0 < max(levels) <= -10.0


def test_random_level_leaves_silence_alone_and_config_validates_the_range():
    silent = np.zeros((4, 2, 100), dtype=np.float32)
    assert np.array_equal(aug.random_level(silent.copy(), np.random.default_rng(0)), silent)
    with pytest.raises(ValueError, match="level_low_db"):
        AugmentConfig(level=True, level_low_db=-10.0, level_high_db=-20.0)
    with pytest.raises(ValueError, match="level_low_db"):
        AugmentConfig(level=True, level_low_db=-10.0, level_high_db=3.0)
    cfg = AugmentConfig(level=True, level_low_db=-30.0, level_high_db=-20.0)
    out = aug.apply(_stems(), np.random.default_rng(5), cfg)
    level = 10 * np.log10(np.mean(np.square(out.sum(axis=0), dtype=np.float64)))
    assert -30.0 <= level <= -20.0


def test_make_mono_averages_the_channels_of_every_stem_with_its_probability():
    stems = _stems()
    out = aug.make_mono(stems.copy(), np.random.default_rng(0), prob=1.0)
    assert np.allclose(out[:, 0], stems.mean(axis=1)) and np.array_equal(out[:, 0], out[:, 1])
    assert np.allclose(out.sum(axis=0)[0], stems.sum(axis=0).mean(axis=0), atol=1e-5)  # mixture made mono too
    assert np.array_equal(aug.make_mono(stems.copy(), np.random.default_rng(0), prob=0.0), stems)
    made = sum(np.array_equal(o[:, 0], o[:, 1]) for o in
               (aug.make_mono(stems.copy(), np.random.default_rng(s), prob=0.2) for s in range(2000)))
    assert 340 < made < 460  # 2000 x 0.2 = 400, binomial std 18
