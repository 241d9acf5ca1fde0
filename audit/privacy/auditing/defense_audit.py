"""Empirical epsilon of a defense as run: canaries through the defense's own code, an
estimator, and a verdict against the claimed epsilon.

White-box canaries in parameter space (Dirac canaries: an update that is large on one
coordinate and zero elsewhere, or random unit directions for the one-shot estimate) are
submitted by canary clients through ``defense.client_side`` and ``defense.server_side``;
the adversary is the one of the claim (local: it sees each observation; central: it sees
the aggregate). Each round repeats the release, and the per-round outputs are summed,
which is the optimal (sufficient) statistic for composed Gaussian releases.

Estimators (``../shared/specs/auditing.md``):

* ``cp``: distinguishing test, ``trials`` runs per side on neighbouring inputs (local:
  canary vs its negation, replace-one; central: canary client present vs absent),
  Clopper-Pearson lower bound at 95%.
* ``one-run``: Steinke, Nasr, Jagielski 2023 — ``canaries`` canary clients, each in with
  probability 1/2, one run, best guesses on the most confident canaries.
* ``one-run-input``: the black-box one-run variant: mislabelled input canaries trained
  into a fresh federated run, scored by their loss on the final model only
  (:mod:`audit.privacy.auditing.input_canaries`); compared with the claim for that run's schedule.
* ``one-shot``: Andrew et al. 2023 — canary clients submit random unit directions; the
  cosine of what the adversary observes with each canary vs with fresh directions gives a
  GDP mu, turned into an epsilon *estimate* (not a bound).

Verdict (:mod:`audit.privacy.auditing.verdicts`): VIOLATION when a lower bound exceeds the
claim (false-alarm rate <= 5%), or when the one-shot estimate exceeds the claim by more
than 10% (an estimate has no confidence); INCONCLUSIVE when the claim is above the audit's
power ceiling (the most it could have certified); PASS otherwise — which is no proof of
privacy.

Choices: canary updates have norm 1000 C so clipping always binds; the one-shot estimate
measures presence vs absence of a canary (add-or-remove), which under-estimates a
replace-one claim by design; only defenses exposing ``clip_norm`` are audited (others have
no sensitivity to probe).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from audit.core.claims import PrivacyClaim
from audit.core.defense import Defense, FederationSchedule
from audit.core.errors import InvalidParameterError
from audit.privacy.estimators import (
    EmpiricalEpsilon,
    best_one_run_epsilon,
    clopper_pearson_epsilon,
    one_shot_epsilon,
    random_unit_vectors,
)
from audit.core.updates import ModelUpdate
from audit.privacy.auditing.defense_lint import defense_lint
from audit.privacy.estimators.fdp_one_run import best_fdp_one_run_epsilon
from audit.privacy.estimators.gaussian_aggregate import gaussian_aggregate_epsilon
from audit.privacy.auditing.verdicts import alternative_entry, audit_entry, epsilon_note, verdict

ESTIMATOR_CHOICES = ("cp", "one-run", "fdp-one-run", "gaussian-aggregate", "one-shot", "one-run-input")
#: the readings of one run of white-box Dirac canaries: Steinke et al.'s bound, the f-DP bound
#: (Mahloujifar et al.), the Gaussian aggregate of all canaries' scores (Agrawal et al.)
ONE_RUN_READINGS = ("one-run", "fdp-one-run", "gaussian-aggregate")
def _release(defense: Defense, updates: Sequence[torch.Tensor], present: Sequence[bool], *, local: bool,
             rounds: int, generator: torch.Generator, sample_rate: float = 1.0) -> list[torch.Tensor]:
    """What the adversary sees, summed over rounds: each client's observation (local) or
    the aggregate (central, one entry). In central mode each present client takes part in a
    round with probability ``sample_rate`` (the Poisson sampling the claim assumes)."""
    total: list[torch.Tensor] | None = None
    kind = defense.local_training.kind
    client_side = getattr(defense, "canary_client_side", defense.client_side)
    server_side = getattr(defense, "canary_server_side", defense.server_side)
    for r in range(rounds):
        take = [bool(p) for p in present]
        if not local and sample_rate < 1.0:
            coins = torch.rand(len(take), generator=generator) < sample_rate
            take = [t and bool(c) for t, c in zip(take, coins)]
        obs = [
            client_side(ModelUpdate(kind, {"w": u}, client_id=i, round=r, num_examples=1), generator=generator)
            for i, (u, t) in enumerate(zip(updates, take)) if t
        ]
        if local:
            out = [o.tensors["w"] for o in obs]
        else:
            if not obs:  # nobody sampled: the server still releases noise around zero
                zero = torch.zeros_like(updates[0])
                obs = [ModelUpdate(kind, {"w": zero}, client_id=-2, round=r, num_examples=0)]
            out = [server_side(obs, generator=generator).tensors["w"]]
        total = out if total is None else [a + b for a, b in zip(total, out)]
    return total or []


def _dirac(dim: int, k: int, scale: float, sign: float = 1.0) -> torch.Tensor:
    u = torch.zeros(dim, dtype=torch.float64)
    u[k] = sign * scale
    return u


def estimate(defense: Defense, schedule: FederationSchedule, claim: PrivacyClaim, estimator: str, *,
             trials: int = 20_000, canaries: int = 1000, dim: int = 1000, seed: int = 0) -> EmpiricalEpsilon:
    """Run ``estimator`` against ``defense``'s mechanism as run."""
    clip = getattr(defense, "clip_norm", None)
    if clip is None or not claim.has_dp:
        raise InvalidParameterError(
            f"The 'estimator' parameter needs a defense with a DP claim and a clip norm. Got "
            f"{estimator!r} for {defense.name!r} instead."
        )
    local = claim.trust_model is not None and claim.trust_model.value == "local"
    gen = torch.Generator().manual_seed(seed)
    big = 1000.0 * clip
    rounds = getattr(defense, "noised_rounds", lambda s: s.rounds)(schedule)
    delta = float(claim.delta)
    q = 1.0 if local else schedule.sample_rate
    if estimator == "cp":
        plus = _dirac(1, 0, big)
        other = _dirac(1, 0, big, -1.0) if local else plus
        with_, without = [], []
        for _ in range(trials):
            with_.append(float(_release(defense, [plus], [True], local=local, rounds=rounds, generator=gen,
                                        sample_rate=q)[0][0]))
            if local:
                without.append(float(_release(defense, [other], [True], local=True, rounds=rounds, generator=gen)[0][0]))
            else:  # the canary client absent: the server aggregates an empty round (noise only)
                without.append(float(_release(defense, [torch.zeros(1, dtype=torch.float64)], [True], local=False,
                                              rounds=rounds, generator=gen)[0][0]))
        return clopper_pearson_epsilon(np.array(with_), np.array(without), delta=delta, alpha=0.05, seed=seed)
    if estimator in ONE_RUN_READINGS:
        included = torch.rand(canaries, generator=gen) < 0.5
        if local:
            ups = [_dirac(1, 0, big, 1.0 if inc else -1.0) for inc in included]
            outs = _release(defense, ups, [True] * canaries, local=True, rounds=rounds, generator=gen)
            scores = np.array([float(o[0]) for o in outs])
        else:
            ups = [_dirac(canaries, k, big) for k in range(canaries)]
            (agg,) = _release(defense, ups, included.tolist(), local=False, rounds=rounds, generator=gen,
                              sample_rate=q)
            scores = agg.numpy()
        ks = [k for k in (10, 30, 100, 300) if 2 * k <= canaries]
        if estimator == "gaussian-aggregate":
            return gaussian_aggregate_epsilon(scores, included.numpy(), delta=delta, beta=0.05)
        best = best_fdp_one_run_epsilon if estimator == "fdp-one-run" else best_one_run_epsilon
        return best(scores, included.numpy(), delta=delta, beta=0.05, ks=ks)
    if estimator == "one-shot":
        vecs = random_unit_vectors(2 * canaries, dim, generator=gen).double()
        canary_vecs, null_vecs = vecs[:canaries], vecs[canaries:]
        ups = [v * big for v in canary_vecs]
        outs = _release(defense, ups, [True] * canaries, local=local, rounds=rounds, generator=gen,
                        sample_rate=q)
        if local:
            cos_c = [float(torch.nn.functional.cosine_similarity(o, v, dim=0)) for o, v in zip(outs, canary_vecs)]
            cos_n = [float(torch.nn.functional.cosine_similarity(o, v, dim=0)) for o, v in zip(outs, null_vecs)]
        else:
            (final,) = outs
            cos_c = torch.nn.functional.cosine_similarity(canary_vecs, final[None], dim=1).tolist()
            cos_n = torch.nn.functional.cosine_similarity(null_vecs, final[None], dim=1).tolist()
        return one_shot_epsilon(np.array(cos_c), np.array(cos_n), delta=delta)
    raise InvalidParameterError(
        "The 'estimator' parameter must be a str among {" + ", ".join(repr(e) for e in ESTIMATOR_CHOICES)
        + f"}}. Got {estimator!r} instead."
    )


def unclaimed_rounds_epsilon(defense: Defense, *, trials: int, delta: float, seed: int = 0,
                             dim: int = 8) -> EmpiricalEpsilon | None:
    """Empirical epsilon of what leaves a client in the rounds before
    ``defense.first_update_round()`` (DR-Encoder's stage-1 statistics), which no claim
    covers: a canary client sends ``+1000 C e_0`` or ``-1000 C e_0`` (replace-one) through
    ``defense.client_side`` of round 0, ``trials`` times each; the score is the projection of
    the release on the difference of the two releases' means; Clopper-Pearson at 95%.
    None when the defense has no such rounds. A deterministic release separates every
    trial, so the bound is then limited by ``trials`` only (the true epsilon is infinite)."""
    if defense.first_update_round() == 0:
        return None
    clip = float(getattr(defense, "clip_norm", 1.0))
    gen = torch.Generator().manual_seed(seed)
    kind = defense.local_training.kind

    def release(sign: float) -> torch.Tensor:
        u = _dirac(dim, 0, 1000.0 * clip, sign).float()
        out = defense.client_side(ModelUpdate(kind, {"w": u}, client_id=0, round=0, num_examples=1),
                                  generator=gen)
        return torch.cat([t.reshape(-1).double() for _, t in sorted(out.tensors.items())])

    plus = [release(1.0) for _ in range(trials)]
    minus = [release(-1.0) for _ in range(trials)]
    direction = torch.stack(plus).mean(0) - torch.stack(minus).mean(0)
    score = lambda xs: np.array([float(x @ direction) for x in xs])  # noqa: E731
    return clopper_pearson_epsilon(score(plus), score(minus), delta=delta, alpha=0.05, seed=seed)


def _alternative_verdicts(claim: PrivacyClaim, estimates: dict[str, EmpiricalEpsilon]) -> list[dict]:
    """The evidence set against each alternative claim: the estimate of the adversary the
    claim is about (``local``: each update; ``central``: the aggregate)."""
    out = []
    for alt in claim.alternatives:
        tm = alt.trust_model.value if alt.trust_model else "central"
        est = estimates.get(tm) or estimates.get("central") or next(iter(estimates.values()))
        out.append(alternative_entry(alt, est, tm))
    return out


def privacy_finding(defense: Defense, schedule: FederationSchedule, claim: PrivacyClaim, threat_model: dict,
                    setting: dict, estimator: str, *, seed: int = 0, transcript=None, **params) -> dict:
    """A report finding that sets epsilon_emp beside epsilon_claim (and beside each
    alternative claim), with the verdicts.

    Defenses that train LoRA factors (``trained_matrices``) are audited with white-box
    canaries in LoRA space replayed on the run's recorded broadcasts (``transcript``;
    :mod:`audit.privacy.auditing.lora_canaries`: ``cp``, 2000 trials per side by default, or ``one-shot``,
    2000 canary clients by default)."""
    start = time.perf_counter()
    audited = defense
    if estimator not in ESTIMATOR_CHOICES:
        raise InvalidParameterError(
            "The 'estimator' parameter must be a str among {"
            + ", ".join(repr(e) for e in ESTIMATOR_CHOICES) + f"}}. Got {estimator!r} instead."
        )
    supported = getattr(defense, "audit_estimators", None)
    if supported is not None and estimator not in supported():
        raise InvalidParameterError(
            f"The 'estimator' parameter for {defense.name!r} must be one of "
            f"{', '.join(repr(e) for e in supported())} (its mechanism as configured). Got "
            f"{estimator!r} instead.")
    allowed = {"cp": ("trials",), "one-run": ("canaries",), "fdp-one-run": ("canaries",),
               "gaussian-aggregate": ("canaries",), "one-shot": ("canaries", "dim"),
               "one-run-input": ("canaries", "rounds")}[estimator]
    from audit.core.validation import check_interval, check_known_keys

    check_known_keys(params, allowed, f"estimator {estimator!r}")
    for key, value in params.items():
        low = {"dim": 2, "rounds": 1}.get(key, 100 if estimator != "one-run-input" else 20)
        params[key] = check_interval(key, f"estimator {estimator!r}", value, kind=int, low=low)
    if estimator == "one-run-input":
        import copy

        from audit.privacy.auditing.input_canaries import black_box_one_run

        if not claim.has_dp or claim.trust_model is None:
            raise InvalidParameterError(
                f"The 'estimator' parameter needs a defense with a DP claim. Got {estimator!r} for "
                f"{defense.name!r} instead."
            )
        own = copy.deepcopy(defense)
        est, diag, bb_schedule = black_box_one_run(own, mode=claim.trust_model.value, delta=float(claim.delta),
                                                   seed=seed, **params)
        claim = own.claim(bb_schedule)
        audited, schedule = own, bb_schedule  # the lint reads the run the canaries went through
        est = EmpiricalEpsilon(est.estimator + "-input", est.epsilon, est.delta, est.nature, est.confidence,
                               est.trials, est.compute_s, {**est.details, **diag})
        estimates = {"any": est}
    elif hasattr(defense, "trained_matrices"):
        from audit.privacy.auditing.lora_canaries import lora_canary_epsilon, lora_one_shot_epsilon

        if estimator not in ("cp", "one-shot") or transcript is None:
            raise InvalidParameterError(
                f"The 'estimator' parameter for {defense.name!r} (LoRA canaries replayed on "
                f"the run) must be 'cp' or 'one-shot'. Got {estimator!r} instead.")
        if "dim" in params:
            raise InvalidParameterError(
                f"The 'dim' parameter of estimator {estimator!r} does not apply to "
                f"{defense.name!r}: its canaries live in the LoRA factors. Got {params['dim']!r} "
                "instead.")
        broadcasts = [rec.broadcast for rec in transcript.rounds]
        views = (("central", "aggregate"), ("local", "each update"))
        if estimator == "cp":
            estimates = {tm: lora_canary_epsilon(defense, broadcasts, view=view, delta=float(claim.delta),
                                                 trials=params.get("trials", 2000), seed=seed)
                         for tm, view in views}
        else:
            estimates = {tm: lora_one_shot_epsilon(defense, broadcasts, view=view, delta=float(claim.delta),
                                                   canaries=params.get("canaries", 2000), seed=seed)
                         for tm, view in views}
        est = estimates["central"]
    else:
        est = estimate(defense, schedule, claim, estimator, seed=seed, **params)
        estimates = {"any": est}
    result = verdict(claim, est)
    rounds_run = len(transcript.rounds) if transcript is not None and transcript.rounds else None
    lint = defense_lint(audited, schedule, claim, rounds_run=rounds_run)
    alternatives = _alternative_verdicts(claim, estimates)
    unclaimed = None
    if estimator == "cp":
        unclaimed = unclaimed_rounds_epsilon(defense, trials=params.get("trials", 20_000),
                                             delta=float(claim.delta), seed=seed)
    note = epsilon_note(result)
    return {
        "id": f"{defense.name}:epsilon-{estimator}",
        "title": f"empirical epsilon ({estimator}) against {defense.name}: {result.verdict}",
        "defense": {"name": defense.name, "params": defense.params()},
        "claim": claim.to_dict(),
        "threat_model": threat_model,
        "attack": {"name": f"epsilon-{estimator}", "family": "dp-audit", "params": {**params, "seed": seed}},
        "setting": setting,
        "metrics": [{
            "name": "epsilon_emp", "unit": "", "direction": "higher-leaks-more",
            "mean": est.epsilon, "worst": est.epsilon, "per_item": [est.epsilon],
            "baseline": {"description": f"claimed epsilon ({claim.accountant})",
                         "mean": claim.epsilon, "worst": claim.epsilon},
            "note": note,
        }] + [{
            "name": "epsilon_emp (each update)", "unit": "", "direction": "higher-leaks-more",
            "mean": e.epsilon, "worst": e.epsilon, "per_item": [e.epsilon],
            "baseline": None,
            "note": (f"{e.nature} from the server's view of each update (white-box LoRA canaries); "
                     "set against the claims about that adversary (see the claims table)"),
        } for tm, e in estimates.items() if tm == "local"] + ([] if unclaimed is None else [{
            "name": "epsilon_emp (rounds outside the claim)", "unit": "",
            "direction": "higher-leaks-more", "mean": unclaimed.epsilon,
            "worst": unclaimed.epsilon, "per_item": [unclaimed.epsilon], "baseline": None,
            "note": (f"lower bound (95% confidence) from a white-box canary on what leaves a "
                     f"client in the {defense.first_update_round()} round(s) before the first "
                     "model update (DR-Encoder: the per-layer mean and standard deviation, sent "
                     "without noise); no claim covers these rounds. "
                     + ("Every trial was distinguished: the release is deterministic, so this "
                        "bound grows with the number of trials without limit (the true epsilon "
                        "is infinite)." if unclaimed.details.get("false_positives") == 0
                        and unclaimed.details.get("false_negatives") == 0 else "")),
        }]),
        "images": None,
        "privacy_audit": audit_entry(result, alternatives, lint),
        "runtime_s": time.perf_counter() - start,
    }
