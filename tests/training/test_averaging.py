"""Tests of wavesep.training.averaging and scripts/average_weights.py (closed-form means)."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from wavesep import WaveUNet, checkpoint, presets
from wavesep.training.averaging import AveragingError, average_checkpoints

ROOT = Path(__file__).resolve().parents[2]


def _saved(tmp_path, name, seed, **changes):
    torch.manual_seed(seed)
    model = WaveUNet(presets.get("tiny").replace(**changes))
    return checkpoint.save(tmp_path / name, model, {"note": name}), model


def test_weighted_mean_is_the_closed_form(tmp_path):
    pa, a = _saved(tmp_path, "a.pt", 0)
    pb, b = _saved(tmp_path, "b.pt", 1)
    model, meta = average_checkpoints([pa, pb], [1.0, 3.0])  # 0.25 a + 0.75 b
    sa, sb, sm = a.state_dict(), b.state_dict(), model.state_dict()
    for k in sm:
        want = (0.25 * sa[k].double() + 0.75 * sb[k].double()).to(sa[k].dtype)
        assert torch.equal(sm[k], want), k
    assert meta["note"] == "a.pt" and meta["averaged_from"] == [[str(pa), 0.25], [str(pb), 0.75]]
    # uniform by default; the mean of a network with itself is that network
    same, _ = average_checkpoints([pa, pa])
    assert all(torch.allclose(same.state_dict()[k].double(), sa[k].double(), atol=1e-7) for k in sa)


def test_other_networks_and_bad_weights_are_refused(tmp_path):
    pa, _ = _saved(tmp_path, "a.pt", 0)
    pc, _ = _saved(tmp_path, "c.pt", 0, levels=3)
    with pytest.raises(AveragingError, match="another network config"):
        average_checkpoints([pa, pc])
    with pytest.raises(AveragingError, match="2 weights for 1"):
        average_checkpoints([pa], [1, 2])
    with pytest.raises(AveragingError, match=">= 0"):
        average_checkpoints([pa, pa], [1, -1])
    with pytest.raises(AveragingError, match="no checkpoints"):
        average_checkpoints([])


def test_script_writes_the_mean_and_never_an_input(tmp_path):
    pa, a = _saved(tmp_path, "a.pt", 0)
    pb, b = _saved(tmp_path, "b.pt", 1)
    script = [sys.executable, str(ROOT / "scripts" / "average_weights.py")]
    out = tmp_path / "soup.pt"
    r = subprocess.run(script + [str(out), str(pa), str(pb)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    soup = checkpoint.load_model(out).state_dict()
    k = next(iter(soup))
    assert torch.allclose(soup[k], (a.state_dict()[k] + b.state_dict()[k]) / 2, atol=1e-7)
    before = pa.read_bytes()
    r = subprocess.run(script + [str(pa), str(pa), str(pb)], capture_output=True, text=True)
    assert r.returncode == 1 and "is one of the inputs" in r.stderr and pa.read_bytes() == before
