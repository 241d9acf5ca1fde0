"""Distinguishing-test lower bound on epsilon with Clopper-Pearson intervals (Jagielski,
Ullman, Oprea 2020, "Auditing differentially private machine learning"; Nasr et al. 2021).

An (eps, delta)-DP mechanism forces every test between neighbouring inputs to satisfy
FPR + e^eps FNR >= 1 - delta and FNR + e^eps FPR >= 1 - delta, so with upper confidence
bounds on FPR and FNR

    eps_lb = max( ln((1 - delta - FPR_ub) / FNR_ub), ln((1 - delta - FNR_ub) / FPR_ub) ).

Choices: the threshold and the test's direction are chosen on a random half of each sample
(``selection_fraction``), maximising the bound the other half is predicted to give —
predicted from a Gaussian fit of each side's selection scores when the scores are
continuous (smooth far into the tails, where the optimal threshold of a tight test sits),
from the empirical counts when they are discrete — and scored with a stricter confidence
than the final one; the counts then come from the other half, which was not looked at, so
the bound is valid whatever the score distribution; the two one-sided Clopper-Pearson bounds each use
alpha/2 (Bonferroni), so the stated confidence 1 - alpha covers both at once.
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy.stats import beta, norm

from audit.estimators.result import EmpiricalEpsilon, finite_scores
from audit.validation import check_interval


def clopper_pearson_upper(k: int, n: int, alpha: float) -> float:
    """One-sided upper confidence bound on a binomial rate at level 1 - alpha."""
    return 1.0 if k >= n else float(beta.ppf(1.0 - alpha, k + 1, n - k))


def _eps(fpr, fnr, delta):
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.log(np.clip(1.0 - delta - fpr, 0, None) / fnr)
        b = np.log(np.clip(1.0 - delta - fnr, 0, None) / fpr)
    return np.nan_to_num(np.maximum(a, b), nan=0.0, posinf=np.inf, neginf=0.0)


def _best_threshold(pos: np.ndarray, neg: np.ndarray, delta: float, alpha: float,
                    n_pos: int, n_neg: int, model: bool = False) -> tuple[float, float]:
    """(threshold, sign) maximising the Clopper-Pearson epsilon that "sign * score > t" is
    predicted to reach on held-out samples of sizes (n_pos, n_neg): the selection sample's
    rates scaled to those sizes, so thresholds deeper in the tails than the held-out data
    can resolve lose."""
    best = (-1.0, 0.0, 1.0)
    for sign in (1.0, -1.0):
        p, n = np.sort(sign * pos), np.sort(sign * neg)
        tails = np.geomspace(1e-7, 1e-2, 400)  # the best threshold of a tight test sits far out
        grid = np.concatenate([tails, np.linspace(0.0, 1.0, 4001), 1.0 - tails])
        ts = np.unique(np.quantile(np.concatenate([p, n]), np.clip(grid, 0.0, 1.0)))
        if model:  # Gaussian fit of each side: smooth predicted counts, even far in the tails
            fn = n_pos * norm.cdf((ts - p.mean()) / max(p.std(), 1e-300))
            fp = n_neg * norm.sf((ts - n.mean()) / max(n.std(), 1e-300))
        else:
            fn = np.searchsorted(p, ts, side="right") * (n_pos / len(p))
            fp = (len(n) - np.searchsorted(n, ts, side="right")) * (n_neg / len(n))
        sel = alpha / 40  # stricter in selection: steer away from thresholds resting on a handful of counts
        fnr_ub = np.where(fn >= n_pos, 1.0, beta.ppf(1.0 - sel, fn + 1, np.maximum(n_pos - fn, 1e-9)))
        fpr_ub = np.where(fp >= n_neg, 1.0, beta.ppf(1.0 - sel, fp + 1, np.maximum(n_neg - fp, 1e-9)))
        eps = _eps(fpr_ub, fnr_ub, delta)
        i = int(np.argmax(eps))
        if eps[i] > best[0]:
            best = (float(eps[i]), float(ts[i]), sign)
    return best[1], best[2]


def clopper_pearson_epsilon(scores_with, scores_without, *, delta: float, alpha: float = 0.05,
                            seed: int = 0, selection_fraction: float = 0.5) -> EmpiricalEpsilon:
    """Lower bound on epsilon at confidence 1 - alpha from scores on D (with) and D' (without)."""
    start = time.perf_counter()
    pos, neg = finite_scores(scores_with, "scores_with"), finite_scores(scores_without, "scores_without")
    delta = check_interval("delta", "clopper_pearson_epsilon", delta, low=0, high=1, closed="left")
    alpha = check_interval("alpha", "clopper_pearson_epsilon", alpha, low=0, high=1, closed="neither")
    rng = np.random.default_rng(seed)
    pos, neg = rng.permutation(pos), rng.permutation(neg)
    frac = check_interval("selection_fraction", "clopper_pearson_epsilon", selection_fraction,
                          low=0, high=1, closed="neither")
    hp, hn = max(int(len(pos) * frac), 1), max(int(len(neg) * frac), 1)
    model = min(len(np.unique(pos[:hp])), len(np.unique(neg[:hn]))) > 100  # continuous scores
    t, sign = _best_threshold(pos[:hp], neg[:hn], delta, alpha, len(pos) - hp, len(neg) - hn, model=model)
    p, n = sign * pos[hp:], sign * neg[hn:]
    fn, fp = int((p <= t).sum()), int((n > t).sum())
    fnr_ub = clopper_pearson_upper(fn, len(p), alpha / 2)
    fpr_ub = clopper_pearson_upper(fp, len(n), alpha / 2)
    eps = max(float(_eps(np.array(fpr_ub), np.array(fnr_ub), delta)), 0.0)
    return EmpiricalEpsilon(
        "clopper-pearson", eps if math.isfinite(eps) else 0.0, delta, "lower-bound", 1.0 - alpha,
        len(pos) + len(neg), time.perf_counter() - start,
        {"threshold": t, "direction": sign, "false_positives": fp, "false_negatives": fn,
         "fpr_upper": fpr_ub, "fnr_upper": fnr_ub, "held_out": len(p) + len(n)},
    )
