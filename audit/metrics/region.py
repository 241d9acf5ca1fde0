"""Reconstruction metrics restricted to a region of each image (e.g. the PSI regions of a
document: tax numbers, invoice numbers, totals), and to its complement.

FedRE (arXiv 2505.04889) scores gradient inversion *inside* the privacy-sensitive regions:
what matters is whether the attacker can read the tax number, not whether the page's
background came back.

Choices: region MSE/PSNR average the squared error over the region's pixels and all
channels; region SSIM averages scikit-image's full SSIM map (per pixel, mean over channels)
over the region; region LPIPS averages LPIPS's spatial distance map over the region. An
image whose region is empty has no value (``None``) and is left out of the mean and worst
case. PSNR floors the MSE as :mod:`audit.metrics.image` does. The baseline is the same metric for
the dataset-mean image.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import structural_similarity

from audit.core.errors import InvalidParameterError
from audit.metrics.image import MSE_FLOOR, Baseline, MetricSummary, _pair

__all__ = ["region_mse", "region_psnr", "region_ssim", "score_regions"]


def _masks(masks, shape) -> np.ndarray:
    m = masks.detach().cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
    m = m.astype(bool)
    if m.shape != (shape[0], *shape[2:]):
        raise InvalidParameterError(
            f"The 'masks' must have shape (N, H, W) = {(shape[0], *shape[2:])}. Got {m.shape} "
            "instead.")
    return m


def _masked_mean(per_pixel: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Mean of (N, H, W) values over each image's mask; NaN where the mask is empty."""
    counts = m.reshape(len(m), -1).sum(axis=1)
    sums = (per_pixel * m).reshape(len(m), -1).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def region_mse(recon, truth, masks) -> np.ndarray:
    """MSE over each image's region (all channels); NaN for an empty region."""
    r, t = _pair(recon, truth)
    return _masked_mean(((r - t) ** 2).mean(axis=1), _masks(masks, t.shape))


def region_psnr(recon, truth, masks, *, data_range: float = 1.0) -> np.ndarray:
    """PSNR over each image's region, in dB; NaN for an empty region."""
    err = region_mse(recon, truth, masks)
    with np.errstate(invalid="ignore"):
        return 10.0 * np.log10(data_range**2 / np.maximum(err, MSE_FLOOR))


def region_ssim(recon, truth, masks, *, data_range: float = 1.0) -> np.ndarray:
    """Mean of the SSIM map over each image's region; NaN for an empty region."""
    r, t = _pair(recon, truth)
    m = _masks(masks, t.shape)
    win = min(7, min(r.shape[-2:]))
    win = win if win % 2 == 1 else win - 1
    maps = np.stack([
        structural_similarity(ri.transpose(1, 2, 0), ti.transpose(1, 2, 0), data_range=data_range,
                              channel_axis=-1, win_size=win, full=True)[1].mean(axis=-1)
        for ri, ti in zip(r, t)])
    return _masked_mean(maps, m)


def region_lpips(scorer, recon, truth, masks) -> np.ndarray:
    """Mean of LPIPS's spatial distance map over each image's region."""
    r, t = _pair(recon, truth)
    return _masked_mean(scorer.spatial(r, t), _masks(masks, t.shape))


def _summary(name: str, unit: str, direction: str, values: np.ndarray,
             baseline: np.ndarray | None, note: str | None = None) -> MetricSummary:
    ok = np.isfinite(values)
    per_item = tuple(float(v) if k else None for v, k in zip(values, ok))
    if not ok.any():
        return MetricSummary(name, unit, direction, per_item, None, None, None,
                             note or "every region is empty")
    v = values[ok]
    worst = float(v.max() if direction == "higher-leaks-more" else v.min())
    base = None
    if baseline is not None:
        b = baseline[ok]
        base = Baseline("dataset-mean image", float(b.mean()),
                        float(b.max() if direction == "higher-leaks-more" else b.min()))
    skipped = int((~ok).sum())
    extra = f"{skipped} image(s) with an empty region left out" if skipped else None
    return MetricSummary(name, unit, direction, per_item, float(v.mean()), worst, base,
                         "; ".join(x for x in (note, extra) if x) or None)


def score_regions(recon, truth, masks, *, baseline_image, lpips_scorer=None,
                  label: str = "PSI") -> list[MetricSummary]:
    """MSE, PSNR, SSIM (and LPIPS when available) inside each image's region, named
    ``"<metric> (<label>)"``, and outside it, ``"<metric> (outside <label>)"``."""
    r, t = _pair(recon, truth)
    m = _masks(masks, t.shape)
    b = np.broadcast_to(np.asarray(torch.as_tensor(baseline_image).detach().cpu().double())[None],
                        t.shape).copy()
    fns = (("mse", "", "lower-leaks-more", region_mse), ("psnr", "dB", "higher-leaks-more", region_psnr),
           ("ssim", "", "higher-leaks-more", region_ssim))
    out = []
    for region, mask in ((label, m), (f"outside {label}", ~m)):
        for name, unit, direction, fn in fns:
            out.append(_summary(f"{name} ({region})", unit, direction, fn(r, t, mask),
                                fn(b, t, mask)))
        if lpips_scorer is not None and lpips_scorer.available:
            out.append(_summary(f"lpips ({region})", "", "lower-leaks-more",
                                region_lpips(lpips_scorer, r, t, mask),
                                region_lpips(lpips_scorer, b, t, mask)))
        else:
            note = (lpips_scorer.reason if lpips_scorer is not None
                    else "LPIPS not computed: no scorer given")
            out.append(MetricSummary(f"lpips ({region})", "", "lower-leaks-more",
                                     tuple(None for _ in r), None, None, None, note))
    return out
