"""The privacy claims of Flower's DP building blocks, and how each runs in fact.

Flower (``flwr`` 1.42) ships two kinds of DP:

* **Central DP wrappers** ``DifferentialPrivacy{Client,Server}SideFixedClipping(strategy,
  noise_multiplier z, clipping_norm C, num_sampled_clients m)``: updates clipped to C (by
  ``fixedclipping_mod`` on the client, or by the server), aggregated by the wrapped
  strategy, then ``N(0, (zC/m)^2)`` added to the aggregate. Flower's optional
  ``RdpAccountant`` accounts z per round, add-or-remove one client, no amplification.
* **``LocalDpMod(clipping_norm C, sensitivity s, epsilon, delta)``** on the client: clip to C,
  add ``N(0, sigma^2)`` with ``sigma = s sqrt(2 ln(1.25/delta)) / epsilon`` (the classic
  Gaussian-mechanism bound of Dwork and Roth 2014, Thm A.1), and state (epsilon, delta) per
  release.

Each audit sets two claims side by side: **Flower's** (what its code or docs state) and the
mechanism **as run**, accounted by :mod:`audit.privacy.accounting.accountants`. Where they differ the reason is
stated in the claim (the mismatches, each shown by a test in
``tests/defenses/test_flower_claims.py``):

* the wrapped FedAvg weights clients by their number of examples while the noise stays
  ``zC/m``: as run, one client's weight share ``w/sum(w)`` replaces ``1/m``, so the
  effective noise multiplier is ``z sum(w) / (m max(w))`` in the worst round of the run;
* fewer replies than ``m`` make the same effect (Flower only warns, unless its accountant is
  on);
* the client-side wrapper without ``fixedclipping_mod`` among the mods never clips: no
  finite epsilon;
* ``LocalDpMod``'s ``sensitivity`` is independent of ``clipping_norm``: the replace-one
  sensitivity of a clipped update is 2C (the server sees every release), so ``s < 2C``
  claims more than the noise gives and ``s = 0`` adds no noise at all;
* the classic bound holds for epsilon < 1 only, per release; Flower states nothing for
  several rounds, so its claim is composed here by basic composition (R epsilon, R delta).

Project choices: the as-run claims use the PLD accountant (tight); the zero-substitution
view of one client (its clipped update replaced by zero, weights as in the run) is what the
canaries of :mod:`audit.privacy.auditing.defense_audit` measure; the weights of the run's worst round are used
for every round (exact when clients keep their data, an upper bound otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from audit.privacy.accounting.accountants import GaussianEventSpec, Neighbouring, accountant_label, epsilon
from audit.core.claims import PrivacyClaim, TrustModel
from audit.core.defense import FederationSchedule

CENTRAL_UNIT = "one client (add-or-remove, L2 sensitivity C of the sum)"
LOCAL_UNIT = "one client's local data (replace-one, L2 sensitivity 2C per release)"


def worst_weight_share(round_weights: Sequence[Sequence[float]], expected: int) -> tuple[float, str]:
    """``m max(w) / sum(w)`` in the worst recorded round (1 with equal weights and ``m``
    replies), and a sentence saying where it comes from."""
    if not round_weights:
        return 1.0, "no round recorded yet: equal weights and m replies assumed"
    worst, where = 0.0, ""
    for r, ws in enumerate(round_weights):
        ws = [max(float(w), 0.0) for w in ws]
        if sum(ws) <= 0:
            continue
        share = expected * max(ws) / sum(ws)
        if share > worst:
            worst, where = share, f"round {r}: weights {[int(w) if w == int(w) else w for w in ws]}"
    return max(worst, 1e-12), where


def central_claims(*, noise_multiplier: float, clipping_norm: float, num_sampled_clients: int,
                   schedule: FederationSchedule, delta: float, flower_spent: Any | None,
                   round_weights: Sequence[Sequence[float]], clips_updates: bool,
                   wrapper: str) -> PrivacyClaim:
    """Flower's claim for a central fixed-clipping wrapper, with the as-run claim as its
    alternative."""
    z, rounds = float(noise_multiplier), schedule.rounds
    if z == 0.0:
        return PrivacyClaim.none(f"{wrapper} with noise multiplier 0 adds no noise: no DP claim.")
    if flower_spent is not None:
        eps, d = float(flower_spent.epsilon), float(flower_spent.delta)
        acct = "Flower RdpAccountant (add-or-remove one client, no amplification)"
    else:
        eps, d = epsilon(GaussianEventSpec(z, rounds, 1.0, Neighbouring.ADD_OR_REMOVE),
                         delta=delta, accountant="rdp"), delta
        acct = (f"{accountant_label('rdp')}, as Flower's RdpAccountant accounts it (add-or-remove "
                "one client, no amplification; Flower's accountant was off)")
    share, where = worst_weight_share(round_weights, num_sampled_clients)
    notes = []
    if not clips_updates:
        notes.append("no client clips its update (the client-side wrapper needs fixedclipping_mod "
                     "among the client mods): the sensitivity is unbounded")
    if share > 1.0 + 1e-9:
        notes.append(f"the aggregate weights one client by up to {share:.3g}/m ({where}) while "
                     f"the noise stays zC/m: effective noise multiplier {z / share:.4g} instead of {z:g}")
    flower = PrivacyClaim(
        has_dp=True,
        statement=(f"{wrapper}: ({eps:.4g}, {d:g})-DP for {CENTRAL_UNIT} over {rounds} round(s), "
                   f"noise multiplier {z:g}, clipping norm {clipping_norm:g}, {num_sampled_clients} "
                   "sampled clients, as Flower states it"
                   + (f". Mismatch: {'; '.join(notes)}." if notes else ".")),
        epsilon=eps, delta=d, unit=CENTRAL_UNIT, trust_model=TrustModel.CENTRAL,
        compositions=rounds, accountant=acct,
        mechanism=f"Gaussian, noise std zC/m on the aggregate, z={z:g}, {rounds} release(s)",
        label="Flower's claim", unit_level="client", adjacency="add-remove",
        assumptions=GaussianEventSpec(z, rounds, 1.0, Neighbouring.ADD_OR_REMOVE).assumptions("client")
        + ("every client clips its update to C" if clips_updates else
           "clipped updates (not the case in this run: no client clips)",
           "equal aggregation weights: the noise zC/m covers one client's share"),
    )
    if not clips_updates:
        return flower
    z_run = z / share
    return _with_as_run(flower, GaussianEventSpec(z_run, rounds, 1.0, Neighbouring.ADD_OR_REMOVE),
                        f"one client (its clipped update replaced by zero), effective noise "
                        f"multiplier {z_run:.4g}")


def local_dp_noise_std(*, sensitivity: float, epsilon_: float, delta: float) -> float:
    """``LocalDpMod``'s noise standard deviation, as its code computes it."""
    return sensitivity * math.sqrt(2 * math.log(1.25 / delta)) / epsilon_


def local_dp_claims(*, clipping_norm: float, sensitivity: float, epsilon_: float, delta: float,
                    schedule: FederationSchedule) -> PrivacyClaim:
    """Flower's ``LocalDpMod`` claim over the run's rounds (basic composition of its
    per-release statement), with the as-run claim as its alternative when it adds noise."""
    rounds = schedule.rounds
    sigma = local_dp_noise_std(sensitivity=sensitivity, epsilon_=epsilon_, delta=delta)
    notes = []
    if sensitivity < 2 * clipping_norm:
        notes.append(f"sensitivity {sensitivity:g} is below the replace-one sensitivity "
                     f"2C = {2 * clipping_norm:g} of a clipped update"
                     + (" (no noise is added at all)" if sensitivity == 0 else ""))
    if epsilon_ >= 1:
        notes.append(f"the classic Gaussian bound behind sigma holds for epsilon < 1 only "
                     f"(epsilon {epsilon_:g})")
    eps_claim, d_claim = rounds * epsilon_, min(rounds * delta, 0.5)
    flower = PrivacyClaim(
        has_dp=True,
        statement=(f"LocalDpMod: ({epsilon_:g}, {delta:g})-DP per release as Flower states it, "
                   f"composed over {rounds} round(s): ({eps_claim:.4g}, {d_claim:g}) for "
                   f"{LOCAL_UNIT}; noise std {sigma:.4g}, clipping norm {clipping_norm:g}"
                   + (f". Mismatch: {'; '.join(notes)}." if notes else ".")),
        epsilon=eps_claim, delta=d_claim, unit=LOCAL_UNIT, trust_model=TrustModel.LOCAL,
        compositions=rounds,
        accountant="LocalDpMod's per-release statement, basic composition over rounds",
        mechanism=f"Gaussian, std {sigma:.4g} per client update, {rounds} release(s)",
        label="Flower's claim", unit_level="client", adjacency="replace-one",
        assumptions=(f"basic composition of {rounds} per-release ({epsilon_:g}, {delta:g}) statements",
                     "the classic Gaussian bound sigma = sensitivity sqrt(2 ln(1.25/delta))/epsilon "
                     "(valid for epsilon < 1)",
                     f"sensitivity {sensitivity:g} covers a replaced clipped update (2C = "
                     f"{2 * clipping_norm:g})"),
    )
    if sigma == 0.0:
        return flower
    return _with_as_run(flower, GaussianEventSpec(sigma / clipping_norm, rounds, 1.0, Neighbouring.REPLACE),
                        f"{LOCAL_UNIT}, noise multiplier sigma/C = {sigma / clipping_norm:.4g}")


def _with_as_run(flower: PrivacyClaim, spec: GaussianEventSpec, what: str) -> PrivacyClaim:
    """``flower`` with the claim of ``spec`` as run (PLD, at ``flower``'s delta) as its
    alternative."""
    d = float(flower.delta)
    eps_run = epsilon(spec, delta=d, accountant="pld")
    as_run = replace(
        flower, statement=f"as run: ({eps_run:.4g}, {d:g})-DP for {what}", epsilon=eps_run,
        accountant=accountant_label("pld"), mechanism=spec.describe(), label="as run",
        adjacency=spec.adjacency, assumptions=spec.assumptions("client"))
    return replace(flower, alternatives=(as_run,))
