"""Tests of wavesep.data.rendered (windows of songs rendered on the fly) and the song stream
that feeds it (wavesep.corpus.command.SongStream), with made-up songs and the oscillator renderer."""

import pickle

import numpy as np
import pytest

from wavesep import WaveUNet, presets
from wavesep.corpus.command import HEADROOM_PEAK, SOURCES, SongStream, stream_seed, track_seed
from wavesep.data import SONG_STEMS, RenderedWindows, WindowSpec
from wavesep.data.augment import AugmentConfig
from wavesep.errors import DataError

RATE = 8000


class ConstantSongs:
    """Song k: every stem constant over its 3000 samples; vocals = k + 1, drums = -(k + 1) / 2,
    bass = 0.25, other = 0.125 (left) / 0.5 (right); counts its calls."""

    def __init__(self, frames=3000):
        self.frames, self.calls = frames, []

    def __call__(self, k):
        self.calls.append(k)
        ones = np.ones((self.frames, 2), np.float32)
        other = ones * np.array([0.125, 0.5], np.float32)
        return {"vocals": ones * (k + 1), "drums": ones * (-(k + 1) / 2), "bass": ones * 0.25, "other": other}


@pytest.fixture(scope="module")
def model():
    return WaveUNet(presets.get("tiny"))


def _windows(model, songs, **kwargs):
    window = WindowSpec.from_model(model, 256)
    kwargs.setdefault("augment", False)
    return RenderedWindows(songs, SONG_STEMS, model.sources, window, RATE, kwargs.pop("channels", 2), **kwargs)


def test_the_song_stems_are_the_corpus_stems():
    assert set(SONG_STEMS) == set(SOURCES)


def test_windows_spread_over_p_songs_and_each_song_serves_w_windows(model):
    songs = ConstantSongs()
    ds = _windows(model, songs, songs_at_once=3, windows_per_song=4)
    index = [ds.song_index(i) for i in range(24)]
    assert index[:3] == [0, 1, 2] and index[3:6] == [0, 1, 2]  # consecutive windows: P songs
    assert index[12:15] == [3, 4, 5]  # the second block of P * W = 12 windows: the next P songs
    assert sorted(np.bincount(index)) == [4] * 6
    for i in range(24):
        ds[i]
    assert songs.calls == [0, 1, 2, 3, 4, 5]  # rendered once each, in order
    assert len(ds._cache) == 3


def test_window_targets_come_from_their_song_and_the_mixture_is_their_sum(model):
    ds = _windows(model, ConstantSongs(), songs_at_once=2, windows_per_song=3)
    w = ds.window
    for i in range(12):
        mix, targets = ds[i]  # (C, T_in), (S, C, T_out)
        assert mix.shape == (2, w.input_samples) and targets.shape == (2, 2, w.output_samples)
        k = ds.song_index(i)
        accompaniment, vocals = targets.numpy()  # the vocals task: (accompaniment, vocals)
        np.testing.assert_array_equal(vocals, np.float32(k + 1))
        expected = np.float32(-(k + 1) / 2) + np.float32(0.25) + np.array([[0.125], [0.5]], np.float32)
        np.testing.assert_allclose(accompaniment, np.broadcast_to(expected, accompaniment.shape), rtol=1e-6)
        cropped = mix.numpy()[:, w.offset : w.offset + w.output_samples]
        np.testing.assert_allclose(cropped, accompaniment + vocals, rtol=1e-6, atol=1e-6)


def test_a_window_is_a_pure_function_of_seed_and_index(model):
    a = _windows(model, ConstantSongs(), augment=True, seed=5)
    b = _windows(model, ConstantSongs(), augment=True, seed=5)
    c = _windows(model, ConstantSongs(), augment=True, seed=6)
    for i in (0, 7, 300, 5):  # out of order: the song cache changes nothing
        for x, y in zip(a[i], b[i]):
            assert torch_equal(x, y)
    assert not all(torch_equal(x, y) for x, y in zip(a[7], c[7]))
    assert pickle.loads(pickle.dumps(a))[300][1].equal(a[300][1])


def torch_equal(x, y):
    return bool((x == y).all())


def test_remixed_windows_take_each_stem_from_a_song_of_their_block(model):
    songs = ConstantSongs()
    plain = dict(gain=False, channel_swap=False, sign_flip=False)
    ds = _windows(model, songs, songs_at_once=3, windows_per_song=4, augment=AugmentConfig(remix=True, **plain))
    pairs = set()
    for i in range(24):
        accompaniment, vocals = ds[i][1].numpy()
        block = range(i // 12 * 3, i // 12 * 3 + 3)
        k_vocals = int(round(vocals[0, 0])) - 1
        assert k_vocals in block and np.all(vocals == vocals[0, 0])
        # accompaniment = drums of a block song + bass + other: recover that song
        k_drums = int(round(-2 * (accompaniment[0, 0] - 0.25 - 0.125))) - 1
        assert k_drums in block
        pairs.add((k_vocals, k_drums))
    assert any(a != b for a, b in pairs)  # stems of different songs in one window
    assert sorted(songs.calls) == [0, 1, 2, 3, 4, 5]  # no song outside the blocks, each rendered once


def test_mono_models_get_each_stems_channel_mean(model):
    ds = _windows(model, ConstantSongs(), channels=1)
    mix, targets = ds[0]
    assert mix.shape[0] == 1 and targets.shape[1] == 1
    accompaniment = targets[0].numpy()
    np.testing.assert_allclose(accompaniment, -0.5 + 0.25 + (0.125 + 0.5) / 2, rtol=1e-6)


def test_augmentations_that_need_fixed_tracks_are_refused(model):
    for change in ({"backing": True}, {"voices": True}):
        with pytest.raises(DataError, match="on the fly"):
            _windows(model, ConstantSongs(), augment=AugmentConfig(**change))
    with pytest.raises(DataError, match="songs_at_once"):
        _windows(model, ConstantSongs(), songs_at_once=0)

    def no_drums(k):
        song = ConstantSongs()(k)
        del song["drums"]
        return song

    with pytest.raises(DataError, match="drums"):
        _windows(model, no_drums)[0]


def test_the_song_stream_is_deterministic_and_scaled_for_headroom():
    stream = SongStream("oscillator", seed=0, seconds=1.5, sample_rate=RATE)
    first, again, other = stream(3), stream(3), stream(4)
    assert set(first) == set(SOURCES)
    for stem in SOURCES:
        assert first[stem].shape == (int(round(1.5 * RATE)), 2) and first[stem].dtype == np.float32
        np.testing.assert_array_equal(first[stem], again[stem])
    assert any(not np.array_equal(first[s], other[s]) for s in SOURCES)
    mixture = sum(first[s].astype(np.float64) for s in SOURCES)
    assert np.max(np.abs(mixture)) <= HEADROOM_PEAK + 1e-6
    assert np.max(np.abs(mixture)) > 0.01
    # a pickled stream (as DataLoader workers get it) renders the same song
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(stream))(3)["drums"], first["drums"])


def test_streamed_songs_have_seeds_of_their_own():
    streamed = {stream_seed(0, k) for k in range(50)}
    corpus = {track_seed(0, split, k) for split in ("train", "valid", "test") for k in range(50)}
    assert len(streamed) == 50 and not streamed & corpus
    assert stream_seed(1, 0) != stream_seed(0, 0)


def test_the_song_stream_refuses_bad_arguments():
    with pytest.raises(DataError, match="unknown renderer"):
        SongStream("nonesuch", 0, 1.0, RATE)
    with pytest.raises(DataError, match="seconds"):
        SongStream("oscillator", 0, 0, RATE)
    with pytest.raises(DataError, match="seed"):
        SongStream("oscillator", -1, 1.0, RATE)
