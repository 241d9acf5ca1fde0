"""White-box audits of an Opacus run: gradient canaries read from each privatized gradient.

* :func:`white_box_one_run` (``one-run``, the strongest; the default of ``audit_opacus``):
  the gradient canaries of :mod:`audit.integrations.opacus.gradient_canaries` in one
  training run, read with the one-run estimator (Steinke, Nasr, Jagielski 2023).
  ``canaries`` distinct parameter coordinates (default :data:`DEFAULT_CANARIES`, or half
  the coordinates if fewer; the model must have at least 2 x ``canaries``) are drawn
  (seeded); each canary is "in" with probability 1/2. Guesses: "in" for the k highest
  scores only (a Poisson-sampled canary is often never sampled, so "out" guesses are
  weak) and symmetric budgets, k in 10, 30, 100, 300, each at beta / 8 (union bound); 95%
  lower bound. With 1000 canaries the bound cannot exceed ~4-5 whatever the leak, and it
  is loose at small q (a canary sampled in no step shows nothing): 0-0.37 for a correct
  claim of 2.07 (29 steps at q = 1/29).
* :func:`white_box_cp` (``cp``, tighter with enough runs, costly): the same gradient
  canary on one coordinate, the same score, ``trials`` independent training runs with the
  canary in and ``trials`` without (2 x ``trials`` calls of ``make`` + training);
  Clopper-Pearson bound at 95% with the threshold chosen on half the runs
  (:func:`audit.privacy.estimators.clopper_pearson_epsilon`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from audit.core.claims import PrivacyClaim
from audit.core.errors import InvalidParameterError, invalid
from audit.core.validation import check_interval
from audit.integrations.opacus.claim import engine_history, opacus_claim
from audit.integrations.opacus.gradient_canaries import CANARY_SCALE, GradientCanaryTap
from audit.integrations.opacus.run import AUDIT_OWNER, OpacusRun, OpacusTraining, run_info, run_training
from audit.privacy.estimators import EmpiricalEpsilon, best_one_run_epsilon, clopper_pearson_epsilon
from audit.privacy.estimators.fdp_one_run import best_fdp_one_run_epsilon
from audit.privacy.estimators.gaussian_aggregate import gaussian_aggregate_epsilon

#: gradient canaries of the white-box one-run estimator (fewer if the model is smaller)
DEFAULT_CANARIES = 1000
#: how one run's canary scores are read: Steinke et al.'s bound, the f-DP bound of
#: Mahloujifar et al. (mu-GDP hypotheses), the Gaussian aggregate (noncentral t on all scores)
ONE_RUN_ESTIMATORS = ("one-run", "fdp-one-run", "gaussian-aggregate")


def _run_info(training: OpacusTraining, tap: GradientCanaryTap, delta: float) -> dict:
    """:func:`run_info` of ``training`` (with its lint at ``delta``) and what ``tap`` observed."""
    return {**run_info(training, tap.q, delta=delta, steps_run=tap.steps), "optimizer_steps_observed": tap.steps,
            "noise_multiplier_measured": tap.measured_noise_multiplier()}


def white_box_one_run(run: OpacusRun, *, canaries: int | None = None, seed: int = 0,
                      estimator: str = "one-run") -> tuple[EmpiricalEpsilon, PrivacyClaim, dict]:
    """One training run with ``canaries`` Dirac gradient canaries (each in with probability
    1/2; default 1000, or half the model's parameter coordinates if fewer): the lower bound
    (95%) of ``estimator`` (one of :data:`ONE_RUN_ESTIMATORS`) on the canaries' scores, the
    run's claim and diagnostics."""
    (est,), claim, info = white_box_one_run_estimates(run, (estimator,), canaries=canaries, seed=seed)
    return est, claim, info


def white_box_one_run_estimates(run: OpacusRun, estimators, *, canaries: int | None = None, seed: int = 0
                                ) -> tuple[list[EmpiricalEpsilon], PrivacyClaim, dict]:
    """:func:`white_box_one_run` for several estimators read from the same training run
    (each bound holds at 95% on its own; they are not independent)."""
    for estimator in estimators:
        if estimator not in ONE_RUN_ESTIMATORS:
            raise invalid("estimator", AUDIT_OWNER, "one of " + ", ".join(ONE_RUN_ESTIMATORS), estimator)
    if canaries is not None:
        canaries = check_interval("canaries", AUDIT_OWNER, canaries, kind=int, low=20)
    holder: dict[str, Any] = {}

    def tap(opt: Any, q: float) -> GradientCanaryTap:
        dim = sum(p.numel() for p in opt.params)
        m = canaries if canaries is not None else min(DEFAULT_CANARIES, dim // 2)
        if 2 * m > dim or m < 20:
            raise invalid("canaries", AUDIT_OWNER, f"between 20 and half the model's {dim} parameter "
                          f"coordinates (<= {dim // 2})", m)
        included = np.random.default_rng(seed).random(m) < 0.5
        coords = np.random.default_rng(seed + 1).choice(dim, size=m, replace=False)
        holder["included"] = included
        holder["tap"] = GradientCanaryTap(opt, coords, included, q, torch.Generator().manual_seed(seed + 2))
        return holder["tap"]

    training, _ = run_training(run, run.train_data, seed, tap)
    t, included = holder["tap"], holder["included"]
    canaries = len(included)
    scores = t.scores()
    ks = [(k, 0) for k in (10, 30, 100, 300)] + [(k, k) for k in (10, 30, 100, 300)]
    ks = [k for k in ks if sum(k) <= canaries]
    claim = opacus_claim(training.privacy_engine, run.delta, accountant=run.accountant,
                         claimed_epsilon=run.claimed_epsilon)
    delta = float(claim.delta)
    diag = {"canary": "dirac-gradient", "canary_gradient_norm": f"{CANARY_SCALE:g} x max_grad_norm",
            "observation": "each privatized gradient", "included": int(included.sum()),
            "included_never_sampled": int(((t.sampled == 0) & included).sum()),
            "mean_score_in": float(scores[included].mean()) if included.any() else None,
            "mean_score_out": float(scores[~included].mean()) if (~included).any() else None}
    out = []
    for estimator in estimators:
        if estimator == "one-run":
            est = best_one_run_epsilon(scores, included, delta=delta, beta=0.05, ks=ks)
        elif estimator == "fdp-one-run":
            est = best_fdp_one_run_epsilon(scores, included, delta=delta, beta=0.05, ks=ks)
        else:
            est = gaussian_aggregate_epsilon(scores, included, delta=delta, beta=0.05)
        out.append(EmpiricalEpsilon(est.estimator, est.epsilon, est.delta, est.nature, est.confidence,
                                    est.trials, est.compute_s, {**est.details, **diag}))
    return out, claim, _run_info(training, t, delta)


def white_box_cp(run: OpacusRun, *, trials: int = 500, seed: int = 0
                 ) -> tuple[EmpiricalEpsilon, PrivacyClaim, dict]:
    """``trials`` training runs with one Dirac gradient canary in the data and ``trials``
    without; the Clopper-Pearson lower bound (95%) on the canary's score."""
    trials = check_interval("trials", AUDIT_OWNER, trials, kind=int, low=10)
    with_, without = [], []
    claim, info = None, None
    coord = None
    for i in range(2 * trials):
        present = i % 2 == 0
        holder: dict[str, GradientCanaryTap] = {}

        def tap(opt: Any, q: float, present: bool = present, i: int = i) -> GradientCanaryTap:
            nonlocal coord
            if coord is None:
                coord = int(np.random.default_rng(seed + 1).integers(sum(p.numel() for p in opt.params)))
            holder["tap"] = GradientCanaryTap(opt, np.array([coord]), np.array([present]), q,
                                              torch.Generator().manual_seed(seed + 7919 * (i + 1)))
            return holder["tap"]

        training, _ = run_training(run, run.train_data, seed + i, tap)
        (with_ if present else without).append(float(holder["tap"].scores()[0]))
        if claim is None:
            claim = opacus_claim(training.privacy_engine, run.delta, accountant=run.accountant,
                                 claimed_epsilon=run.claimed_epsilon)
            info = _run_info(training, holder["tap"], float(claim.delta))
        elif engine_history(training.privacy_engine) != [tuple(h) for h in info["accountant_history"]]:
            raise InvalidParameterError(
                "The 'make' parameter of audit_opacus must build the same private training on every "
                "call (the 'cp' estimator repeats it): the accountant's history changed between runs. "
                f"Got {engine_history(training.privacy_engine)} instead of {info['accountant_history']}.")
    est = clopper_pearson_epsilon(np.array(with_), np.array(without), delta=float(claim.delta),
                                  alpha=0.05, seed=seed)
    est = EmpiricalEpsilon(est.estimator, est.epsilon, est.delta, est.nature, est.confidence, est.trials,
                           est.compute_s, {**est.details, "canary": "dirac-gradient",
                                           "observation": "each privatized gradient",
                                           "training_runs": 2 * trials})
    return est, claim, info


__all__ = ["DEFAULT_CANARIES", "ONE_RUN_ESTIMATORS", "white_box_cp", "white_box_one_run",
           "white_box_one_run_estimates"]
