"""Tests of wavesep.training.losses."""

import math

import pytest
import torch
import torch.nn.functional as F

from wavesep.training import TrainConfig
from wavesep.training.losses import training_loss


def _window(level_db, seed):
    g = torch.Generator().manual_seed(seed)
    targets = torch.randn(2, 2, 4000, generator=g)  # (S, C, T)
    targets *= 10 ** (level_db / 20) / targets.sum(0).pow(2).mean().sqrt()  # mixture at level_db dBFS RMS
    estimates = targets + 0.1 * targets.abs().mean() * torch.randn(2, 2, 4000, generator=g)
    return estimates, targets


def test_level_mse_equals_mse_at_minus_20_dbfs():
    est, tgt = zip(*(_window(-20.0, s) for s in range(3)))
    est, tgt = torch.stack(est), torch.stack(tgt)
    assert torch.allclose(training_loss(est, tgt, "level-mse"), F.mse_loss(est, tgt), rtol=1e-5)
    assert torch.equal(training_loss(est, tgt, "mse"), F.mse_loss(est, tgt))


def test_level_mse_weighs_every_level_the_same():
    est, tgt = _window(-20.0, 0)
    reference = training_loss(est[None], tgt[None], "level-mse")
    for gain_db in (-30.0, -10.0, 10.0):
        k = 10 ** (gain_db / 20)
        scaled = training_loss(k * est[None], k * tgt[None], "level-mse")
        assert math.isclose(scaled.item(), reference.item(), rel_tol=1e-4)
        # plain MSE scales with the power: a quiet window hardly counts
        assert math.isclose(training_loss(k * est[None], k * tgt[None]).item(),
                            k * k * F.mse_loss(est, tgt).item(), rel_tol=1e-4)
    # a batch of a loud and a quiet window: each contributes half
    quiet = 0.01 * est, 0.01 * tgt
    both = training_loss(torch.stack([est, quiet[0]]), torch.stack([tgt, quiet[1]]), "level-mse")
    assert math.isclose(both.item(), reference.item(), rel_tol=1e-4)


def test_level_mse_floors_silent_windows_and_unknown_losses_fail():
    est = torch.full((1, 2, 2, 100), 1e-4)
    tgt = torch.zeros(1, 2, 2, 100)
    expected = (1e-8) * (10 ** -2) / (10 ** -6)  # mse 1e-8, weight (-20 dBFS) / (-60 dBFS floor)
    assert math.isclose(training_loss(est, tgt, "level-mse").item(), expected, rel_tol=1e-4)
    with pytest.raises(ValueError, match="unknown loss"):
        training_loss(est, tgt, "l3")
    with pytest.raises(ValueError, match="loss must be one of"):
        TrainConfig(loss="l3")
