"""Image reconstruction metrics, per image, then mean and worst case, beside a baseline.

MSE and PSNR (closed forms), SSIM (Wang et al. 2004, via scikit-image), LPIPS (see
:mod:`audit.metrics.lpips_metric`). Inputs are (N, C, H, W) in [0, 1].

Choices: PSNR floors the MSE at 1e-12 so an exact reconstruction reads 120 dB, never
infinity (JSON has no infinity); SSIM's window is 7 or the largest odd size that fits;
"worst case" is the *most leaking* image (highest PSNR/SSIM, lowest MSE/LPIPS), the
defender's worst case; the baseline is the same metric for the trivial reconstruction, the
dataset-mean image, against every ground-truth image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from skimage.metrics import structural_similarity

from audit.core.errors import InvalidParameterError

MSE_FLOOR = 1e-12


def _np(x, name: str) -> np.ndarray:
    a = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, float)
    if a.ndim != 4:
        raise InvalidParameterError(f"The {name!r} images must have shape (N, C, H, W). Got shape {a.shape} instead.")
    if not np.isfinite(a).all():
        raise InvalidParameterError(f"The {name!r} images must be finite. Got a NaN or infinite value instead.")
    return a


def _pair(recon, truth) -> tuple[np.ndarray, np.ndarray]:
    r, t = _np(recon, "recon"), _np(truth, "truth")
    if r.shape != t.shape:
        raise InvalidParameterError(f"The 'recon' images must have the shape of 'truth' {t.shape}. Got {r.shape} instead.")
    return r, t


def mse(recon, truth) -> np.ndarray:
    """Mean squared error per image."""
    r, t = _pair(recon, truth)
    return ((r - t) ** 2).reshape(len(r), -1).mean(axis=1)


def psnr(recon, truth, *, data_range: float = 1.0) -> np.ndarray:
    """Peak signal-to-noise ratio per image, in dB (MSE floored at 1e-12)."""
    return 10.0 * np.log10(data_range**2 / np.maximum(mse(recon, truth), MSE_FLOOR))


def ssim(recon, truth, *, data_range: float = 1.0) -> np.ndarray:
    """Structural similarity per image (scikit-image, channels as the last axis)."""
    r, t = _pair(recon, truth)
    win = min(7, min(r.shape[-2:]))
    win = win if win % 2 == 1 else win - 1
    return np.array(
        [
            structural_similarity(
                ri.transpose(1, 2, 0), ti.transpose(1, 2, 0), data_range=data_range,
                channel_axis=-1, win_size=win,
            )
            for ri, ti in zip(r, t)
        ]
    )


@dataclass(frozen=True)
class Baseline:
    """The same metric for a trivial reconstruction."""

    description: str
    mean: float | None
    worst: float | None


@dataclass(frozen=True)
class MetricSummary:
    """One metric over a set of items, with its baseline."""

    name: str
    unit: str
    direction: str  # "higher-leaks-more" | "lower-leaks-more"
    per_item: tuple[float | None, ...]
    mean: float | None
    worst: float | None
    baseline: Baseline | None
    note: str | None = None

    def to_dict(self) -> dict:
        """JSON-ready form (the report's metric entry)."""
        return {
            "name": self.name,
            "unit": self.unit,
            "direction": self.direction,
            "mean": self.mean,
            "worst": self.worst,
            "per_item": list(self.per_item),
            "baseline": None
            if self.baseline is None
            else {"description": self.baseline.description, "mean": self.baseline.mean, "worst": self.baseline.worst},
            "note": self.note,
        }


_METRICS = (("mse", "", "lower-leaks-more"), ("psnr", "dB", "higher-leaks-more"), ("ssim", "", "higher-leaks-more"))


def _worst(values: np.ndarray, direction: str) -> float:
    return float(values.max() if direction == "higher-leaks-more" else values.min())


def summarize(name: str, unit: str, direction: str, values: np.ndarray, baseline: np.ndarray | None, description: str) -> MetricSummary:
    """A :class:`MetricSummary` from per-item values and per-item baseline values."""
    base = None
    if baseline is not None:
        base = Baseline(description, float(baseline.mean()), _worst(baseline, direction))
    return MetricSummary(
        name, unit, direction, tuple(float(v) for v in values), float(values.mean()), _worst(values, direction), base
    )


def score_reconstructions(recon, truth, *, baseline_image, lpips_scorer=None) -> list[MetricSummary]:
    """MSE, PSNR, SSIM and LPIPS of aligned reconstructions, each beside the dataset-mean baseline."""
    r, t = _pair(recon, truth)
    b = np.broadcast_to(_np(torch.as_tensor(np.asarray(baseline_image))[None], "baseline_image"), t.shape).copy()
    fns = {"mse": mse, "psnr": psnr, "ssim": ssim}
    out = [summarize(n, u, d, fns[n](r, t), fns[n](b, t), "dataset-mean image") for n, u, d in _METRICS]
    if lpips_scorer is not None and lpips_scorer.available:
        out.append(summarize("lpips", "", "lower-leaks-more", lpips_scorer(r, t), lpips_scorer(b, t), "dataset-mean image"))
    else:
        note = lpips_scorer.reason if lpips_scorer is not None else "LPIPS not computed: no scorer given"
        out.append(MetricSummary("lpips", "", "lower-leaks-more", tuple(None for _ in r), None, None, None, note))
    return out
