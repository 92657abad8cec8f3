"""Tests of wavesep.data on generated corpora only (tiny wav folders written here, 1-1.5 s tracks)."""

import json
import os
import pickle
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import wavesep.audio
from wavesep import WaveUNet, presets
from wavesep.data import (
    AugmentConfig,
    TrainWindows,
    WindowSpec,
    build_datasets,
    list_tracks,
    load_tracks,
    target_stems,
)
from wavesep.errors import AudioError, DataError, DependencyError
from wavesep.model import MULTI_TASK

RATE = 44100
STEMS = ("bass", "drums", "other", "vocals")
SPLITS = {"train": ["Track A", "Track B", "Track C"], "valid": ["Track D"], "test": ["Track E"]}
# A name from musdb's official validation split, and one that is not in it.
MUSDB_VALID_NAME = "Actions - One Minute Smile"
MUSDB_TRAIN_NAME = "Somebody - Not In The Valid List"

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="musdb needs ffmpeg/ffprobe")


def write_track(folder, seed, seconds=1.0, rate=RATE, channels=2, stems=STEMS, mixture=True, mixture_gain=1.0):
    """Noise stems, stem k scaled by (k + 1) so rows are recognisable; FLOAT wav (exact on reading).

    Returns {name: (T, C) float32}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    data = {s: (0.05 * (k + 1) * rng.standard_normal((n, channels))).astype(np.float32) for k, s in enumerate(stems)}
    for s, x in data.items():
        sf.write(folder / f"{s}.wav", x, rate, subtype="FLOAT")
    if mixture:
        sf.write(folder / "mixture.wav", mixture_gain * sum(data.values()), rate, subtype="FLOAT")
    return data


def write_corpus(root, splits=SPLITS):
    """MUSDB18-HQ layout with splits.json, as wavesep.synth writes it."""
    root = Path(root)
    lengths = iter([1.0, 1.5, 1.2, 1.1, 1.0, 1.3, 1.4])
    for k, name in enumerate(n for names in splits.values() for n in names):
        subset = "test" if name in splits.get("test", []) else "train"
        write_track(root / subset / name, seed=k, seconds=next(lengths))
    (root / "splits.json").write_text(json.dumps(splits))
    return root


def build(root, task, model, **kwargs):
    """build_datasets over the corpus read as a folder of stems with splits.json (no musdb, no ffprobe:
    the listing is instant); the "synthetic" reader is covered by the tests that name it."""
    kwargs.setdefault("progress", False)
    return build_datasets("stems", root, task, model, sources=STEMS, **kwargs)


def load(root, subset, **kwargs):
    return load_tracks("stems", root, subset, sources=STEMS, **kwargs)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def tiny():
    return WaveUNet(presets.get("tiny"))


@pytest.fixture(scope="module")
def tiny_multi():
    return WaveUNet(presets.get("tiny").replace(sources=MULTI_TASK))


@pytest.fixture(scope="module")
def datasets(corpus, cache, tiny):
    return build(corpus, "vocals", tiny, cache_dir=cache, progress=False)


# ---------------------------------------------------------------------- listing and reading


@needs_ffmpeg
def test_musdb_reads_the_corpus_and_splits_come_from_splits_json(corpus, tmp_path):
    import musdb

    db = musdb.DB(root=str(corpus), is_wav=True, subsets="train")
    assert sorted(t.name for t in db) == sorted(SPLITS["train"] + SPLITS["valid"])
    for subset in ("train", "valid", "test"):
        assert [t.name for t in list_tracks("synthetic", corpus, subset)] == SPLITS[subset]
    spec = list_tracks("synthetic", corpus, "valid")[0]
    assert spec.stem_names == STEMS and Path(spec.mixture.path).name == "mixture.wav"
    # musdb's own reader (16-bit through ffmpeg) agrees with ours to 16-bit precision.
    ours = load_tracks("synthetic", corpus, "valid", cache_dir=tmp_path)[0]
    theirs = db.tracks[[t.name for t in db].index("Track D")]
    assert np.allclose(ours.stems()[STEMS.index("vocals")].T, theirs.sources["vocals"].audio, atol=2e-4)


@needs_ffmpeg
def test_the_wavesep_synth_corpus_through_musdb(tmp_path, tiny):
    from wavesep.corpus import command as synth

    root = tmp_path / "synth"
    made = synth.build_corpus(root, tracks=2, seconds=1.0, seed=3, valid_tracks=1, test_tracks=1)
    import musdb

    listed = sorted(t.name for t in musdb.DB(root=str(root), is_wav=True, subsets="train"))
    assert listed == sorted(made["splits"]["train"] + made["splits"]["valid"])
    train, valid = build_datasets("synthetic", root, "vocals", tiny, cache_dir=tmp_path / "cache", progress=False)
    assert train.track_names == made["splits"]["train"] and valid.track_names == made["splits"]["valid"]
    test = load_tracks("synthetic", root, "test", cache_dir=tmp_path / "cache")
    assert [t.name for t in test] == made["splits"]["test"]
    for track in train.cached_tracks + test:
        # synth stores the mixture as the exact sum of the 16-bit stems.
        assert np.allclose(track.stems().sum(axis=0), track.mixture(), atol=1e-6)
        assert np.abs(track.stems()).max() > 0
    mix, targets = train[0]
    assert mix.shape == (2, tiny.input_length(16384)) and targets.shape == (2, 2, tiny.output_length(mix.shape[-1]))


def test_cached_stems_are_the_files_and_sum_to_the_mixture(corpus, tmp_path):
    native = load(corpus, "train", cache_dir=tmp_path)
    for track in native:
        folder = corpus / "train" / track.name
        assert track.sample_rate == RATE and track.stem_names == STEMS and track.has_mixture
        for k, s in enumerate(STEMS):
            x, _ = sf.read(folder / f"{s}.wav", dtype="float32")
            assert np.array_equal(track.stems()[k], x.T)
        assert np.allclose(track.stems().sum(axis=0), track.mixture(), atol=1e-6)
    resampled = load(corpus, "train", sample_rate=22050, channels=2, cache_dir=tmp_path)
    for track, full in zip(resampled, native):
        assert track.sample_rate == 22050 and track.length == round(full.length / 2)
        # Resampling is linear: the resampled stems still sum to the resampled mixture.
        assert np.allclose(track.stems().sum(axis=0), track.mixture(), atol=1e-5)


def test_window_shapes_match_the_model(datasets, tiny):
    train, valid = datasets
    n_in = tiny.input_length(16384)
    n_out = tiny.output_length(n_in)
    mix, targets = train[0]
    assert mix.dtype == torch.float32 and targets.dtype == torch.float32
    assert mix.shape == (2, n_in) and targets.shape == (2, 2, n_out)
    with torch.no_grad():
        assert tiny(mix[None]).shape[1:] == targets.shape
    vmix, vtargets = valid[0]
    assert vmix.shape == mix.shape and vtargets.shape == targets.shape
    assert train.sample_rate == 22050 and len(train) == 2**31 - 1


def test_output_samples_sets_the_window(corpus, cache, tiny):
    train, _ = build(corpus, "vocals", tiny, cache_dir=cache, output_samples=4000, progress=False)
    mix, targets = train[3]
    assert mix.shape[-1] == tiny.input_length(4000)
    assert targets.shape[-1] == tiny.output_length(tiny.input_length(4000)) >= 4000


def test_validation_windows_tile_the_track_with_context_padding(datasets, corpus, tmp_path, tiny):
    _, valid = datasets
    track = load(corpus, "valid", sample_rate=22050, channels=2, cache_dir=tmp_path)[0]
    window = WindowSpec.from_model(tiny)
    left = tiny.context[0]
    assert len(valid) == -(-track.length // window.output_samples)
    mix, targets = valid[0]
    # The output window starts at sample 0, so the input begins with `left` zeros of padding.
    assert torch.all(mix[:, :left] == 0)
    n = min(window.input_samples - left, track.length)
    assert np.array_equal(mix[:, left : left + n].numpy(), track.mixture()[:, :n])
    vocals = track.stems()[STEMS.index("vocals")]
    accompaniment = track.stems()[:3].sum(axis=0)
    m = min(window.output_samples, track.length)
    assert np.allclose(targets[1, :, :m].numpy(), vocals[:, :m])
    assert np.allclose(targets[0, :, :m].numpy(), accompaniment[:, :m], atol=1e-6)
    assert torch.all(targets[:, :, m:] == 0)


def test_validation_windows_are_identical_across_runs(corpus, tiny, tmp_path):
    a = build(corpus, "vocals", tiny, cache_dir=tmp_path / "a", progress=False)[1]
    b = build(corpus, "vocals", tiny, cache_dir=tmp_path / "b", progress=False)[1]
    assert a.windows == b.windows and len(a) >= 1
    for i in range(len(a)):
        assert all(torch.equal(x, y) for x, y in zip(a[i], b[i]))
    names = [n for n, _, _ in a.tracks()]
    assert names == SPLITS["valid"]
    name, mix, targets = a.tracks()[0]
    assert mix.shape[0] == 2 and targets.shape[:2] == (2, 2) and targets.shape[-1] == mix.shape[-1]


def test_valid_windows_caps_the_count(corpus, cache, tiny):
    _, full = build(corpus, "vocals", tiny, cache_dir=cache, output_samples=2000, progress=False)
    _, capped = build(corpus, "vocals", tiny, cache_dir=cache, output_samples=2000, valid_windows=3, progress=False
    )
    assert len(full) > 3 and len(capped) == 3
    assert set(capped.windows) <= set(full.windows)
    assert capped.windows[0] == full.windows[0] and capped.windows[-1] == full.windows[-1]


def test_train_windows_are_deterministic_in_seed_and_index(corpus, cache, tiny):
    kwargs = dict(cache_dir=cache, progress=False, augment={"remix": True, "remix_prob": 0.5})
    a, _ = build(corpus, "vocals", tiny, seed=5, **kwargs)
    b, _ = build(corpus, "vocals", tiny, seed=5, **kwargs)
    c, _ = build(corpus, "vocals", tiny, seed=6, **kwargs)
    order = [7, 3, 7, 0, 123456789, 3]
    first = {i: a[i] for i in order}
    for i in reversed(order):
        assert all(torch.equal(x, y) for x, y in zip(first[i], b[i]))
    assert not torch.equal(a[3][0], a[7][0])
    assert not torch.equal(a[3][0], c[3][0])
    # A copy in another process (DataLoader worker, DDP rank) sees the same windows.
    clone = pickle.loads(pickle.dumps(a))
    assert clone.cached_tracks[0]._array is None
    assert all(torch.equal(x, y) for x, y in zip(first[7], clone[7]))
    loader = torch.utils.data.DataLoader(a, batch_size=2, sampler=[3, 7], num_workers=1)
    mix, _ = next(iter(loader))
    assert torch.equal(mix[0], first[3][0]) and torch.equal(mix[1], first[7][0])
    with pytest.raises(IndexError):
        a[len(a)]


@pytest.mark.parametrize("augment", [True, {"remix": True}, AugmentConfig.paper()])
def test_augmented_mixture_is_the_sum_of_the_targets(corpus, cache, tiny, tiny_multi, augment):
    tracks = load(corpus, "train", sample_rate=22050, channels=2, cache_dir=cache)
    window = WindowSpec.from_model(tiny)
    vocals = TrainWindows(tracks, tiny.sources, window, seed=1, augment=augment)
    multi = TrainWindows(tracks, tiny_multi.sources, window, seed=1, augment=augment)
    crop = slice(window.offset, window.offset + window.output_samples)
    for i in range(6):
        mix, targets = vocals[i]
        assert torch.allclose(mix[:, crop], targets.sum(dim=0), atol=1e-6)
        mmix, mtargets = multi[i]
        assert torch.equal(mix, mmix)
        assert torch.allclose(mmix[:, crop], mtargets.sum(dim=0), atol=1e-6)
        # accompaniment = drums + bass + other of the same augmented stems, vocals the same.
        assert torch.allclose(targets[0], mtargets[:3].sum(dim=0), atol=1e-6)
        assert torch.equal(targets[1], mtargets[3])


def test_without_augmentation_the_window_is_a_slice_of_the_track(corpus, cache, tiny):
    tracks = load(corpus, "train", sample_rate=22050, channels=2, cache_dir=cache)
    window = WindowSpec.from_model(tiny, 2000)
    train = TrainWindows(tracks, tiny.sources, window, seed=0, augment=False)
    mixtures = [t.mixture() for t in tracks]
    for i in range(5):
        mix, targets = train[i]
        mix = mix.numpy()
        # Find the window in one of the tracks through a distinctive non-padded stretch.
        probe = mix[0, window.offset : window.offset + 64]
        hits = [
            (t, s) for t, m in enumerate(mixtures)
            for s in range(m.shape[1] - 63) if np.array_equal(m[0, s : s + 64], probe)
        ]
        assert len(hits) == 1
        t, s = hits[0]
        start = s - window.offset
        lo, hi = max(start, 0), min(start + window.input_samples, tracks[t].length)
        assert np.array_equal(mix[:, lo - start : hi - start], mixtures[t][:, lo:hi])
        assert np.all(mix[:, : lo - start] == 0) and np.all(mix[:, hi - start :] == 0)
        vocals = tracks[t].stems()[3]
        out = slice(s, s + window.output_samples)
        n = vocals[:, out].shape[1]
        assert np.array_equal(targets[1, :, :n].numpy(), vocals[:, out])


def test_task_must_match_the_model(corpus, cache, tiny, tiny_multi):
    with pytest.raises(DataError, match="task 'multi'"):
        build_datasets("synthetic", corpus, "multi", tiny, cache_dir=cache, progress=False)
    with pytest.raises(DataError, match="task 'vocals'"):
        build_datasets("synthetic", corpus, "vocals", tiny_multi, cache_dir=cache, progress=False)
    train, _ = build(corpus, "multi", tiny_multi, cache_dir=cache, progress=False)
    assert train[0][1].shape[0] == 4
    assert target_stems(("accompaniment", "vocals"), STEMS) == ((0, 1, 2), (3,))
    with pytest.raises(DataError, match="piano"):
        target_stems(("piano",), STEMS)


def test_mono_model_from_stereo_data(corpus, cache, tmp_path):
    mono = WaveUNet(presets.get("tiny").replace(channels=1))
    train, valid = build(corpus, "vocals", mono, cache_dir=cache, progress=False)
    mix, targets = train[0]
    assert mix.shape == (1, mono.input_length(16384)) and targets.shape[:2] == (2, 1)
    stereo = load(corpus, "valid", sample_rate=22050, channels=2, cache_dir=cache)[0]
    downmixed = load(corpus, "valid", sample_rate=22050, channels=1, cache_dir=cache)[0]
    assert np.allclose(downmixed.stems()[:, 0], stereo.stems().mean(axis=1), atol=1e-6)
    _, vtargets = valid[0]
    n = min(vtargets.shape[-1], stereo.length)
    assert np.allclose(vtargets[1, 0, :n].numpy(), stereo.stems()[3].mean(axis=0)[:n], atol=1e-6)


# ---------------------------------------------------------------------- the cache


def test_second_epoch_reads_the_cache_without_decoding(corpus, tiny, tmp_path, monkeypatch):
    real_read = wavesep.audio.read
    calls = []

    def counting_read(path, *args, **kwargs):
        calls.append(str(path))
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(wavesep.audio, "read", counting_read)
    train, valid = build_datasets("synthetic", corpus, "vocals", tiny, cache_dir=tmp_path, progress=False)
    assert len(calls) == 4 * 5  # 4 tracks (3 train, 1 valid) x (4 stems + mixture), each read once
    first = [train[i] for i in range(4)] + [valid[0]]

    def failing_read(path, *args, **kwargs):
        raise AssertionError(f"decoded {path} although it is cached")

    monkeypatch.setattr(wavesep.audio, "read", failing_read)
    train, valid = build_datasets("synthetic", corpus, "vocals", tiny, cache_dir=tmp_path, progress=False)
    again = [train[i] for i in range(4)] + [valid[0]]
    for x, y in zip(first, again):
        assert torch.equal(x[0], y[0]) and torch.equal(x[1], y[1])
    entries = sorted(p.name for p in tmp_path.iterdir())
    assert len(entries) == 4 and all(e.endswith(".npy") for e in entries)
    arr = np.load(tmp_path / entries[0], mmap_mode="r")
    assert isinstance(arr, np.memmap) and arr.dtype == np.float32 and arr.shape[:2] == (5, 2)


def test_a_changed_file_is_decoded_again(tmp_path, tiny, monkeypatch):
    root = write_corpus(tmp_path / "corpus")
    load_tracks("synthetic", root, "valid", sample_rate=22050, channels=2, cache_dir=tmp_path / "cache")
    vocals = root / "train" / "Track D" / "vocals.wav"
    st = os.stat(vocals)
    os.utime(vocals, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    calls = []
    real_read = wavesep.audio.read
    monkeypatch.setattr(wavesep.audio, "read", lambda p, *a, **k: calls.append(p) or real_read(p, *a, **k))
    load_tracks("synthetic", root, "valid", sample_rate=22050, channels=2, cache_dir=tmp_path / "cache")
    assert len(calls) == 5
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2
    assert not list((tmp_path / "cache").glob("*.tmp"))


def test_float16_cache_halves_the_entry(corpus, tmp_path):
    a = load(corpus, "valid", cache_dir=tmp_path / "32")[0]
    b = load(corpus, "valid", cache_dir=tmp_path / "16", cache_dtype="float16")[0]
    assert b.array.dtype == np.float16 and b.stems().dtype == np.float32
    assert os.path.getsize(b.path) < 0.51 * os.path.getsize(a.path)
    assert np.allclose(a.stems(), b.stems(), atol=1e-3, rtol=1e-3)


# ---------------------------------------------------------------------- folder of stems


def test_stems_folder_without_mixture(tmp_path, tiny):
    sources = ["vocals", "guitar", "keys"]
    data = {}
    for k, name in enumerate(["song1", "song2", "song3"]):
        data[name] = write_track(tmp_path / "train" / name, seed=10 + k, stems=sources, mixture=False, rate=22050)
    # A flac stem is read like a wav one.
    x, _ = sf.read(tmp_path / "train" / "song3" / "keys.wav", dtype="float32")
    os.remove(tmp_path / "train" / "song3" / "keys.wav")
    sf.write(tmp_path / "train" / "song3" / "keys.flac", x, 22050, subtype="PCM_24")
    write_track(tmp_path / "valid" / "song4", seed=20, stems=sources, mixture=False, rate=22050)
    train, valid = build_datasets(
        "stems", tmp_path, "vocals", tiny, sources=sources, cache_dir=tmp_path / "cache", augment=False, progress=False
    )
    assert sorted(train.track_names) == ["song1", "song2", "song3"] and valid.track_names == ["song4"]
    assert train.cached_tracks[0].stem_names == tuple(sources) and not train.cached_tracks[0].has_mixture
    window = train.window
    crop = slice(window.offset, window.offset + window.output_samples)
    for i in range(3):
        mix, targets = train[i]
        assert torch.allclose(mix[:, crop], targets.sum(dim=0), atol=1e-6)
    # accompaniment = guitar + keys, checked on the first validation window.
    _, targets = valid[0]
    v = load_tracks("stems", tmp_path, "valid", sources=sources, cache_dir=tmp_path / "cache")[0].stems()
    n = min(v.shape[-1], targets.shape[-1])
    assert np.allclose(targets[0, :, :n].numpy(), (v[1] + v[2])[:, :n], atol=1e-6)
    assert np.allclose(targets[1, :, :n].numpy(), v[0][:, :n])


def test_stems_folder_with_mixture_file_and_holdout(tmp_path, tiny):
    # The mixture file is deliberately not the sum (x 0.5): without augmentation it must be used as is,
    # with augmentation the mixture is rebuilt from the stems.
    names = [f"song{k}" for k in range(5)]
    for k, name in enumerate(names):
        write_track(tmp_path / name, seed=k, stems=("vocals", "accompaniment"), mixture_gain=0.5, rate=22050)
    train, valid = build_datasets(
        "stems", tmp_path, "vocals", tiny, cache_dir=tmp_path / ".cache", augment=False, progress=False
    )
    assert len(valid.track_names) == 1 and valid.track_names[0] not in train.track_names
    window = train.window
    crop = slice(window.offset, window.offset + window.output_samples)
    mix, targets = train[0]
    assert torch.allclose(mix[:, crop], 0.5 * targets.sum(dim=0), atol=1e-6)
    vmix, vtargets = valid[0]
    assert torch.allclose(vmix[:, crop], 0.5 * vtargets.sum(dim=0), atol=1e-6)
    augmented, _ = build_datasets("stems", tmp_path, "vocals", tiny, cache_dir=tmp_path / ".cache", progress=False)
    mix, targets = augmented[0]
    assert torch.allclose(mix[:, crop], targets.sum(dim=0), atol=1e-6)


def test_short_tracks_are_zero_padded(tmp_path, tiny):
    for name in ("a", "b"):
        write_track(tmp_path / "train" / name, seed=1, seconds=0.2, stems=("vocals", "accompaniment"), rate=22050)
    write_track(tmp_path / "valid" / "c", seed=2, seconds=0.2, stems=("vocals", "accompaniment"), rate=22050)
    train, valid = build_datasets("stems", tmp_path, "vocals", tiny, cache_dir=tmp_path / "cache", progress=False)
    n = int(0.2 * 22050)
    assert train.window.output_samples > n
    mix, targets = train[0]
    assert torch.all(targets[:, :, n:] == 0) and torch.any(targets[:, :, :n] != 0)
    assert len(valid) == 1


# ---------------------------------------------------------------------- errors


def test_missing_root(tmp_path, tiny):
    for dataset in ("musdb", "synthetic", "stems"):
        with pytest.raises(DataError, match="does not exist") as err:
            build_datasets(dataset, tmp_path / "nowhere", "vocals", tiny, cache_dir=tmp_path)
        assert str(tmp_path / "nowhere") in str(err.value)


@needs_ffmpeg
def test_musdb_root_without_tracks_says_what_a_root_looks_like(tmp_path, corpus):
    (tmp_path / "train").mkdir()
    with pytest.raises(DataError, match="MUSDB18-HQ") as err:
        list_tracks("musdb", tmp_path, "train")
    assert str(tmp_path / "train") in str(err.value)
    with pytest.raises(DataError, match="test"):
        list_tracks("musdb", tmp_path, "test")
    # The corpus holds wav folders: without is_wav musdb finds 0 tracks, and we say why.
    with pytest.raises(DataError, match="is_wav=True"):
        list_tracks("musdb", corpus, "train")
    # musdb's official validation split only knows real MUSDB18 names.
    with pytest.raises(DataError, match="synthetic"):
        list_tracks("musdb", corpus, "valid", is_wav=True)


@needs_ffmpeg
def test_musdb_hq_uses_the_official_split(tmp_path):
    write_track(tmp_path / "train" / MUSDB_VALID_NAME, seed=0, seconds=0.5)
    write_track(tmp_path / "train" / MUSDB_TRAIN_NAME, seed=1, seconds=0.5)
    write_track(tmp_path / "test" / "Someone - Test Song", seed=2, seconds=0.5)
    assert [t.name for t in list_tracks("musdb", tmp_path, "train", is_wav=True)] == [MUSDB_TRAIN_NAME]
    assert [t.name for t in list_tracks("musdb", tmp_path, "valid", is_wav=True)] == [MUSDB_VALID_NAME]
    assert [t.name for t in list_tracks("musdb", tmp_path, "test", is_wav=True)] == ["Someone - Test Song"]
    import musdb

    for split in ("train", "valid"):
        official = musdb.DB(root=str(tmp_path), is_wav=True, subsets="train", split=split)
        assert [t.name for t in list_tracks("musdb", tmp_path, split, is_wav=True)] == [t.name for t in official]


def _write_stem_mp4(path, seconds=1.0, rate=RATE):
    """A 5-stream .stem.mp4 (mixture, drums, bass, other, vocals) of sines at distinct frequencies."""
    t = np.arange(int(seconds * rate)) / rate
    freqs = {"drums": 300.0, "bass": 700.0, "other": 1500.0, "vocals": 3100.0}
    tmp = path.parent / "_wavs"
    tmp.mkdir(parents=True, exist_ok=True)
    sigs = {s: 0.2 * np.sin(2 * np.pi * f * t) for s, f in freqs.items()}
    order = ["mixture", "drums", "bass", "other", "vocals"]
    sigs["mixture"] = sum(sigs.values())
    cmd = ["ffmpeg", "-v", "error", "-y"]
    for s in order:
        sf.write(tmp / f"{s}.wav", np.stack([sigs[s], sigs[s]], axis=1), rate, subtype="FLOAT")
        cmd += ["-i", str(tmp / f"{s}.wav")]
    for k in range(5):
        cmd += ["-map", f"{k}:a"]
    cmd += ["-c:a", "aac", "-b:a", "192k", "-f", "mp4", str(path)]
    subprocess.run(cmd, check=True)
    shutil.rmtree(tmp)
    return freqs


@needs_ffmpeg
def test_musdb_stem_mp4_streams_map_to_the_right_stems(tmp_path):
    freqs = _write_stem_mp4(tmp_path / "train" / f"{MUSDB_VALID_NAME}.stem.mp4")
    specs = list_tracks("musdb", tmp_path, "valid")
    assert [s.name for s in specs] == [MUSDB_VALID_NAME]
    assert [r.stream for r in specs[0].stems] == [2, 1, 3, 4] and specs[0].mixture.stream == 0
    track = load_tracks("musdb", tmp_path, "valid", cache_dir=tmp_path / "cache")[0]
    stems = track.stems()
    assert stems.shape[:2] == (4, 2) and abs(track.length - RATE) < 4096
    for k, name in enumerate(STEMS):
        spectrum = np.abs(np.fft.rfft(stems[k, 0]))
        peak_hz = np.argmax(spectrum) * track.sample_rate / stems.shape[-1]
        assert abs(peak_hz - freqs[name]) < 5, name
    with pytest.raises(DataError, match="is_wav=False"):
        list_tracks("musdb", tmp_path, "valid", is_wav=True)


def test_ffmpeg_missing(tmp_path, corpus, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DependencyError, match="ffmpeg"):
        list_tracks("musdb", corpus, "train", is_wav=True)
    with pytest.raises(DependencyError, match="ffmpeg"):
        list_tracks("synthetic", corpus, "train")


def test_empty_subset(tmp_path, tiny):
    root = write_corpus(tmp_path / "corpus", {"train": ["Track A"], "valid": [], "test": []})
    with pytest.raises(DataError, match="'valid' split .* is empty"):
        build_datasets("synthetic", root, "vocals", tiny, cache_dir=tmp_path / "cache", progress=False)
    with pytest.raises(DataError, match="splits.json"):
        list_tracks("synthetic", tmp_path, "train")
    (tmp_path / "stems" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="no tracks found"):
        list_tracks("stems", tmp_path / "stems", "train", sources=["vocals"])


def test_track_missing_a_stem(tmp_path):
    root = write_corpus(tmp_path / "corpus")
    os.remove(root / "train" / "Track B" / "bass.wav")
    with pytest.raises(DataError, match="bass") as err:
        list_tracks("synthetic", root, "train")
    assert "Track B" in str(err.value)
    write_track(tmp_path / "stems" / "s1", seed=0, stems=("vocals", "piano"))
    with pytest.raises(DataError, match="missing the stem.*guitar"):
        list_tracks("stems", tmp_path / "stems", "train", sources=["vocals", "piano", "guitar"])


def test_stems_of_different_lengths_or_rates(tmp_path):
    folder = tmp_path / "train" / "song"
    write_track(folder, seed=0, stems=("vocals", "piano"), mixture=False)
    write_track(tmp_path / "train" / "other", seed=1, stems=("vocals", "piano"), mixture=False)
    x, _ = sf.read(folder / "piano.wav", dtype="float32")
    sf.write(folder / "piano.wav", x[:-100], RATE, subtype="FLOAT")
    with pytest.raises(DataError, match="different lengths") as err:
        load_tracks("stems", tmp_path, "train", sources=["vocals", "piano"], cache_dir=tmp_path / "c")
    assert "song" in str(err.value) and "piano" in str(err.value)
    sf.write(folder / "piano.wav", x, 48000, subtype="FLOAT")
    with pytest.raises(DataError, match="different sample rates"):
        load_tracks("stems", tmp_path, "train", sources=["vocals", "piano"], cache_dir=tmp_path / "c")


def test_unreadable_audio(tmp_path):
    root = write_corpus(tmp_path / "corpus")
    bad = root / "train" / "Track A" / "vocals.wav"
    bad.write_bytes(b"RIFF not really a wav file" * 10)
    with pytest.raises(AudioError) as err:
        load_tracks("synthetic", root, "train", cache_dir=tmp_path / "cache")
    assert str(bad) in str(err.value)


@needs_ffmpeg
def test_unreadable_mixture_seen_by_musdb_is_named(tmp_path):
    root = write_corpus(tmp_path / "corpus")
    bad = root / "train" / "Track C" / "mixture.wav"
    bad.write_bytes(b"garbage" * 100)
    with pytest.raises(AudioError) as err:
        list_tracks("synthetic", root, "train")
    assert str(bad) in str(err.value)


# ---------------------------------------------------------------------- backing recordings


def write_backing(root, names=("Backing A", "Backing B"), seconds=1.2, rate=RATE, freq=1000.0):
    """A stems folder of one-file tracks (accompaniment.wav): stereo sines of ``freq`` Hz, the right
    channel at half the left, so a backing window is recognisable in the targets."""
    root = Path(root)
    t = np.arange(int(rate * seconds)) / rate
    for k, name in enumerate(names):
        x = 0.3 * np.sin(2 * np.pi * freq * t + k)
        (root / "train" / name).mkdir(parents=True, exist_ok=True)
        sf.write(root / "train" / name / "accompaniment.wav", np.stack([x, 0.5 * x], 1).astype(np.float32), rate,
                 subtype="FLOAT")
    return root


def test_backing_replaces_the_accompaniment_at_its_level(corpus, cache, tiny, tmp_path):
    backing_root = write_backing(tmp_path / "backing", names=[f"Backing {c}" for c in "ABCDEFGHIJ"])
    augment = AugmentConfig(gain=False, channel_swap=False, sign_flip=False, backing=True, backing_prob=1.0,
                            backing_spread_db=0.0)
    train, _ = build(corpus, "vocals", tiny, cache_dir=cache, augment=augment, backing_root=backing_root)
    # 10 tracks in train/ without valid/: one is held out, the other 9 are the backing.
    assert len(train.backing_tracks) == 9
    assert all(t.array.dtype == np.float16 for t in train.backing_tracks)
    plain = TrainWindows(train.cached_tracks, tiny.sources, train.window, seed=0,
                         augment=AugmentConfig(gain=False, channel_swap=False, sign_flip=False))
    crop = slice(train.window.offset, train.window.offset + train.window.output_samples)
    for i in range(4):
        mix, targets = train[i]
        _, plain_targets = plain[i]
        # The vocals are the window's own; the mixture is still the sum of the targets.
        assert torch.equal(targets[1], plain_targets[1])
        assert torch.allclose(mix[:, crop], targets.sum(dim=0), atol=1e-6)
        acc = targets[0].double()
        # The accompaniment is the backing (right channel = half the left), not the noise stems
        # (its level is tested in closed form below).
        assert acc.abs().max() > 0.01 and torch.allclose(acc[1], 0.5 * acc[0], atol=1e-4)
        assert not torch.allclose(plain_targets[0][1], 0.5 * plain_targets[0][0], atol=1e-2)
    again = TrainWindows(train.cached_tracks, tiny.sources, train.window, seed=0,
                             augment=AugmentConfig(gain=False, channel_swap=False, sign_flip=False, backing=True,
                                                   backing_prob=1.0, backing_spread_db=0.0),
                             backing=train.backing_tracks)
    mix, targets = again[0]
    assert torch.equal(targets, train[0][1])  # window i is a pure function of (seed, i)


def test_backing_level_is_the_replaced_accompaniments():
    from wavesep.data import augment as aug

    rng = np.random.default_rng(0)
    stems = rng.standard_normal((4, 2, 1000)).astype(np.float32)
    stems[:3] *= 0.1
    vocals_before = stems[3].copy()
    acc_rms = np.sqrt(np.mean(stems[:3].sum(axis=0).astype(np.float64) ** 2))
    backing = (0.7 * np.ones((2, 1000))).astype(np.float32)
    aug.replace_backing(stems, np.random.default_rng(5), 3, backing, spread_db=6.0)
    gain_db = np.random.default_rng(5).uniform(-6.0, 6.0)  # the one draw replace_backing makes
    assert np.array_equal(stems[3], vocals_before)
    assert not stems[1:3].any()
    np.testing.assert_allclose(np.sqrt(np.mean(stems[0].astype(np.float64) ** 2)), acc_rms * 10 ** (gain_db / 20),
                               rtol=1e-5)
    # A silent accompaniment: the backing comes in at the vocals' level.
    stems = np.zeros((2, 2, 100), np.float32)
    stems[1] = 0.2
    aug.replace_backing(stems, np.random.default_rng(1), 1, backing[:, :100], spread_db=0.0)
    np.testing.assert_allclose(stems[0], 0.2, rtol=1e-6)


def test_backing_needs_vocals_and_tracks(corpus, cache, tiny, tmp_path):
    tracks = load(corpus, "train", sample_rate=22050, channels=2, cache_dir=cache)
    window = WindowSpec.from_model(tiny)
    with pytest.raises(DataError, match="no backing tracks"):
        TrainWindows(tracks, tiny.sources, window, augment=AugmentConfig(backing=True))
    with pytest.raises(DataError, match="does not use them"):
        TrainWindows(tracks, tiny.sources, window, augment=True, backing=tracks[:1])
    other = load_tracks("stems", corpus, "train", sources=("bass", "drums"), sample_rate=22050, channels=2,
                        cache_dir=cache)
    model = WaveUNet(presets.get("tiny").replace(sources=("bass", "drums")))
    with pytest.raises(DataError, match="'vocals' stem"):
        TrainWindows(other, model.sources, window, augment=AugmentConfig(backing=True), backing=other)
    with pytest.raises(ValueError, match="backing_prob"):
        AugmentConfig(backing=True, backing_prob=1.5)


# ---------------------------------------------------------------------- re-sung voices


def write_voices(root, names, lengths, rate=RATE, freq=700.0):
    """``root/train/<name>/vocals.wav`` per track: a stereo sine whose right channel is a third of
    its left and whose amplitude rises linearly with the sample index, so a window's position in
    its track can be read back from it."""
    root = Path(root)
    for k, (name, seconds) in enumerate(zip(names, lengths)):
        n = int(rate * seconds)
        x = 0.4 * (np.arange(n) / n) * np.sin(2 * np.pi * freq * np.arange(n) / rate + k)
        (root / "train" / name).mkdir(parents=True, exist_ok=True)
        sf.write(root / "train" / name / "vocals.wav", np.stack([x, x / 3], 1).astype(np.float32), rate,
                 subtype="FLOAT")
    return root


@pytest.mark.parametrize("remix", [False, True])
def test_voices_replace_the_vocals_at_the_same_position(corpus, cache, tiny, tmp_path, remix):
    voices_root = write_voices(tmp_path / "voices", SPLITS["train"], [1.0, 1.5, 1.2])
    base = dict(gain=False, channel_swap=False, sign_flip=False, remix=remix)
    train, _ = build(corpus, "vocals", tiny, cache_dir=cache, augment=AugmentConfig(voices=True, voices_prob=1.0, **base),
                     voices_root=voices_root)
    assert sorted(train.voice_tracks) == sorted(SPLITS["train"])
    assert all(t.array.dtype == np.float16 for t in train.voice_tracks.values())
    plain = TrainWindows(train.cached_tracks, tiny.sources, train.window, seed=0, augment=AugmentConfig(**base))
    crop = slice(train.window.offset, train.window.offset + train.window.output_samples)
    for i in range(4):
        (mix, targets), (_, plain_targets) = train[i], plain[i]
        # the accompaniment is untouched, the vocals are the voice track (right = left / 3)
        assert torch.equal(targets[0], plain_targets[0])
        voc = targets[1].double()
        assert voc.abs().max() > 0.01 and torch.allclose(voc[1], voc[0] / 3, atol=2e-3)
        assert torch.allclose(mix[:, crop], targets.sum(dim=0), atol=1e-6)
        if not remix:
            # at the window's own position: the voice's envelope grows with the sample index
            # exactly where the replaced noise vocals were, so the rendered and the new vocals
            # share the window (both silent only in padding)
            assert ((plain_targets[1].abs().sum(0) > 0) == (voc.abs().sum(0) > 0)).float().mean() > 0.99
    half = TrainWindows(train.cached_tracks, tiny.sources, train.window, seed=0,
                        augment=AugmentConfig(voices=True, voices_prob=0.5, **base),
                        voices=list(train.voice_tracks.values()))
    replaced = [torch.allclose(half[i][1][1][1].double(), half[i][1][1][0].double() / 3, atol=2e-3)
                for i in range(40)]
    assert 8 < sum(replaced) < 32


def test_voices_window_is_at_the_tracks_position(tmp_path, cache, tiny):
    """One track whose vocals are a ramp, and a voice track that is twice that ramp: every
    replaced window is exactly twice the plain one (same track, same samples)."""
    root = tmp_path / "ramp"
    n = RATE
    ramp = (0.5 * np.arange(n) / n).astype(np.float32)
    for name in ("Ramp A", "Ramp B"):
        (root / "train" / name).mkdir(parents=True)
        for s in STEMS:
            x = ramp if s == "vocals" else np.zeros(n, np.float32)
            sf.write(root / "train" / name / f"{s}.wav", np.stack([x, x], 1), RATE, subtype="FLOAT")
        (tmp_path / "v" / name).mkdir(parents=True)
        sf.write(tmp_path / "v" / name / "vocals.wav", np.stack([ramp, ramp], 1) * 1.5, RATE, subtype="FLOAT")
    base = dict(gain=False, channel_swap=False, sign_flip=False)
    train, _ = build(root, "vocals", tiny, cache_dir=tmp_path / "c", augment=AugmentConfig(voices=True, voices_prob=1.0, **base),
                     voices_root=tmp_path / "v", valid_windows=1)
    plain = TrainWindows(train.cached_tracks, tiny.sources, train.window, seed=0, augment=AugmentConfig(**base))
    for i in range(3):
        v, p = train[i][1][1].double(), plain[i][1][1].double()
        assert p.abs().max() > 0.05
        torch.testing.assert_close(v, 1.5 * p, atol=2e-3, rtol=2e-3)  # float16 cache of the voice


def test_voices_need_one_per_track(corpus, cache, tiny, tmp_path):
    voices_root = write_voices(tmp_path / "voices", SPLITS["train"][:2], [1.0, 1.5])
    with pytest.raises(DataError, match="no vocals file for 1 of 3 tracks.*Track C"):
        build(corpus, "vocals", tiny, cache_dir=cache, augment=AugmentConfig(voices=True), voices_root=voices_root)
    tracks = load(corpus, "train", sample_rate=22050, channels=2, cache_dir=cache)
    window = WindowSpec.from_model(tiny)
    with pytest.raises(DataError, match="re-sung vocals track for every training track"):
        TrainWindows(tracks, tiny.sources, window, augment=AugmentConfig(voices=True), voices=tracks[:1])
    with pytest.raises(DataError, match="does not use them"):
        TrainWindows(tracks, tiny.sources, window, augment=True, voices=tracks[:1])
    with pytest.raises(ValueError, match="voices_prob"):
        AugmentConfig(voices=True, voices_prob=-0.1)


def test_vocal_eq_changes_only_the_vocals(corpus, cache, tiny):
    tracks = load(corpus, "train", sample_rate=22050, channels=2, cache_dir=cache)
    window = WindowSpec.from_model(tiny)
    base = dict(gain=False, channel_swap=False, sign_flip=False)
    plain = TrainWindows(tracks, tiny.sources, window, seed=4, augment=AugmentConfig(**base))
    eq = TrainWindows(tracks, tiny.sources, window, seed=4, augment=AugmentConfig(vocal_eq=True, vocal_eq_prob=1.0, **base))
    crop = slice(window.offset, window.offset + window.output_samples)
    for i in range(3):
        (pmix, ptargets), (mix, targets) = plain[i], eq[i]
        assert torch.equal(targets[0], ptargets[0])
        assert not torch.allclose(targets[1], ptargets[1], atol=1e-3)
        assert torch.allclose(mix[:, crop], targets.sum(dim=0), atol=1e-6)
