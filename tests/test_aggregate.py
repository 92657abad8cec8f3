"""Tests of museval-format result files and SiSEC aggregation (wavesep.metrics.aggregate).

museval itself is the reference: its TrackStore writes files we must read, its EvalStore /
MethodStore read the files we write, and their aggregates must equal ours.
"""

import json
import math
import os
import warnings

import numpy as np
import pytest

from wavesep.errors import DataError
from wavesep.metrics import aggregate as agg

museval = pytest.importorskip("museval")
jsonschema = pytest.importorskip("jsonschema")


def _random_track(rng, targets, frames, nan_frames=()):
    scores = {}
    for target in targets:
        values = {m: rng.normal(5.0, 3.0, frames) for m in agg.METRICS}
        for k in nan_frames:
            for m in agg.METRICS:
                values[m][k] = np.nan
        scores[target] = values
    return scores


@pytest.fixture
def result_folder(tmp_path):
    """A method folder of 4 tracks with NaN frames, one track all-NaN for drums."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "my-method"
    tracks = {}
    for i, name in enumerate(["A - one", "B - two", "C - three", "D - four"]):
        scores = _random_track(rng, ["vocals", "drums", "accompaniment"], 7 + i, nan_frames=[1, 4][: i % 3])
        if i == 2:
            scores["drums"] = {m: np.full(9, np.nan) for m in agg.METRICS}
        extras = {t: {"spot_rate": float(i + 1), "kurtosis_ratio": 1.0 + 0.1 * i} for t in scores}
        frame_extras = {t: {"spot_rate": np.arange(len(scores[t]["SDR"]), dtype=float)} for t in scores}
        doc = agg.track_document(scores, 1.0, 1.0, extras, frame_extras, info={"backend": "test"})
        agg.write_json(folder / "test" / f"{name}.json", doc)
        tracks[name] = scores
    return folder, tracks


def _museval_scores(store):
    """{(target, metric): value} from a museval EvalStore / MethodStore aggregate."""
    series = store.agg_frames_tracks_scores()
    return {key[-2:]: float(v) for key, v in series.items()}


def _q(values):
    return np.array([agg.quantize(v) for v in values])


def test_aggregate_equals_hand_computation(result_folder):
    folder, tracks = result_folder
    results = agg.load_results(folder)
    assert list(results) == sorted(tracks)
    for tracks_agg, fn in (("median", np.median), ("mean", np.mean)):
        ours = agg.aggregate(results, "median", tracks_agg)
        for target in ("vocals", "drums", "accompaniment"):
            for metric in agg.METRICS:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # nanmedian of an all-NaN track
                    per_track = [np.nanmedian(_q(s[target][metric])) for s in tracks.values()]
                per_track = [v for v in per_track if not math.isnan(v)]  # all-NaN tracks left out
                assert ours[target][metric] == pytest.approx(fn(per_track), abs=1e-12)


def test_our_files_load_in_museval_with_the_same_aggregate(result_folder):
    folder, _ = result_folder
    results = agg.load_results(folder)
    for tracks_agg in ("median", "mean"):
        store = museval.EvalStore(frames_agg="median", tracks_agg=tracks_agg)
        store.add_eval_dir(str(folder))
        theirs = _museval_scores(store)
        ours = agg.aggregate(results, "median", tracks_agg)
        assert set(theirs) == {(t, m) for t in ours for m in agg.METRICS}
        for (target, metric), value in theirs.items():
            assert ours[target][metric] == pytest.approx(value, abs=1e-12)
    methods = museval.MethodStore()
    methods.add_eval_dir(str(folder))
    assert set(methods.df["method"]) == {"my-method"}
    for (target, metric), value in _museval_scores(methods).items():
        assert agg.aggregate(results)[target][metric] == pytest.approx(value, abs=1e-12)


def test_our_files_follow_the_museval_schema(result_folder):
    folder, _ = result_folder
    schema_path = os.path.join(os.path.dirname(museval.__file__), "musdb.schema.json")
    with open(schema_path) as f:
        schema = json.load(f)
    paths = sorted((folder / "test").glob("*.json"))
    assert paths, "the fixture wrote no result file"
    for path in paths:
        with open(path) as f:
            jsonschema.validate(json.load(f), schema)


def test_reads_files_written_by_museval(tmp_path):
    rng = np.random.default_rng(1)
    values = {m: rng.normal(0.0, 10.0, 6) for m in ("SDR", "SIR", "SAR", "ISR")}
    values["SDR"][2] = np.inf  # museval stores +-inf as NaN
    values["SIR"][3] = np.nan
    store = museval.TrackStore(track_name="X - y", win=1, hop=1)
    store.add_target("vocals", {m: v.tolist() for m, v in values.items()})
    store.add_target("accompaniment", {m: (v + 1).tolist() for m, v in values.items()})
    path = tmp_path / "test" / "X - y.json"
    path.parent.mkdir()
    store.save(str(path))

    result = agg.read_track_json(path)
    assert result.name == "X - y"
    assert result.targets == ("vocals", "accompaniment")
    assert result.extras == {} and result.info == {}
    for m, v in values.items():
        np.testing.assert_array_equal(result.scores["vocals"][m], _q(v))
    assert math.isnan(result.scores["vocals"]["SDR"][2])
    assert math.isnan(result.scores["vocals"]["SIR"][3])


def test_quantize_matches_museval():
    store = museval.TrackStore(track_name="t")
    rng = np.random.default_rng(2)
    values = list(rng.normal(0, 20, 500)) + [1 / 64, -1 / 64, 0.0, 123.456785, 1e-7, -3.000005]
    for v in values:
        assert agg.quantize(v) == float(store._q(v))
    for v in (np.inf, -np.inf, np.nan):
        assert math.isnan(agg.quantize(v)) and math.isnan(float(store._q(v)))


def test_nan_frames_are_counted(result_folder):
    folder, tracks = result_folder
    counts = agg.nan_frames(agg.load_results(folder))
    # tracks A..D have 7..10 frames; NaN frames: A none, B frame 1, C frames 1 and 4, D none,
    # and C's drums all 9 NaN
    assert counts["vocals"] == (3, 34, 0)
    assert counts["drums"] == (1 + 9, 34, 1)
    per_track = agg.track_values(agg.load_results(folder))["drums"]
    assert math.isnan(per_track["C - three"])


def test_extras_round_trip(result_folder):
    folder, _ = result_folder
    results = agg.load_results(folder)
    assert agg.extra_track_values(results, "spot_rate")["vocals"] == {
        "A - one": 1.0, "B - two": 2.0, "C - three": 3.0, "D - four": 4.0
    }
    assert agg.aggregate_extras(results)["vocals"]["spot_rate"] == 2.5
    np.testing.assert_array_equal(results["B - two"].frame_extras["drums"]["spot_rate"], np.arange(8.0))
    assert results["A - one"].info == {"backend": "test"}


def test_load_results_errors(tmp_path, result_folder):
    folder, _ = result_folder
    with pytest.raises(DataError, match="does not exist"):
        agg.load_results(tmp_path / "nowhere")
    with pytest.raises(DataError, match="'Z - missing'"):
        agg.load_results(folder, tracks=["A - one", "Z - missing"])
    assert list(agg.load_results(folder, tracks=["B - two"])) == ["B - two"]
    bad = tmp_path / "bad" / "test" / "T.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"foo": 1}')
    with pytest.raises(DataError, match="T.json"):
        agg.load_results(tmp_path / "bad")
    bad.write_text("{not json")
    with pytest.raises(DataError, match="T.json"):
        agg.load_results(tmp_path / "bad")


def test_track_document_refuses_ragged_frames():
    scores = {"vocals": {m: np.zeros(3) for m in agg.METRICS}}
    scores["vocals"]["SAR"] = np.zeros(4)
    with pytest.raises(DataError, match="vocals"):
        agg.track_document(scores)


def test_sisec18_rows_are_the_published_numbers():
    rows = {r.name: r for r in agg.sisec18_rows()}
    # SiSEC 2018 (Stoter, Liutkus, Ito 2018) medians on MUSDB18 test, as in REFERENCE.md section 3
    assert rows["IRM2 oracle"].sdr == {
        "vocals": 9.43, "drums": 8.45, "bass": 7.12, "other": 7.85, "accompaniment": 15.64
    }
    assert rows["Wave-U-Net STL1"].sdr == {"vocals": 4.97, "accompaniment": 11.11}
    assert rows["mixture as estimate"].sdr["accompaniment"] == 6.32
    assert len(rows) == 6
    later = [r.name for r in agg.sisec18_rows(include_later=True)][6:]
    assert later == ["Demucs v2", "HT Demucs fine-tuned"]


def test_format_table_aligns_columns():
    text = agg.format_table(["method", "SDR"], [["a", "1.00"], ["longer name", "-12.50"]])
    lines = text.splitlines()
    assert len({len(line) for line in lines}) == 1
    assert lines[2].endswith("  1.00") and lines[3].startswith("longer name")


def _constant_tracks(values, frames=5, target="vocals"):
    """{track: TrackResult} whose every frame of every metric is the track's value."""
    return {name: agg.TrackResult(name, {target: {m: np.full(frames, v) for m in agg.METRICS}})
            for name, v in values.items()}


def test_paired_differences_closed_form():
    ref = _constant_tracks({"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0, "only-ref": 9.0, "nan": np.nan})
    new = _constant_tracks({"a": 1.5, "b": 1.0, "c": 3.5, "d": 5.0, "only-new": -9.0, "nan": 2.0})
    d = agg.paired_differences(ref, new)["vocals"]
    diffs = np.array([0.5, -1.0, 0.5, 1.0])  # tracks a..d; the others are not in both, or NaN
    assert d.tracks == 4 and d.wins == 3 and d.losses == 1
    assert d.mean == pytest.approx(0.25) and d.sem == pytest.approx(diffs.std(ddof=1) / 2)
    assert d.median_difference == pytest.approx(2.5 - 2.5)  # medians of (1, 1.5, 3.5, 5) and (1, 2, 3, 4)
    assert d.ci[0] <= d.median_difference <= d.ci[1]
    # a shift of every frame by the same amount: every resample sees exactly that shift
    shifted = _constant_tracks({"a": 1.7, "b": 2.7, "c": 3.7, "d": 4.7})
    s = agg.paired_differences(ref, shifted)["vocals"]
    assert (s.mean, s.wins, s.losses) == (pytest.approx(0.7), 4, 0)
    assert s.sem == pytest.approx(0.0, abs=1e-12) and s.ci == (pytest.approx(0.7), pytest.approx(0.7))


def test_report_adds_the_paired_table_only_for_two_methods_or_more():
    from wavesep.evaluation.report import format_report

    ref = _constant_tracks({"a": 1.0, "b": 2.0, "c": 3.0})
    new = _constant_tracks({"a": 1.5, "b": 2.5, "c": 2.0})
    one = format_report({"ref": ref}, published=False)
    two = format_report({"ref": ref, "new": new}, labels={"ref": "bundled"}, published=False)
    assert "Paired against" not in one
    assert "Paired against bundled" in two
    row = next(line for line in two.splitlines() if line.startswith("new ") and "±" in line)
    assert "+0.00 ± 0.50" in row and "2/1" in row  # diffs 0.5, 0.5, -1: mean 0, sem std(ddof 1)/sqrt(3) = 0.5
