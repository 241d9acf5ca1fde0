"""Tightness of the empirical-epsilon estimators on a correct Gaussian mechanism.

White-box: the auditor scores the mechanism's output itself (sensitivity 1, one release),
sigma from the exact Gaussian-mechanism formula so the true epsilon at delta = 1e-5 equals
the claim. Prints, for epsilon_claim in {1, 2, 4}: the Clopper-Pearson bound with 10^6
trials per side at 95%, the GDP-fit estimate, and the one-run bound with 10^3 and 10^4
canaries (best of k in {10, 30, 100, 300, 1000} guesses per side, union-bounded), each with
its wall-clock time.

Usage: ``python3 benchmarks/audit_tightness.py [--trials 1000000] [--seed 0]``
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy.optimize import brentq
from scipy.stats import norm

from audit.privacy.estimators import best_one_run_epsilon, clopper_pearson_epsilon, gdp_fit_epsilon

DELTA = 1e-5


def sigma_for(eps: float) -> float:
    def gap(s):
        mu = 1.0 / s
        return norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2) - DELTA

    return brentq(gap, 0.05, 100.0)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"{'eps_claim':>9} | {'CP bound (ratio)':>18} {'s':>5} | {'GDP fit (ratio)':>17} {'s':>5} | "
          f"{'one-run 1e3':>11} {'s':>5} | {'one-run 1e4':>11} {'s':>5}")
    for eps in (1.0, 2.0, 4.0):
        s = sigma_for(eps)
        (w, wo), t_sample = timed(lambda: (rng.normal(1.0, s, args.trials), rng.normal(0.0, s, args.trials)))
        cp, t_cp = timed(lambda: clopper_pearson_epsilon(w, wo, delta=DELTA, seed=args.seed))
        fit, t_fit = timed(lambda: gdp_fit_epsilon(w, wo, delta=DELTA))
        runs = []
        for m in (1_000, 10_000):
            def one_run(m=m):
                inc = rng.random(m) < 0.5
                scores = rng.normal(inc.astype(float), s)
                ks = [k for k in (10, 30, 100, 300, 1000) if 2 * k <= m]
                return best_one_run_epsilon(scores, inc, delta=DELTA, ks=ks)
            runs.append(timed(one_run))
        print(f"{eps:9.1f} | {cp.epsilon:8.3f} ({cp.epsilon / eps:4.2f}x) {t_cp + t_sample:5.1f} | "
              f"{fit.epsilon:7.3f} ({fit.epsilon / eps:4.2f}x) {t_fit + t_sample:5.1f} | "
              f"{runs[0][0].epsilon:11.3f} {runs[0][1]:5.1f} | {runs[1][0].epsilon:11.3f} {runs[1][1]:5.1f}")
    print(f"trials per side: {args.trials}; confidence 95%; delta {DELTA}")


if __name__ == "__main__":
    main()
