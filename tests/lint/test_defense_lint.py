"""The accounting lint of fedaudit's own defenses and of a user's defense (defense_lint), and
the structured claim fields it reads (unit_level, adjacency, assumptions)."""

import pytest

from audit.core.claims import PrivacyClaim
from audit.core.defense import DEFENSES, FederationSchedule
from audit.core.errors import InvalidParameterError
from audit.privacy.auditing.defense_lint import defense_facts, defense_lint
from defenses.fedavg import FedAvg


def _ids(lint, severity=None):
    return {x["id"] for x in lint if severity is None or x["severity"] == severity}


def test_dp_fedavg_central_with_a_fixed_size_cohort_trips_the_sampling_rule():
    d = DEFENSES.create("dp-fedavg", noise_multiplier=1.0, mode="central")
    sched = FederationSchedule(num_clients=8, clients_per_round=2, rounds=3)
    claim = d.claim(sched)
    assert claim.unit_level == "client" and claim.adjacency == "add-remove"
    assert any("Poisson" in a for a in claim.assumptions)
    lint = defense_lint(d, sched, claim, rounds_run=3)
    sampling = [x for x in lint if x["id"] == "sampling"]
    assert sampling and sampling[0]["severity"] == "error"
    assert "poisson" in sampling[0]["message"] and "without-replacement" in sampling[0]["message"]
    assert "steps" not in _ids(lint) and "noise-scale" not in _ids(lint, "error")


def test_dp_fedavg_with_every_client_in_every_round_is_clean():
    d = DEFENSES.create("dp-fedavg", noise_multiplier=1.0, mode="central")
    sched = FederationSchedule(num_clients=4, clients_per_round=4, rounds=2)
    lint = defense_lint(d, sched, d.claim(sched), rounds_run=2)
    assert not _ids(lint, "error") and not _ids(lint, "warning")
    assert _ids(lint, "info") == {"secure-rng"}  # not evaluated: the simulation's generator


def test_more_rounds_run_than_the_claim_composes_is_a_steps_error():
    d = DEFENSES.create("dp-fedavg", noise_multiplier=1.0, mode="local")
    sched = FederationSchedule(num_clients=4, clients_per_round=4, rounds=2)
    lint = defense_lint(d, sched, d.claim(sched), rounds_run=5)
    steps = [x for x in lint if x["id"] == "steps"]
    assert steps and steps[0]["severity"] == "error" and "5 steps ran" in steps[0]["message"]


def test_dr_encoder_stage_one_rounds_are_outside_its_accounting():
    d = DEFENSES.create("dr-encoder", noise_multiplier=1.0, stage1_rounds=1)
    sched = FederationSchedule(num_clients=2, clients_per_round=2, rounds=3)
    claim = d.claim(sched)
    assert claim.adjacency == "replace-one" and claim.unit_level == "client"
    lint = defense_lint(d, sched, claim)
    steps = [x for x in lint if x["id"] == "steps"]
    assert steps and steps[0]["severity"] == "error" and "3 steps ran" in steps[0]["message"]


def test_delta_above_one_over_the_population_is_an_error():
    d = DEFENSES.create("dp-fedavg", noise_multiplier=1.0, mode="local", delta=0.2)
    sched = FederationSchedule(num_clients=10, clients_per_round=10, rounds=1)
    lint = defense_lint(d, sched, d.claim(sched))
    assert "delta" in _ids(lint, "error")


class _UserDefense(FedAvg):
    """A user's defense whose claim says client-level and whose facts say otherwise."""

    name = "user-defense"

    def __init__(self, facts):
        super().__init__()
        self._facts = facts

    def claim(self, schedule):
        return PrivacyClaim(has_dp=True, statement="(1, 1e-5)-DP per client", epsilon=1.0, delta=1e-5,
                            unit="one client", compositions=schedule.rounds, accountant="mine",
                            unit_level="client", adjacency="add-remove")

    def accounting_facts(self, schedule):
        return self._facts


def test_a_user_defense_claim_is_linted_from_its_claim_and_its_facts():
    sched = FederationSchedule(num_clients=100, clients_per_round=100, rounds=4)
    clean = _UserDefense({})
    assert not _ids(defense_lint(clean, sched, clean.claim(sched)), "error")
    record = _UserDefense({"unit_released": "record"})  # DP-SGD inside each client: record-level
    lint = defense_lint(record, sched, record.claim(sched))
    assert "unit" in _ids(lint, "error")
    facts = defense_facts(record, sched, record.claim(sched), rounds_run=4)
    assert (facts.steps_accounted, facts.steps_run, facts.n_clients) == (4, 4, 100)


def test_unknown_or_wrongly_typed_accounting_facts_are_named():
    sched = FederationSchedule(num_clients=4, clients_per_round=4, rounds=1)
    bad = _UserDefense({"sampling_used": "poisson", "sample_ratee": 0.1})
    with pytest.raises(InvalidParameterError, match="sample_ratee"):
        defense_lint(bad, sched, bad.claim(sched))
    worse = _UserDefense(["sampling"])
    with pytest.raises(InvalidParameterError, match="must return a dict"):
        defense_lint(worse, sched, worse.claim(sched))


def test_a_claim_without_dp_has_no_lint():
    d = DEFENSES.create("fedavg")
    sched = FederationSchedule(num_clients=2, clients_per_round=2, rounds=1)
    assert defense_lint(d, sched, d.claim(sched)) == []


@pytest.mark.parametrize("kwargs, match", [
    ({"unit_level": "person"}, "unit_level"),
    ({"adjacency": "swap"}, "adjacency"),
    ({"assumptions": "poisson"}, "assumptions"),
])
def test_claim_fields_are_validated(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        PrivacyClaim(has_dp=True, statement="s", epsilon=1.0, delta=1e-5, **kwargs)


def test_claim_to_dict_carries_the_new_fields():
    d = PrivacyClaim(has_dp=True, statement="s", epsilon=1.0, delta=1e-5, unit_level="record",
                     adjacency="replace-one", assumptions=("a", "b")).to_dict()
    assert (d["unit_level"], d["adjacency"], d["assumptions"]) == ("record", "replace-one", ["a", "b"])
