"""Tests of the synthetic corpus writer (wavesep.synth) and its oscillator renderer.

One small corpus (3 train + 1 valid + 1 test tracks of 3.5 s, built through the command line)
is shared by most tests; the others build one-track corpora of their own.
"""

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile
from scipy import signal

from wavesep.corpus import command as synth
from wavesep.corpus.oscillator import renderer as synth_oscillator
from wavesep.errors import DataError, DependencyError

SR = 44100
SECONDS = 3.5
FRAMES = round(SECONDS * SR)
SEED = 7
FILES = ("mixture", "vocals", "drums", "bass", "other")
ARGS = ["--tracks", "3", "--valid-tracks", "1", "--test-tracks", "1", "--seconds", str(SECONDS),
        "--seed", str(SEED), "--quiet"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    assert synth.main([str(root), *ARGS]) == 0
    return root


def track_dirs(root):
    return sorted(p for sub in ("train", "test") for p in (root / sub).iterdir())


def read_stems(folder, dtype="float64"):
    return {f: soundfile.read(folder / f"{f}.wav", dtype=dtype)[0] for f in FILES}


def small_corpus(root, **kwargs):
    args = dict(tracks=1, seconds=1.0, seed=3, valid_tracks=0, test_tracks=0)
    args.update(kwargs)
    return synth.build_corpus(root, args.pop("tracks"), args.pop("seconds"), args.pop("seed"),
                              **args)


# ------------------------------------------------------------------------------- layout


def test_musdb_reads_the_corpus(corpus):
    musdb = pytest.importorskip("musdb")
    everything = musdb.DB(root=str(corpus), is_wav=True)
    assert len(everything) == 5
    train = musdb.DB(root=str(corpus), is_wav=True, subsets="train")
    test = musdb.DB(root=str(corpus), is_wav=True, subsets="test")
    splits = json.loads((corpus / "splits.json").read_text())
    assert sorted(t.name for t in train) == sorted(splits["train"] + splits["valid"])
    assert [t.name for t in test] == splits["test"]
    for track in everything:
        assert set(track.sources) == {"vocals", "drums", "bass", "other"}
        assert all(Path(s.path).is_file() for s in track.sources.values())
    # Decoding goes through ffmpeg (about 0.3 s a file), so one track is read in full.
    track = test[0]
    assert track.rate == SR and track.audio.shape == (FRAMES, 2)
    mixture = soundfile.read(Path(track.path), dtype="float64")[0]
    np.testing.assert_allclose(track.audio, mixture, atol=1e-4)
    for name, source in track.sources.items():
        assert source.rate == SR and source.audio.shape == (FRAMES, 2)


def test_splits_json_and_folders(corpus):
    splits = json.loads((corpus / "splits.json").read_text())
    assert set(splits) == {"train", "valid", "test"}
    assert [len(splits[k]) for k in ("train", "valid", "test")] == [3, 1, 1]
    names = splits["train"] + splits["valid"] + splits["test"]
    assert len(set(names)) == len(names)
    assert all(all(c.isalnum() or c in "-_." for c in name) for name in names)
    assert sorted(p.name for p in (corpus / "train").iterdir()) == sorted(
        splits["train"] + splits["valid"])
    assert [p.name for p in (corpus / "test").iterdir()] == splits["test"]
    # Track folders hold the five wavs and nothing else (musdb would take folders for tracks).
    for folder in track_dirs(corpus):
        assert sorted(p.name for p in folder.iterdir()) == sorted(f + ".wav" for f in FILES)
    assert not (corpus / synth.PARTIAL_FOLDER).exists()


def test_per_track_metadata(corpus):
    splits = json.loads((corpus / "splits.json").read_text())
    for split, names in splits.items():
        for index, name in enumerate(names):
            meta = json.loads((corpus / "meta" / f"{name}.json").read_text())
            assert meta["split"] == split and meta["index"] == index
            assert meta["subset"] == ("test" if split == "test" else "train")
            assert meta["renderer"] == "oscillator" and meta["corpus_seed"] == SEED
            assert meta["track_seed"] == synth.track_seed(SEED, split, index)
            info = meta["info"]
            assert info["seed"] == meta["track_seed"] and info["split"] == split
            assert info["key"] in synth_oscillator._NOTE_NAMES
            assert 60 <= info["tempo_bpm"] <= 160 and info["chords"]
            assert info["vocals"]["notes"], "every track should have some singing"


def test_wav_format(corpus):
    for folder in track_dirs(corpus):
        for f in FILES:
            info = soundfile.info(str(folder / f"{f}.wav"))
            assert (info.samplerate, info.channels, info.frames) == (SR, 2, FRAMES)
            assert info.subtype == "PCM_16" and info.format == "WAV"


# ------------------------------------------------------------------------------- mixing


def test_16bit_mixture_is_the_exact_integer_sum(corpus):
    for folder in track_dirs(corpus):
        x = {k: v.astype(np.int32) for k, v in read_stems(folder, "int16").items()}
        total = x["vocals"] + x["drums"] + x["bass"] + x["other"]
        np.testing.assert_array_equal(total, x["mixture"])
        peak = np.abs(x["mixture"]).max() / 32768
        assert 0.05 < peak <= synth.HEADROOM_PEAK
        assert all(np.abs(v).max() < 32767 for v in x.values())  # nothing clipped


def test_float_mixture_is_the_float32_sum(tmp_path):
    small_corpus(tmp_path, float_format=True)
    (folder,) = track_dirs(tmp_path)
    assert soundfile.info(str(folder / "mixture.wav")).subtype == "FLOAT"
    x = read_stems(folder, "float32")
    total = ((x["vocals"] + x["drums"]) + x["bass"]) + x["other"]
    assert total.dtype == np.float32
    np.testing.assert_array_equal(total, x["mixture"])


class _LoudRenderer(types.ModuleType):
    """A stand-in renderer returning stems far beyond full scale, to test the headroom stage."""

    def check_dependencies(self):
        pass

    def render(self, name, split, seed, seconds, sample_rate):
        rng = np.random.default_rng(seed)
        n = round(seconds * sample_rate)
        stems = {k: (3.0 * rng.standard_normal((n, 2))).astype(np.float32)
                 for k in synth.SOURCES}
        stems["vocals"][:, 1] = 5.0  # a stem louder than the whole mixture elsewhere
        return stems, {"made_by": "test"}


@pytest.fixture
def fake_renderers(monkeypatch):
    def add(key, module):
        monkeypatch.setitem(sys.modules, module.__name__, module)
        monkeypatch.setitem(synth.RENDERERS, key, module.__name__)
        monkeypatch.delitem(synth._LOADED, key, raising=False)
    return add


@pytest.mark.parametrize("float_format", [False, True])
def test_loud_songs_are_scaled_down_never_clipped(tmp_path, fake_renderers, float_format):
    fake_renderers("loud", _LoudRenderer("tests_fake_loud_renderer"))
    small_corpus(tmp_path, renderer="loud", seconds=0.2, float_format=float_format)
    (folder,) = track_dirs(tmp_path)
    x = read_stems(folder, "float32")
    total = ((x["vocals"] + x["drums"]) + x["bass"]) + x["other"]
    np.testing.assert_array_equal(total, x["mixture"])
    peak = max(np.abs(v).max() for v in x.values())
    assert synth.HEADROOM_PEAK - 0.01 < peak <= synth.HEADROOM_PEAK + 1 / 32768
    meta = json.loads(next((tmp_path / "meta").iterdir()).read_text())
    assert meta["headroom_gain"] < 0.2 and meta["info"] == {"made_by": "test"}


class _BrokenRenderer(types.ModuleType):
    def check_dependencies(self):
        pass

    def render(self, name, split, seed, seconds, sample_rate):
        n = round(seconds * sample_rate)
        return {k: np.zeros((n, 1), np.float32) for k in synth.SOURCES}, {}


def test_renderer_contract_is_checked(tmp_path, fake_renderers):
    fake_renderers("broken", _BrokenRenderer("tests_fake_broken_renderer"))
    with pytest.raises(DataError, match="shape"):
        small_corpus(tmp_path, renderer="broken", seconds=0.1)
    assert not list((tmp_path / "train").iterdir())


def test_missing_renderer_module_is_a_dependency_error(tmp_path, monkeypatch):
    monkeypatch.setitem(synth.RENDERERS, "ghost", "wavesep.no_such_renderer_module")
    with pytest.raises(DependencyError, match="no_such_renderer_module"):
        small_corpus(tmp_path, renderer="ghost")
    with pytest.raises(DataError, match="unknown renderer"):
        small_corpus(tmp_path, renderer="nope")


# ------------------------------------------------------------------------------- seeds


def test_same_seed_same_bytes_whatever_the_track_count(corpus, tmp_path):
    # Fewer tracks, same seed: the tracks they share must be byte-identical.
    synth.build_corpus(tmp_path, 1, SECONDS, SEED, valid_tracks=0, test_tracks=1)
    splits = json.loads((tmp_path / "splits.json").read_text())
    for subset, name in (("train", splits["train"][0]), ("test", splits["test"][0])):
        for f in FILES:
            a = (corpus / subset / name / f"{f}.wav").read_bytes()
            assert a == (tmp_path / subset / name / f"{f}.wav").read_bytes()
        assert ((corpus / "meta" / f"{name}.json").read_text()
                == (tmp_path / "meta" / f"{name}.json").read_text())


def test_different_seeds_different_songs(corpus, tmp_path):
    synth.build_corpus(tmp_path, 1, SECONDS, SEED + 1, valid_tracks=0, test_tracks=0)
    (other,) = track_dirs(tmp_path)
    mixtures = [read_stems(f)["mixture"] for f in track_dirs(corpus)] + [
        read_stems(other)["mixture"]]
    for i in range(len(mixtures)):
        for j in range(i):
            assert np.abs(mixtures[i] - mixtures[j]).max() > 0.05


def test_track_seeds_depend_on_seed_split_and_index():
    seeds = {synth.track_seed(s, split, i) for s in (0, 1) for split in synth.SPLITS
             for i in range(3)}
    assert len(seeds) == 18
    assert synth.track_seed(5, "valid", 2) == synth.track_seed(5, "valid", 2)


def test_renderer_is_deterministic_and_sized():
    a, info_a = synth_oscillator.render("t", "train", 123, 0.7, 22050)
    b, info_b = synth_oscillator.render("t", "train", 123, 0.7, 22050)
    assert info_a == info_b
    for key in synth.SOURCES:
        assert a[key].dtype == np.float32 and a[key].shape == (round(0.7 * 22050), 2)
        np.testing.assert_array_equal(a[key], b[key])
    json.dumps(info_a)


# ------------------------------------------------------------------------------- music


def _voiced_pitch(vocals, sr):
    """Per loud 46 ms frame: normalised autocorrelation peak in 80-1000 Hz, and its f0 (Hz)."""
    frame, hop = 2048, 1024
    mono = vocals.mean(axis=1)
    count = (mono.size - frame) // hop + 1
    frames = mono[np.arange(frame)[None, :] + hop * np.arange(count)[:, None]] * np.hanning(frame)
    rms = np.sqrt(np.mean(frames ** 2, axis=1))
    loud = np.flatnonzero(rms > 0.1 * rms.max())
    ac = np.fft.irfft(np.abs(np.fft.rfft(frames[loud], 2 * frame)) ** 2)[:, :frame]
    ac /= ac[:, :1]
    lo, hi = sr // 1000, sr // 80
    lag = lo + np.argmax(ac[:, lo:hi], axis=1)
    return (loud * hop + frame / 2) / sr, ac[np.arange(loud.size), lag], sr / lag


def test_vocals_are_pitched_and_follow_the_written_melody(corpus):
    for folder in track_dirs(corpus):
        vocals = read_stems(folder)["vocals"]
        times, strength, f0 = _voiced_pitch(vocals, SR)
        assert times.size >= 10
        assert np.median(strength) > 0.7, "loud vocal frames should be strongly periodic"
        assert 80 <= np.median(f0) <= 1000
        notes = json.loads((corpus / "meta" / f"{folder.name}.json").read_text())["info"][
            "vocals"]["notes"]
        hits = []
        for t, f in zip(times, f0):
            current = [m for start, dur, m, _ in notes if start + 0.08 <= t <= start + dur - 0.03]
            if current:
                hits.append(abs(12 * np.log2(f / (440 * 2 ** ((current[0] - 69) / 12)))) < 1)
        assert len(hits) >= 5 and np.mean(hits) > 0.7


def test_vocals_rest(corpus):
    for folder in track_dirs(corpus):
        vocals = read_stems(folder, "int16")["vocals"]
        silent = np.all(vocals == 0, axis=1)
        assert silent[: int(0.4 * SR)].all(), "songs begin with a vocal rest"
        assert silent.mean() > 0.1
        assert not silent.all()


def test_accompaniment_plays_and_stems_vary(corpus):
    levels = []
    for folder in track_dirs(corpus):
        x = read_stems(folder)
        for key in ("drums", "bass", "other"):
            assert np.abs(x[key]).max() > 1e-3
        # Stereo: not every stem is the same on both channels.
        assert any(np.abs(x[k][:, 0] - x[k][:, 1]).max() > 1e-3 for k in ("drums", "other"))
        levels.append([10 * np.log10(np.mean(x[k] ** 2)) for k in ("vocals", "other")])
    spread = np.ptp(np.array(levels)[:, 0] - np.array(levels)[:, 1])
    assert spread > 2, "the vocal-to-accompaniment level should vary between songs (dB)"


def test_vocals_are_not_trivially_separable(corpus):
    shares, sdrs = [], []
    edges = 100 * 2 ** (np.arange(21) / 3)  # third-octave bands, 100 Hz to 10 kHz
    for folder in track_dirs(corpus):
        x = read_stems(folder)
        v = x["vocals"].mean(axis=1)
        a = (x["drums"] + x["bass"] + x["other"]).mean(axis=1)
        freqs, _, V = signal.stft(v, SR, nperseg=2048)
        _, _, A = signal.stft(a, SR, nperseg=2048)
        pv, pa = np.abs(V) ** 2, np.abs(A) ** 2
        band = np.digitize(freqs, edges)
        vb = np.stack([pv[band == b].sum(0) for b in range(1, edges.size)])
        ab = np.stack([pa[band == b].sum(0) for b in range(1, edges.size)])
        singing = pv.sum(0) > 0.01 * pv.sum(0).max()
        vb, ab = vb[:, singing], ab[:, singing]
        # Share of the vocal energy in (frame, band) cells where the accompaniment is within 20 dB.
        shares.append((vb * (ab >= 0.01 * vb)).sum() / vb.sum())
        # The best fixed equaliser (oracle long-term Wiener gain per bin) must not isolate
        # the voice.
        gain = pv.mean(1, keepdims=True) / (pv.mean(1, keepdims=True) + pa.mean(1, keepdims=True))
        _, estimate = signal.istft(gain * (V + A), SR, nperseg=2048)
        estimate = estimate[: v.size]
        sdrs.append(10 * np.log10(np.sum(v ** 2) / np.sum((v - estimate) ** 2)))
    assert np.mean(shares) > 0.5
    assert np.median(sdrs) < 8.0


# ------------------------------------------------------------------------------- reruns, errors


def test_rerun_skips_finished_tracks(corpus):
    before = {p: p.stat().st_mtime_ns for p in corpus.rglob("*.wav")}
    summary = synth.build_corpus(corpus, 3, SECONDS, SEED, valid_tracks=1, test_tracks=1)
    assert summary["rendered"] == [] and len(summary["skipped"]) == 5
    assert summary["unlisted"] == []
    assert before == {p: p.stat().st_mtime_ns for p in corpus.rglob("*.wav")}


def test_rerun_with_other_settings_is_refused(corpus):
    with pytest.raises(DataError, match="seconds"):
        synth.build_corpus(corpus, 1, SECONDS + 1, SEED, valid_tracks=0, test_tracks=0)


def test_interrupted_track_leaves_nothing_half_written(tmp_path, monkeypatch):
    from wavesep import audio

    real_write = audio.write
    calls = []

    def failing_write(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(audio, "write", failing_write)
    with pytest.raises(KeyboardInterrupt):
        small_corpus(tmp_path, seconds=0.3)
    assert list((tmp_path / "train").iterdir()) == []
    assert not list((tmp_path / synth.PARTIAL_FOLDER).iterdir())
    monkeypatch.setattr(audio, "write", real_write)
    # A leftover of a killed run (as if the process died) is cleared by the next run.
    (tmp_path / synth.PARTIAL_FOLDER / "oscillator-s3-train-0000.junk").mkdir()
    summary = small_corpus(tmp_path, seconds=0.3)
    assert len(summary["rendered"]) == 1
    assert not (tmp_path / synth.PARTIAL_FOLDER).exists()


def test_worker_pool_gives_the_same_bytes(tmp_path):
    small_corpus(tmp_path / "one", tracks=2, seconds=0.3)
    small_corpus(tmp_path / "two", tracks=2, seconds=0.3, jobs=2)
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.*"))
    assert len(files) == 2 * 5 + 2 + 1
    for f in files:
        assert (tmp_path / "one" / f).read_bytes() == (tmp_path / "two" / f).read_bytes()


@pytest.mark.parametrize("kwargs, message", [
    ({"tracks": -1}, "tracks must not be negative"),
    ({"valid_tracks": -2}, "valid_tracks must not be negative"),
    ({"seconds": -3.0}, "seconds must be a positive"),
    ({"seconds": 0}, "seconds must be a positive"),
    ({"tracks": 0}, "nothing to build"),
    ({"jobs": 0}, "jobs must be at least 1"),
    ({"sample_rate": 100}, "sample_rate"),
    ({"tracks": 1.5}, "whole number"),
])
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(DataError, match=message):
        small_corpus(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_unwritable_out(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(DataError, match="cannot write the corpus"):
        small_corpus(blocker / "corpus")
    with pytest.raises(DataError, match="not a folder"):
        small_corpus(blocker)


def test_cli_errors_are_one_line_without_traceback(tmp_path, capsys):
    assert synth.main([str(tmp_path / "out"), "--tracks", "-1", "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "tracks must not be negative" in err and "Traceback" not in err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert synth.main([str(blocker / "out"), "--tracks", "1", "--seconds", "1", "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "cannot write the corpus" in err and "Traceback" not in err
