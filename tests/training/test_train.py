"""Tests of wavesep.train: the recipe's control flow, checkpoints, exact resume, DDP, robustness.

Most tests use ToyWindows, a stand-in for wavesep.data's TrainWindows/ValidationSet that keeps
their contract (item i a pure function of (seed, i); (mix (C, T_in), targets (S, C, T_out))),
so that a training step of the tiny preset takes milliseconds. The command-line tests use the
real wavesep.data on a small folder of stems.
"""

import json
import math
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

import wavesep
from wavesep import WaveUNet, checkpoint, presets
from wavesep import training as wtrain
from wavesep.training import TrainConfig, evaluate, train
from wavesep.training import loop as wloop

REPO = Path(__file__).resolve().parents[2]


class ToyWindows(Dataset):
    """Vocals = a sine of random frequency, accompaniment = noise; item i depends on (seed, i) only.

    nan_at: indices whose mixture holds a NaN. kill_at: index whose reading sends SIGINT to this
    process (the signal arrives in the middle of a training step, as a Ctrl-C would).
    """

    def __init__(self, model, output_samples=256, seed=0, count=2**31 - 1, nan_at=(), nan_from=None, kill_at=None):
        self.n_in = model.input_length(output_samples)
        self.n_out = model.output_length(self.n_in)
        self.left = model.context[0]
        self.seed, self.count = seed, count
        self.nan_at, self.nan_from, self.kill_at = set(nan_at), nan_from, kill_at

    def __len__(self):
        return self.count

    def __getitem__(self, i):
        i = int(i)
        if i == self.kill_at:
            os.kill(os.getpid(), signal.SIGINT)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        t = torch.arange(self.n_in, dtype=torch.float64)
        freq = 0.01 + 0.05 * torch.rand(1, generator=g, dtype=torch.float64)
        phase = 6.283 * torch.rand(1, generator=g, dtype=torch.float64)
        vocals = (0.5 * torch.sin(6.283185307 * freq * t + phase)).expand(2, -1)  # (C, T_in)
        accompaniment = 0.2 * torch.randn(2, self.n_in, generator=g, dtype=torch.float64)
        mix = (vocals + accompaniment).float()
        targets = torch.stack([accompaniment, vocals])[..., self.left : self.left + self.n_out].float()
        if i in self.nan_at or (self.nan_from is not None and i >= self.nan_from):
            mix[0, 0] = float("nan")
        return mix, targets  # (C, T_in), (S, C, T_out)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _model(seed=0):
    torch.manual_seed(seed)
    return WaveUNet(presets.get("tiny"))


def _config(**changes):
    base = dict(batch_size=4, finetune_batch_size=4, lr=1e-3, finetune_lr=1e-4, epoch_iterations=3, patience=2,
                finetune_patience=1, workers=0, progress=False, verbose=False, tensorboard=False)
    base.update(changes)
    return TrainConfig(**base)


def _data(model, **kw):
    return ToyWindows(model, **kw), ToyWindows(model, seed=99, count=6)


def _last(run_dir):
    return torch.load(Path(run_dir) / checkpoint.LAST_NAME, weights_only=True)


def _history(run_dir):
    return [json.loads(line) for line in (Path(run_dir) / wtrain.HISTORY_NAME).read_text().splitlines()]


def _assert_same_run(a, b):
    """Two last.pt dicts hold the same weights, optimiser state and counters, bit for bit."""
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    sa, sb = a["training"]["optimizer"]["state"], b["training"]["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    for p in sa:
        for k in sa[p]:
            assert torch.equal(sa[p][k], sb[p][k]), (p, k)
    assert a["training"]["optimizer"]["param_groups"] == b["training"]["optimizer"]["param_groups"]
    ignore = {"history_lines"}  # the resumed run has one more "start" record
    da = {k: v for k, v in a["training"]["state"].items() if k not in ignore}
    db = {k: v for k, v in b["training"]["state"].items() if k not in ignore}
    assert da == db


# ---------------------------------------------------------------------- learning and logging


@pytest.mark.parametrize("loss", ["mse", "l1", "mse+stft", "sdr"])
def test_training_reduces_the_validation_loss_and_writes_the_run(tmp_path, loss):
    if loss == "mse+stft":
        pytest.importorskip("auraloss")
    model = _model()
    train_set, valid_set = _data(model)
    before = evaluate(model, valid_set, batch_size=4)["loss"]
    config = _config(epoch_iterations=40, max_epochs=1, finetune=False, lr=3e-3, tensorboard=True, log_every=5,
                     loss=loss)
    result = train(model, train_set, valid_set, tmp_path / "run", config, metadata={"preset": "tiny"})
    after = evaluate(model, valid_set, batch_size=4)["loss"]
    assert result.status == "finished" and result.steps == 40 and result.epochs == 1
    assert after < 0.5 * before, (before, after)
    run = tmp_path / "run"
    assert (run / "last.pt").is_file() and (run / "best.pt").is_file()
    assert list(run.glob("events.out.tfevents.*")), "no TensorBoard event file"
    epochs = [r for r in _history(run) if r["type"] == "epoch"]
    assert len(epochs) == 1 and epochs[0]["valid_loss"] == pytest.approx(after, rel=1e-6)
    assert set(epochs[0]["valid_sdr_global_db"]) == {"accompaniment", "vocals"}
    assert result.best_loss == pytest.approx(after, rel=1e-6)
    assert math.isfinite(result.windows_per_second) and 0 <= result.data_wait_share <= 1
    assert not list(run.glob(".*.tmp")), "a temporary file was left behind"


def test_missing_tensorboard_only_warns(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # makes the import fail
    model = _model()
    with pytest.warns(UserWarning, match="pip install tensorboard"):
        result = train(model, *_data(model), tmp_path / "run", _config(max_steps=1, tensorboard=True))
    assert result.status == "stopped" and (tmp_path / "run" / wtrain.HISTORY_NAME).is_file()
    assert not list((tmp_path / "run").glob("events.out.tfevents.*"))


def test_evaluate_global_sdr_matches_the_closed_form():
    model = _model()
    _, valid_set = _data(model)
    scores = evaluate(model, valid_set, batch_size=4)
    with torch.no_grad():
        mixes, targets = zip(*(valid_set[i] for i in range(len(valid_set))))
        est = model(torch.stack(mixes))  # (N, S, C, T_out)
    targets = torch.stack(targets)
    for s, name in enumerate(model.sources):
        t, e = targets[:, s].double(), est[:, s].double()
        expected = 10 * math.log10(t.square().sum().item() / (t - e).square().sum().item())
        assert scores["sdr"][name] == pytest.approx(expected, abs=1e-6)
    assert scores["loss"] == pytest.approx(torch.mean((est - targets) ** 2).item(), rel=1e-5)
    assert scores["windows"] == len(valid_set)


# ---------------------------------------------------------------------- recipe control flow


def _scripted(losses):
    it = iter(losses)

    def fake_evaluate(model, valid_set, **kw):
        return {"loss": next(it), "sdr": {s: 0.0 for s in model.sources}, "windows": 1}

    return fake_evaluate


def test_early_stopping_then_finetuning_stage_switch_at_the_right_epochs(tmp_path, monkeypatch):
    # stage "train", patience 3: best at epoch 2, then 3 worse epochs -> switch after epoch 5.
    # stage "finetune", patience 2: improves at epoch 6, then 2 worse epochs -> finished after 8.
    losses = [1.0, 0.8, 0.9, 0.85, 0.95, 0.7, 0.75, 0.72]
    monkeypatch.setattr(wloop, "evaluate", _scripted(losses))
    model = _model()
    train_set, valid_set = _data(model)
    config = _config(epoch_iterations=2, batch_size=2, patience=3, finetune_batch_size=4, finetune_lr=1e-5,
                     finetune_patience=2)
    result = train(model, train_set, valid_set, tmp_path / "run", config)
    assert result.status == "finished"
    assert (result.epochs, result.steps, result.best_epoch, result.best_loss) == (8, 16, 6, 0.7)
    history = _history(tmp_path / "run")
    epochs = [r for r in history if r["type"] == "epoch"]
    assert [r["stage"] for r in epochs] == ["train"] * 5 + ["finetune"] * 3
    assert [r["batch_size"] for r in epochs] == [2] * 5 + [4] * 3
    assert [r["lr"] for r in epochs] == [1e-3] * 5 + [1e-5] * 3
    assert [r["bad_epochs"] for r in epochs] == [0, 0, 1, 2, 3, 0, 1, 2]
    switch = [r for r in history if r["type"] == "stage"]
    assert len(switch) == 1 and switch[0]["epoch"] == 5 and switch[0]["from_best_epoch"] == 2
    state = _last(tmp_path / "run")["training"]["state"]
    assert state["finished"] and state["samples"] == 5 * 2 * 2 + 3 * 2 * 4
    assert torch.load(tmp_path / "run" / "best.pt", weights_only=True)["training"]["summary"]["epoch"] == 6


def test_max_epochs_caps_each_stage_and_progress_is_shown(tmp_path, monkeypatch, capsys):
    import tqdm

    class EagerBar(tqdm.tqdm):  # redraws on every update, however fast the iterations
        def __init__(self, *args, **kwargs):
            super().__init__(*args, mininterval=0, **kwargs)

    monkeypatch.setattr(tqdm, "tqdm", EagerBar)
    monkeypatch.setattr(wloop, "evaluate", _scripted([1.0, 0.9, 0.8, 0.7, 0.6]))
    model = _model()
    result = train(model, *_data(model), tmp_path / "run",
                   _config(epoch_iterations=2, patience=50, finetune_patience=50, max_epochs=2, finetune_max_epochs=1,
                           progress=True, verbose=True))
    epochs = [r for r in _history(tmp_path / "run") if r["type"] == "epoch"]
    assert result.status == "finished" and [r["stage"] for r in epochs] == ["train", "train", "finetune"]
    err = capsys.readouterr().err
    assert "loss=" in err and "win_s=" in err and "epoch 3 (finetune)" in err and "fine-tuning from" in err


def test_finetuning_starts_from_the_best_weights_with_a_fresh_optimiser(tmp_path, monkeypatch):
    monkeypatch.setattr(wloop, "evaluate", _scripted([1.0, 0.5, 0.9, 0.9]))
    model = _model()
    # max_steps stops the run right after the switch (end of epoch 4), before any fine-tuning step
    result = train(model, *_data(model), tmp_path / "run",
                   _config(epoch_iterations=2, patience=2, finetune_lr=2e-5, max_steps=8))
    assert result.status == "stopped" and result.stage == "finetune"
    last, best = _last(tmp_path / "run"), torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert best["training"]["summary"]["epoch"] == 2
    for k in last["state_dict"]:
        assert torch.equal(last["state_dict"][k], best["state_dict"][k]), k
    assert last["training"]["optimizer"]["state"] == {}
    assert last["training"]["optimizer"]["param_groups"][0]["lr"] == 2e-5


# ---------------------------------------------------------------------- checkpoints and resume


def test_checkpoints_are_plain_data_and_rebuild_the_model(tmp_path):
    model = _model()
    train_set, valid_set = _data(model)
    meta = {"preset": "tiny", "task": "vocals", "training_args": {"lr": 1e-3, "out": str(tmp_path)}}
    train(model, train_set, valid_set, tmp_path / "run", _config(max_epochs=1, finetune=False), metadata=meta)
    for name in ("last.pt", "best.pt"):
        raw = torch.load(tmp_path / "run" / name, weights_only=True)  # plain data only
        m = raw["metadata"]
        assert m["sources"] == ["accompaniment", "vocals"] and m["sample_rate"] == 22050
        assert m["preset"] == "tiny" and m["training_args"]["lr"] == 1e-3
        assert m["wavesep_version"] == wavesep.__version__
    loaded = wavesep.load_model(tmp_path / "run")  # the run directory means best.pt
    x = torch.randn(2, 2, model.input_length(300))
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))  # one epoch only: best == final weights


@pytest.mark.parametrize("n", [5, 7])
def test_resume_is_bit_exact(tmp_path, n):
    # 2 epochs of 3 iterations in stage "train" (max_epochs), then fine-tuning: the 2n iterations
    # cross validations and the stage switch; the break falls mid-epoch (n=5) or mid-fine-tuning (n=7).
    config = dict(epoch_iterations=3, max_epochs=2, finetune_max_epochs=9, finetune_batch_size=6, patience=5)
    model = _model()
    a = train(model, *_data(model), tmp_path / "a", _config(max_steps=n, **config))
    assert a.status == "stopped" and a.steps == n
    model = _model(seed=123)  # weights replaced by the checkpoint's
    b = train(model, *_data(model), tmp_path / "a", _config(max_steps=2 * n, workers=1, **config), resume=True)
    assert b.status == "stopped" and b.steps == 2 * n
    model = _model()
    ref = train(model, *_data(model), tmp_path / "ref", _config(max_steps=2 * n, **config))
    assert ref.stage == b.stage == "finetune"
    _assert_same_run(_last(tmp_path / "a"), _last(tmp_path / "ref"))
    epochs_a = [r["valid_loss"] for r in _history(tmp_path / "a") if r["type"] == "epoch"]
    epochs_ref = [r["valid_loss"] for r in _history(tmp_path / "ref") if r["type"] == "epoch"]
    assert epochs_a == epochs_ref and len(epochs_a) >= 2


def test_resume_restores_the_rng_states(tmp_path):
    model = _model()
    train(model, *_data(model), tmp_path / "run", _config(max_steps=2, seed=5))
    expected = torch.rand(3)  # what the global RNG would give next, had the run gone on
    torch.manual_seed(777)
    model = _model()

    class Probe(ToyWindows):
        seen = []

        def __getitem__(self, i):
            if not Probe.seen:
                Probe.seen.append(torch.rand(3))
            return super().__getitem__(i)

    train(model, Probe(model), _data(model)[1], tmp_path / "run", _config(max_steps=3, seed=5), resume=True)
    assert torch.equal(Probe.seen[0], expected)


def test_sigint_writes_a_resumable_checkpoint(tmp_path):
    config = dict(epoch_iterations=3, max_epochs=2, patience=5)
    model = _model()
    train_set = ToyWindows(model, kill_at=4 * 4 + 1)  # read during iteration 5 (batch 4)
    previous = signal.getsignal(signal.SIGINT)
    result = train(model, train_set, _data(model)[1], tmp_path / "a", _config(**config))
    assert signal.getsignal(signal.SIGINT) is previous, "the handler was not restored"
    assert result.status == "interrupted" and result.signal == signal.SIGINT and result.steps == 5
    assert _last(tmp_path / "a")["training"]["state"]["step"] == 5
    model = _model()
    train(model, *_data(model), tmp_path / "a", _config(max_steps=9, **config), resume=True)
    model = _model()
    train(model, *_data(model), tmp_path / "ref", _config(max_steps=9, **config))
    _assert_same_run(_last(tmp_path / "a"), _last(tmp_path / "ref"))


# ---------------------------------------------------------------------- robustness


def test_a_nonfinite_loss_skips_the_step_and_is_logged(tmp_path):
    model = _model()
    bad_batch = 4  # iteration 5 (1-based) reads windows 16..19
    train_set = ToyWindows(model, nan_at={bad_batch * 4 + 2})
    train(model, train_set, _data(model)[1], tmp_path / "run", _config(max_steps=4, max_epochs=5))
    before = _last(tmp_path / "run")
    model = _model()
    result = train(model, train_set, _data(model)[1], tmp_path / "run", _config(max_steps=5, max_epochs=5),
                   resume=True)
    after = _last(tmp_path / "run")
    assert result.status == "stopped"
    for k in before["state_dict"]:  # the skipped step changed neither weights nor Adam moments
        assert torch.equal(before["state_dict"][k], after["state_dict"][k])
    assert after["training"]["optimizer"]["state"][0]["step"] == before["training"]["optimizer"]["state"][0]["step"]
    assert after["training"]["state"]["nonfinite_total"] == 1
    events = [r for r in _history(tmp_path / "run") if r["type"] == "nonfinite"]
    assert [e["step"] for e in events] == [5]
    # and training goes on past it
    model = _model()
    result = train(model, train_set, _data(model)[1], tmp_path / "run", _config(max_steps=7, max_epochs=5),
                   resume=True)
    last = _last(tmp_path / "run")
    assert result.status == "stopped" and last["training"]["state"]["nonfinite_run"] == 0
    assert last["training"]["optimizer"]["state"][0]["step"] == 6


def test_nonfinite_losses_in_a_row_stop_the_run_and_keep_the_last_good_checkpoint(tmp_path):
    model = _model()
    train_set = ToyWindows(model, nan_from=3 * 4)  # from iteration 4 on, every batch has a NaN
    result = train(model, train_set, _data(model)[1], tmp_path / "run", _config(max_nonfinite=3, patience=9))
    assert result.status == "diverged" and "non-finite" in result.message and "--resume" not in result.message
    assert result.steps == 6
    assert "kept" in result.message and "last.pt from step 3" in result.message
    last = _last(tmp_path / "run")
    assert last["training"]["state"]["step"] == 3  # the end of epoch 1, the last good state
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values())
    assert [r["type"] for r in _history(tmp_path / "run")][-1] == "stop"


# ---------------------------------------------------------------------- distributed


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _PenalisedEvaluate:
    """The real evaluate (sharded under DDP) plus a scripted penalty on each call's loss, to
    make chosen epochs worse than their predecessors."""

    def __init__(self, penalties):
        self.penalties, self.calls = list(penalties), 0

    def __call__(self, model, valid_set, **kw):
        scores = _REAL_EVALUATE(model, valid_set, **kw)
        scores["loss"] += self.penalties[self.calls]
        self.calls += 1
        return scores


_REAL_EVALUATE = wtrain.evaluate
# Epoch 2 is made worse than epoch 1, so the switch to fine-tuning after it goes back to epoch 1.
_DDP_PENALTIES = [0.0, 1.0, 0.0]


def _ddp_worker(rank, world, port, run_dir, out_dir, config):
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    wloop.evaluate = _PenalisedEvaluate(_DDP_PENALTIES)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = _model(seed=rank)  # different initial weights: DDP must broadcast rank 0's
        result = train(model, *_data(model), run_dir, TrainConfig(**config))
        torch.save({"state": model.state_dict(), "steps": result.steps, "stage": result.stage},
                   Path(out_dir) / f"rank{rank}.pt")
        # Both ranks leave together: a rank tearing Gloo down while the other still has a
        # pending operation can abort the other ("terminate called without an active exception").
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_ddp_two_ranks_match_a_single_process_with_the_same_global_batch(tmp_path, monkeypatch):
    import torch.multiprocessing as mp

    # 2 iterations per epoch, stage "train" capped at 2 epochs: the 6 iterations include sharded
    # validations and the switch to fine-tuning from epoch 1's weights (broadcast from rank 0)
    config = _config(epoch_iterations=2, max_epochs=2, finetune_max_epochs=5, max_steps=6, batch_size=4,
                     finetune_batch_size=6, patience=5).to_dict()
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path / "ddp"), str(tmp_path), config), nprocs=2)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["steps"] == r1["steps"] == 6 and r0["stage"] == r1["stage"] == "finetune"
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    monkeypatch.setattr(wloop, "evaluate", _PenalisedEvaluate(_DDP_PENALTIES))
    model = _model(seed=0)
    train(model, *_data(model), tmp_path / "single", TrainConfig(**config))
    switch = [r for r in _history(tmp_path / "single") if r["type"] == "stage"]
    assert switch[0]["epoch"] == 2 and switch[0]["from_best_epoch"] == 1
    worst = max((model.state_dict()[k] - r0["state"][k]).abs().max().item() for k in r0["state"])
    assert worst < 1e-6, worst  # float rounding of the gradient average only
    moved = max((model.state_dict()[k] - _model(0).state_dict()[k]).abs().max().item() for k in r0["state"])
    assert moved > 1e-3  # the comparison is not trivially between two untrained models
    single, ddp = _last(tmp_path / "single"), _last(tmp_path / "ddp")
    assert ddp["training"]["world_size"] == 2 and len(ddp["training"]["rng"]) == 2
    assert ddp["training"]["state"]["samples"] == single["training"]["state"]["samples"] == 4 * 4 + 2 * 6
    assert [r["valid_loss"] for r in _history(tmp_path / "ddp") if r["type"] == "epoch"] == pytest.approx(
        [r["valid_loss"] for r in _history(tmp_path / "single") if r["type"] == "epoch"], rel=1e-5)


def test_batch_not_divisible_by_ranks_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(wloop, "_dist_info", lambda: (0, 2))
    model = _model()
    with pytest.raises(ValueError, match="not divisible"):
        train(model, *_data(model), tmp_path / "run", _config(batch_size=3))


# ---------------------------------------------------------------------- command line


@pytest.fixture(scope="module")
def stems_root(tmp_path_factory):
    import soundfile as sf

    root = tmp_path_factory.mktemp("stems")
    rng = np.random.default_rng(0)
    for k in range(3):
        track = root / f"track{k}"
        track.mkdir()
        t = np.arange(22050) / 22050
        vocals = 0.3 * np.sin(2 * np.pi * (200 + 50 * k) * t)[:, None].repeat(2, 1)
        sf.write(track / "vocals.wav", vocals, 22050)
        sf.write(track / "accompaniment.wav", 0.1 * rng.standard_normal((22050, 2)), 22050)
    return root


def _cli(stems_root, tmp_path, *extra):
    return ["--preset", "tiny", "--stems", str(stems_root), "--output-samples", "512", "--batch-size", "2",
            "--finetune-batch-size", "2", "--epoch-iterations", "2", "--workers", "0", "--no-progress",
            "--no-tensorboard", "--cache-dir", str(tmp_path / "cache"), *extra]


def test_cli_trains_resumes_and_refuses_to_change_the_run(stems_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert wtrain.main(_cli(stems_root, tmp_path, "--out", str(run), "--max-steps", "3")) == 0
    ckpt = _last(run)
    assert ckpt["metadata"]["preset"] == "tiny" and ckpt["metadata"]["task"] == "vocals"
    assert ckpt["training"]["state"]["step"] == 3
    # a new run in the same folder is refused, as is changing the recipe of a resumed run
    assert wtrain.main(_cli(stems_root, tmp_path, "--out", str(run))) == 1
    assert "--resume" in capsys.readouterr().err
    assert wtrain.main(["--resume", str(run), "--lr", "0.1"]) == 1
    assert "--lr cannot change" in capsys.readouterr().err
    # resume from the run directory alone; runtime options may change
    assert wtrain.main(["--resume", str(run), "--max-epochs", "2", "--finetune-max-epochs", "1",
                        "--no-progress"]) == 0
    state = _last(run)["training"]["state"]
    assert state["finished"] and state["epoch"] == 3 and state["step"] == 6
    model = wavesep.load_model(run)
    assert model.metadata["training_args"]["output_samples"] == 512


def _children(pid):
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return path.read_text().split() if path.exists() else []


@pytest.mark.parametrize("target", ["main", "group"])
def test_cli_sigterm_in_a_subprocess_writes_a_resumable_checkpoint(stems_root, tmp_path, target):
    # "group": SIGTERM to the whole process group, DataLoader worker included, as a job manager sends
    # it (Slurm, timeout, docker stop); the worker must leave the stop to the main process.
    run = tmp_path / "run"
    workers = "1" if target == "group" else "0"
    cmd = [sys.executable, str(REPO / "train.py"),
           *_cli(stems_root, tmp_path, "--out", str(run), "--epoch-iterations", "1000000", "--workers", workers)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        history = run / wtrain.HISTORY_NAME
        for _ in range(600):  # the run has started once its "start" record is written (and, with a
            started = history.exists() and (target == "main" or _children(proc.pid))  # worker, the worker)
            if started or proc.poll() is not None:
                break
            subprocess.run(["sleep", "0.1"])
        assert started, proc.stderr.read() if proc.poll() is not None else "the run did not start"
        if target == "group":
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()
    assert code == 128 + signal.SIGTERM, err
    assert "SIGTERM" in err and "--resume" in err
    state = _last(run)["training"]["state"]
    assert state["step"] >= 1 and not state["finished"]
    assert wtrain.main(["--resume", str(run), "--max-steps", str(state["step"] + 1), "--no-progress"]) == 0
    assert _last(run)["training"]["state"]["step"] == state["step"] + 1


def test_dataloader_workers_leave_stops_to_the_main_process():
    # the worker_init_fn of the training and validation loaders: both signals are the parent's
    code = ("import os, signal; from wavesep.interrupts import leave_stops_to_the_parent as f; f(0); "
            "os.kill(os.getpid(), signal.SIGTERM); os.kill(os.getpid(), signal.SIGINT); print('alive')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "alive", done.stderr


def test_cli_usage_errors(capsys, tmp_path):
    assert wtrain.main(["--resume", str(tmp_path / "nothing")]) == 1
    assert "no last.pt to resume from" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        wtrain.main(["--preset", "tiny", "--out", "x"])
    assert "--musdb ROOT" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        wtrain.main(["--preset", "tiny", "--synthetic", "x"])
    assert "--out RUN_DIR" in capsys.readouterr().err


def test_cli_init_from_starts_a_new_run_from_trained_weights(stems_root, tmp_path, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    assert wtrain.main(_cli(stems_root, tmp_path, "--out", str(first), "--max-steps", "2")) == 0
    trained = _last(first)["state_dict"]
    assert wtrain.main(_cli(stems_root, tmp_path, "--out", str(second), "--seed", "7", "--max-steps", "1",
                            "--init-from", str(first / "best.pt"))) == 0
    started = _last(second)
    assert started["training"]["state"]["step"] == 1
    # one Adam step moves each weight by at most about lr (1e-4); seed 7's initial weights are far
    assert all((started["state_dict"][k] - v).abs().max() < 2e-4 for k, v in trained.items())
    assert started["metadata"]["training_args"]["init_from"] == str(first / "best.pt")
    # a network the weights cannot fill (mono, padded convolutions), or a missing file: one line
    # naming the file and the differences
    bad = _cli(stems_root, tmp_path, "--out", str(tmp_path / "third"), "--init-from", str(first / "best.pt"))
    bad[bad.index("tiny")] = "M1"
    assert wtrain.main(bad) == 1
    err = capsys.readouterr().err
    assert str(first / "best.pt") in err and "channels 2 vs 1" in err and "conv_mode" in err
    missing = tmp_path / "none.pt"
    assert wtrain.main(_cli(stems_root, tmp_path, "--out", str(tmp_path / "fourth"), "--init-from", str(missing))) == 1
    assert str(missing) in capsys.readouterr().err


def test_cli_widen_duplicate_is_stored_with_the_run_and_needs_init_from(stems_root, tmp_path, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    with pytest.raises(SystemExit):
        wtrain.main(_cli(stems_root, tmp_path, "--out", str(second), "--widen", "duplicate"))
    assert "give --init-from" in capsys.readouterr().err
    assert wtrain.main(_cli(stems_root, tmp_path, "--out", str(first), "--max-steps", "2")) == 0
    assert wtrain.main(_cli(stems_root, tmp_path, "--out", str(second), "--seed", "7", "--max-steps", "1",
                            "--init-from", str(first / "best.pt"), "--widen", "duplicate")) == 0
    started = _last(second)
    assert started["metadata"]["training_args"]["widen"] == "duplicate"
    trained = _last(first)["state_dict"]  # the same size: every weight copied, one Adam step away
    assert all((started["state_dict"][k] - v).abs().max() < 2e-4 for k, v in trained.items())
    assert wtrain.main(["--resume", str(second), "--max-steps", "2", "--no-progress"]) == 0
    assert _last(second)["training"]["state"]["step"] == 2


def test_a_run_keeps_the_post_filter_of_its_init_from_checkpoint_through_resume(stems_root, tmp_path):
    first, second, plain = tmp_path / "first", tmp_path / "second", tmp_path / "plain"
    assert wtrain.main(_cli(stems_root, tmp_path, "--out", str(first), "--max-steps", "2")) == 0
    assert "postfilter" not in _last(first)["metadata"]  # a run from scratch names none
    exported = torch.load(first / "best.pt", weights_only=True)
    exported["metadata"]["postfilter"] = "ratio-mask"  # as scripts/export_model.py --postfilter writes it
    torch.save(exported, tmp_path / "exported.pt")
    assert wtrain.main(_cli(stems_root, tmp_path, "--out", str(second), "--max-steps", "1",
                            "--init-from", str(tmp_path / "exported.pt"))) == 0
    assert _last(second)["metadata"]["postfilter"] == "ratio-mask"
    assert wtrain.main(["--resume", str(second), "--max-steps", "3", "--no-progress"]) == 0
    resumed = _last(second)
    assert resumed["training"]["state"]["step"] == 3 and resumed["metadata"]["postfilter"] == "ratio-mask"
    # and so the evaluation and separation commands apply it to the fine-tuned weights by default
    from wavesep import checkpoint as ck, postfilter
    assert postfilter.resolve("auto", ck.load_model(second / "last.pt").metadata) == "ratio-mask"
    assert wtrain.main(_cli(stems_root, tmp_path, "--out", str(plain), "--max-steps", "1",
                            "--init-from", str(first / "best.pt"))) == 0
    assert "postfilter" not in _last(plain)["metadata"]


def test_unknown_device_is_a_clear_error(stems_root, tmp_path, capsys):
    assert wtrain.main(_cli(stems_root, tmp_path, "--out", str(tmp_path / "r"), "--device", "tpu")) != 0
    assert "unknown device 'tpu'" in capsys.readouterr().err


class ToyValidTracks(ToyWindows):
    """Validation windows plus three whole 2 s tracks: vocals = smoothed noise, accompaniment =
    white noise (independent references, so BSS Eval is well posed)."""

    def tracks(self, limit=None):
        g = torch.Generator().manual_seed(5)
        kernel = torch.ones(1, 1, 9) / 9
        out = []
        for k in range(3):
            vocals = torch.nn.functional.conv1d(torch.randn(2, 1, 44108, generator=g), kernel)[:, 0] * 0.8
            accompaniment = 0.2 * torch.randn(2, 44100, generator=g)
            out.append((f"t{k}", vocals + accompaniment, torch.stack([accompaniment, vocals])))
        return out[:limit]


def test_a_few_validation_tracks_are_scored_with_bss_eval(tmp_path):
    from wavesep.apply import separate
    from wavesep.metrics import bss_eval_v4

    model = _model()
    train_set, _ = _data(model)
    valid_set = ToyValidTracks(model, seed=99, count=6)
    config = _config(epoch_iterations=3, max_epochs=1, finetune=False, valid_tracks=2, valid_track_seconds=1.5)
    train(model, train_set, valid_set, tmp_path / "run", config)
    logged = [r for r in _history(tmp_path / "run") if r["type"] == "epoch"][0]["valid_track_sdr_db"]
    # the same figure computed independently from the trained model (the epoch ended the run)
    medians = []
    for _, mix, targets in valid_set.tracks(2):
        mix, targets = mix[..., :33075], targets[..., :33075]
        est = separate(model, mix, model.sample_rate, device="cpu")
        sdr = bss_eval_v4(targets.permute(0, 2, 1).numpy(), est.permute(0, 2, 1).numpy(), model.sample_rate)[0]
        medians.append(np.nanmedian(sdr, axis=1))
    want = np.median(np.stack(medians), axis=0)
    assert set(logged) == {"accompaniment", "vocals"}
    assert logged["accompaniment"] == pytest.approx(want[0], abs=1e-6)
    assert logged["vocals"] == pytest.approx(want[1], abs=1e-6)


# ---------------------------------------------------------------------- divergence (issue 16)


def test_divergence_before_any_checkpoint_does_not_claim_one_is_kept(tmp_path):
    model = _model()
    train_set = ToyWindows(model, nan_from=0)  # every batch holds a NaN from the start
    result = train(model, train_set, _data(model)[1], tmp_path / "run", _config(max_nonfinite=2))
    assert result.status == "diverged" and result.steps == 2
    assert not (tmp_path / "run" / checkpoint.LAST_NAME).exists()
    assert "kept" not in result.message and "no checkpoint" in result.message


def test_weights_that_become_nonfinite_are_never_saved(tmp_path):
    model = _model()
    train_set, valid_set = _data(model)
    result = train(model, train_set, valid_set, tmp_path / "run", _config(epoch_iterations=1, lr=1e30, max_epochs=3))
    # step 1 blows the weights up (finite, ~1e30, but the outputs overflow): the run stops at
    # the end of that one-iteration epoch, before its last.pt
    assert result.status == "diverged" and "non-finite" in result.message and result.steps == 1
    assert not (tmp_path / "run" / checkpoint.LAST_NAME).exists()
    assert not (tmp_path / "run" / checkpoint.BEST_NAME).exists()
    assert "no checkpoint" in result.message


def test_cli_divergence_is_reported_once(stems_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert wtrain.main(_cli(stems_root, tmp_path, "--out", str(run), "--lr", "1e30", "--max-nonfinite", "2",
                            "--epoch-iterations", "1", "--max-epochs", "4")) == 1
    err = capsys.readouterr().err
    assert err.count("training stopped") == 1, err


@pytest.mark.parametrize("lr", ["1e39", "inf", "nan", "0"])
def test_cli_unusable_learning_rate_is_a_clear_error(stems_root, tmp_path, capsys, lr):
    code = wtrain.main(_cli(stems_root, tmp_path, "--out", str(tmp_path / "run"), "--lr", lr, "--max-steps", "1"))
    err = capsys.readouterr().err
    assert code == 2 and "lr" in err and "Traceback" not in err, err


# ---------------------------------------------------------------------- threads (issue 16)


def test_resume_reuses_the_thread_count_of_the_run(stems_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert wtrain.main(_cli(stems_root, tmp_path, "--out", str(run), "--max-steps", "1", "--threads", "1")) == 0
    assert _last(run)["metadata"]["training_args"]["threads"] == 1
    torch.set_num_threads(2)  # another default in the resuming process (restored by one_thread)
    assert wtrain.main(["--resume", str(run), "--max-steps", "2", "--no-progress"]) == 0
    assert torch.get_num_threads() == 1
    capsys.readouterr()
    assert wtrain.main(["--resume", str(run), "--max-steps", "3", "--no-progress", "--threads", "2"]) == 0
    assert "rounding" in capsys.readouterr().err
    # a run started without --threads stores the count torch used
    torch.set_num_threads(1)
    other = tmp_path / "other"
    assert wtrain.main(_cli(stems_root, tmp_path, "--out", str(other), "--max-steps", "1")) == 0
    assert _last(other)["metadata"]["training_args"]["threads"] == 1


def test_a_run_removes_the_temporaries_a_killed_run_left(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    stale = [run / ".history.jsonl.0123456789ab.tmp", run / ".last.pt.a1b2c3d4e5f6.tmp"]
    for p in stale:
        p.write_bytes(b"half")
        os.utime(p, (1e9, 1e9))
    mine = run / "notes.0123456789ab.tmp"  # not of wavesep's naming
    mine.write_bytes(b"x")
    os.utime(mine, (1e9, 1e9))
    model = _model()
    train(model, *_data(model), run, _config(max_steps=1))
    assert not any(p.exists() for p in stale) and mine.exists()


def test_level_range_option_reaches_the_augmentation():
    from wavesep.data import AugmentConfig
    from wavesep.training.cli import augment_config, parse_args

    args, _ = parse_args(["--synthetic", "corpus", "--out", "run", "--preset", "tiny", "--level-range", "-40", "-10"])
    cfg = augment_config(args)
    assert isinstance(cfg, AugmentConfig)
    assert cfg.level and (cfg.level_low_db, cfg.level_high_db) == (-40.0, -10.0)
    args, _ = parse_args(["--synthetic", "corpus", "--out", "run", "--preset", "tiny"])
    assert augment_config(args) is True  # the defaults: no level augmentation
    assert not AugmentConfig().level
    args, _ = parse_args(["--synthetic", "corpus", "--out", "run", "--no-augment", "--level-range", "-40", "-10"])
    assert augment_config(args) is False


def test_mono_prob_option_reaches_the_augmentation():
    from wavesep.training.cli import augment_config, parse_args

    args, _ = parse_args(["--synthetic", "corpus", "--out", "run", "--preset", "tiny", "--mono-prob", "0.25"])
    cfg = augment_config(args)
    assert cfg.mono and cfg.mono_prob == 0.25 and not cfg.level


def test_backing_option_reaches_the_augmentation_and_the_datasets(monkeypatch):
    from wavesep import data
    from wavesep.training.cli import augment_config, build_datasets_from_args, parse_args

    args, _ = parse_args(["--synthetic", "corpus", "--out", "run", "--preset", "tiny", "--backing", "real",
                          "--backing-prob", "0.3"])
    cfg = augment_config(args)
    assert cfg.backing and cfg.backing_prob == 0.3 and not cfg.level
    args, _ = parse_args(["--synthetic", "corpus", "--out", "run", "--preset", "tiny", "--backing", "real"])
    assert augment_config(args).backing_prob == 0.5
    seen = {}
    monkeypatch.setattr(data, "build_datasets", lambda *a, **k: seen.update(k))
    build_datasets_from_args(args, WaveUNet(presets.get("tiny")))
    assert seen["backing_root"] == "real" and seen["augment"].backing


def test_cache_dtype_option_reaches_the_datasets(monkeypatch):
    from wavesep import data
    from wavesep.training.cli import build_datasets_from_args, parse_args

    seen = {}
    monkeypatch.setattr(data, "build_datasets", lambda *a, **k: seen.update(k))
    for argv, dtype in (([], "float32"), (["--cache-dtype", "float16"], "float16")):
        args, _ = parse_args(["--synthetic", "corpus", "--out", "run", "--preset", "tiny", *argv])
        build_datasets_from_args(args, WaveUNet(presets.get("tiny")))
        assert seen["cache_dtype"] == dtype


def test_vocal_eq_option_reaches_the_augmentation():
    from wavesep.training.cli import augment_config, parse_args

    args, _ = parse_args(["--synthetic", "corpus", "--out", "run", "--preset", "tiny", "--vocal-eq", "0.4"])
    cfg = augment_config(args)
    assert cfg.vocal_eq and cfg.vocal_eq_prob == 0.4 and not cfg.backing


def test_loss_option_reaches_the_train_config():
    from wavesep.training.cli import _config_from_args, parse_args

    args, _ = parse_args(["--synthetic", "corpus", "--out", "run", "--preset", "tiny", "--loss", "level-mse"])
    assert _config_from_args(args).loss == "level-mse"
    args, _ = parse_args(["--synthetic", "corpus", "--out", "run", "--preset", "tiny"])
    assert _config_from_args(args).loss == "mse"
    args, _ = parse_args(["--synthetic", "corpus", "--out", "run", "--preset", "tiny", "--loss", "mse+stft",
                          "--stft-weight", "2e-3"])
    config = _config_from_args(args)
    assert config.loss == "mse+stft" and config.stft_weight == 2e-3

def test_voices_option_reaches_the_augmentation_and_the_datasets(monkeypatch):
    from wavesep import data
    from wavesep.training.cli import augment_config, build_datasets_from_args, parse_args

    args, _ = parse_args(["--synthetic", "corpus", "--out", "run", "--preset", "tiny", "--voices", "v",
                          "--voices-prob", "0.7"])
    cfg = augment_config(args)
    assert cfg.voices and cfg.voices_prob == 0.7 and not cfg.backing and not cfg.vocal_eq
    args, _ = parse_args(["--synthetic", "corpus", "--out", "run", "--preset", "tiny", "--voices", "v"])
    assert augment_config(args).voices_prob == 0.5
    seen = {}
    monkeypatch.setattr(data, "build_datasets", lambda *a, **k: seen.update(k))
    build_datasets_from_args(args, WaveUNet(presets.get("tiny")))
    assert seen["voices_root"] == "v" and seen["augment"].voices
    args, _ = parse_args(["--synthetic", "corpus", "--out", "run", "--preset", "tiny"])
    seen.clear()
    build_datasets_from_args(args, WaveUNet(presets.get("tiny")))
    assert "voices_root" not in seen


@pytest.fixture(scope="module")
def valid_only_corpus(tmp_path_factory):
    """An oscillator corpus with one validation track and no training tracks (--render brings them)."""
    from wavesep.synth import build_corpus

    root = tmp_path_factory.mktemp("corpus")
    build_corpus(root, tracks=0, seconds=2, seed=0, valid_tracks=1, test_tracks=0)
    return root


def _render_cli(corpus, tmp_path, *extra):
    return ["--preset", "tiny", "--synthetic", str(corpus), "--render", "oscillator", "--render-seconds", "2",
            "--render-windows", "3", "--output-samples", "512", "--batch-size", "2", "--finetune-batch-size", "2",
            "--epoch-iterations", "2", "--workers", "0", "--no-progress", "--no-tensorboard", "--cache-dir",
            str(tmp_path / "cache"), *extra]


def test_cli_trains_on_rendered_songs_and_resumes_exactly(valid_only_corpus, tmp_path, capsys):
    a, ref = tmp_path / "a", tmp_path / "ref"
    assert wtrain.main(_render_cli(valid_only_corpus, tmp_path, "--out", str(a), "--max-steps", "3")) == 0
    # resumed with a DataLoader worker: the worker renders its own songs, and the windows are the same
    assert wtrain.main(["--resume", str(a), "--max-steps", "5", "--workers", "1", "--no-progress"]) == 0
    assert wtrain.main(_render_cli(valid_only_corpus, tmp_path, "--out", str(ref), "--max-steps", "5")) == 0
    _assert_same_run(_last(a), _last(ref))
    stored = _last(a)["metadata"]["training_args"]
    assert (stored["render"], stored["render_seconds"], stored["render_windows"]) == ("oscillator", 2.0, 3)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1  # the validation track alone was decoded
    assert wtrain.main(["--resume", str(a), "--render-windows", "4"]) == 1
    assert "--render-windows cannot change" in capsys.readouterr().err


def test_cli_render_refuses_augmentations_that_need_fixed_tracks(valid_only_corpus, tmp_path, capsys):
    argv = _render_cli(valid_only_corpus, tmp_path, "--out", str(tmp_path / "r"), "--backing", str(tmp_path))
    assert wtrain.main(argv) == 1
    err = capsys.readouterr().err
    assert "backing" in err and "on the fly" in err and "Traceback" not in err
