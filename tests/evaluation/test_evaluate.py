"""Tests of the SiSEC-style evaluation driver (wavesep.evaluate).

A tiny MUSDB18-HQ-layout corpus is written here with soundfile: 16-bit, mono (BSS Eval's cost grows with
the cube of sources x channels x 512 taps), 8 kHz, 3 s, tonal stems with distinct spectra plus a
-60 dB noise floor (BSS Eval needs references that are not band-limited). museval is the
reference for the file format, the aggregation and the vocals/accompaniment convention.
"""

import contextlib
import io
import json
import math
import re
import warnings

import numpy as np
import pytest
import soundfile as sf

from wavesep import evaluation as ev
from wavesep.evaluation.methods import _model_plan
from wavesep.errors import DataError
from wavesep.metrics import aggregate as agg

museval = pytest.importorskip("museval")
musdb = pytest.importorskip("musdb")

SR = 8000
SECONDS = 3.0
TEST_TRACKS = ["A - one", "B - two"]
ORACLE_TARGETS = ["vocals", "accompaniment"]


def _tonal_stems(rng, seconds=SECONDS, sample_rate=SR, channels=1):
    """(T, C) stems with distinct spectra: a harmonic voice, noise bursts, a bass, a chord."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate

    def with_floor(x):
        x = np.repeat(x[:, None], channels, axis=1) * np.linspace(1.0, 0.7, channels)
        return x + 1e-3 * rng.standard_normal(x.shape)

    f0 = 300.0 * rng.uniform(0.9, 1.1) * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voice = (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t)) * sum(np.sin(k * phase) / k for k in range(1, 5))
    bursts = np.exp(-30.0 * (t % 0.25)) * rng.standard_normal(t.size)
    bass = np.sin(2 * np.pi * 110 * t) + 0.5 * np.sin(2 * np.pi * 220 * t)
    chord = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in (440.0, 554.37, 659.26))
    return {
        "vocals": with_floor(0.3 * voice),
        "drums": with_floor(0.3 * bursts),
        "bass": with_floor(0.3 * bass),
        "other": with_floor(0.15 * chord),
    }


def _write_track(folder, stems, sample_rate=SR):
    # 16-bit like MUSDB18-HQ: musdb decodes wav through ffmpeg as 16-bit whatever the file holds
    folder.mkdir(parents=True, exist_ok=True)
    for name, x in stems.items():
        sf.write(str(folder / f"{name}.wav"), x, sample_rate, subtype="PCM_16")
    sf.write(str(folder / "mixture.wav"), sum(stems.values()), sample_rate, subtype="PCM_16")


def _write_corpus(root, test_tracks=TEST_TRACKS, train_tracks=("C - three",), seed=0, stems_fn=_tonal_stems):
    """MUSDB18-HQ layout plus splits.json, as wavesep.synth writes it."""
    rng = np.random.default_rng(seed)
    for subset, names in (("test", test_tracks), ("train", train_tracks)):
        for name in names:
            _write_track(root / subset / name, stems_fn(rng))
    splits = {"train": list(train_tracks), "valid": [], "test": list(test_tracks)}
    (root / "splits.json").write_text(json.dumps(splits))
    return root


def _run(argv):
    """main(argv) -> (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = ev.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def _read_stems(track_dir):
    return {s: sf.read(str(track_dir / f"{s}.wav"), always_2d=True)[0] for s in ("vocals", "drums", "bass", "other")}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return _write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def oracle_run(corpus, tmp_path_factory):
    """Both oracle rows on the two test tracks. Two targets keep BSS Eval cheap (one two-source
    evaluation per track; the grouping of more targets is checked against museval in
    test_backends_agree_with_museval_eval_mus_track). Two worker processes
    (test_rerun_skips_complete_results checks that one process gives the same files)."""
    out = tmp_path_factory.mktemp("results")
    code, stdout, stderr = _run([
        "--oracle", "irm", "mix", "--synthetic", corpus, "--out", out, "--targets", *ORACLE_TARGETS, "--jobs", "2"
    ])
    assert code == 0, stderr
    return out, stdout


# ---------------------------------------------------------------------- the museval convention


def test_groups_follow_museval_eval_mus_track():
    assert ev.evaluation_groups(["accompaniment", "vocals"]) == [
        (("vocals", "accompaniment"), ("vocals", "accompaniment"))
    ]
    assert ev.evaluation_groups(["accompaniment", "other", "bass", "drums", "vocals"]) == [
        (("vocals", "drums", "bass", "other"), ("drums", "bass", "other")),
        (("vocals", "accompaniment"), ("vocals", "accompaniment")),
    ]
    assert ev.evaluation_groups(["bass", "drums", "other", "vocals"]) == [
        (("vocals", "drums", "bass", "other"), ("vocals", "drums", "bass", "other"))
    ]


@pytest.mark.parametrize(
    "targets, match",
    [(["vocals"], "at least two"), (["drums", "bass", "other", "accompaniment"], "linearly dependent")],
)
def test_groups_refuse_unscorable_sets(targets, match):
    with pytest.raises(DataError, match=match):
        ev.evaluation_groups(targets)


def test_backends_agree_with_museval_eval_mus_track(corpus, tmp_path):
    """Same estimates scored by museval.eval_mus_track, by us with museval, and by us fast."""
    track = musdb.DB(root=str(corpus), subsets="test", is_wav=True).tracks[0]
    rng = np.random.default_rng(5)
    targets = ["vocals", "drums", "accompaniment"]  # drums from (vocals, drums); vocals from the pair
    folder = tmp_path / "est" / "test" / track.name
    folder.mkdir(parents=True)
    estimates = {}
    audio = {t: track.targets[t].audio.reshape(track.targets[t].audio.shape[0], -1) for t in targets}  # (T, C)
    for i, target in enumerate(targets):
        ref = audio[target]
        other = audio[targets[(i + 1) % 3]]
        estimates[target] = ref + 0.2 * other + 0.02 * rng.standard_normal(ref.shape)
        sf.write(str(folder / f"{target}.wav"), estimates[target], SR, subtype="DOUBLE")
    museval.eval_mus_track(track, estimates, output_dir=str(tmp_path / "museval"))
    reference = json.loads((tmp_path / "museval" / "test" / f"{track.name}.json").read_text())

    for backend, tolerance in (("museval", 0.0), ("fast", 1e-4)):
        code, _, stderr = _run([
            "--estimates", tmp_path / "est", "--synthetic", corpus, "--tracks", track.name,
            "--out", tmp_path / backend, "--backend", backend, "--no-plot", "--no-musical-noise",
        ])
        assert code == 0, stderr
        ours = json.loads((tmp_path / backend / "est" / "test" / f"{track.name}.json").read_text())
        assert [t["name"] for t in ours["targets"]] == [t["name"] for t in reference["targets"]]
        assert [t["name"] for t in ours["targets"]] == ["drums", "vocals", "accompaniment"]
        for mine, theirs in zip(ours["targets"], reference["targets"]):
            assert len(mine["frames"]) == len(theirs["frames"]) == 3
            for f_mine, f_theirs in zip(mine["frames"], theirs["frames"]):
                for metric in agg.METRICS:
                    assert f_mine["metrics"][metric] == pytest.approx(
                        float(f_theirs["metrics"][metric]), abs=tolerance + 1e-12
                    )
        assert ("museval_version" in ours) == (backend == "museval")
        assert [t["wavesep"]["evaluated_with"] for t in ours["targets"]] == [
            ["vocals", "drums"], ["vocals", "accompaniment"], ["vocals", "accompaniment"]
        ]


# ---------------------------------------------------------------------- oracle rows and files


def test_irm_beats_the_mixture_by_a_wide_margin(oracle_run):
    out, _ = oracle_run
    irm = agg.aggregate(agg.load_results(out / "IRM2"))
    mix = agg.aggregate(agg.load_results(out / "MIX"))
    assert list(irm) == ORACLE_TARGETS
    for target in irm:
        assert irm[target]["SDR"] > mix[target]["SDR"] + 10.0, target


def test_result_folders_load_in_museval_with_the_same_numbers(oracle_run):
    out, _ = oracle_run
    store = museval.MethodStore()
    for method in ("IRM2", "MIX"):
        store.add_eval_dir(str(out / method))
    theirs = store.agg_frames_tracks_scores()
    assert len(theirs) == 2 * 2 * 4
    for (method, target, metric), value in theirs.items():
        ours = agg.aggregate(agg.load_results(out / method))[target][metric]
        assert ours == pytest.approx(float(value), abs=1e-12)


def test_summary_report_and_musical_noise(oracle_run):
    out, stdout = oracle_run
    assert "median over tracks (SiSEC 2018 convention)" in stdout
    assert "then mean over tracks" in stdout
    assert "IRM2 oracle (power ratio mask)" in stdout and "Open-Unmix UMX" in stdout
    assert "0/6 (0.0%)" in stdout  # NaN frames: none of the 2 x 3 frames
    summary = json.loads((out / "MIX" / "summary-test.json").read_text())
    results = agg.load_results(out / "MIX")
    assert summary["tracks"] == TEST_TRACKS
    assert summary["sisec2018"]["scores"] == agg.aggregate(results)
    assert summary["mean_over_tracks"]["scores"] == agg.aggregate(results, "median", "mean")
    for result in results.values():
        for target in result.targets:
            assert result.extras[target]["spot_rate"] >= 0.0
            assert math.isfinite(result.extras[target]["kurtosis_ratio"])
            assert result.frame_extras[target]["spot_rate"].shape == result.scores[target]["SDR"].shape
    assert results["A - one"].extras["vocals"]["evaluated_with"] == ["vocals", "accompaniment"]


def test_boxplot_is_written(oracle_run):
    out, _ = oracle_run
    data = (out / "sdr-boxplot-test.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_compare_only_reads_result_folders(oracle_run, tmp_path):
    out, _ = oracle_run
    plot = tmp_path / "cmp.png"
    code, stdout, stderr = _run(["--compare", out / "IRM2", out / "MIX", "--plot", plot])
    assert code == 0, stderr
    assert "IRM2 " in stdout and "MIX " in stdout
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_rerun_skips_complete_results(oracle_run, corpus):
    out, _ = oracle_run
    files = sorted((out / "MIX" / "test").glob("*.json"))
    stamps = [f.stat().st_mtime_ns for f in files]
    # drop a target from one file: that track alone is evaluated again, in this process
    from_workers = json.loads(files[1].read_text())
    broken = json.loads(files[1].read_text())
    broken["targets"] = broken["targets"][:-1]
    files[1].write_text(json.dumps(broken))
    code, stdout, stderr = _run([
        "--oracle", "mix", "--synthetic", corpus, "--out", out, "--no-plot", "--targets", *ORACLE_TARGETS
    ])
    assert code == 0, stderr
    assert stdout.count("skipped") == 1 and "lacks accompaniment" in stdout
    assert files[0].stat().st_mtime_ns == stamps[0]
    assert json.loads(files[1].read_text()) == from_workers  # --jobs 2 and --jobs 1 agree


def test_corpus_of_wavesep_synth_is_evaluated(tmp_path):
    synth = pytest.importorskip("wavesep.corpus.command")
    built = synth.build_corpus(tmp_path / "c", tracks=0, seconds=3.0, seed=1, valid_tracks=0, test_tracks=1,
                               sample_rate=SR)
    code, stdout, stderr = _run([
        "--oracle", "mix", "--synthetic", tmp_path / "c", "--out", tmp_path / "out", "--no-plot",
        "--no-musical-noise", "--targets", "vocals", "accompaniment",
    ])
    assert code == 0, stderr
    (name,) = built["splits"]["test"]
    result = agg.load_results(tmp_path / "out" / "MIX")[name]
    summary = json.loads((tmp_path / "out" / "MIX" / "summary-test.json").read_text())
    nan = int(np.isnan(result.scores["vocals"]["SDR"]).sum())
    assert summary["nan_frames"]["vocals"] == {"nan": nan, "total": 3, "tracks_all_nan": 0}
    assert f"{nan}/3 (" in stdout


# ---------------------------------------------------------------------- closed-form mixture row


@pytest.mark.parametrize("vocal_gain", [1.0, 0.5])
def test_mixture_row_of_two_independent_sources(vocal_gain):
    # estimate = v + a for both targets. BSS Eval projects it onto the references: the target
    # part is v (a is uncorrelated with v, so the filter onto v finds v alone), the interference
    # is a, the artifacts vanish; so SDR_v = 10 log10(|v|^2 / |a|^2) = 20 log10(gain) and
    # SDR_a = -SDR_v, frame by frame up to the noise's energy fluctuation (~0.05 dB per 1 s frame)
    rng = np.random.default_rng(3)
    vocals = vocal_gain * rng.standard_normal((3 * SR, 1))
    accompaniment = rng.standard_normal((3 * SR, 1))
    mixture = vocals + accompaniment
    document = ev.score_track(
        {"vocals": vocals, "accompaniment": accompaniment},
        {"vocals": mixture, "accompaniment": mixture},
        SR,
        musical_noise=False,
    )
    sdr = {t["name"]: np.array([f["metrics"]["SDR"] for f in t["frames"]]) for t in document["targets"]}
    expected = 20 * np.log10(vocal_gain)
    np.testing.assert_allclose(sdr["vocals"], expected, atol=0.15)
    np.testing.assert_allclose(sdr["accompaniment"], -expected, atol=0.15)


# ---------------------------------------------------------------------- errors and NaN frames


def _estimates_for(corpus, root, track="A - one", edit=None):
    """Perfect-ish estimates of vocals and accompaniment, written under root/test/<track>/."""
    stems = _read_stems(corpus / "test" / track)
    folder = root / "test" / track
    folder.mkdir(parents=True, exist_ok=True)
    estimates = {
        "vocals": stems["vocals"] + 0.1 * stems["other"],
        "accompaniment": stems["drums"] + stems["bass"] + 0.9 * stems["other"],
    }
    rate = SR
    if edit is not None:
        estimates, rate = edit(estimates)
    for name, x in estimates.items():
        sf.write(str(folder / f"{name}.wav"), x, rate, subtype="FLOAT")
    return folder


def _evaluate_estimates(corpus, est, out, *extra):
    return _run([
        "--estimates", est, "--synthetic", corpus, "--tracks", "A - one", "--out", out, "--no-plot", *extra,
    ])


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda e: ({**e, "vocals": e["vocals"][:-100]}, SR), r"vocals\.wav has 23900 samples but .* 24000"),
        (lambda e: (e, 16000), r"vocals\.wav is at 16000 Hz but .* 8000 Hz"),
        (lambda e: ({**e, "vocals": np.repeat(e["vocals"], 2, axis=1)}, SR), r"vocals\.wav has 2 channel"),
        (lambda e: ({"vocals": e["vocals"]}, SR), r"missing estimate .*accompaniment\.wav"),
    ],
    ids=["length", "sample-rate", "channels", "missing-file"],
)
def test_bad_estimates_are_refused_naming_the_file(corpus, tmp_path, edit, message):
    est = tmp_path / "est"
    _estimates_for(corpus, est, edit=edit)
    # both targets asked for, so the missing file is noticed on the track itself
    code, _, stderr = _evaluate_estimates(corpus, est, tmp_path / "out", "--targets", "vocals", "accompaniment")
    assert code == 2
    assert stderr.startswith("wavesep-evaluate: error: ") and "Traceback" not in stderr
    assert str(est / "test" / "A - one") in stderr
    assert re.search(message, stderr), stderr


def test_fix_length_pads_like_museval(corpus, tmp_path):
    est = tmp_path / "est"
    _estimates_for(corpus, est, edit=lambda e: ({**e, "vocals": e["vocals"][:-100]}, SR))
    code, stdout, stderr = _evaluate_estimates(corpus, est, tmp_path / "out", "--fix-length", "--no-musical-noise")
    assert code == 0, stderr
    assert "-100 samples, zero-padded" in stdout


def test_silent_reference_track_is_refused_naming_the_file(tmp_path):
    def no_vocals(rng):
        stems = _tonal_stems(rng)
        stems["vocals"] = np.zeros_like(stems["vocals"])
        return stems

    root = _write_corpus(tmp_path / "c", test_tracks=["S - silent"], train_tracks=(), stems_fn=no_vocals)
    code, _, stderr = _run(["--oracle", "mix", "--synthetic", root, "--out", tmp_path / "out", "--no-plot"])
    assert code == 2
    assert "the vocals reference of track 'S - silent'" in stderr
    assert str(root / "test" / "S - silent" / "vocals.wav") in stderr
    assert "--exclude" in stderr


def test_nan_frames_are_counted_not_hidden(corpus, tmp_path):
    est = tmp_path / "est"

    def silent_second(e):
        vocals = e["vocals"].copy()
        vocals[SR : 2 * SR] = 0.0  # frame 1: a silent estimate makes the frame NaN (museval)
        return {**e, "vocals": vocals}, SR

    _estimates_for(corpus, est, edit=silent_second)
    code, stdout, stderr = _evaluate_estimates(corpus, est, tmp_path / "out", "--no-musical-noise")
    assert code == 0, stderr
    summary = json.loads((tmp_path / "out" / "est" / "summary-test.json").read_text())
    assert summary["nan_frames"]["vocals"] == {"nan": 1, "total": 3, "tracks_all_nan": 0}
    assert summary["nan_frames"]["accompaniment"] == {"nan": 1, "total": 3, "tracks_all_nan": 0}
    assert "1/3 (33.3%)" in stdout
    result = agg.load_results(tmp_path / "out" / "est")["A - one"]
    sdr = result.scores["vocals"]["SDR"]
    assert math.isnan(sdr[1]) and summary["sisec2018"]["scores"]["vocals"]["SDR"] == pytest.approx(
        np.median(sdr[[0, 2]])
    )


def test_silent_estimate_gives_nan_frames_and_a_warning(corpus, tmp_path):
    est = tmp_path / "est"
    _estimates_for(corpus, est, edit=lambda e: ({**e, "vocals": np.zeros_like(e["vocals"])}, SR))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, stdout, stderr = _evaluate_estimates(corpus, est, tmp_path / "out", "--no-musical-noise")
    assert code == 0, stderr
    assert any("silent over the whole track" in str(w.message) and "vocals.wav" in str(w.message) for w in caught)
    assert "3/3 (100.0%), 1 track(s) all NaN" in stdout


def test_track_and_split_selection_errors(corpus, tmp_path):
    code, _, stderr = _run(["--oracle", "mix", "--synthetic", corpus, "--tracks", "Nope", "--out", tmp_path])
    assert code == 2 and "'Nope'" in stderr and "A - one" in stderr
    code, _, stderr = _run(["--oracle", "mix", "--synthetic", corpus, "--subset", "test", "--split", "valid",
                            "--out", tmp_path])
    assert code == 2 and "'train' subset" in stderr
    tracks, folder = ev.select_tracks("synthetic", corpus, subset="train")
    assert folder == "train" and [t.name for t in tracks] == ["C - three"]  # empty valid split is fine
    code, _, stderr = _run(["--oracle", "mix", "--out", tmp_path])
    assert code == 2 and "needs a dataset" in stderr


# ---------------------------------------------------------------------- a model


def test_model_checkpoint_is_evaluated(corpus, tmp_path):
    from wavesep import WaveUNet, checkpoint, presets

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    path = checkpoint.save(tmp_path / "tiny.pt", WaveUNet(presets.get("tiny")))
    code, stdout, stderr = _run([
        "--model", path, "--synthetic", corpus, "--tracks", "A - one", "--out", tmp_path / "out", "--no-plot",
    ])
    assert code == 0, stderr
    result = agg.load_results(tmp_path / "out" / "tiny")["A - one"]
    assert result.targets == ("vocals", "accompaniment")  # the model's sources, museval's order
    assert result.info["method_kind"] == "model"
    assert all(np.isfinite(result.scores[t]["SDR"]).all() for t in result.targets)


def test_pretrained_tiny_untrained_is_evaluated(corpus, tmp_path):
    pytest.importorskip("wavesep.pretrained")
    code, _, stderr = _run([
        "--model", "tiny-untrained", "--synthetic", corpus, "--tracks", "B - two", "--out", tmp_path,
        "--no-plot", "--no-musical-noise",
    ])
    assert code == 0, stderr
    result = agg.load_results(tmp_path / "tiny-untrained")["B - two"]
    assert set(result.targets) == {"vocals", "accompaniment"}


def test_unknown_model_is_a_clear_error(corpus, tmp_path):
    code, _, stderr = _run(["--model", tmp_path / "nope.pt", "--synthetic", corpus, "--out", tmp_path])
    assert code == 2 and "nope.pt" in stderr and "Traceback" not in stderr


def test_model_targets_must_be_formable():
    class Stub:
        sources = ("accompaniment", "vocals")

    method = ev.Method.model("stub")
    with pytest.raises(DataError, match="'drums'"):
        ev.resolve_targets(method, [], "test", ["vocals", "drums"], model=Stub())

    class Multi:
        sources = ("bass", "drums", "other", "vocals")

    assert ev.resolve_targets(method, [], "test", ["accompaniment", "vocals"], model=Multi()) == (
        "vocals", "accompaniment"
    )
    assert _model_plan(Multi.sources, ("accompaniment",), "m") == {"accompaniment": (0, 1, 2)}


def test_oracle_targets_default_to_the_sisec_columns_or_follow_the_method():
    irm = ev.Method.oracle("irm")
    assert ev.resolve_targets(irm, [], "test") == ("vocals", "drums", "bass", "other", "accompaniment")
    assert ev.resolve_targets(irm, [], "test", fallback=("accompaniment", "vocals")) == ("vocals", "accompaniment")


def test_rerun_with_other_settings_recomputes_instead_of_reusing(corpus, tmp_path):
    from wavesep import WaveUNet, checkpoint, presets

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model_file = tmp_path / "runs" / "m" / "best.pt"
    checkpoint.save(model_file, WaveUNet(presets.get("tiny")))
    out = tmp_path / "out"
    base = ["--model", model_file, "--synthetic", corpus, "--tracks", "A - one", "--out", out, "--no-plot",
            "--no-musical-noise"]
    result = out / "m" / "test" / "A - one.json"

    def sdr():
        return agg.read_track_json(result).scores["vocals"]["SDR"]

    code, stdout, stderr = _run(base + ["--postfilter", "ratio-mask"])
    assert code == 0, stderr
    first = sdr()
    info = agg.read_track_json(result).info
    assert info["postfilter"] == "ratio-mask" and info["segment_seconds"] == 10.0
    assert re.fullmatch(r"[0-9a-f]{64}", info["model_sha256"]) and info["backend"] == "fast"
    # the same settings: skipped
    code, stdout, stderr = _run(base + ["--postfilter", "ratio-mask"])
    assert code == 0 and "skipped" in stdout
    # another post-filter: recomputed, and the run says why
    code, stdout, stderr = _run(base + ["--postfilter", "none"])
    assert code == 0 and "skipped" not in stdout
    assert "postfilter" in stdout and agg.read_track_json(result).info["postfilter"] == "none"
    assert not np.array_equal(sdr(), first)
    # a retrained checkpoint at the same path: recomputed
    torch.manual_seed(1)
    checkpoint.save(model_file, WaveUNet(presets.get("tiny")))
    code, stdout, stderr = _run(base + ["--postfilter", "none"])
    assert code == 0 and "skipped" not in stdout and "model_sha256" in stdout
    # a result without the record (an older wavesep's) is recomputed too
    document = json.loads(result.read_text())
    del document["wavesep"]["model_sha256"]
    result.write_text(json.dumps(document))
    code, stdout, stderr = _run(base + ["--postfilter", "none"])
    assert code == 0 and "skipped" not in stdout
    code, stdout, stderr = _run(base + ["--postfilter", "none", "--segment-seconds", "5"])
    assert code == 0 and "skipped" not in stdout and "segment_seconds" in stdout
    code, stdout, stderr = _run(base + ["--postfilter", "none", "--segment-seconds", "5", "--backend", "museval"])
    assert code == 0 and "skipped" not in stdout and "backend" in stdout


def test_all_nan_frames_give_strict_json_and_no_plot_failure(corpus, tmp_path):
    est = tmp_path / "est"
    _estimates_for(corpus, est, edit=lambda e: ({**e, "vocals": np.zeros_like(e["vocals"])}, SR))
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the silent estimate's warning
        code, stdout, stderr = _run([
            "--estimates", est, "--synthetic", corpus, "--tracks", "A - one", "--out", out, "--no-musical-noise",
        ])
    assert code == 0, stderr
    assert "boxplot" in stdout and "no finite" in stdout

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    summary = json.loads((out / "est" / "summary-test.json").read_text(), parse_constant=refuse)
    assert summary["sisec2018"]["scores"]["vocals"]["SDR"] is None  # undefined: null, not NaN
    assert summary["nan_frames"]["vocals"]["tracks_all_nan"] == 1
    # museval's own per-track format keeps its NaN literals
    assert "NaN" in (out / "est" / "test" / "A - one.json").read_text()


def test_stale_temporaries_in_result_folders_are_removed_and_segment_must_be_finite(corpus, tmp_path):
    import os

    folder = tmp_path / "out" / "MIX" / "test"
    folder.mkdir(parents=True)
    stale = folder / ".A - one.json.0123456789ab.tmp"  # what kill -9 during a result write leaves
    stale.write_text("{")
    os.utime(stale, (1e9, 1e9))
    code, stdout, stderr = _run(["--oracle", "mix", "--synthetic", corpus, "--tracks", "A - one", "--out",
                                 tmp_path / "out", "--no-plot", "--no-musical-noise", "--targets", *ORACLE_TARGETS])
    assert code == 0, stderr
    assert not stale.exists() and (folder / "A - one.json").exists()
    code, _, stderr = _run(["--model", "tiny-untrained", "--synthetic", corpus, "--out", tmp_path / "o2",
                            "--segment-seconds", "inf", "--no-plot"])
    assert code == 2 and "--segment-seconds" in stderr


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_an_interrupted_evaluation_exits_128_plus_the_signal_and_leaves_no_temporary(corpus, tmp_path, signum):
    import os
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "out"
    script = f"""
import os, signal, sys
from wavesep import atomic
from wavesep.evaluation.cli import main
real = atomic._fsync
def interrupted(path):  # the signal arrives while the second track's result is being written
    if "B - two" in str(path):
        os.kill(os.getpid(), signal.{signum})
    return real(path)
atomic._fsync = interrupted
sys.exit(main(["--oracle", "mix", "--synthetic", {str(corpus)!r}, "--out", {str(out)!r}, "--no-plot",
               "--no-musical-noise", "--targets", "vocals", "accompaniment"]))
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 128 + getattr(signal_module(), signum), proc.stderr
    assert "interrupted" in proc.stderr and "Traceback" not in proc.stderr
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["MIX/test/A - one.json"]  # the finished track; nothing partial, nothing hidden


def signal_module():
    import signal

    return signal
# ---------------------------------------------------------------------- own stems folder (--stems)


def _write_stems_folder(root, seed=3):
    """Two-stem (vocals + accompaniment, flac, with mixture) and four-stem (no mixture) tracks,
    and one folder that holds no target stem."""
    rng = np.random.default_rng(seed)
    two = _tonal_stems(rng)
    folder = root / "Two stems"
    folder.mkdir(parents=True)
    accompaniment = two["drums"] + two["bass"] + two["other"]
    sf.write(str(folder / "vocals.flac"), two["vocals"], SR, subtype="PCM_16")
    sf.write(str(folder / "accompaniment.flac"), accompaniment, SR, subtype="PCM_16")
    sf.write(str(folder / "mixture.flac"), two["vocals"] + accompaniment, SR, subtype="PCM_16")
    four = _tonal_stems(rng)
    (root / "Four stems").mkdir()
    for name, x in four.items():
        sf.write(str(root / "Four stems" / f"{name}.wav"), x, SR, subtype="PCM_16")
    (root / "solo").mkdir()
    sf.write(str(root / "solo" / "take_1.flac"), two["vocals"], SR, subtype="PCM_16")
    return root


def test_stems_folder_is_evaluated_like_museval(tmp_path):
    root = _write_stems_folder(tmp_path / "mine")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, stdout, stderr = _run(["--oracle", "mix", "irm", "--stems", root, "--out", tmp_path / "out",
                                     "--targets", "vocals", "accompaniment", "--no-plot"])
    assert code == 0, stderr
    assert any("solo" in str(w.message) and "take_1.flac" in str(w.message) for w in caught)
    results = agg.load_results(tmp_path / "out" / "MIX")
    assert sorted(results) == ["Four stems", "Two stems"]
    # the mixture row against museval on the files read back: references from the stem files
    # (accompaniment.flac, or bass + drums + other), the estimate the mixture (file or sum)
    for track in ("Two stems", "Four stems"):
        folder = root / track
        read = {p.stem: sf.read(str(p), always_2d=True)[0] for p in folder.iterdir()}
        vocals = read["vocals"]
        accompaniment = read["accompaniment"] if "accompaniment" in read else read["bass"] + read["drums"] + read["other"]
        mixture = read.get("mixture", vocals + accompaniment)
        sdr, isr, sir, sar = museval.evaluate(np.stack([vocals, accompaniment]), np.stack([mixture, mixture]),
                                              win=SR, hop=SR)
        for k, target in enumerate(("vocals", "accompaniment")):
            ours = np.asarray(results[track].scores[target]["SDR"], dtype=float)
            np.testing.assert_allclose(ours, sdr[k], atol=1e-4)
    irm = agg.aggregate(agg.load_results(tmp_path / "out" / "IRM2"))
    mix = agg.aggregate(results)
    assert irm["vocals"]["SDR"] > mix["vocals"]["SDR"] + 10.0


def test_stems_folder_with_a_model_and_clear_errors(tmp_path):
    root = _write_stems_folder(tmp_path / "mine")
    code, _, stderr = _run(["--model", "tiny-untrained", "--stems", root, "--out", tmp_path / "out",
                            "--no-plot", "--no-musical-noise"])
    assert code == 0, stderr
    assert sorted(agg.load_results(tmp_path / "out" / "tiny-untrained")) == ["Four stems", "Two stems"]
    code, _, stderr = _run(["--oracle", "mix", "--stems", tmp_path / "nowhere", "--out", tmp_path / "o2"])
    assert code == 2 and "nowhere" in stderr and "Traceback" not in stderr
    code, _, stderr = _run(["--oracle", "mix", "--stems", root, "--split", "test", "--out", tmp_path / "o3"])
    assert code == 2 and "--stems" in stderr
    # a track that cannot form a target is named, with the files it would need
    bad = tmp_path / "bad"
    (bad / "Half").mkdir(parents=True)
    x = _tonal_stems(np.random.default_rng(0))
    sf.write(str(bad / "Half" / "vocals.wav"), x["vocals"], SR, subtype="PCM_16")
    sf.write(str(bad / "Half" / "drums.wav"), x["drums"], SR, subtype="PCM_16")
    code, stdout, stderr = _run(["--oracle", "mix", "--stems", bad, "--targets", "vocals", "accompaniment",
                                 "--out", tmp_path / "o4", "--no-plot"])
    assert code != 0
    message = stdout + stderr
    assert "Half" in message and "bass" in message and "Traceback" not in message


def test_scores_at_44k_carry_the_top_band_recovery():
    rng = np.random.default_rng(5)
    n = 44100 * 2
    vocals = rng.standard_normal((n, 1)) * 0.1  # white: a quarter of its energy lies above 11.025 kHz
    accompaniment = rng.standard_normal((n, 1)) * 0.1
    lowpassed = np.fft.irfft(np.fft.rfft(vocals, axis=0) * (np.fft.rfftfreq(n, 1 / 44100) <= 11025)[:, None], n, axis=0)
    refs = {"vocals": vocals, "accompaniment": accompaniment}
    doc = ev.score_track(refs, {"vocals": lowpassed, "accompaniment": vocals + accompaniment - lowpassed},
                         44100, musical_noise=False)
    extras = {t["name"]: t.get("wavesep", {}) for t in doc["targets"]}
    assert extras["vocals"]["high_band_recovered"] == pytest.approx(0.0, abs=1e-6)
    assert extras["vocals"]["high_band_reference_share"] == pytest.approx(0.5, abs=0.02)  # 11-22 kHz of 0-22 kHz
    # the accompaniment estimate also holds the vocals' top band, as much energy as its own there
    assert extras["accompaniment"]["high_band_recovered"] == pytest.approx(0.0, abs=0.05)
    assert extras["accompaniment"]["high_band_energy_ratio"] == pytest.approx(2.0, abs=0.1)


def test_the_fullband_postfilter_at_44k_gives_the_vocals_a_share_of_the_top_band(tmp_path):
    # A 44.1 kHz track, a 22.05 kHz model: with --postfilter ratio-mask nothing above 11.025 kHz
    # reaches the vocals estimate (the difference model's residual, the accompaniment, holds it
    # all, and the mask follows); ratio-mask-fullband hands the vocals part of it. White-noise
    # vocals put half their energy there.
    rate, n = 44100, int(44100 * 1.5)
    rng = np.random.default_rng(7)
    folder = tmp_path / "mine" / "Noise"
    folder.mkdir(parents=True)
    sf.write(str(folder / "vocals.wav"), rng.standard_normal((n, 2)) * 0.1, rate, subtype="FLOAT")
    sf.write(str(folder / "accompaniment.wav"), rng.standard_normal((n, 2)) * 0.1, rate, subtype="FLOAT")
    recovered = {}
    for postfilter in ("ratio-mask", "ratio-mask-fullband"):
        out = tmp_path / postfilter
        code, stdout, stderr = _run(["--model", "tiny-untrained", "--stems", tmp_path / "mine", "--out", out,
                                     "--postfilter", postfilter, "--device", "cpu", "--no-plot", "--no-musical-noise"])
        assert code == 0, stderr
        result = agg.read_track_json(out / "tiny-untrained" / "test" / "Noise.json")
        assert result.info["postfilter"] == postfilter
        band = result.extras["vocals"]
        # 1 - |E_h - R_h|^2 / |R_h|^2; an empty top band of the estimate scores 0
        recovered[postfilter] = (band["high_band_recovered"], band["high_band_energy_ratio"])
    assert recovered["ratio-mask"][0] < 0.01 and recovered["ratio-mask"][1] < 0.01  # next to nothing
    # A mask m of equally loud noises recovers about 1 - (1 - m)^2 - m^2 (0.5 for m = 1/2).
    assert recovered["ratio-mask-fullband"][0] > 0.2 and recovered["ratio-mask-fullband"][1] > 0.1
