"""Tests of the sampled renderer (wavesep.corpus.sampled and its helper modules).

They skip, with the reason, when FluidSynth/MMA/music21 or a singing backend is missing
(install lines: see wavesep.corpus.sampled.check_dependencies). Pitch is measured with WORLD's
DIO + StoneMask tracker, independent of how each method synthesises the voice.
"""

import hashlib
import json
import shutil

import numpy as np
import pytest

from wavesep.errors import DependencyError

SR = 22050


def _require_renderer():
    from wavesep.corpus.sampled import arrangement as sampled
    try:
        sampled.fluid.check_available()
        sampled.mma.check_available()
        sampled.scores.music21_corpus()
    except DependencyError as exc:
        pytest.skip(f"sampled renderer dependencies missing: {exc}")
    if not sampled.available_methods():
        pytest.skip("no singing backend installed (pysinsy, festival, espeak-ng+pyworld)")
    return sampled


def _require_method(method):
    from wavesep.corpus import singing
    try:
        singing.check_method(method)
        singing.load_pyworld()  # the pitch tracker
    except DependencyError as exc:
        pytest.skip(f"singing method {method} unavailable: {exc}")
    return singing


@pytest.fixture(scope="module")
def song():
    sampled = _require_renderer()
    stems, info = sampled.render("test song", "train", 3, 9.0, SR)
    return stems, info


def test_song_has_four_stems_of_the_right_shape(song):
    stems, info = song
    assert set(stems) == {"vocals", "drums", "bass", "other"}
    for name, x in stems.items():
        assert x.shape == (round(9.0 * SR), 2), name
        assert x.dtype == np.float32, name
        assert np.all(np.isfinite(x)), name
        assert np.sqrt(np.mean(x ** 2)) > 1e-4, f"stem {name} is silent"
    json.dumps(info)  # the writer stores it as JSON
    assert info["seconds"] == 9.0 and info["sample_rate"] == SR
    for key in ("piece", "transposition", "tempo_qpm", "drum_kit", "singing_method", "voice",
                "bass_program", "other_instruments", "seed"):
        assert key in info, key


def test_same_seed_same_audio_other_seed_other_audio(song):
    from wavesep.corpus import sampled
    stems, info = song
    again, info2 = sampled.render("test song", "train", 3, 9.0, SR)
    assert info2 == info
    for name in stems:
        np.testing.assert_array_equal(again[name], stems[name], err_msg=name)
    other, _ = sampled.render("test song", "train", 4, 9.0, SR)
    assert not np.array_equal(other["other"], stems["other"])


def test_vocals_follow_the_sung_phrases(song):
    stems, info = song
    v = stems["vocals"].mean(axis=1)
    phrases = info["vocal_phrases_s"]
    assert phrases, "the song has no sung notes"
    frame = SR // 20
    energy = np.array([np.mean(v[i:i + frame] ** 2) for i in range(0, len(v) - frame, frame)])
    t = np.arange(len(energy)) * 0.05 + 0.025
    inside = np.zeros(len(t), dtype=bool)
    for a, b in phrases:
        inside |= (t >= a) & (t <= b)
    # the voice sounds during most of its phrases
    assert np.mean(energy[inside] > 1e-6 * energy.max()) > 0.6
    activity = sum(b - a for a, b in phrases) / info["seconds"]
    assert activity >= info["vocal_activity"] - 1e-3


def test_vocals_silent_where_the_voice_rests():
    """A 30 s song with an instrumental break: no voice in it beyond the room's tail."""
    sampled = _require_renderer()
    try:
        sampled.check_dependencies()  # the song's choices depend on the methods installed
    except DependencyError as exc:
        pytest.skip(f"needs every singing backend for a reproducible song plan: {exc}")
    stems, info = sampled.render("rests", "train", 5, 30.0, 16000)
    phrases = info["vocal_phrases_s"]
    gaps = [(a[1], b[0]) for a, b in zip(phrases, phrases[1:])]
    gaps = [(a, b) for a, b in gaps if b - a > 2.0]
    assert gaps, f"seed 5 no longer gives a break over 2 s ({phrases}); pick another seed"
    v = stems["vocals"]
    peak = np.abs(v).max()
    for a, b in gaps:
        # 1.3 s: the room's impulse response lasts at most 1.2 s
        rest = v[int((a + 1.3) * 16000): int((b - 0.3) * 16000)]
        assert np.abs(rest).max() < 1e-4 * peak, (a, b)
    # the accompaniment keeps playing in the rest
    a, b = gaps[0]
    acc = stems["other"][int(a * 16000): int(b * 16000)] + stems["drums"][int(a * 16000):
                                                                          int(b * 16000)]
    assert np.abs(acc).max() > 1e-3


def _melody(lowest):
    """Ten notes, a 2 s rest after the fifth: (SungNote list, rest (start, end), length s)."""
    from wavesep.corpus.singing import SungNote
    steps = [0, 2, 4, 5, 7, 9, 7, 4, 2, 0]
    notes, t = [], 0.4
    rest = None
    for i, s in enumerate(steps):
        d = (0.5, 0.7, 0.4)[i % 3]
        notes.append(SungNote(t, d, lowest + s))
        t += d + 0.04
        if i == 4:
            rest = (t, t + 2.0)
            t += 2.0
    return notes, rest, t + 0.6


def _median_pitch_error(y, notes, sr, pyworld):
    x = y.astype(np.float64)
    f0, times = pyworld.dio(x, sr, f0_floor=60.0, f0_ceil=1000.0, frame_period=10.0)
    f0 = pyworld.stonemask(x, f0, times, sr)
    errors, frames = [], 0
    for n in notes:
        # skip the attack (consonants, glides) and the release
        m = (times >= n.onset + 0.08) & (times < n.onset + n.duration - 0.03)
        frames += int(m.sum())
        voiced = m & (f0 > 0)
        target = 440.0 * 2 ** ((n.pitch - 69) / 12)
        errors.extend(np.abs(12 * np.log2(f0[voiced] / target)))
    return float(np.median(errors)), len(errors) / max(frames, 1)


@pytest.mark.parametrize("method", ["festival", "sinsy", "espeak_world", "gm_choir"])
def test_sung_pitch_follows_the_score_and_rests_are_silent(method):
    singing = _require_method(method)
    pyworld = singing.load_pyworld()
    voice = f"{method}:{singing.VOICES[method][0]}"
    lowest = singing.voice_range(voice)[0] + 3
    notes, rest, length = _melody(lowest)
    y = singing.sing(voice, notes, int(length * SR), SR, np.random.default_rng(0))
    assert y.shape == (int(length * SR),) and y.dtype == np.float32
    err, voiced = _median_pitch_error(y, notes, SR, pyworld)
    # festival's octave quirk would give 12, a tempo mix-up puts notes on the wrong pitches
    assert err < 0.5, f"{voice}: median pitch error {err:.2f} semitones"
    assert voiced > 0.5, f"{voice}: only {voiced:.0%} of the note frames are voiced"
    a, b = rest
    assert np.abs(y[int((a + 0.4) * SR): int((b - 0.3) * SR)]).max() < 1e-3
    # the last note ends on time (Festival's BPM/50 quirk would stretch the phrase by 20%)
    last = notes[-1]
    tail = y[int((last.onset + last.duration + 0.25) * SR):]
    assert tail.size == 0 or np.abs(tail).max() < 0.05


def test_held_out_piece_pools_are_disjoint_and_stable():
    from wavesep.corpus.sampled import scores
    try:
        cat = scores.catalogue()
    except DependencyError as exc:
        pytest.skip(str(exc))
    for family, ids in cat.items():
        pools = {s: set(scores.pool(family, s)) for s in ("train", "valid", "test")}
        assert pools["train"] and pools["valid"] and pools["test"], family
        assert not pools["train"] & pools["valid"]
        assert not pools["train"] & pools["test"]
        assert not pools["valid"] & pools["test"]
        assert pools["train"] | pools["valid"] | pools["test"] == set(ids)
    # the split is a function of SHA-1 of the id alone (same in every process)
    for pid in ("bach/bwv269.mxl", "essenFolksong/altdeu10.abc#101"):
        h = int(hashlib.sha1(pid.encode()).hexdigest()[:8], 16) / 2 ** 32
        expected = "test" if h < 0.1 else "valid" if h < 0.2 else "train"
        assert scores.split_of(pid) == expected


def test_test_songs_use_test_pieces():
    sampled = _require_renderer()
    stems, info = sampled.render("held out", "test", 11, 6.0, 16000)
    assert info["piece_split"] == "test"
    assert sampled.scores.split_of(info["piece"]) == "test"


def test_chords_derived_from_parts():
    from wavesep.corpus.sampled.scores import Piece, ScoreNote, chord_name, derive_chords
    # bar 1: C E G (C major); bar 2: G B D F (G7); four quarter-note beats each
    melody = [ScoreNote(0, 4, 67), ScoreNote(4, 4, 77)]
    inner = [[ScoreNote(0, 4, 64), ScoreNote(4, 4, 71)], [ScoreNote(0, 4, 60), ScoreNote(4, 4, 74)]]
    bass = [ScoreNote(0, 4, 48), ScoreNote(4, 4, 43)]
    piece = Piece("x", "polyphony", 4.0, 8.0, melody, bass, inner, tonic=0, mode="major")
    chords = derive_chords(piece)
    names = [chord_name(r, s) for _, _, r, s in chords]
    assert names == ["C", "G7"]
    assert [(c[0], c[1]) for c in chords] == [(0.0, 4.0), (4.0, 4.0)]
    assert chord_name(7, "7", transpose=2) == "A7"


def test_missing_programs_name_their_install_line(monkeypatch):
    from wavesep.corpus import singing
    from wavesep.corpus.sampled import grooves as sampled_mma, instruments as sampled_fluid
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda n, *a, **k: None if n == "mma"
                        else real_which(n, *a, **k))
    with pytest.raises(DependencyError, match="apt-get install -y mma"):
        sampled_mma.check_available()
    monkeypatch.setattr(shutil, "which", lambda n, *a, **k: None if n in ("festival", "text2wave")
                        else real_which(n, *a, **k))
    with pytest.raises(DependencyError, match="apt-get install -y festival"):
        singing.check_method("festival")
    with pytest.raises(DependencyError, match="pip install pysinsy"):
        singing._load_extension("wavesep_no_such_package", "sinsy", "pip install pysinsy")
    monkeypatch.setattr(sampled_fluid, "GM_SOUNDFONT", "/nonexistent/FluidR3_GM.sf2")
    try:
        sampled_fluid._library()
    except DependencyError:
        pytest.skip("libfluidsynth missing")
    with pytest.raises(DependencyError, match="fluid-soundfont-gm"):
        sampled_fluid.check_available()


def test_corpus_statistics_of_a_written_song(song, tmp_path):
    import soundfile as sf
    from wavesep.corpus import sampled
    stems, info = song
    track = tmp_path / "train" / "song 1"
    track.mkdir(parents=True)
    for name, x in stems.items():
        sf.write(track / f"{name}.wav", x, SR, subtype="FLOAT")
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "song 1.json").write_text(json.dumps({"info": info}))
    stats = sampled.corpus_statistics(str(tmp_path))
    assert stats["songs"] == 1 and stats["distinct_pieces"] == 1
    assert stats["minutes"] == pytest.approx(9.0 / 60, abs=0.01)
    assert stats["vocal_activity"]["mean"] == pytest.approx(info["vocal_activity"], abs=1e-3)
    rms_db = 20 * np.log10(np.sqrt(np.mean(stems["bass"].astype(np.float64) ** 2)))
    assert stats["stem_rms_dbfs"]["bass"]["median"] == pytest.approx(rms_db, abs=0.1)
    assert stats["distinct_programs"] == len({info["bass_program"]} |
                                             {o["program"] for o in info["other_instruments"]})


def test_corpus_writer_end_to_end_read_back_by_musdb(tmp_path):
    _require_renderer()
    import json

    import musdb
    import soundfile as sf
    from wavesep.corpus import command as synth
    out = tmp_path / "corpus"
    assert synth.main([str(out), "--renderer", "sampled", "--tracks", "1", "--seconds", "6",
                       "--seed", "5", "--valid-tracks", "1", "--test-tracks", "1", "--jobs", "1",
                       "--quiet"]) == 0
    splits = json.loads((out / "splits.json").read_text())
    assert [len(splits[k]) for k in ("train", "valid", "test")] == [1, 1, 1]
    for subset, expected in (("train", splits["train"] + splits["valid"]), ("test", splits["test"])):
        db = musdb.DB(root=str(out), is_wav=True, subsets=subset)
        assert sorted(t.name for t in db) == sorted(expected)
        for track in db:
            assert track.rate == 44100 and track.audio.shape == (6 * 44100, 2)
            folder = out / subset / track.name
            assert not [p for p in folder.iterdir() if p.is_dir()], f"sub-folder in {folder}"
            # 16-bit files: the mixture is exactly the integer sum of the stems
            ints = {n: sf.read(folder / f"{n}.wav", dtype="int16")[0].astype(np.int32)
                    for n in ("mixture", "vocals", "drums", "bass", "other")}
            assert np.array_equal(ints["mixture"], ints["vocals"] + ints["drums"] + ints["bass"] + ints["other"])
            for name in ("vocals", "drums", "bass", "other"):
                assert np.abs(track.targets[name].audio).max() > 0, f"{name} silent in {track.name}"


@pytest.mark.parametrize("kind,gain_db", [("low", 3.0), ("low", -2.5), ("high", 4.0),
                                          ("high", -4.0)])
def test_shelf_filter_gains(kind, gain_db):
    from scipy.signal import sosfreqz
    from wavesep.corpus.sampled.effects import shelf_sos
    sos = shelf_sos(kind, 1000.0, gain_db, 44100)
    w, h = sosfreqz(sos, worN=[0.0, np.pi], fs=2 * np.pi)
    dc, nyquist = 20 * np.log10(np.abs(h))
    # closed form: the shelf side gets gain_db, the other side 0 dB
    assert (dc, nyquist) == pytest.approx((gain_db, 0.0) if kind == "low" else (0.0, gain_db),
                                          abs=1e-6)


def test_room_adds_a_tail_and_keeps_the_length():
    from wavesep.corpus.sampled.effects import apply_room, room_ir, room_spectrum
    rng = np.random.default_rng(0)
    ir, rt60 = room_ir(rng, 8000)
    assert ir.shape[0] == 2 and 0.3 <= rt60 <= 1.6
    np.testing.assert_allclose(np.sum(ir.astype(np.float64) ** 2, axis=1), 1.0, rtol=1e-4)
    x = np.zeros((8000, 2), dtype=np.float32)
    x[100] = 1.0
    spec, n_fft = room_spectrum(ir, len(x))
    y = apply_room(x, spec, n_fft, 0.5)
    assert y.shape == x.shape and y.dtype == np.float32
    # an impulse comes back as itself plus half the room's response
    np.testing.assert_allclose(y[101:4000, 0], 0.5 * ir[0, 1:3900], atol=1e-5)
