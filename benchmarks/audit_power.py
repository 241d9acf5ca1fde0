"""Print the power ceilings of the estimators: the largest epsilon an audit of a given size
can certify at all (a perfectly leaky mechanism's bound; audit/privacy/estimators/power.py).

    python3 benchmarks/audit_power.py [--delta 1e-5] [--confidence 0.95]
"""

from __future__ import annotations

import argparse
import time

from audit.privacy.estimators.power import clopper_pearson_ceiling, one_run_ceiling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument("--confidence", type=float, default=0.95)
    args = parser.parse_args()
    level = 1 - args.confidence
    start = time.perf_counter()
    print(f"delta = {args.delta:g}, confidence = {args.confidence:g}")
    for m in (100, 1000, 10_000):
        print(f"one-run, {m:>6} canaries (default budgets): ceiling eps = {one_run_ceiling(m, delta=args.delta, beta=level):.3f}")
    for n in (100, 1000, 20_000):
        print(f"clopper-pearson, {n:>6} trials per side: ceiling eps = {clopper_pearson_ceiling(n, delta=args.delta, alpha=level):.3f}")
    print(f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
