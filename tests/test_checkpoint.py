import pickle

import pytest
import torch

import wavesep
from wavesep import WaveUNet, checkpoint, load_model, presets
from wavesep.errors import CheckpointError


def _model(name="tiny", **changes):
    torch.manual_seed(3)
    model = WaveUNet(presets.get(name).replace(**changes)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)  # not the default init: the load must restore these
    return model


@pytest.mark.parametrize("changes", [{}, {"upsampling": "learned", "zero_mean_first": True}])
def test_save_load_gives_identical_output(tmp_path, changes):
    model = _model(**changes)
    path = checkpoint.save(tmp_path / "m.pt", model, metadata={"preset": "tiny", "note": "x"})
    # plain data: loads with weights_only=True
    raw = torch.load(path, weights_only=True)
    assert raw["config"] == model.config.to_dict()
    assert raw["metadata"]["sources"] == list(model.sources)
    assert raw["metadata"]["sample_rate"] == model.sample_rate
    assert raw["metadata"]["wavesep_version"] == wavesep.__version__
    loaded = load_model(path)
    n = model.input_length(500)
    x = torch.randn(1, 2, n)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert loaded.config == model.config
    assert loaded.metadata["note"] == "x"
    assert not loaded.training


def test_run_directory_means_best_then_last(tmp_path):
    a, b = _model(), _model(filters=4)
    checkpoint.save(tmp_path / checkpoint.LAST_NAME, a)
    assert load_model(tmp_path).config == a.config
    checkpoint.save(tmp_path / checkpoint.BEST_NAME, b)
    assert load_model(tmp_path).config == b.config
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="no best.pt"):
        load_model(empty)


def test_a_pickled_object_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("code ran on load",))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": "wavesep-checkpoint", "x": Evil()}, f)
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_model(path)


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_model(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="not a wavesep checkpoint"):
        load_model(other)


def test_write_is_atomic_and_keeps_the_previous_file(tmp_path, monkeypatch):
    model = _model()
    path = checkpoint.save(tmp_path / "last.pt", model)
    before = path.read_bytes()
    real_save = torch.save

    def killed_half_way(obj, f, *args, **kwargs):
        real_save({"partial": torch.zeros(1000)}, f)  # bytes reach the file being written...
        f.flush()
        raise KeyboardInterrupt  # ...then the process is interrupted

    monkeypatch.setattr(torch, "save", killed_half_way)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, _model(filters=4))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind
    monkeypatch.setattr(torch, "save", real_save)
    assert load_model(path).config == model.config
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)  # usual permissions, not mkstemp's


def test_metadata_must_be_plain_data(tmp_path):
    model = _model()
    path = checkpoint.save(tmp_path / "m.pt", model, metadata={"root": tmp_path, "sizes": (1, 2)})
    meta = checkpoint.load(path)["metadata"]
    assert meta["root"] == str(tmp_path) and meta["sizes"] == [1, 2]
    with pytest.raises(TypeError, match=r"metadata\['bad'\]"):
        checkpoint.save(tmp_path / "n.pt", model, metadata={"bad": object()})


def test_a_killed_save_leaves_a_temporary_that_the_next_save_removes(tmp_path):
    import os
    import time

    stale = tmp_path / ".last.pt.0123456789ab.tmp"  # what kill -9 during a save leaves
    stale.write_bytes(b"half a checkpoint")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    other = tmp_path / ".best.pt.0123456789ab.tmp"  # another file's: left to that file's save
    other.write_bytes(b"x")
    os.utime(other, (old, old))
    fresh = tmp_path / ".last.pt.fedcba987654.tmp"  # newer than this process: not ours to judge
    fresh.write_bytes(b"y")
    os.utime(fresh, (time.time() + 3600,) * 2)
    checkpoint.save(tmp_path / "last.pt", _model())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fresh.name, other.name, "last.pt"])
