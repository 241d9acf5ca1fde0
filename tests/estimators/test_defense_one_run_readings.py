"""White-box Dirac client canaries of DP-FedAvg (client level) read by the tighter one-run
estimators: the Gaussian aggregate comes close to the claim, never above it (seeded), and a
claim at half the true epsilon is a VIOLATION."""

from dataclasses import replace

import pytest

from audit.core.defense import DEFENSES, FederationSchedule
from audit.privacy.auditing.defense_audit import estimate, verdict


@pytest.fixture(scope="module")
def central():
    d = DEFENSES.create("dp-fedavg", noise_multiplier=1.0, mode="central")
    sched = FederationSchedule(num_clients=4, clients_per_round=4, rounds=1)
    return d, sched, d.claim(sched)


@pytest.mark.parametrize("estimator, low", [("gaussian-aggregate", 0.6), ("fdp-one-run", 0.3)])
def test_client_level_canaries_come_close_to_the_claim(central, estimator, low):
    d, sched, claim = central
    est = estimate(d, sched, claim, estimator, canaries=1000, seed=0)
    assert est.nature == "lower-bound" and est.confidence == pytest.approx(0.95)
    # seeded: one draw; a lower bound at 95% exceeds the truth with probability <= 5%
    assert low * claim.epsilon <= est.epsilon <= claim.epsilon
    assert verdict(claim, est).verdict in ("PASS", "INCONCLUSIVE")


def test_half_the_true_epsilon_claimed_is_a_violation(central):
    d, sched, claim = central
    est = estimate(d, sched, claim, "gaussian-aggregate", canaries=1000, seed=0)
    assert verdict(replace(claim, epsilon=claim.epsilon / 2), est).verdict == "VIOLATION"
