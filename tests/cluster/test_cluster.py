"""Separation (and evaluation) over Ray (wavesep.cluster, ``--ray``) on a local Ray instance with
two workers: outputs identical to the local command line's, the same per-track errors and
summary, skip-if-done reruns, and a worker killed mid-run that loses no finished track.

One Ray instance serves the whole module (starting one takes several seconds); the module's
tests run in one xdist worker (group "ray", setup.cfg runs pytest with --dist loadgroup).
"""

import os
import re
import signal

import numpy as np
import pytest
import soundfile as sf

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")

from wavesep.api import Separator  # noqa: E402
from wavesep.separate import collect_tracks, main as separate_main  # noqa: E402

RATE = 44100
pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.usefixtures("one_thread")]


def start_ray():
    os.environ["RAY_TQDM_PATCH_PRINT"] = "0"  # as wavesep.cluster.pool.connect: print stays print
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=150 * 2**20, logging_level="ERROR")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    start_ray()
    yield
    ray.shutdown()


def song(path, seconds, seed):
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(seed)
    f = 110 * (seed + 2)
    data = np.stack([0.3 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(t.size),
                     0.3 * np.sin(2 * np.pi * 1.5 * f * t) + 0.05 * rng.standard_normal(t.size)], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data.astype(np.float32), RATE, subtype="PCM_16")
    return path


def outputs(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def failures(err):
    """The summary's failure lines, without the decoder's memory addresses."""
    lines = err[err.index("input(s) failed"):].splitlines()[1:]
    return [re.sub(r"0x[0-9a-f]+", "0x", ln) for ln in lines]


def run(*args):
    return separate_main([*map(str, args), "-n", "tiny-untrained", "-d", "cpu"])


def test_same_outputs_errors_and_reruns_as_the_local_path(tmp_path, capsys):
    music = tmp_path / "music"
    for i, seconds in enumerate((2.0, 3.0, 2.5)):
        song(music / f"album/track {i}.wav", seconds, i)
    (music / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    capsys.readouterr()
    assert run(music, "-o", tmp_path / "local", "--two-stems", "vocals") == 1
    local_err = capsys.readouterr().err
    assert run(music, "-o", tmp_path / "ray", "--two-stems", "vocals", "--ray", "--ray-workers", "2") == 1
    captured = capsys.readouterr()
    assert "Ray: 2 worker(s)" in captured.err
    assert "separated 3 of 4 track(s)" in captured.out
    assert failures(captured.err) == failures(local_err) and "broken.wav" in failures(local_err)[0]
    local, remote = outputs(tmp_path / "local"), outputs(tmp_path / "ray")
    assert sorted(remote) == sorted(local) and len(local) == 6
    assert all(remote[k] == local[k] for k in local)  # byte for byte

    # A rerun with --skip-existing leaves the finished tracks alone and retries only the rest.
    model_dir = tmp_path / "ray" / "tiny-untrained"
    before = {p: p.stat().st_mtime_ns for p in model_dir.rglob("*.wav")}
    (model_dir / "album" / "track 1" / "no_vocals.wav").unlink()
    assert run(music, "-o", tmp_path / "ray", "--two-stems", "vocals", "--ray", "--skip-existing") == 1
    captured = capsys.readouterr()
    assert "skipping 2 track(s) already separated" in captured.out
    assert "separated 3 of 4 track(s) (2 of them already done)" in captured.out
    for path, mtime in before.items():
        assert (path.stat().st_mtime_ns == mtime) == ("track 1" not in str(path)), path
    assert outputs(tmp_path / "ray") == local


def test_a_killed_worker_loses_no_track(tmp_path):
    from wavesep.cluster.separate import separate_on_ray

    music = tmp_path / "music"
    lengths = (2.0, 12.0, 2.0, 2.0, 2.0, 2.0)  # the second goes to worker 0 and takes longest
    for i, seconds in enumerate(lengths):
        song(music / f"t{i}.wav", seconds, i)
    assert run(music, "-o", tmp_path / "local", "-q") == 0
    separator = Separator("tiny-untrained", device="cpu", clip="rescale")
    tracks, _ = collect_tracks([music], tmp_path / "ray")
    model_dir = tmp_path / "ray" / separator.name
    seen = {}

    def kill_worker_zero(index, message, pool):
        if not seen:
            seen["first"] = index
            seen["files"] = {p: p.stat().st_mtime_ns for p in (model_dir / tracks[index].name).iterdir()}
            os.kill(pool.pids_at_start[0], signal.SIGKILL)
            seen["pool"] = pool

    results = separate_on_ray(separator, tracks, model_dir, workers=2, cpus_per_worker=1, device="cpu",
                              quiet=True, on_result=kill_worker_zero)
    assert results == [None] * len(lengths)
    stats = seen["pool"].stats
    assert stats.worker_deaths >= 1 and stats.retried >= 1 and stats.finished == len(lengths)
    # The track finished before the kill was not written again; every output equals the local one.
    assert all(p.stat().st_mtime_ns == m for p, m in seen["files"].items())
    assert outputs(tmp_path / "ray") == outputs(tmp_path / "local")


def test_cluster_errors(tmp_path, capsys):
    from wavesep.cluster.pool import ClusterError
    from wavesep.cluster.separate import separate_on_ray

    song(tmp_path / "a.wav", 0.5, 0)
    assert run(tmp_path / "a.wav", "-o", tmp_path / "out", "--ray", "--ray-workers", "0") == 2
    assert run(tmp_path / "a.wav", "-o", tmp_path / "out", "--ray", "--ray-cpus", "0") == 2
    tracks, _ = collect_tracks([tmp_path / "a.wav"], tmp_path / "out")
    with pytest.raises(ClusterError, match="needs one GPU per worker"):  # this cluster has no GPU
        separate_on_ray(Separator("tiny-untrained", device="cpu"), tracks, tmp_path / "out", device="cuda")


# ------------------------------------------------------------------------------ evaluation


def write_corpus(root, names=("A - one", "B - two", "C - three"), silent_vocals=("D - silent",)):
    """A synthetic corpus (MUSDB18-HQ layout + splits.json): 8 kHz mono 3 s tonal stems with a
    noise floor (BSS Eval needs references that are not band-limited)."""
    import json

    rate, t = 8000, np.arange(3 * 8000) / 8000
    rng = np.random.default_rng(0)
    for k, name in enumerate((*names, *silent_vocals)):
        stems = {
            "vocals": 0.3 * np.sin(2 * np.pi * (300 + 20 * k) * t) * (name not in silent_vocals),
            "drums": 0.3 * np.exp(-30 * (t % 0.25)) * rng.standard_normal(t.size),
            "bass": 0.3 * np.sin(2 * np.pi * 110 * t),
            "other": 0.15 * np.sin(2 * np.pi * 554 * t),
        }
        folder = root / "test" / name
        folder.mkdir(parents=True)
        for stem, x in stems.items():
            x = x + (1e-3 * rng.standard_normal(t.size) if stem != "vocals" or name not in silent_vocals else 0)
            stems[stem] = x
            sf.write(str(folder / f"{stem}.wav"), x[:, None], rate, subtype="PCM_16")
        sf.write(str(folder / "mixture.wav"), sum(stems.values())[:, None], rate, subtype="PCM_16")
    (root / "splits.json").write_text(json.dumps({"train": [], "valid": [], "test": [*names, *silent_vocals]}))
    return root


def evaluate(*argv):
    import contextlib
    import io

    from wavesep.evaluation import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def test_evaluation_on_ray_equals_the_local_one(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    common = ["--model", "tiny-untrained", "--oracle", "mix", "--synthetic", corpus, "--targets", "vocals",
              "accompaniment", "--exclude", "D - silent", "--no-plot", "--device", "cpu"]
    code, _, err = evaluate(*common, "--out", tmp_path / "local")
    assert code == 0, err
    code, out, err = evaluate(*common, "--out", tmp_path / "ray", "--ray", "--ray-workers", "2")
    assert code == 0, err
    assert "Ray: 2 worker(s)" in out and "Ray: 3 track(s)" in out
    local, remote = outputs(tmp_path / "local"), outputs(tmp_path / "ray")
    jsons = [k for k in local if k.endswith(".json") and "/test/" in k]
    assert len(jsons) == 6 and sorted(remote) == sorted(local)
    assert all(remote[k] == local[k] for k in jsons)  # the museval JSON of every track, byte for byte
    # A rerun skips what is done without starting a worker.
    code, out, _ = evaluate(*common, "--out", tmp_path / "ray", "--ray")
    assert code == 0 and out.count("skipped") == 6 and "Ray: " not in out
    # The first error stops the run with the local path's message (the silent reference).
    failing = ["--model", "tiny-untrained", "--synthetic", corpus, "--targets", "vocals", "accompaniment",
               "--tracks", "D - silent", "--no-plot", "--device", "cpu"]
    code, _, local_err = evaluate(*failing, "--out", tmp_path / "l2")
    code_ray, _, ray_err = evaluate(*failing, "--out", tmp_path / "r2", "--ray")
    assert code == code_ray == 2 and "is silent over the whole track" in local_err
    assert ray_err.strip().splitlines()[-1] == local_err.strip().splitlines()[-1]


def test_the_command_starts_and_stops_its_own_local_ray(tmp_path, capsys):
    """Without Ray running and without an address, --ray starts a local instance and stops it."""
    import builtins

    song(tmp_path / "a.wav", 1.0, 3)
    ray.shutdown()
    print_before = builtins.print
    try:
        assert run(tmp_path / "a.wav", "-o", tmp_path / "ray", "--ray", "--ray-workers", "1") == 0
        assert not ray.is_initialized()
        assert builtins.print is print_before
    finally:
        start_ray()  # for the module's other tests
    assert run(tmp_path / "a.wav", "-o", tmp_path / "local") == 0
    assert outputs(tmp_path / "ray") == outputs(tmp_path / "local")
