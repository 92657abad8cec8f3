"""Tests of wavesep.corpus.backing on generated files (no package download, no network)."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from wavesep.corpus import backing
from wavesep.data import list_tracks

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def tone(seconds, rate=44100, channels=1, freq=220.0):
    t = np.arange(int(seconds * rate)) / rate
    x = 0.2 * np.sin(2 * np.pi * freq * t)
    return np.stack([x] * channels, axis=1).astype(np.float32)


def test_recordings_names_and_song_folders(tmp_path):
    x = tmp_path / "x"
    (x / "game-music" / "music").mkdir(parents=True)
    sf.write(x / "game-music" / "music" / "Battle Theme 2.ogg", tone(0.5), 44100)
    song = x / "fretsonfire-songs-band" / "songs" / "Metal madness"
    song.mkdir(parents=True)
    for f in ("song.ogg", "guitar.ogg"):
        sf.write(song / f, tone(0.5), 44100)
    (song / "notes.mid").write_bytes(b"MThd")
    found = dict((n, [p.name for p in files]) for n, files in backing.recordings(x))
    assert found == {"game-music__Battle_Theme_2": ["Battle Theme 2.ogg"],
                     "fretsonfire-songs-band__Metal_madness": ["guitar.ogg", "song.ogg"]}


@needs_ffmpeg
def test_convert_sums_a_song_folder_at_22050_hz_stereo(tmp_path):
    song = tmp_path / "x" / "fretsonfire-songs-band" / "s" / "Song"
    song.mkdir(parents=True)
    sf.write(song / "song.wav", tone(1.0, freq=220.0), 44100)
    sf.write(song / "guitar.wav", tone(1.0, freq=330.0), 44100)
    alone = tmp_path / "x" / "other-music"
    alone.mkdir()
    sf.write(alone / "one.wav", tone(1.0, freq=220.0), 44100)
    backing.convert(tmp_path, jobs=1)
    y, rate = sf.read(tmp_path / "wav" / "fretsonfire-songs-band__Song.wav", dtype="float32")
    one, _ = sf.read(tmp_path / "wav" / "other-music__one.wav", dtype="float32")
    assert rate == 22050 and y.shape[1] == 2 and one.shape == y.shape
    # Two equal sines of different frequencies: their sum has sqrt(2) times the RMS of one (their
    # mean would have 1/sqrt(2) times); ffmpeg's mono-to-stereo gain is the same for both files.
    ratio = np.sqrt(np.mean(y[:, 0] ** 2) / np.mean(one[:, 0] ** 2))
    assert ratio == pytest.approx(np.sqrt(2), rel=0.02)


def test_screen_file_excerpts_and_short_recordings(tmp_path):
    rate = 22050
    sf.write(tmp_path / "long.wav", tone(30.0, rate, 2), rate, subtype="PCM_16")
    sf.write(tmp_path / "short.wav", tone(10.0, rate, 2), rate, subtype="PCM_16")
    calls = []

    def separate(mix, r):  # a "separator" that calls half the mixture vocals (-6.02 dB)
        calls.append(mix.shape)
        return 0.5 * mix

    entry = backing.screen_file(tmp_path / "long.wav", separate, lambda v, r: 0.25)
    assert entry["seconds"] == pytest.approx(30.0)
    starts = [e["start"] for e in entry["excerpts"]]
    assert len(starts) == backing.EXCERPTS and starts[0] == 0 and starts[-1] == pytest.approx(30.0 - 8.0, abs=1e-3)
    assert all(shape == (2, int(8 * rate)) for shape in calls)
    assert all(e["ratio_db"] == pytest.approx(-6.02, abs=0.01) and e["vad"] == 0.25 for e in entry["excerpts"])
    assert "skipped" in backing.screen_file(tmp_path / "short.wav", separate, lambda v, r: 0.0)


def test_select_keeps_voice_free_recordings_in_the_backing_layout(tmp_path):
    (tmp_path / "wav").mkdir()
    for name in ("pkg__calm", "pkg__sung", "pkg__jingle"):
        sf.write(tmp_path / "wav" / f"{name}.wav", tone(0.2, 22050, 2), 22050)
    ok = [{"start": 0.0, "ratio_db": -20.0, "vad": 0.0}, {"start": 8.0, "ratio_db": -9.0, "vad": 0.05}]
    sung = [{"start": 0.0, "ratio_db": -20.0, "vad": 0.0}, {"start": 8.0, "ratio_db": -5.0, "vad": 0.4}]
    (tmp_path / "screen.json").write_text(json.dumps({
        "pkg__calm.wav": {"seconds": 30.0, "excerpts": ok},
        "pkg__sung.wav": {"seconds": 40.0, "excerpts": sung},
        "pkg__jingle.wav": {"seconds": 3.0, "skipped": "shorter than 20 s"},
    }))
    seconds, kept, rejected = backing.select(tmp_path)
    assert (seconds, kept, rejected) == (30.0, 1, 2)
    tracks = list_tracks("stems", tmp_path, "train", sources=("accompaniment",))
    assert [t.name for t in tracks] == ["pkg__calm"]
    manifest = (tmp_path / "MANIFEST.tsv").read_text()
    assert "pkg__sung\tpkg\t40.0\tno\tvoice detected in 40% of an excerpt" in manifest
    # A stricter threshold rejects the calm one too, and its folder goes.
    assert backing.select(tmp_path, max_voiced=0.05)[1] == 0
    assert not (tmp_path / "train" / "pkg__calm").exists()


def test_voiced_share_finds_no_voice_in_a_steady_tone():
    pytest.importorskip("silero_vad")
    from silero_vad import load_silero_vad

    share = backing.voiced_share(tone(4.0, 22050)[:, 0], 22050, load_silero_vad())
    assert share == 0.0
