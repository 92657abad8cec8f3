"""The web page's API (wavesep.web), in-process: uploads, progress, results equal to the command
line's, errors with the command line's messages, limits, file names from the browser, the queue
and the temporary folder."""

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install -e '.[web]')")
pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx (pip install -e '.[test]')")

import warnings  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice about httpx2
    from fastapi.testclient import TestClient  # noqa: E402

from wavesep import api as api_module  # noqa: E402
from wavesep.separate import main as separate_main  # noqa: E402
from wavesep.web import serve  # noqa: E402
from wavesep.web.app import create_app  # noqa: E402
from wavesep.web.jobs import JobQueue, Limits, display_name, peaks  # noqa: E402

RATE = 44100
pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def song(seconds=1.0, rate=RATE, channels=2, seed=0):
    """(T, C) float32: two tones and a little noise."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    cols = [0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) + 0.05 * rng.standard_normal(t.size) for c in range(channels)]
    return np.stack(cols, axis=1).astype(np.float32)


def wav_bytes(data, rate=RATE, fmt="WAV", subtype="FLOAT"):
    buf = io.BytesIO()
    sf.write(buf, data, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


@pytest.fixture
def server():
    """(client, queue) of a fresh app with the tiny untrained model on the CPU."""
    queue = JobQueue("tiny-untrained", device="cpu")
    with TestClient(create_app(queue)) as client:
        yield client, queue
    assert not queue.root.exists()  # the app's shutdown removed every upload and result


def upload(client, data, filename="song.wav", **options):
    return client.post("/api/jobs", params={"filename": filename, **options}, content=data)


def finished(client, queue, response):
    assert response.status_code == 201, response.text
    queue.wait(response.json()["id"], timeout=120)
    return client.get(f"/api/jobs/{response.json()['id']}").json()


def cli_stems(tmp_path, path, *options):
    out = tmp_path / "cli"
    assert separate_main([str(path), "-o", str(out), "-n", "tiny-untrained", "-d", "cpu", "-q", *options]) == 0
    return out / "tiny-untrained" / Path(path).stem


# ------------------------------------------------------------------------------ results


@pytest.mark.parametrize("options, cli_options", [
    ({}, []),
    ({"two_stems": "vocals", "postfilter": "ratio-mask"}, ["--two-stems", "vocals", "--postfilter", "ratio-mask"]),
    ({"postfilter": "ratio-mask-fullband"}, ["--postfilter", "ratio-mask-fullband"]),
])
def test_results_equal_the_command_line(server, tmp_path, options, cli_options):
    client, queue = server
    data = wav_bytes(song(1.3))
    path = tmp_path / "my song.wav"
    path.write_bytes(data)
    job = finished(client, queue, upload(client, data, "my song.wav", **options))
    assert job["status"] == "done" and job["progress"] == 1.0 and job["sample_rate"] == RATE
    folder = cli_stems(tmp_path, path, *cli_options)
    expected = sorted(p.stem for p in folder.glob("*.wav"))
    assert sorted(job["stems"]) == expected
    for stem in job["stems"]:
        got = client.get(f"/api/jobs/{job['id']}/audio/{stem}.wav", params={"download": 1})
        assert got.status_code == 200 and got.headers["content-type"] == "audio/wav"
        assert f"my%20song-{stem}.wav" in got.headers["content-disposition"]
        assert got.headers["content-disposition"].startswith("attachment")
        assert got.content == (folder / f"{stem}.wav").read_bytes()  # byte for byte
    archive = zipfile.ZipFile(io.BytesIO(client.get(f"/api/jobs/{job['id']}/stems.zip").content))
    assert sorted(archive.namelist()) == [f"my song/{s}.wav" for s in expected]
    for stem in expected:
        assert archive.read(f"my song/{stem}.wav") == (folder / f"{stem}.wav").read_bytes()
    # The mixture for the player, and the waveform outlines of the mixture and every stem.
    mix, rate = sf.read(io.BytesIO(client.get(f"/api/jobs/{job['id']}/audio/mixture.wav").content))
    assert rate == RATE and mix.shape == (int(1.3 * RATE), 2)
    outlines = client.get(f"/api/jobs/{job['id']}/peaks").json()
    assert set(outlines) == {"mixture", *expected} and len(outlines["mixture"]) == 1000


def test_progress_is_the_separators(server, monkeypatch):
    client, queue = server
    real = api_module.apply.separate
    seen = []

    def spy(*args, progress=None, **kwargs):
        def report(fraction):
            progress(fraction)
            job = queue.jobs()[0]
            seen.append((fraction, job.progress, client.get(f"/api/jobs/{job.id}").json()["stage"]))
        return real(*args, progress=report, **kwargs)

    monkeypatch.setattr(api_module.apply, "separate", spy)
    job = finished(client, queue, upload(client, wav_bytes(song(25.0, rate=22050), rate=22050)))  # 3 windows of 10 s
    assert job["status"] == "done"
    fractions = [f for f, _, _ in seen]
    assert len(fractions) >= 3 and fractions == sorted(fractions) and fractions[-1] == 1.0 and fractions[0] < 1.0
    assert all(f == shown and stage == "separating" for f, shown, stage in seen)


def test_queue_is_shared_and_runs_in_order(server):
    client, queue = server
    assert upload(client, wav_bytes(song(2.0)), "a.wav").status_code == 201
    second = upload(client, wav_bytes(song(0.5, seed=1)), "b.flac").json()
    assert second["status"] == "queued" and second["position"] >= 1
    other_tab = TestClient(client.app)  # another client (no lifespan of its own) sees the same queue
    assert [j["name"] for j in other_tab.get("/api/jobs").json()] == ["a.wav", "b.flac"]
    queue.wait(second["id"], timeout=120)
    jobs = client.get("/api/jobs").json()
    assert [j["status"] for j in jobs] == ["done", "done"]
    assert jobs[0]["finished"] <= jobs[1]["started"]  # one after another


# ------------------------------------------------------------------------------ bad input


def cli_error(tmp_path, path, capsys):
    capsys.readouterr()
    assert separate_main([str(path), "-o", str(tmp_path / "cli"), "-n", "tiny-untrained", "-d", "cpu"]) == 1
    line = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("  ")][-1]
    return line.split(f"{path}: ", 1)[1] if line.strip().startswith(str(path)) else line


def test_bad_files_get_the_command_lines_messages(server, tmp_path, capsys):
    client, queue = server
    # Corrupt: refused at upload, with the CLI's message naming the file by its own name.
    junk = b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk"
    bad = tmp_path / "broken.wav"
    bad.write_bytes(junk)
    response = upload(client, junk, "broken.wav")
    assert response.status_code == 400
    message = response.json()["error"]
    assert message == cli_error(tmp_path, bad, capsys).replace(str(bad), "broken.wav").strip()
    assert "broken.wav" in message and str(queue.root) not in message
    # NaN samples: found when the file is decoded, shown on the job.
    data = song(0.3)
    data[10, 0] = np.nan
    job = finished(client, queue, upload(client, wav_bytes(data), "nan.wav"))
    assert job["status"] == "error" and "NaN or infinite" in job["message"] and "nan.wav" in job["message"]
    assert str(queue.root) not in job["message"]
    nan_path = tmp_path / "nan.wav"
    nan_path.write_bytes(wav_bytes(data))
    assert job["message"] == cli_error(tmp_path, nan_path, capsys).replace(str(nan_path), "nan.wav").strip()
    # Empty upload, unknown model, unknown stem, unknown post-filter: refused, nothing kept.
    assert "empty" in upload(client, b"", "empty.wav").json()["error"]
    assert "unknown model" in upload(client, b"x", model="nope").json()["error"]
    assert "not a stem" in upload(client, b"x", two_stems="piano").json()["error"]
    assert upload(client, b"x", postfilter="magic").status_code == 400
    assert client.get("/api/jobs/0123456789abcdef").status_code == 404
    assert sorted(p.name for p in queue.root.iterdir()) == [job["id"]]


def test_upload_limits(tmp_path):
    queue = JobQueue("tiny-untrained", device="cpu", limits=Limits(max_upload_bytes=100_000, max_seconds=1.0))
    with TestClient(create_app(queue)) as client:
        big = wav_bytes(song(1.0), subtype="FLOAT")  # 352 kB
        response = upload(client, big, "big.wav")
        assert response.status_code == 413
        assert "larger than the upload limit of 0.0953674 MB" in response.json()["error"]

        def chunks():  # no Content-Length: refused while streaming
            for i in range(0, len(big), 8192):
                yield big[i:i + 8192]

        response = client.post("/api/jobs", params={"filename": "big.wav"}, content=chunks())
        assert response.status_code == 413 and "upload limit" in response.json()["error"]
        long = wav_bytes(song(1.5, rate=8000), rate=8000, subtype="PCM_16")  # 24 kB but 1.5 s
        response = upload(client, long, "long.wav")
        assert response.status_code == 413
        assert response.json()["error"] == "long.wav lasts 2 s, longer than the limit of 1 s (wavesep serve --max-minutes)"
        assert list(queue.root.iterdir()) == []
        assert upload(client, wav_bytes(song(0.9, rate=8000), rate=8000, subtype="PCM_16")).status_code == 201


@pytest.mark.parametrize("given, shown", [
    ("../../../../etc/passwd", "passwd"),
    ("..\\..\\Windows\\win.ini", "win.ini"),
    ("/tmp/abs/song.wav", "song.wav"),
    ("a/../../b.wav", "b.wav"),
    ("..", "upload"),
    (".bashrc", "bashrc"),
    ("so\x00ng\n<b>.wav", "so_ng__b_.wav"),
    ("", "upload"),
])
def test_names_from_the_browser_are_never_paths(server, tmp_path, given, shown):
    client, queue = server
    assert display_name(given) == shown
    response = upload(client, wav_bytes(song(0.2)), given)
    assert response.status_code in (201, 400)
    if response.status_code == 201:
        job = finished(client, queue, response)
        assert job["name"] == shown and job["status"] == "done"
    # Everything the server wrote is inside its temporary folder, under job ids.
    for path in queue.root.rglob("*"):
        rel = path.relative_to(queue.root)
        assert len(rel.parts[0]) == 16 and ".." not in rel.parts
        assert len(rel.parts) == 1 or re.fullmatch(r"input(\.[a-z0-9]{1,8})?|mixture\.wav|stems", rel.parts[1])
    for bad in ("..%2F..%2Fetc%2Fpasswd", "..", "mixture/../../x"):
        assert client.get(f"/api/jobs/{response.json().get('id', 'x')}/audio/{bad}.wav").status_code == 404
    assert client.get("/api/jobs/..%2F..%2Fetc/peaks").status_code == 404


# ------------------------------------------------------------------------------ clean-up


def test_removal_expiry_and_shutdown(tmp_path):
    queue = JobQueue("tiny-untrained", device="cpu", limits=Limits(keep_seconds=3600))
    with TestClient(create_app(queue)) as client:
        a = finished(client, queue, upload(client, wav_bytes(song(0.2)), "a.wav"))
        b = finished(client, queue, upload(client, wav_bytes(song(0.2)), "b.wav"))
        assert client.delete(f"/api/jobs/{a['id']}").status_code == 200
        assert not (queue.root / a["id"]).exists() and client.get(f"/api/jobs/{a['id']}").status_code == 404
        queue.get(b["id"]).finished -= 3601  # finished more than an hour ago
        assert client.get("/api/jobs").json() == [] and not (queue.root / b["id"]).exists()
        root = queue.root
        assert root.is_dir()
    assert not root.exists()


def test_peaks_outline():
    import torch

    wav = torch.tensor([[0.0, 1.0, -1.0, 0.5], [0.0, 1.0, -1.0, -0.5]])
    assert peaks(wav, bins=2) == [[0.0, 1.0], [-1.0, 0.0]]
    assert peaks(wav, bins=10) == [[0.0, 0.0], [1.0, 1.0], [-1.0, -1.0], [0.0, 0.0]]
    assert peaks(torch.zeros(2, 0)) == []


def test_serve_command_line(capsys):
    assert serve.main(["--port", "70000"]) == 2
    assert serve.main(["--max-upload-mb", "0"]) == 2
    assert serve.main(["--model", "no-such-model"]) == 1
    assert "unknown model" in capsys.readouterr().err
    assert serve.main(["--help"]) == 0
    assert "127.0.0.1" in capsys.readouterr().out
