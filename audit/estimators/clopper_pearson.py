"""Distinguishing-test lower bound on epsilon with Clopper-Pearson intervals (Jagielski,
Ullman, Oprea 2020, "Auditing differentially private machine learning"; Nasr et al. 2021).

An (eps, delta)-DP mechanism forces every test between neighbouring inputs to satisfy
FPR + e^eps FNR >= 1 - delta and FNR + e^eps FPR >= 1 - delta, so with upper confidence
bounds on FPR and FNR

    eps_lb = max( ln((1 - delta - FPR_ub) / FNR_ub), ln((1 - delta - FNR_ub) / FPR_ub) ).

Choices: the threshold and the test's direction are chosen on a random half of each sample,
the counts come from the other half; the two one-sided Clopper-Pearson bounds each use
alpha/2 (Bonferroni), so the stated confidence 1 - alpha covers both at once.
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy.stats import beta

from audit.errors import InvalidParameterError
from audit.estimators.result import EmpiricalEpsilon
from audit.validation import check_interval


def _scores(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float).reshape(-1)
    if a.size < 2 or not np.isfinite(a).all():
        raise InvalidParameterError(
            f"The {name!r} parameter must hold at least 2 finite scores. Got {a.size} values instead."
        )
    return a


def clopper_pearson_upper(k: int, n: int, alpha: float) -> float:
    """One-sided upper confidence bound on a binomial rate at level 1 - alpha."""
    return 1.0 if k >= n else float(beta.ppf(1.0 - alpha, k + 1, n - k))


def _eps(fpr, fnr, delta):
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.log(np.clip(1.0 - delta - fpr, 0, None) / fnr)
        b = np.log(np.clip(1.0 - delta - fnr, 0, None) / fpr)
    return np.nan_to_num(np.maximum(a, b), nan=0.0, posinf=np.inf, neginf=0.0)


def _best_threshold(pos: np.ndarray, neg: np.ndarray, delta: float, alpha: float) -> tuple[float, float]:
    """(threshold, sign) maximising the *Clopper-Pearson* epsilon of "sign * score > t" on
    this half, so thresholds in the sparse tails (few counts, wide intervals) lose."""
    best = (-1.0, 0.0, 1.0)
    for sign in (1.0, -1.0):
        p, n = np.sort(sign * pos), np.sort(sign * neg)
        ts = np.unique(np.quantile(np.concatenate([p, n]), np.linspace(0.0, 1.0, 4001)))
        fn = np.searchsorted(p, ts, side="right")
        fp = len(n) - np.searchsorted(n, ts, side="right")
        fnr_ub = np.where(fn >= len(p), 1.0, beta.ppf(1.0 - alpha / 2, fn + 1, len(p) - fn))
        fpr_ub = np.where(fp >= len(n), 1.0, beta.ppf(1.0 - alpha / 2, fp + 1, len(n) - fp))
        eps = _eps(fpr_ub, fnr_ub, delta)
        i = int(np.argmax(eps))
        if eps[i] > best[0]:
            best = (float(eps[i]), float(ts[i]), sign)
    return best[1], best[2]


def clopper_pearson_epsilon(scores_with, scores_without, *, delta: float, alpha: float = 0.05,
                            seed: int = 0) -> EmpiricalEpsilon:
    """Lower bound on epsilon at confidence 1 - alpha from scores on D (with) and D' (without)."""
    start = time.perf_counter()
    pos, neg = _scores(scores_with, "scores_with"), _scores(scores_without, "scores_without")
    delta = check_interval("delta", "clopper_pearson_epsilon", delta, low=0, high=1, closed="left")
    alpha = check_interval("alpha", "clopper_pearson_epsilon", alpha, low=0, high=1, closed="neither")
    rng = np.random.default_rng(seed)
    pos, neg = rng.permutation(pos), rng.permutation(neg)
    hp, hn = len(pos) // 2, len(neg) // 2
    t, sign = _best_threshold(pos[:hp], neg[:hn], delta, alpha)
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
