"""Region-restricted reconstruction metrics against closed forms."""

import math

import numpy as np
import pytest
import torch

from audit.core.errors import InvalidParameterError
from audit.metrics.region import region_mse, region_psnr, region_ssim, score_regions


def _case():
    g = torch.Generator().manual_seed(0)
    truth = torch.rand(3, 3, 16, 16, generator=g)
    masks = torch.zeros(3, 16, 16, dtype=torch.bool)
    masks[0, 2:6, 3:9] = True
    masks[1, 10:14, 0:16] = True  # image 2: empty region
    recon = truth.clone()
    recon[:, :, masks.any(0)] += 0.0
    recon[0, :, 2:6, 3:9] += 0.1  # error 0.1 exactly inside image 0's region
    return recon.clamp(-10, 10), truth, masks


def test_region_mse_and_psnr_closed_form():
    recon, truth, masks = _case()
    inside = region_mse(recon, truth, masks)
    assert inside[0] == pytest.approx(0.01) and inside[1] == pytest.approx(0.0)
    assert math.isnan(inside[2])
    assert region_psnr(recon, truth, masks)[0] == pytest.approx(20.0)
    outside = region_mse(recon, truth, ~masks)
    assert outside[0] == pytest.approx(0.0) and outside[2] == pytest.approx(0.0)


def test_region_ssim_is_one_where_nothing_changed_and_lower_where_it_did():
    recon, truth, masks = _case()
    s = region_ssim(recon, truth, masks)
    assert s[1] == pytest.approx(1.0) and s[0] < 1.0 and math.isnan(s[2])


def test_score_regions_names_baseline_and_empty_items():
    recon, truth, masks = _case()
    out = {m.name: m for m in score_regions(recon, truth, masks, baseline_image=truth.mean(0))}
    assert set(out) == {f"{m} ({r})" for m in ("mse", "psnr", "ssim", "lpips")
                        for r in ("PSI", "outside PSI")}
    psnr = out["psnr (PSI)"]
    assert psnr.per_item[2] is None and psnr.mean == pytest.approx((20.0 + 120.0) / 2)
    assert psnr.worst == pytest.approx(120.0) and "1 image(s) with an empty region" in psnr.note
    assert psnr.baseline.mean < 20.0
    assert out["lpips (PSI)"].mean is None and "LPIPS not computed" in out["lpips (PSI)"].note


def test_bad_mask_shape_is_rejected():
    recon, truth, _ = _case()
    with pytest.raises(InvalidParameterError, match="masks"):
        region_mse(recon, truth, np.ones((3, 8, 8), bool))


def test_region_lpips_averages_the_spatial_map_over_the_region():
    recon, truth, masks = _case()

    class FakeScorer:  # LPIPS weights are not shipped; the map's averaging is what we test
        available = True
        reason = None

        def spatial(self, r, t):
            n, _, h, w = np.asarray(t).shape
            return np.broadcast_to(np.arange(w, dtype=float), (n, h, w)).copy()

        def __call__(self, r, t):
            return np.zeros(len(t))

    out = {m.name: m for m in score_regions(recon, truth, masks, baseline_image=truth.mean(0),
                                            lpips_scorer=FakeScorer())}
    # image 0's region spans columns 3..8: mean column index 5.5; image 1's spans all: 7.5
    assert out["lpips (PSI)"].per_item[:2] == (pytest.approx(5.5), pytest.approx(7.5))
    assert out["lpips (PSI)"].per_item[2] is None
