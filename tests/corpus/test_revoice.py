"""Tests of wavesep.corpus.revoice on generated speech and vocals (no package download)."""

import json

import numpy as np
import pytest
import soundfile as sf

from wavesep.corpus import revoice
from wavesep.corpus.singing.common import load_pyworld
from wavesep.errors import DependencyError

try:
    load_pyworld()
except DependencyError:  # pragma: no cover - the test extra installs it
    pytest.skip("needs pyworld (pip install pyworld)", allow_module_level=True)

RATE = 22050


def harmonic(f0, rate=RATE, amp=0.2):
    """A glottal-like tone: 12 harmonics of the per-sample F0 contour ``f0`` (Hz), 1/k amplitudes."""
    phase = 2 * np.pi * np.cumsum(f0) / rate
    return amp * sum(np.sin(k * phase) / k for k in range(1, 13))


def fake_speech(seed, rate=RATE):
    """Speech-like bursts: voiced 'syllables' (120-180 Hz, falling), each after 80 ms of hiss."""
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(5):
        n = int(rate * rng.uniform(0.2, 0.4))
        parts.append(0.05 * rng.standard_normal(int(0.08 * rate)))         # a fricative
        parts.append(harmonic(np.linspace(180, 120, n), rate))              # a voiced run
        parts.append(np.zeros(int(0.1 * rate)))
    return np.concatenate(parts)


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    out = tmp_path_factory.mktemp("revoice")
    files = []
    for k, name in enumerate(["lvl-m-one.wav", "lvl-m-two.wav", "lvl-v-one.wav", "intro.wav"]):
        path = out / "x" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, fake_speech(k), RATE)
        files.append(path)
    counts = revoice.build_bank(out, files)
    return out, counts


def test_runs_and_speech_segments():
    assert revoice.runs(np.array([0, 1, 1, 0, 1], bool)) == [(1, 3), (4, 5)]
    f0 = np.zeros(200)
    f0[30:50] = 150.0     # 20 frames: kept, 24 frames of margin before it (30 available)
    f0[60:65] = 150.0     # 5 frames: too short
    f0[100:190] = 150.0   # kept; 24 frames before, after limited by the end (10 frames)
    assert revoice.speech_segments(f0) == [(6, 30, 50, 60), (76, 100, 190, 200)]


def test_bank_per_speaker(bank):
    out, counts = bank
    assert sorted(counts) == ["m", "other", "v"]
    assert counts["m"] >= 8 and counts["v"] >= 4
    b = revoice.load_bank(out / "bank" / "m.npz")
    seg = b["segments"]
    assert (seg[:, 0] <= seg[:, 1]).all() and (seg[:, 1] < seg[:, 2]).all() and (seg[:, 2] <= seg[:, 3]).all()
    assert seg[-1, 3] == len(b["f0"]) == len(b["sp"]) == len(b["ap"])
    assert b["sp"].shape[1] == revoice.SP_DIMS
    assert 110 < b["median_f0"] < 190
    # a second call finds the banks and does not rebuild them
    mtime = (out / "bank" / "m.npz").stat().st_mtime_ns
    assert revoice.build_bank(out, []) == {} and (out / "bank" / "m.npz").stat().st_mtime_ns == mtime


def rendered_vocals(rate=44100):
    """A rendered vocal line: 220 Hz for 0.6 s, 0.4 s of silence, 330 Hz for 0.5 s, 0.3 s of
    silence; stereo with the right channel at half the left. Returns (C, T), note spans in s."""
    pieces = [harmonic(np.full(int(0.6 * rate), 220.0), rate), np.zeros(int(0.4 * rate)),
              harmonic(np.full(int(0.5 * rate), 330.0), rate, amp=0.05), np.zeros(int(0.3 * rate))]
    x = np.concatenate(pieces)
    return np.stack([x, 0.5 * x]), [(0.0, 0.6), (1.0, 1.5)]


def test_revoice_keeps_the_line_level_and_balance(bank):
    out, _ = bank
    b = revoice.load_bank(out / "bank" / "m.npz")
    vocals, notes = rendered_vocals()
    y = revoice.revoice(vocals, 44100, b, np.random.default_rng(0))
    assert y.shape == (2, vocals.shape[1] // 2) and y.dtype == np.float32
    np.testing.assert_allclose(y[1], 0.5 * y[0], atol=1e-6)
    mono22 = revoice._to_rate(vocals.mean(axis=0), 44100)
    from wavesep.corpus.singing.common import load_pyworld
    pw = load_pyworld()
    for (a, b_), want_f0 in zip(notes, (220.0, 330.0)):
        # the middle of each note: the rendered level (within 1 dB) and the rendered pitch (within 3%)
        s = slice(int((a + 0.1) * RATE), int((b_ - 0.1) * RATE))
        ratio_db = 10 * np.log10(np.mean(y[:, s].mean(axis=0) ** 2) / np.mean(mono22[s] ** 2))
        assert abs(ratio_db) < 1.0
        seg = np.ascontiguousarray(y[0, s], dtype=np.float64)
        f0, t = pw.dio(seg, RATE, f0_floor=70.0, f0_ceil=800.0, frame_period=5.0)
        f0 = pw.stonemask(seg, f0, t, RATE)
        assert abs(np.median(f0[f0 > 0]) / want_f0 - 1) < 0.03
    # silent between the notes, beyond the consonant margins of 120 ms
    gap = y[:, int(0.73 * RATE): int(0.87 * RATE)]
    assert np.abs(gap).max() < 1e-4
    # and the new voice is not the rendered one
    assert np.corrcoef(y[0, :int(0.6 * RATE)], mono22[:int(0.6 * RATE)])[0, 1] < 0.9


def test_render_writes_aligned_voices_and_valid_stems(bank, tmp_path):
    out, _ = bank
    corpus = tmp_path / "corpus"
    vocals, _ = rendered_vocals()
    for name in ("s-train-0", "s-valid-0"):
        d = corpus / "train" / name
        d.mkdir(parents=True)
        sf.write(d / "vocals.wav", vocals.T.astype(np.float32), 44100, subtype="FLOAT")
        for stem in ("drums", "bass", "other"):
            sf.write(d / f"{stem}.wav", 0.01 * np.ones_like(vocals.T, dtype=np.float32), 44100, subtype="FLOAT")
    (corpus / "splits.json").write_text(json.dumps({"train": ["s-train-0"], "valid": ["s-valid-0"], "test": []}))
    assert revoice.render(out, corpus, jobs=1) == 2
    v, rate = sf.read(out / "voices" / "train" / "s-train-0" / "vocals.flac", always_2d=True)
    assert rate == RATE and v.shape == (vocals.shape[1] // 2, 2)
    stems = out / "valid-stems" / "s-valid-0"
    mix, _ = sf.read(stems / "mixture.flac")
    parts = sum(sf.read(stems / f"{s}.flac")[0] for s in ("vocals", "accompaniment"))
    np.testing.assert_allclose(mix, parts, atol=2 / 32768)
    assert revoice.render(out, corpus, jobs=1) == 0  # resumes: nothing left to do


def test_main_names_a_folder_that_is_not_a_corpus(tmp_path, capsys):
    assert revoice.main([str(tmp_path / "out"), "--corpus", str(tmp_path)]) == 1
    assert "not a rendered corpus" in capsys.readouterr().err


def test_note_starts_find_note_changes_not_vibrato():
    frames = 400  # 2 s of 5 ms frames: 220 Hz, then 2 semitones up at 0.7 s, 1 down at 1.4 s
    semis = np.where(np.arange(frames) < 140, 0.0, np.where(np.arange(frames) < 280, 2.0, 1.0))
    vibrato = 0.5 * np.sin(2 * np.pi * 6.0 * np.arange(frames) * 0.005)  # +-50 cents at 6 Hz
    f0 = 220.0 * 2 ** ((semis + vibrato) / 12)
    f0[390:] = 0.0
    starts = revoice.note_starts(f0)
    assert len(starts) == 2 and abs(starts[0] - 140) <= 3 and abs(starts[1] - 280) <= 3, starts
    assert revoice.note_starts(220.0 * 2 ** (vibrato / 12)) == []
    notes = revoice.split_notes(f0)
    assert [n[2] for n in notes] == [False, True, True]
    assert notes[0][0] == 0 and notes[-1][1] == 390 and all(notes[k][1] == notes[k + 1][0] for k in range(2))


def test_legato_notes_get_their_own_syllables_and_levels(bank):
    """Two notes with no gap (200 Hz, then 300 Hz 12 dB down): each is sung at its own level, and
    the second starts with the consonant of its speech run (unvoiced frames near the change)."""
    out, _ = bank
    b = revoice.load_bank(out / "bank" / "v.npz")
    rate = 44100
    x = np.concatenate([harmonic(np.full(int(0.5 * rate), 200.0), rate, amp=0.2),
                        harmonic(np.full(int(0.5 * rate), 300.0), rate, amp=0.05), np.zeros(int(0.2 * rate))])
    mono22 = revoice._to_rate(x, rate)
    pw = load_pyworld()
    for seed in range(3):
        y = revoice.revoice(np.stack([x, x]), rate, b, np.random.default_rng(seed))[0].astype(np.float64)
        for a, b_ in ((0.1, 0.4), (0.6, 0.9)):
            s = slice(int(a * RATE), int(b_ * RATE))
            assert abs(10 * np.log10(np.mean(y[s] ** 2) / np.mean(mono22[s] ** 2))) < 1.0
        f0, _ = pw.dio(np.ascontiguousarray(y), RATE, f0_floor=70.0, f0_ceil=800.0, frame_period=5.0)
        assert (f0[90:101] == 0).any()  # a consonant in the 55 ms before the change at frame 100


def test_reverb_adds_a_room_tail_to_the_same_dry_voice(bank):
    out, _ = bank
    b = revoice.load_bank(out / "bank" / "m.npz")
    vocals, _ = rendered_vocals()
    dry = revoice.revoice(vocals, 44100, b, np.random.default_rng(3))
    wet = revoice.revoice(vocals, 44100, b, np.random.default_rng(3), reverb=(0.3, 0.3))
    tail = (wet - dry).astype(np.float64)
    assert np.abs(tail).max() > 1e-3
    # the room rings on into the silence after the first note, where the dry voice is silent,
    # and decays there
    gap = slice(int(0.73 * RATE), int(0.87 * RATE))
    assert np.abs(dry[:, gap]).max() < 1e-4
    early, late = (np.mean(tail[:, int(t * RATE): int((t + 0.05) * RATE)] ** 2) for t in (0.62, 0.9))
    assert early > 4 * late > 0
    # the room is stereo: the channels' tails differ beyond the rendered 2:1 balance
    assert not np.allclose(tail[1], 0.5 * tail[0], atol=1e-4)
    assert np.array_equal(revoice.revoice(vocals, 44100, b, np.random.default_rng(3), reverb=(0.0, 0.0)), dry)


def test_room_share_zero_keeps_the_dry_voice(bank):
    out, _ = bank
    b = revoice.load_bank(out / "bank" / "m.npz")
    vocals, _ = rendered_vocals()
    dry = revoice.revoice(vocals, 44100, b, np.random.default_rng(3))
    none = revoice.Production(reverb=(0.3, 0.3), room_share=0.0)
    assert np.array_equal(revoice.revoice(vocals, 44100, b, np.random.default_rng(3), production=none), dry)
    # the default production is the room on every song, as reverb= gives it
    wet = revoice.revoice(vocals, 44100, b, np.random.default_rng(3), reverb=(0.3, 0.3))
    every = revoice.Production(reverb=(0.3, 0.3))
    np.testing.assert_allclose(revoice.revoice(vocals, 44100, b, np.random.default_rng(3), production=every),
                               wet, atol=1e-6)


def band_energy(x, lo, hi):
    spec = np.abs(np.fft.rfft(np.asarray(x, dtype=np.float64))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / RATE)
    return spec[(f >= lo) & (f < hi)].sum()


def test_highpass_cuts_the_low_end_only(bank):
    """A 2nd-order high-pass at 200 Hz on a 110 Hz voice: the fundamental falls by about
    10*log10(1 + (200/110)^4) = 10.9 dB (Butterworth magnitude), the band above 2 kHz keeps its
    energy within 0.2 dB."""
    out, _ = bank
    b = revoice.load_bank(out / "bank" / "m.npz")
    rate = 44100
    x = np.concatenate([harmonic(np.full(int(1.0 * rate), 110.0), rate), np.zeros(int(0.2 * rate))])
    vocals = np.stack([x, x])
    plain = revoice.revoice(vocals, rate, b, np.random.default_rng(5))[0]
    cut = revoice.revoice(vocals, rate, b, np.random.default_rng(5),
                          production=revoice.Production(reverb=(0, 0), highpass=(200.0, 200.0)))[0]
    low = 10 * np.log10(band_energy(plain, 90, 130) / band_energy(cut, 90, 130))
    want = 10 * np.log10(1 + (200 / 110) ** 4)
    assert abs(low - want) < 1.5
    high = 10 * np.log10(band_energy(plain, 2000, 10000) / band_energy(cut, 2000, 10000))
    assert abs(high) < 0.2


def test_double_tracking_widens_the_voice_at_the_lead_level(bank):
    """Two late, detuned takes of the same words, one per channel: the channels stop being one
    signal (correlation well below 1), each channel keeps the lead's level, and the lead's draws
    are untouched (a later room gets the same room as without the takes)."""
    out, _ = bank
    b = revoice.load_bank(out / "bank" / "m.npz")
    vocals, _ = rendered_vocals()
    vocals = np.stack([vocals[0], vocals[0]])
    lead = revoice.revoice(vocals, 44100, b, np.random.default_rng(4)).astype(np.float64)
    assert np.corrcoef(lead[0], lead[1])[0, 1] > 0.9999
    prod = revoice.Production(reverb=(0, 0), double_share=1.0, double_db=(-3.0, -3.0))
    wide = revoice.revoice(vocals, 44100, b, np.random.default_rng(4), production=prod,
                           prod_rng=np.random.default_rng(1)).astype(np.float64)
    assert np.corrcoef(wide[0], wide[1])[0, 1] < 0.95
    np.testing.assert_allclose(np.sqrt(np.mean(wide ** 2, axis=1)), np.sqrt(np.mean(lead ** 2, axis=1)), rtol=1e-3)
    # the takes follow the same line: nothing in the gap between its notes
    # (the first note's tail consonant ends by 0.6 + 0.12 s, 30 ms later in a take; the second
    # note's leading consonant starts 0.12 s before 1.0 s)
    gap = slice(int(0.76 * RATE), int(0.87 * RATE))
    assert np.abs(lead[:, gap]).max() < 1e-4 and np.abs(wide[:, gap]).max() < 1e-4
    # with a share of 0 the production draws change nothing
    none = revoice.Production(reverb=(0, 0), double_share=0.0)
    assert np.array_equal(revoice.revoice(vocals, 44100, b, np.random.default_rng(4), production=none,
                                          prod_rng=np.random.default_rng(1)), lead.astype(np.float32))


def test_cli_rejects_bad_production_ranges(tmp_path, capsys):
    (tmp_path / "c").mkdir()
    for bad in (["--room-share", "1.5"], ["--double-share", "-0.1"], ["--highpass", "200", "100"]):
        with pytest.raises(SystemExit) as exc:
            revoice.main([str(tmp_path / "o"), "--corpus", str(tmp_path / "c"), *bad])
        assert exc.value.code == 2
        assert bad[0] in capsys.readouterr().err
