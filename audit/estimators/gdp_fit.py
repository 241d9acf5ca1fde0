"""GDP fit of an empirical trade-off curve (after Nasr et al. 2023, "Tight auditing of
differentially private machine learning", who audit through f-DP / GDP).

For two Gaussian score distributions shifted by mu, every threshold gives
Phi^-1(1 - FPR) - Phi^-1(FNR) = mu. The estimate takes that quantity over all thresholds
with FPR and FNR in [0.01, 0.99] and reports eps(mu, delta) of mu-GDP.

Choices: the median over thresholds (robust to the noisy tails); the test direction is
the one with the larger mu. An *estimate*, not a bound.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.special import ndtri

from audit.estimators.gdp import gdp_epsilon
from audit.estimators.result import EmpiricalEpsilon, finite_scores
from audit.validation import check_interval


def _mu(pos: np.ndarray, neg: np.ndarray) -> float:
    p, n = np.sort(pos), np.sort(neg)
    ts = np.quantile(np.concatenate([p, n]), np.linspace(0.0, 1.0, 2001))
    fnr = np.searchsorted(p, ts, side="right") / len(p)
    fpr = 1.0 - np.searchsorted(n, ts, side="right") / len(n)
    keep = (fpr >= 0.01) & (fpr <= 0.99) & (fnr >= 0.01) & (fnr <= 0.99)
    if not keep.any():
        return float("inf") if np.median(pos) > np.median(neg) else 0.0
    return float(np.median(ndtri(1 - fpr[keep]) - ndtri(fnr[keep])))


def gdp_fit_epsilon(scores_with, scores_without, *, delta: float) -> EmpiricalEpsilon:
    """Epsilon estimate from a GDP fit of the trade-off between two score samples."""
    start = time.perf_counter()
    pos, neg = finite_scores(scores_with, "scores_with"), finite_scores(scores_without, "scores_without")
    delta = check_interval("delta", "gdp_fit_epsilon", delta, low=0, high=1, closed="neither")
    mu = max(_mu(pos, neg), _mu(-pos, -neg), 0.0)
    eps = gdp_epsilon(mu, delta) if np.isfinite(mu) else float("inf")
    return EmpiricalEpsilon("gdp-fit", eps, delta, "estimate", None, len(pos) + len(neg),
                            time.perf_counter() - start, {"mu": mu})
