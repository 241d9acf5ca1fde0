"""GDP fit of an empirical trade-off curve (after Nasr, Hayes, Steinke, Balle, Tramer,
Jagielski, Carlini, Terzis 2023, "Tight auditing of differentially private machine
learning", USENIX Security, who audit DP-SGD through f-DP / GDP trade-off curves; the curve
G_mu is Dong, Roth, Su 2022, Definition 2.7).

A threshold test "score > t means with" has FPR(t) = P[score > t | D'] and
FNR(t) = P[score <= t | D]. When the two score distributions are N(0, s^2) and N(mu s, s^2),
every threshold lies on the mu-GDP curve FNR = Phi(Phi^-1(1 - FPR) - mu), i.e.

    mu(t) = Phi^-1(1 - FPR(t)) - Phi^-1(FNR(t))   is the same for all t.

The estimator computes mu(t) at every threshold of the pooled sample (every distinct
score, so the empirical curve is used in full), keeps those with FPR and FNR both in
[0.01, 0.99], aggregates them into one mu and reports eps(mu-GDP, delta). It is an
*estimate* under the GDP model, not a bound.

Project choices:

* Aggregate: the median of mu(t) over the kept thresholds (robust to the noisy ends of the
  window, where Phi^-1 amplifies sampling error); not least squares. Thresholds are weighted
  by where the pooled scores lie. The 25% and 75% quantiles of mu(t) are reported: a wide
  spread says the trade-off curve is not GDP-shaped and the estimate should not be trusted.
* Direction: a negative median means "score < t means with" is the better test; mu is its
  absolute value (the curve of the reversed test has mu(t) of the opposite sign).
* Degenerate samples: if the scores of the two sides separate perfectly, mu = inf and
  epsilon = inf (no GDP curve fits; use the Clopper-Pearson bound instead). If no threshold
  falls in the window otherwise (tiny samples), mu falls back to the moment fit
  (mean difference over the pooled standard deviation), flagged in ``details["fit"]``.
* delta must be in (0, 1): at delta = 0 every mu > 0 gives epsilon = inf.
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy.special import ndtri

from audit.privacy.estimators.gdp import gdp_epsilon
from audit.privacy.estimators.result import EmpiricalEpsilon, finite_scores
from audit.core.validation import check_interval

OWNER = "gdp_fit_epsilon"
WINDOW = (0.01, 0.99)


def tradeoff_points(scores_with: np.ndarray, scores_without: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, FNR) of "score > t means with" at every distinct pooled score t (vectorised)."""
    p, n = np.sort(scores_with), np.sort(scores_without)
    ts = np.unique(np.concatenate([p, n]))
    fnr = np.searchsorted(p, ts, side="right") / len(p)
    fpr = 1.0 - np.searchsorted(n, ts, side="right") / len(n)
    return fpr, fnr


def gdp_fit_epsilon(scores_with, scores_without, *, delta: float) -> EmpiricalEpsilon:
    """Epsilon estimate from a GDP fit of the trade-off between two score samples.

    Args:
        scores_with: 1-D scores on outputs of the mechanism on D (with the canary), at least
            2 finite values.
        scores_without: 1-D scores on outputs on D' (without), at least 2 finite values.
        delta: Target delta, in (0, 1).

    Returns:
        An :class:`EmpiricalEpsilon` (nature "estimate", confidence None, trials = both
        sample sizes) with details mu, its interquartile range over thresholds, the number
        of thresholds used, the test direction and how mu was fitted.
    """
    start = time.perf_counter()
    pos = finite_scores(scores_with, "scores_with", OWNER)
    neg = finite_scores(scores_without, "scores_without", OWNER)
    delta = check_interval("delta", OWNER, delta, low=0, high=1, closed="neither")
    fpr, fnr = tradeoff_points(pos, neg)
    lo, hi = WINDOW
    keep = (fpr >= lo) & (fpr <= hi) & (fnr >= lo) & (fnr <= hi)
    quartiles: list[float | None] = [None, None]
    if keep.any():
        per_t = ndtri(1.0 - fpr[keep]) - ndtri(fnr[keep])
        signed = float(np.median(per_t))
        quartiles = [float(q) for q in np.quantile(per_t, [0.25, 0.75])]
        fit = "median"
    elif pos.min() > neg.max() or pos.max() < neg.min():
        signed = math.inf if pos.min() > neg.max() else -math.inf
        fit = "separated"
    else:
        pooled = math.sqrt((pos.var(ddof=1) + neg.var(ddof=1)) / 2.0)
        signed = float(pos.mean() - neg.mean()) / pooled if pooled > 0 else 0.0
        fit = "moments"
    mu = abs(signed)
    if signed < 0 and quartiles[0] is not None:  # report the reversed test's mu(t) quartiles
        quartiles = [-quartiles[1], -quartiles[0]]
    eps = gdp_epsilon(mu, delta)
    details = {
        "mu": mu, "direction": "greater" if signed >= 0 else "less", "fit": fit,
        "mu_q25": quartiles[0], "mu_q75": quartiles[1], "thresholds_used": int(keep.sum()),
        "window": list(WINDOW),
    }
    return EmpiricalEpsilon("gdp-fit", eps, delta, "estimate", None, len(pos) + len(neg),
                            time.perf_counter() - start, details)
