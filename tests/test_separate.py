"""The command line (wavesep.separate.main, run in-process), the Separator API and the registry of
named models (wavesep.pretrained), with the "tiny-untrained" model."""

import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from wavesep import WaveUNet, WaveUNetConfig, checkpoint, pretrained
from wavesep.api import Separator, rest_name, two_stems
from wavesep.errors import CheckpointError
from wavesep.model import MULTI_TASK
from wavesep.separate import collect_tracks, main

RATE = 44100


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def tone(seconds=0.4, rate=RATE, channels=2, amplitude=0.4, seed=0):
    """A (T, C) test signal: a chord plus a little noise (soundfile's layout)."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    cols = [
        amplitude * np.sin(2 * np.pi * (220 + 110 * c) * t) + 0.05 * rng.standard_normal(t.size)
        for c in range(channels)
    ]
    return np.stack(cols, axis=1).astype(np.float32)


def write(path, data, rate=RATE, subtype="FLOAT"):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, rate, subtype=subtype)
    return path


def run(*args):
    return main([*map(str, args), "-n", "tiny-untrained", "-d", "cpu"])


def read(path):
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return data, rate


# ------------------------------------------------------------------------------ outputs


def test_layout_rate_length_and_default_encoding(tmp_path, capsys):
    song = write(tmp_path / "in" / "my song.wav", tone(0.37))
    out = tmp_path / "out"
    assert run(song, "-o", out) == 0
    folder = out / "tiny-untrained" / "my song"
    assert sorted(p.name for p in folder.iterdir()) == ["accompaniment.wav", "vocals.wav"]
    for stem in ("accompaniment", "vocals"):
        info = sf.info(str(folder / f"{stem}.wav"))
        assert info.samplerate == RATE and info.frames == int(0.37 * RATE) and info.channels == 2
        assert info.subtype == "PCM_16"
    assert "separated 1 of 1" in capsys.readouterr().out
    assert not list(out.rglob(".*.tmp"))


@pytest.mark.parametrize("postfilter", ["none", "ratio-mask", "ratio-mask-fullband"])
@pytest.mark.parametrize("rate", [22050, 44100])
def test_difference_stems_add_up_to_the_mixture(tmp_path, rate, postfilter):
    mix = tone(0.5, rate=rate)
    song = write(tmp_path / "song.wav", mix, rate)
    assert run(song, "-o", tmp_path / "out", "--float32", "--clip-mode", "none", "--postfilter", postfilter) == 0
    folder = tmp_path / "out" / "tiny-untrained" / "song"
    vocals, r = read(folder / "vocals.wav")
    accompaniment, _ = read(folder / "accompaniment.wav")
    assert r == rate and vocals.shape == mix.shape
    assert np.abs(vocals).max() > 0.01 and np.abs(accompaniment).max() > 0.01
    assert np.abs(vocals + accompaniment - mix).max() <= 1e-5


def test_fullband_postfilter_from_the_command_line(tmp_path, capsys):
    # --postfilter ratio-mask-fullband writes what wavesep.postfilter.ratio_mask_fullband makes of
    # the network's own stems (--postfilter none), at the input's 44.1 kHz.
    import torch

    from wavesep.postfilter import ratio_mask_fullband

    mix = tone(0.5, rate=44100) + 0.05 * np.random.default_rng(1).standard_normal((22050, 2)).astype(np.float32)
    song = write(tmp_path / "song.wav", mix, 44100)
    stems = {}
    for postfilter in ("none", "ratio-mask-fullband"):
        out = tmp_path / postfilter
        assert run(song, "-o", out, "--float32", "--clip-mode", "none", "--postfilter", postfilter) == 0
        folder = out / "tiny-untrained" / "song"
        stems[postfilter] = torch.stack([torch.from_numpy(read(folder / f"{s}.wav")[0].T.copy())
                                         for s in ("accompaniment", "vocals")])  # (S, C, T)
    mixture = torch.from_numpy(read(song)[0].T.copy())  # (C, T), as the command read it
    expected = ratio_mask_fullband(mixture, stems["none"], 44100, 22050)
    assert (stems["ratio-mask-fullband"] - expected).abs().max() <= 1e-5
    assert main(["--help"]) == 0
    assert "ratio-mask-fullband" in capsys.readouterr().out


def test_two_stems_encodings_and_flac(tmp_path):
    mix = tone(0.3)
    song = write(tmp_path / "song.wav", mix)
    out = tmp_path / "out"
    assert run(song, "-o", out, "--two-stems", "vocals", "--int24", "--flac", "--clip-mode", "none") == 0
    folder = out / "tiny-untrained" / "song"
    assert sorted(p.name for p in folder.iterdir()) == ["no_vocals.flac", "vocals.flac"]
    assert sf.info(str(folder / "vocals.flac")).subtype == "PCM_24"
    vocals, _ = read(folder / "vocals.flac")
    rest, _ = read(folder / "no_vocals.flac")
    assert np.abs(vocals + rest - mix).max() <= 1e-5 * 2 + 2.0**-23 * 2  # two 24-bit roundings
    assert rest_name("vocals") == "no_vocals"
    # Unknown stem, and flac cannot hold floats.
    assert run(song, "-o", out, "--two-stems", "guitar") == 1
    assert run(song, "-o", out, "--flac", "--float32") == 2


def test_four_source_checkpoint_and_run_directory(tmp_path):
    cfg = WaveUNetConfig(levels=4, filters=4, growth=4, sources=MULTI_TASK)
    run_dir = tmp_path / "runs" / "multi-test"
    checkpoint.save(run_dir / "best.pt", WaveUNet(cfg))
    mix = tone(0.3)
    song = write(tmp_path / "song.wav", mix)
    out = tmp_path / "out"
    assert main([str(song), "-o", str(out), "-n", str(run_dir), "--two-stems", "drums", "--float32",
                 "--clip-mode", "none", "-d", "cpu"]) == 0
    folder = out / "multi-test" / "song"
    assert sorted(p.name for p in folder.iterdir()) == ["drums.wav", "no_drums.wav"]
    drums, _ = read(folder / "drums.wav")
    rest, _ = read(folder / "no_drums.wav")
    assert np.abs(drums + rest - mix).max() <= 1e-5
    assert main([str(song), "-o", str(out), "-n", str(run_dir / "best.pt"), "-d", "cpu"]) == 0
    assert sorted(p.name for p in folder.iterdir())[:2] == ["bass.wav", "drums.wav"]


def test_skip_existing_reruns(tmp_path, capsys):
    for name in ("a", "b"):
        write(tmp_path / "in" / f"{name}.wav", tone(0.2))
    out = tmp_path / "out"
    assert run(tmp_path / "in", "-o", out) == 0
    folder = out / "tiny-untrained"
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*.wav")}
    (folder / "b" / "vocals.wav").unlink()
    capsys.readouterr()
    assert run(tmp_path / "in", "-o", out, "--skip-existing") == 0
    printed = capsys.readouterr().out
    assert "skipping 1 track(s) already separated" in printed and "(1 of them already done)" in printed
    for path, mtime in before.items():
        assert (path.stat().st_mtime_ns == mtime) == (path.parent.name == "a")
    assert (folder / "b" / "vocals.wav").is_file()


def test_jobs_and_folder_names(tmp_path):
    root = tmp_path / "music"
    for name in ("a.wav", "album/b.flac", "album/c.ogg", ".hidden.wav", "notes.txt"):
        path = root / name
        if name.endswith(".txt"):
            path.write_text("not audio")
        else:
            write(path, tone(0.2), subtype="PCM_16" if not name.endswith(".ogg") else "VORBIS")
    out = root / "separated"  # inside the input folder: must not be picked up on a rerun
    assert main([str(root), "-o", str(out), "-n", "tiny-untrained", "-d", "cpu", "-j", "2"]) == 0
    model_dir = out / "tiny-untrained"
    assert sorted(p.relative_to(model_dir).as_posix() for p in model_dir.rglob("vocals.wav")) == [
        "a/vocals.wav", "album/b/vocals.wav", "album/c/vocals.wav",
    ]
    tracks, problems = collect_tracks([root], out)
    assert len(tracks) == 3 and not problems
    # Two inputs that would share a folder fall back to their file names.
    write(tmp_path / "x" / "song.wav", tone(0.1))
    write(tmp_path / "x" / "song.flac", tone(0.1), subtype="PCM_16")
    tracks, _ = collect_tracks([tmp_path / "x" / "song.wav", tmp_path / "x" / "song.flac"], out)
    assert sorted(t.name for t in tracks) == ["song.flac", "song.wav"]


# ------------------------------------------------------------------------------ bad input


def test_empty_file(tmp_path, capsys):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert run(empty, "-o", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "empty" in err and "1 input(s) failed" in err


def test_zero_length_audio(tmp_path, capsys):
    path = write(tmp_path / "nothing.wav", np.zeros((0, 2), np.float32))
    assert run(path, "-o", tmp_path / "out") == 1
    assert "no audio samples" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_samples(tmp_path, capsys, bad):
    data = tone(0.2)
    data[100, 1] = bad
    path = write(tmp_path / "bad.wav", data)
    assert run(path, "-o", tmp_path / "out") == 1
    assert "NaN or infinite" in capsys.readouterr().err
    assert not (tmp_path / "out" / "tiny-untrained" / "bad").exists()


def test_silence_gives_silence(tmp_path):
    path = write(tmp_path / "silence.wav", np.zeros((5000, 2), np.float32))
    assert run(path, "-o", tmp_path / "out", "--float32") == 0
    for stem in ("vocals", "accompaniment"):
        data, _ = read(tmp_path / "out" / "tiny-untrained" / "silence" / f"{stem}.wav")
        assert data.shape == (5000, 2) and np.isfinite(data).all() and np.abs(data).max() == 0


def test_shorter_than_the_context(tmp_path):
    model = pretrained.get_model("tiny-untrained")
    short = model.context[0] // 3 * 2  # at 44.1 kHz: shorter than the context at the model rate too
    path = write(tmp_path / "short.wav", tone(short / RATE))
    assert run(path, "-o", tmp_path / "out") == 0
    data, _ = read(tmp_path / "out" / "tiny-untrained" / "short" / "vocals.wav")
    assert data.shape == (short, 2)


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_24", "FLOAT"])
def test_sample_formats(tmp_path, subtype):
    mix = tone(0.25)
    path = write(tmp_path / "f.wav", mix, subtype=subtype)
    assert run(path, "-o", tmp_path / "out", "--float32", "--clip-mode", "none") == 0
    folder = tmp_path / "out" / "tiny-untrained" / "f"
    vocals, _ = read(folder / "vocals.wav")
    accompaniment, _ = read(folder / "accompaniment.wav")
    decoded, _ = read(path)
    assert vocals.shape == mix.shape
    assert np.abs(vocals + accompaniment - decoded).max() <= 1e-5


def test_more_than_two_channels(tmp_path, capsys):
    path = write(tmp_path / "surround.wav", tone(0.2, channels=6))
    out = tmp_path / "out"
    assert run(path, "-o", out) == 1
    assert "channel policy" in capsys.readouterr().err
    assert run(path, "-o", out, "--channels", "first") == 0
    assert sf.info(str(out / "tiny-untrained" / "surround" / "vocals.wav")).channels == 2
    assert run(path, "-o", out, "--channels", "split") == 0
    assert sf.info(str(out / "tiny-untrained" / "surround" / "vocals.wav")).channels == 6


def test_mono_input_gives_mono_output(tmp_path):
    path = write(tmp_path / "mono.wav", tone(0.2, channels=1))
    assert run(path, "-o", tmp_path / "out") == 0
    assert sf.info(str(tmp_path / "out" / "tiny-untrained" / "mono" / "vocals.wav")).channels == 1


def test_unknown_extension_without_ffmpeg(tmp_path, capsys, monkeypatch):
    path = tmp_path / "song.m4a"
    path.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(200))
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    assert run(path, "-o", tmp_path / "out") == 1
    assert "needs ffmpeg" in capsys.readouterr().err


def test_unreadable_paths(tmp_path, capsys):
    good = write(tmp_path / "good.wav", tone(0.1))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert run(tmp_path / "missing.wav", blocker / "under-a-file.wav", good, "-o", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "missing.wav" in err and "under-a-file.wav" in err and "2 input(s) failed" in err
    assert (tmp_path / "out" / "tiny-untrained" / "good" / "vocals.wav").is_file()


def test_output_folder_not_creatable(tmp_path, capsys):
    song = write(tmp_path / "song.wav", tone(0.1))
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert run(song, "-o", blocker / "out") == 1
    err = capsys.readouterr().err
    assert "cannot create the output folder" in err and "nothing was separated" in err


def test_folder_with_one_bad_file(tmp_path, capsys):
    root = tmp_path / "music"
    write(root / "one.wav", tone(0.15))
    write(root / "two.flac", tone(0.15), subtype="PCM_16")
    (root / "sub").mkdir()
    (root / "sub" / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    out = tmp_path / "out"
    assert run(root, "-o", out) == 1
    captured = capsys.readouterr()
    assert "separated 2 of 3" in captured.out
    assert "1 input(s) failed" in captured.err and "broken.wav" in captured.err
    for name in ("one", "two"):
        assert (out / "tiny-untrained" / name / "vocals.wav").is_file()
    assert not (out / "tiny-untrained" / "sub").exists()


def test_interrupted_write_leaves_no_partial_file(tmp_path, monkeypatch):
    song = write(tmp_path / "song.wav", tone(0.2))

    def interrupted(self, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(sf.SoundFile, "write", interrupted)
    assert run(song, "-o", tmp_path / "out") == 130
    assert [p for p in (tmp_path / "out").rglob("*") if p.is_file()] == []


def test_usage(capsys):
    assert main(["--list-models"]) == 0
    assert "tiny-untrained" in capsys.readouterr().out
    assert main([]) == 2
    assert main(["x.wav", "--jobs", "0"]) == 2
    assert main(["--help"]) == 0


# ------------------------------------------------------------------------------ registry


def test_registry_names_and_missing_files(capsys, tmp_path, monkeypatch):
    assert {"tiny-untrained", "default"} <= set(pretrained.names())
    with pytest.raises(CheckpointError, match="unknown model"):
        pretrained.get_model("no-such-model")
    # an installation without the bundled file says so and names the alternatives
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path / "empty")
    with pytest.raises(CheckpointError, match="default model's file is missing") as info:
        pretrained.get_model("default")
    assert "tiny-untrained" in str(info.value) and "checkpoint" in str(info.value)
    song = write(tmp_path / "song.wav", tone(0.1))
    assert main([str(song), "-o", str(tmp_path / "out")]) == 1  # the default model
    assert "default model's file is missing" in capsys.readouterr().err


def test_bundled_default_model_separates_the_demo_song(tmp_path):
    from wavesep import audio

    model = pretrained.get_model("default")
    assert model.sources == ("accompaniment", "vocals") and model.config.output == "difference"
    assert model.metadata["preset"] == "deep" and model.num_parameters() < 25e6 / 4
    assert model.metadata["postfilter"] == "ratio-mask-fullband"
    demo = pretrained.PRETRAINED_DIR.parent / "resources" / "demo.flac"
    out = tmp_path / "separated"
    assert main([str(demo), "-o", str(out), "--float32", "--clip-mode", "none", "-q", "--spectrogram"]) == 0
    folder = out / "default" / "demo"
    assert sorted(p.name for p in folder.iterdir()) == ["accompaniment.wav", "spectrograms.png", "vocals.wav"]
    mix, rate = audio.read(demo)
    vocals, rate_v = audio.read(folder / "vocals.wav")
    accompaniment, _ = audio.read(folder / "accompaniment.wav")
    assert rate_v == rate and vocals.shape == mix.shape
    assert (vocals + accompaniment - mix).abs().max() < 1e-5  # difference output at the input rate
    # a trained model puts something, but not everything, in the vocals
    ratio = float(vocals.pow(2).sum() / mix.pow(2).sum())
    assert 0.01 < ratio < 0.9
    # the top band: the 22.05 kHz network leaves nothing above 11.025 kHz, the post-filter does
    assert rate == 44100

    def top(x):  # energy above 12 kHz
        spec = torch.fft.rfft(x, dim=-1).abs().pow(2)
        return float(spec[..., torch.fft.rfftfreq(x.shape[-1], 1 / rate) > 12000].sum())

    assert 0.01 < top(vocals) / top(mix) < 0.99


def test_tiny_untrained_is_fixed_and_leaves_the_global_rng_alone():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    a = pretrained.get_model("tiny-untrained")
    assert torch.equal(torch.rand(3), expected)
    b = pretrained.get_model("tiny-untrained")
    assert a.name == "tiny-untrained" and not a.training
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert any(v.abs().sum() > 0 for k, v in a.state_dict().items() if k.endswith("weight"))


def test_a_bundled_checkpoint_is_one_registry_entry(tmp_path, monkeypatch):
    model = WaveUNet(WaveUNetConfig(levels=4, filters=4, growth=4))
    checkpoint.save(tmp_path / "default.pt", model)
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path)
    loaded = pretrained.get_model("default")
    assert loaded.name == "default" and "default" in pretrained.available()
    assert all(torch.equal(x, y) for x, y in zip(model.state_dict().values(), loaded.state_dict().values()))
    assert pretrained.model_name(tmp_path / "default.pt") == "default"
    assert pretrained.model_name("runs/vocals-small/best.pt") == "vocals-small"


def test_default_v1_is_the_first_release_and_default_adds_the_top_band(tmp_path, monkeypatch):
    # Both names load the same weights; each registered name sets its own post-filter over the
    # checkpoint's metadata (default-v1: the released ratio-mask, so old results reproduce).
    model = WaveUNet(WaveUNetConfig(levels=4, filters=4, growth=4))
    checkpoint.save(tmp_path / "default.pt", model, metadata={"postfilter": "ratio-mask"})
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path)
    v1, v2 = pretrained.get_model("default-v1"), pretrained.get_model("default")
    assert v1.name == "default-v1" and {"default", "default-v1"} <= set(pretrained.available())
    assert all(torch.equal(x, y) for x, y in zip(v1.state_dict().values(), v2.state_dict().values()))
    assert v1.metadata["postfilter"] == "ratio-mask" and v2.metadata["postfilter"] == "ratio-mask-fullband"
    assert Separator("default-v1", device="cpu").postfilter == "ratio-mask"
    assert Separator("default", device="cpu").postfilter == "ratio-mask-fullband"
    assert Separator("default", device="cpu", postfilter="ratio-mask").postfilter == "ratio-mask"


# ------------------------------------------------------------------------------ Python API


def test_separator_api(tmp_path):
    sep = Separator("tiny-untrained", device="cpu", clip="none")
    assert sep.sources == ("accompaniment", "vocals") and sep.sample_rate == 22050
    mix = torch.from_numpy(tone(0.3).T.copy())  # (C, T)
    stems = sep.separate_tensor(mix, RATE)
    assert list(stems) == ["accompaniment", "vocals"]
    assert all(s.shape == mix.shape for s in stems.values())
    assert (stems["vocals"] + stems["accompaniment"] - mix).abs().max() <= 1e-5
    song = write(tmp_path / "song.wav", tone(0.3))
    from_file = sep.separate_file(song)
    assert sep.last_sample_rate == RATE
    assert all(torch.allclose(from_file[k], stems[k], atol=1e-6) for k in stems)
    written = sep.save(from_file, tmp_path / "stems", encoding="float32")
    data, rate = read(written["vocals"])
    assert rate == RATE and np.abs(data.T - from_file["vocals"].numpy()).max() == 0
    merged = two_stems(stems, "vocals")
    assert list(merged) == ["vocals", "no_vocals"]
    assert torch.equal(merged["no_vocals"], stems["accompaniment"])
    # A model instance works too, and is not moved or modified.
    model = pretrained.get_model("tiny-untrained").train()
    Separator(model, device="cpu", two_stems="vocals").separate_tensor(mix, RATE)
    assert model.training
    with pytest.raises(ValueError, match="not a stem"):
        Separator(model, two_stems="piano")


# ------------------------------------------------------------------------------ name clashes


def _vocals(out, name):
    return read(out / "tiny-untrained" / name / "vocals.wav")[0]


def test_same_file_name_in_two_folders_is_not_overwritten(tmp_path, capsys):
    a = write(tmp_path / "in" / "albumA" / "song.wav", tone(0.2, seed=1))
    b = write(tmp_path / "in" / "albumB" / "song.wav", tone(0.3, seed=2))
    out = tmp_path / "out"
    assert run(a, b, "-o", out, "--float32") == 0
    assert sorted(p.name for p in (out / "tiny-untrained").iterdir()) == ["albumA_song", "albumB_song"]
    assert _vocals(out, "albumA_song").shape[0] == len(tone(0.2))
    assert _vocals(out, "albumB_song").shape[0] == len(tone(0.3))
    assert "separated 2 of 2" in capsys.readouterr().out


def test_two_input_folders_with_the_same_track_names(tmp_path):
    for album, seconds in (("x/music", 0.2), ("y/music", 0.3)):
        write(tmp_path / album / "cd1" / "song.wav", tone(seconds))
    out = tmp_path / "out"
    assert run(tmp_path / "x" / "music", tmp_path / "y" / "music", "-o", out, "--float32") == 0
    model_dir = out / "tiny-untrained"
    names = sorted(p.relative_to(model_dir).parent.as_posix() for p in model_dir.rglob("vocals.wav"))
    assert names == ["x_music_cd1/song", "y_music_cd1/song"]
    assert _vocals(out, "x_music_cd1/song").shape[0] == len(tone(0.2))
    assert _vocals(out, "y_music_cd1/song").shape[0] == len(tone(0.3))


def test_clash_rules_are_decided_for_the_whole_run(tmp_path):
    out = tmp_path / "out"
    # case differs only: one folder on case-insensitive file systems
    a = write(tmp_path / "p" / "Song.wav", tone(0.1))
    b = write(tmp_path / "q" / "song.wav", tone(0.1))
    assert sorted(t.name for t in collect_tracks([a, b], out)[0]) == ["p_Song", "q_song"]
    # same folder, other extension: the extension tells them apart
    c = write(tmp_path / "p" / "Song.flac", tone(0.1), subtype="PCM_16")
    assert [t.name for t in collect_tracks([a, c], out)[0]] == ["Song.wav", "Song.flac"]
    # nothing tells them apart but their order: numbered in input order
    d = write(tmp_path / "r" / "p" / "Song.wav", tone(0.1))
    e = write(tmp_path / "s" / "r" / "p" / "Song.wav", tone(0.1))
    names = [t.name for t in collect_tracks([a, c, d, e], out)[0]]
    assert len(set(n.casefold() for n in names)) == 4, names
    f = write(tmp_path / "p" / "SONG.wav", tone(0.1))
    if not f.samefile(a):  # a case-sensitive file system: only the order tells a and f apart
        assert [t.name for t in collect_tracks([a, f], out)[0]] == ["Song", "SONG (2)"]
    # a track whose folder would hold another track's folder is renamed too
    root = tmp_path / "music"
    write(root / "album.wav", tone(0.1))
    write(root / "album" / "song.wav", tone(0.1))
    names = sorted(t.name for t in collect_tracks([root], out)[0])
    assert "album/song" in names and "album" not in names and len(names) == 2
    # the same file given twice is separated once
    assert len(collect_tracks([a, a, tmp_path / "p"], out)[0]) == len(list((tmp_path / "p").iterdir()))


# ------------------------------------------------------------------------------ a track as a unit


def test_a_track_is_written_whole_or_not_at_all(tmp_path, monkeypatch, capsys):
    from wavesep import audio

    song = write(tmp_path / "song.wav", tone(0.2))
    out = tmp_path / "out"
    folder = out / "tiny-untrained" / "song"
    real_write = audio.write
    calls = []

    def second_stem_fails(path, *args, **kwargs):
        calls.append(path)
        if len(calls) % 2 == 0:
            raise audio.AudioError(f"failed to write {path}: No space left on device")
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(audio, "write", second_stem_fails)
    assert run(song, "-o", out) == 1
    assert "No space left" in capsys.readouterr().err
    assert not folder.exists()  # not one stem of the failed track
    assert [p for p in out.rglob("*") if p.is_file()] == []
    # A rerun that fails keeps the previous complete set untouched.
    monkeypatch.setattr(audio, "write", real_write)
    assert run(song, "-o", out, "--float32") == 0
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    monkeypatch.setattr(audio, "write", second_stem_fails)
    calls.clear()
    assert run(song, "-o", out) == 1
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert [p.name for p in (out / "tiny-untrained").iterdir()] == ["song"]
    # A successful rerun replaces the stems it writes and leaves other files alone.
    monkeypatch.setattr(audio, "write", real_write)
    (folder / "notes.txt").write_text("mine")
    assert run(song, "-o", out) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["accompaniment.wav", "notes.txt", "vocals.wav"]
    assert sf.info(str(folder / "vocals.wav")).subtype == "PCM_16"
    assert [p.name for p in (out / "tiny-untrained").iterdir()] == ["song"]


# ------------------------------------------------------------------------------ interrupts


def test_ctrl_c_swallowed_inside_soundfile_still_stops_the_run(tmp_path, monkeypatch, capsys):
    """An exception raised in one of soundfile's cffi I/O callbacks is printed and dropped; the
    write then fails with soundfile's AssertionError. A Ctrl-C handled there must still stop the
    whole run with 130 and leave no file."""
    import signal

    first = write(tmp_path / "in" / "a.wav", tone(0.2))
    second = write(tmp_path / "in" / "b.wav", tone(0.2))

    def ctrl_c_inside_a_callback(self, data):
        try:
            signal.raise_signal(signal.SIGINT)  # the handler runs here, inside the "callback"
        except KeyboardInterrupt:
            pass  # what cffi does with it
        raise AssertionError  # soundfile: assert written == frames

    monkeypatch.setattr(sf.SoundFile, "write", ctrl_c_inside_a_callback)
    out = tmp_path / "out"
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN in a background job
    assert run(first, second, "-o", out) == 130
    assert "interrupted" in capsys.readouterr().err
    assert list(out.rglob("*")) in ([], [out / "tiny-untrained"])  # not b either, nothing hidden
    assert signal.getsignal(signal.SIGINT) == before  # handlers restored


def test_sigterm_during_a_write_exits_143_and_leaves_no_temporary(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    song = write(tmp_path / "song.wav", tone(0.2))
    out = tmp_path / "out"
    script = f"""
import os, signal, sys
import soundfile
from wavesep.separate import main
real = soundfile.SoundFile.write
def terminated_half_way(self, data):
    real(self, data[: len(data) // 2])
    os.kill(os.getpid(), signal.SIGTERM)
    real(self, data[len(data) // 2 :])
soundfile.SoundFile.write = terminated_half_way
sys.exit(main([{str(song)!r}, "-o", {str(out)!r}, "-n", "tiny-untrained", "-d", "cpu"]))
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 143, proc.stderr
    assert "interrupted" in proc.stderr
    assert [p for p in out.rglob("*") if p.name != "tiny-untrained"] == []


def test_stale_temporaries_of_our_naming_are_removed(tmp_path, capsys):
    song = write(tmp_path / "song.wav", tone(0.2))
    model_dir = tmp_path / "out" / "tiny-untrained"
    folder = model_dir / "song"
    folder.mkdir(parents=True)
    stale = [folder / ".vocals.wav.0123456789ab.tmp", folder / ".spectrograms.png.a1b2c3d4e5f6.png",
             model_dir / ".song.00112233aabb.tmp"]
    stale[0].write_bytes(b"RIFF half a file")
    stale[1].write_bytes(b"\x89PNG")
    stale[2].mkdir()
    (stale[2] / "vocals.wav").write_bytes(b"RIFF")
    kept = [folder / ".vocals.wav.0123456789ab.tmp.bak", folder / ".notes.tmp", model_dir / "a.0123456789ab.tmp",
            folder / ".accompaniment.wav.fedcba987654.tmp"]
    for p in kept:
        p.write_bytes(b"not ours, or not stale")
    hour_ago = time.time() - 3600
    for p in stale + kept[:-1]:
        os.utime(p, (hour_ago, hour_ago))
    os.utime(kept[-1], (time.time() + 3600,) * 2)  # newer than the run: another run's, in use
    assert run(song, "-o", tmp_path / "out") == 0
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)
    assert "removed 3 temporary" in capsys.readouterr().out


# ------------------------------------------------------------------------------ broken models


@pytest.mark.parametrize("postfilter", ["none", "ratio-mask"])
def test_nan_network_output_is_reported_not_hidden(tmp_path, capsys, postfilter):
    from wavesep.errors import ModelError

    model = pretrained.get_model("tiny-untrained")
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))  # what a diverged training can leave
    path = checkpoint.save(tmp_path / "diverged.pt", model)
    song = write(tmp_path / "song.wav", tone(0.5))
    out = tmp_path / "out"
    status = main([str(song), "-o", str(out), "-n", str(path), "-d", "cpu", "--postfilter", postfilter])
    assert status == 1
    err = capsys.readouterr().err
    assert "NaN" in err and "song.wav" in err and "diverged" in err
    assert not (out / "diverged" / "song").exists()
    # the mask would have turned the NaN into mixture / 2 for every stem
    with pytest.raises(ModelError, match="NaN or infinite"):
        Separator(model, device="cpu", postfilter="ratio-mask").separate_tensor(torch.from_numpy(tone(0.5).T.copy()), RATE)


# ------------------------------------------------------------------------------ odd files


def test_a_file_name_that_is_not_utf8(tmp_path, capsys):
    folder = os.fsencode(tmp_path / "in")
    os.makedirs(folder)
    raw = os.path.join(folder, b"bad\xffname.wav")
    try:
        with open(raw, "wb") as f:
            sf.write(f, tone(0.2), RATE, format="WAV", subtype="FLOAT")
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    out = tmp_path / "out"
    assert run(os.fsdecode(raw), "-o", out, "--spectrogram") == 0  # its title shows the name escaped
    written = os.path.join(os.fsencode(out / "tiny-untrained"), b"bad\xffname", b"vocals.wav")
    assert sf.info(written).frames == len(tone(0.2))  # bytes: soundfile cannot encode the str
    assert "bad\\xffname" in capsys.readouterr().out  # shown escaped
    assert run(tmp_path / "in", "-o", out) == 0  # found in a folder too


def test_a_truncated_wav_is_reported(tmp_path, capsys):
    song = write(tmp_path / "song.wav", tone(0.4), subtype="PCM_16")
    data = song.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2])  # the header still announces every frame
    assert run(cut, song, "-o", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "cut.wav" in err and "truncated" in err
    assert not (tmp_path / "out" / "tiny-untrained" / "cut").exists()
    assert (tmp_path / "out" / "tiny-untrained" / "song" / "vocals.wav").exists()


# ------------------------------------------------------------------------------ messages


@pytest.mark.parametrize("segment", ["inf", "-inf", "nan", "0"])
def test_segment_must_be_a_finite_positive_length(tmp_path, capsys, segment):
    song = write(tmp_path / "song.wav", tone(0.1))
    assert run(song, "-o", tmp_path / "out", "--segment", segment) == 2
    err = capsys.readouterr().err
    assert "--segment" in err and "Traceback" not in err and "Overflow" not in err
    with pytest.raises(ValueError, match="segment_seconds"):
        Separator("tiny-untrained", device="cpu", segment_seconds=float(segment)).separate_tensor(
            torch.zeros(2, 1000), RATE)


def test_six_channels_message_names_the_option(tmp_path, capsys):
    path = write(tmp_path / "surround.wav", tone(0.2, channels=6))
    assert run(path, "-o", tmp_path / "out") == 1
    assert "--channels" in capsys.readouterr().err


def test_summary_names_each_failure_once_and_counts_missing_inputs(tmp_path, capsys):
    good = write(tmp_path / "good.wav", tone(0.1))
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.wav"
    assert run(missing, empty, good, "-o", tmp_path / "out") == 1
    captured = capsys.readouterr()
    assert "separated 1 of 3" in captured.out
    summary = captured.err[captured.err.index("2 input(s) failed"):].splitlines()[1:]
    assert len(summary) == 2
    for line, path in zip(summary, (missing, empty)):
        assert line.count(str(path)) == 1, line


def test_a_refused_checkpoint_does_not_advise_unsafe_loading(tmp_path, capsys):
    class Payload:
        def __reduce__(self):
            return (print, ("code ran on load",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "wavesep-checkpoint", "x": Payload()}, path)
    song = write(tmp_path / "song.wav", tone(0.1))
    assert main([str(song), "-o", str(tmp_path / "out"), "-n", str(path), "-d", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "evil.pt" in err and "refused" in err
    assert re.search(r"reference to (builtins\.)?print\b", err)  # what it holds, in torch's words
    assert "weights_only" not in err and "code ran on load" not in err


def test_a_signal_during_the_moves_into_an_existing_folder_waits_for_the_last_one(tmp_path, monkeypatch):
    import signal

    from wavesep import atomic

    song = write(tmp_path / "song.wav", tone(0.2))
    out = tmp_path / "out"
    assert run(song, "-o", out, "--float32") == 0
    folder = out / "tiny-untrained" / "song"
    real_replace = os.replace
    moved = []

    def replace(src, dst):
        real_replace(src, dst)
        if Path(dst).parent == folder:
            moved.append(Path(dst).name)
            if len(moved) == 1:
                os.kill(os.getpid(), signal.SIGTERM)  # after the first stem of the set is in place

    monkeypatch.setattr(atomic.os, "replace", replace)
    assert run(song, "-o", out) == 143
    # both stems were replaced (the new set is 16-bit), none half: the signal waited for the set
    assert sorted(moved) == ["accompaniment.wav", "vocals.wav"]
    assert {sf.info(str(p)).subtype for p in folder.iterdir()} == {"PCM_16"}
    assert [p.name for p in (out / "tiny-untrained").iterdir()] == ["song"]


# ------------------------------------------------------------------------------ --stream


@pytest.mark.parametrize("kind", ["wav16", "wav-float", "raw-s16le", "raw-s24le", "raw-f32le"])
def test_stream_mode_writes_what_the_offline_command_writes(tmp_path, kind):
    data = tone(seconds=1.3)  # (T, C)
    if kind.startswith("wav"):
        src = write(tmp_path / "in.wav", data, subtype="PCM_16" if kind == "wav16" else "FLOAT")
        extra = []
    else:
        fmt = kind.split("-")[1]
        if fmt == "s16le":
            payload = np.round(data * 32767).astype("<i2").tobytes()
        elif fmt == "f32le":
            payload = data.astype("<f4").tobytes()
        else:
            v = np.round(data * 8388607).astype("<i4").reshape(-1)
            payload = np.stack([v & 255, (v >> 8) & 255, (v >> 16) & 255], axis=1).astype(np.uint8).tobytes()
        src = tmp_path / "in.raw"
        src.write_bytes(payload)
        extra = ["--raw-format", fmt, "--rate", RATE, "--in-channels", 2]
        # The offline reference reads the same samples from a float wav.
        scale = {"s16le": 32767, "s24le": 8388607, "f32le": None}[fmt]
        quantised = data if scale is None else np.round(data * scale) / {"s16le": 32768, "s24le": 8388608}[fmt]
        data = quantised.astype(np.float32)
    # The offline reference: the wav itself, or the raw samples as a float wav.
    ref_in = src if kind.startswith("wav") else write(tmp_path / "ref" / "in.wav", data)
    out = tmp_path / "out"
    assert run(ref_in, "-o", out, "--float32", "--precision", "float32", "--clip-mode", "clamp", "-q") == 0
    assert run("--stream", src, *extra, "-o", out, "--name", "streamed", "--float32", "--precision",
               "float32", "--block", 333, "--hop", 0.05, "-q") == 0
    for stem in ("accompaniment", "vocals"):
        offline, _ = read(out / "tiny-untrained" / "in" / f"{stem}.wav")
        streamed, rate = read(out / "tiny-untrained" / "streamed" / f"{stem}.wav")
        assert rate == RATE and streamed.shape == offline.shape
        assert np.abs(streamed - offline).max() <= 1e-5


def test_stream_mode_errors(tmp_path, capsys):
    src = tmp_path / "in.raw"
    src.write_bytes(b"\x01\x02" * 1000)
    assert run("--stream", src, "-o", tmp_path / "out") == 1  # raw without its format
    assert "not a wav stream" in capsys.readouterr().err
    assert run("--stream", src, "--raw-format", "s16le", "-o", tmp_path / "out") == 2
    assert run("--stream", src, "--raw-format", "s16le", "--rate", 44100, "--in-channels", 2,
               "--clip-mode", "rescale", "-o", tmp_path / "out") == 2
    assert "rescale" in capsys.readouterr().err
    assert not (tmp_path / "out" / "tiny-untrained" / "in").exists()
