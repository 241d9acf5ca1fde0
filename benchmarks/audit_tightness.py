"""Tightness of the empirical-epsilon estimators on a correct Gaussian mechanism.

White-box: the auditor scores the mechanism's output itself (sensitivity 1, one release),
sigma from the exact Gaussian-mechanism formula so the true epsilon at delta = 1e-5 equals
the claim. For epsilon_claim in {1, 2, 4, 8} and 10^3 / 10^4 canaries, over ``--seeds``
seeds (default 5), prints the mean epsilon_emp / epsilon of three one-run lower bounds read
from the same canary scores: Steinke, Nasr, Jagielski 2023 ("steinke"), f-DP in one run
with mu-GDP hypotheses (Mahloujifar, Melis, Chaudhuri 2025, "fdp"), and the Gaussian
aggregate (noncentral-t bound on all canaries, "gauss"); guess budgets k in {10, 30, 100,
300, 1000} per side, union-bounded; 95% confidence. Then ``--null-runs`` (default 100)
seeded runs at epsilon 4 with 10^3 canaries: how often each bound exceeds the true epsilon
(its coverage; a 95% bound may exceed it in 5% of runs). ``--cp`` adds the Clopper-Pearson
bound with 10^6 trials per side and the GDP-fit estimate.

Usage: ``python3 benchmarks/audit_tightness.py [--seeds 5] [--null-runs 100] [--cp]``
(numpy only, single-threaded; about a minute).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy.optimize import brentq
from scipy.stats import binom, norm

from audit.privacy.estimators import best_one_run_epsilon, clopper_pearson_epsilon, gdp_fit_epsilon
from audit.privacy.estimators.fdp_one_run import best_fdp_one_run_epsilon
from audit.privacy.estimators.gaussian_aggregate import gaussian_aggregate_epsilon

DELTA = 1e-5
NAMES = ("steinke", "fdp", "gauss")


def sigma_for(eps: float) -> float:
    def gap(s):
        mu = 1.0 / s
        return norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2) - DELTA

    return brentq(gap, 0.05, 100.0)


def one_run_bounds(eps: float, m: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    inc = rng.random(m) < 0.5
    scores = rng.normal(inc.astype(float), sigma_for(eps))
    ks = [k for k in (10, 30, 100, 300, 1000) if 2 * k <= m]
    return {"steinke": best_one_run_epsilon(scores, inc, delta=DELTA, ks=ks).epsilon,
            "fdp": best_fdp_one_run_epsilon(scores, inc, delta=DELTA, ks=ks).epsilon,
            "gauss": gaussian_aggregate_epsilon(scores, inc, delta=DELTA).epsilon}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--null-runs", type=int, default=100)
    ap.add_argument("--cp", action="store_true", help="also Clopper-Pearson (10^6 trials/side) and GDP fit")
    ap.add_argument("--trials", type=int, default=1_000_000)
    args = ap.parse_args()
    start = time.perf_counter()
    print(f"mean eps_emp / eps over {args.seeds} seeds (min-max of the ratio); 95% confidence, delta {DELTA}")
    print(f"{'eps':>4} {'canaries':>8} | " + " | ".join(f"{n:>17}" for n in NAMES))
    for eps in (1.0, 2.0, 4.0, 8.0):
        for m in (1_000, 10_000):
            runs = [one_run_bounds(eps, m, seed) for seed in range(args.seeds)]
            cells = []
            for n in NAMES:
                r = np.array([x[n] for x in runs]) / eps
                cells.append(f"{r.mean():5.2f} ({r.min():4.2f}-{r.max():4.2f})")
            print(f"{eps:4.0f} {m:8d} | " + " | ".join(f"{c:>17}" for c in cells))
    n = args.null_runs
    over = {k: 0 for k in NAMES}
    for seed in range(1000, 1000 + n):
        for k, v in one_run_bounds(4.0, 1000, seed).items():
            over[k] += v > 4.0
    print(f"coverage over {n} seeded null runs (eps 4, 10^3 canaries; a 95% bound may exceed the truth "
          f"in ~5%: P[more than {int(binom.isf(0.01, n, 0.05))} of {n}] < 1%):")
    for k in NAMES:
        print(f"  {k:>8}: above the true epsilon in {over[k]} of {n} runs (coverage {1 - over[k] / n:.0%})")
    if args.cp:
        rng = np.random.default_rng(0)
        for eps in (1.0, 2.0, 4.0):
            s = sigma_for(eps)
            w, wo = rng.normal(1.0, s, args.trials), rng.normal(0.0, s, args.trials)
            cp = clopper_pearson_epsilon(w, wo, delta=DELTA, seed=0).epsilon
            fit = gdp_fit_epsilon(w, wo, delta=DELTA).epsilon
            print(f"eps {eps:.0f}: Clopper-Pearson {cp / eps:.2f}x, GDP fit (estimate) {fit / eps:.2f}x "
                  f"({args.trials} trials per side)")
    print(f"threads: numpy default; {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
