"""Metrics against closed forms; baselines and worst cases; Hungarian matching."""

import numpy as np
import pytest
import torch

from audit.core.errors import InvalidParameterError
from audit.metrics.matching import match_to_truth
from audit.metrics.image import mse, psnr, score_reconstructions, ssim


def test_psnr_of_constant_offset_is_exact():
    truth = torch.full((2, 3, 8, 8), 0.5)
    assert psnr(truth + 0.1, truth) == pytest.approx([20.0, 20.0])
    assert mse(truth + 0.1, truth) == pytest.approx([0.01, 0.01])


def test_exact_reconstruction_reads_120_db_not_inf():
    x = torch.rand(1, 1, 8, 8)
    assert psnr(x, x)[0] == pytest.approx(120.0)


def test_ssim_identical_is_one_and_negation_is_low():
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert ssim(x, x) == pytest.approx([1.0, 1.0])
    assert (ssim(1 - x, x) < 0).all()


def test_ssim_on_8x8_grayscale():
    x = torch.rand(1, 1, 8, 8)
    assert ssim(x, x)[0] == pytest.approx(1.0)


def test_summaries_baselines_and_worst_case():
    truth = torch.full((3, 1, 8, 8), 0.5)
    recon = truth + torch.tensor([0.1, 0.01, 0.3]).reshape(3, 1, 1, 1)
    baseline = torch.full((1, 8, 8), 0.6)
    out = {m.name: m for m in score_reconstructions(recon, truth, baseline_image=baseline)}
    assert out["psnr"].worst == pytest.approx(40.0, rel=1e-5)  # most leaking: the 0.01 offset
    assert out["mse"].worst == pytest.approx(1e-4, rel=1e-4)  # float32 input
    assert out["psnr"].baseline.mean == pytest.approx(20.0)
    assert out["psnr"].mean == pytest.approx(np.mean(psnr(recon, truth)))
    assert out["lpips"].mean is None and "LPIPS not computed" in out["lpips"].note
    assert out["psnr"].to_dict()["baseline"]["description"] == "dataset-mean image"


@pytest.mark.parametrize("bad", [torch.full((1, 1, 8, 8), float("nan")), torch.zeros(2, 1, 8, 8)])
def test_bad_inputs_raise(bad):
    with pytest.raises(InvalidParameterError):
        mse(bad, torch.zeros(1, 1, 8, 8))


def test_hungarian_matching_undoes_a_shuffle():
    truth = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    order = torch.tensor([3, 0, 5, 1, 4, 2])
    perm = match_to_truth(truth[order], truth)
    assert torch.equal(truth[order][torch.as_tensor(perm)], truth)
    assert match_to_truth(truth[:1], truth[:1]).tolist() == [0]
