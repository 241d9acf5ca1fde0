"""Closed-form checks of the membership metrics and of LiRA / RMIA's statistics."""

import math

import numpy as np
import pytest
import torch

from attacks.lira import _log_normal, _side_stats
from attacks.rmia import _fraction_dominated
from audit.core.errors import InvalidParameterError
from attacks.membership_signals import balanced_masks
from audit.metrics.membership import membership_metrics, metric_entries
from attacks.membership_signals import logit_confidence, shifted


def test_auc_and_tpr_on_known_rankings():
    truth = np.r_[np.ones(4), np.zeros(4)].astype(bool)
    perfect = membership_metrics(np.r_[5, 6, 7, 8, 1, 2, 3, 4], truth, bootstrap=0)
    assert perfect.auc == 1.0 and perfect.tpr_at_fpr[0.01] == 1.0
    assert perfect.balanced_accuracy == 1.0
    reversed_ = membership_metrics(np.r_[1, 2, 3, 4, 5, 6, 7, 8], truth, bootstrap=0)
    assert reversed_.auc == 0.0 and reversed_.tpr_at_fpr[0.01] == 0.0
    # one non-member above every member: AUC = 12/16, TPR at FPR < 1/4 is 0
    mixed = membership_metrics(np.r_[5, 6, 7, 8, 9, 2, 3, 4], truth, bootstrap=0)
    assert mixed.auc == pytest.approx(12 / 16)
    assert mixed.tpr_at_fpr[0.01] == 0.0
    assert mixed.finest_fpr == 0.25


def test_bootstrap_interval_brackets_auc_and_is_seeded():
    rng = np.random.default_rng(0)
    truth = rng.random(400) < 0.5
    scores = rng.normal(size=400) + truth
    a = membership_metrics(scores, truth, bootstrap=300, seed=1)
    b = membership_metrics(scores, truth, bootstrap=300, seed=1)
    assert a.auc_interval == b.auc_interval
    assert a.auc_interval[0] < a.auc < a.auc_interval[1]
    # the interval width matches the normal approximation of the AUC's standard error
    width = a.auc_interval[1] - a.auc_interval[0]
    assert 0.05 < width < 0.15
    names = [m["name"] for m in metric_entries(a)]
    assert names == ["ROC AUC", "TPR @ 0.1% FPR", "TPR @ 1.0% FPR", "balanced accuracy"]


def test_metrics_reject_bad_input():
    with pytest.raises(InvalidParameterError, match="at least one member"):
        membership_metrics([1.0, 2.0], [True, True])
    with pytest.raises(InvalidParameterError, match="finite"):
        membership_metrics([1.0, float("nan")], [True, False])
    with pytest.raises(InvalidParameterError, match="same length"):
        membership_metrics([1.0, 2.0, 3.0], [True, False])


def test_logit_confidence_matches_definition():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 0.0]])
    labels = torch.tensor([0, 2])
    p = torch.softmax(logits.double(), 1)[torch.arange(2), labels]
    assert torch.allclose(logit_confidence(logits, labels), torch.log(p / (1 - p)))
    # no cancellation for a confident prediction: p = 1 - 1e-30 in double would round to 1
    assert logit_confidence(torch.tensor([[80.0, 0.0]]), torch.tensor([0])).item() == pytest.approx(80.0)


def test_side_stats_match_numpy():
    rng = np.random.default_rng(0)
    signals = torch.tensor(rng.normal(size=(6, 5, 2)))
    mask = torch.tensor(balanced_masks(6, 5, rng))
    assert (mask.sum(0) == 3).all()
    mean, std = _side_stats(signals, mask, fixed=False)
    for n in range(5):
        sel = signals[mask[:, n], n].numpy()
        assert np.allclose(mean[n].numpy(), sel.mean(0))
        assert np.allclose(std[n].numpy(), sel.std(0, ddof=1))
    _, fixed = _side_stats(signals, mask, fixed=True)
    assert torch.allclose(fixed, fixed[0:1].expand_as(fixed))
    assert _log_normal(torch.tensor(1.0), torch.tensor(0.0), torch.tensor(1.0)).item() == pytest.approx(-0.5)


def test_rmia_fraction_counts_dominated_population():
    ratio_z = torch.tensor([0.5, 1.0, 2.0, 4.0], dtype=torch.float64)
    frac = _fraction_dominated(torch.tensor([0.1, 1.0, 3.0, 10.0], dtype=torch.float64), ratio_z, 1.0)
    assert torch.allclose(frac.round(decimals=4), torch.tensor([0.0, 0.5, 0.75, 1.0], dtype=torch.float64))
    # gamma = 2 asks for a ratio twice as high
    frac2 = _fraction_dominated(torch.tensor([3.0], dtype=torch.float64), ratio_z, 2.0)
    assert math.isclose(float(frac2.round(decimals=4)), 0.5)


def test_shift_moves_pixels():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert torch.equal(shifted(x, (0, 1))[..., :, 1:], x[..., :, :3])
    assert torch.equal(shifted(x, (1, 0))[..., 1:, :], x[..., :3, :])
