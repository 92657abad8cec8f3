"""Tests of wavesep.training.losses."""

import math

import pytest
import torch
import torch.nn.functional as F

from wavesep.training import TrainConfig
from wavesep.training.losses import TrainingLoss, training_loss


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
    with pytest.raises(ValueError, match="stft_weight"):
        TrainConfig(loss="mse+stft", stft_weight=0.0)
    with pytest.raises(ValueError, match="loss must be one of"):
        TrainConfig(loss="l3")


def test_l1_is_the_mean_absolute_error():
    tgt = torch.zeros(2, 2, 2, 50)
    est = tgt.clone()
    est[0] += 0.5  # half of the elements off by 0.5, the other half exact
    assert math.isclose(training_loss(est, tgt, "l1").item(), 0.25, rel_tol=1e-6)


def test_mse_plus_stft_adds_auraloss_multi_resolution_term_over_each_window_and_source():
    auraloss = pytest.importorskip("auraloss")
    est, tgt = zip(*(_window(-20.0 - 6 * s, s) for s in range(2)))
    est, tgt = torch.stack(est), torch.stack(tgt)  # (2, S, C, T)
    loss = TrainingLoss("mse+stft", stft_weight=1e-3)
    # the reference: auraloss itself, called on the (window, source) pairs as its (batch, channel) signals
    stft = auraloss.freq.MultiResolutionSTFTLoss()(est.reshape(4, 2, -1), tgt.reshape(4, 2, -1))
    expected = F.mse_loss(est, tgt) + 1e-3 * stft
    assert torch.allclose(loss(est, tgt), expected, rtol=1e-6)
    assert stft.item() > 0.05  # the noise in the estimates is seen by the STFT term
    # a perfect estimate: both terms vanish (spectral convergence and log-magnitude distance 0)
    assert loss(tgt, tgt).item() == pytest.approx(0.0, abs=1e-7)


def test_mse_plus_stft_weighs_a_quiet_window_unlike_mse():
    pytest.importorskip("auraloss")
    est, tgt = _window(-20.0, 0)
    quiet_est, quiet_tgt = est * 0.01, tgt * 0.01  # the same window 40 dB down
    stft_only = lambda e, t: (TrainingLoss("mse+stft", 1.0)(e[None], t[None])  # noqa: E731
                              - F.mse_loss(e[None], t[None]))
    # MSE falls by 10^4 with the level; the STFT term (spectral convergence, log magnitudes) keeps
    # its size: the relative error is the same
    assert math.isclose(F.mse_loss(quiet_est, quiet_tgt).item(), 1e-4 * F.mse_loss(est, tgt).item(), rel_tol=1e-4)
    assert stft_only(quiet_est, quiet_tgt).item() == pytest.approx(stft_only(est, tgt).item(), rel=0.05)


def test_mse_plus_stft_leaves_out_resolutions_too_long_for_the_window_and_refuses_tiny_windows():
    pytest.importorskip("auraloss")
    from wavesep.errors import WavesepError

    est, tgt = _window(-20.0, 0)
    short_est, short_tgt = est[None, ..., :500], tgt[None, ..., :500]  # only the 512-point FFT fits
    loss = TrainingLoss("mse+stft", 1.0)
    assert torch.isfinite(loss(short_est, short_tgt)) and loss._resolutions == ((512, 50, 240),)
    with pytest.raises(WavesepError, match="more than 256 samples, got 200"):
        loss(est[None, ..., :200], tgt[None, ..., :200])


def test_sdr_loss_closed_form_with_a_silent_target():
    # one window, two sources, one channel, 100 samples: vocals 1.0 everywhere, estimated 1.1;
    # a silent accompaniment estimated 0.05 (a leak). Energies: |t0|^2 = 100, |x|^2 = 100,
    # errors 100 * 0.01 = 1 and 100 * 0.0025 = 0.25; tau = 1e-3.
    tgt = torch.zeros(1, 2, 1, 100)
    tgt[0, 0] = 1.0
    est = torch.full((1, 2, 1, 100), 0.05)
    est[0, 0] = 1.1
    first = 10 * math.log10(1 + 0.1 + 0.1) - 10 * math.log10(100 + 0.1)
    second = 10 * math.log10(0.25 + 0.1) - 10 * math.log10(0.1)  # 10 log10(1 + |e|^2 / (tau |x|^2))
    assert training_loss(est, tgt, "sdr").item() == pytest.approx((first + second) / 2, rel=1e-5)
    # a perfect estimate of the silent source costs nothing; of the other, the cap
    est[0, 1] = 0.0
    est[0, 0] = 1.0
    cap = 10 * math.log10(1e-3 * (100 + 100) / (100 + 0.1))
    assert training_loss(est, tgt, "sdr").item() == pytest.approx(cap / 2, rel=1e-5)


def test_sdr_loss_is_level_independent_and_finite_on_silence():
    est, tgt = _window(-20.0, 3)
    loud = training_loss(est[None], tgt[None], "sdr").item()
    for k in (1e-2, 10.0):
        assert training_loss(k * est[None], k * tgt[None], "sdr").item() == pytest.approx(loud, abs=1e-3)
    silence = torch.zeros(1, 2, 2, 50)
    assert training_loss(silence, silence, "sdr").item() == 0.0
