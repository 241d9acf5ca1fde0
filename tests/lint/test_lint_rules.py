"""The accounting lint's rules on hand-written RunFacts: each rule tripped and not tripped,
its thresholds at their edges, unknown facts skipped, and the facts validated."""

import pytest

from audit.core.errors import InvalidParameterError
from audit.privacy.lint import RULE_IDS, RULES, LintFinding, RunFacts, run_lint
from audit.privacy.lint.rules import (
    check_adjacency,
    check_clip_order,
    check_delta,
    check_noise_scale,
    check_sampling,
    check_secure_rng,
    check_steps,
    check_unit,
)


def _ids(findings, severity=None):
    return [(f.id, f.severity) for f in findings if severity is None or f.severity == severity]


def test_registry_lists_every_rule_once_in_order():
    assert RULE_IDS == ("sampling", "steps", "delta", "unit", "adjacency", "noise-scale", "secure-rng",
                        "clip-order")
    assert len({r.check for r in RULES}) == len(RULES)


def test_finding_to_dict_keys_and_severity_checked():
    f = LintFinding("steps", "error", "m", "f")
    assert f.to_dict() == {"id": "steps", "severity": "error", "message": "m", "fix": "f"}
    with pytest.raises(InvalidParameterError, match="'severity'.*'fatal'"):
        LintFinding("steps", "fatal", "m", "f")


# -- sampling -------------------------------------------------------------------------------
def test_sampling_trips_on_shuffle_under_poisson_accounting():
    out = check_sampling(RunFacts(sampling_assumed="poisson", sample_rate_assumed=0.25, sampling_used="shuffle",
                                  sample_rate_used=0.25, accountant="opacus-rdp"))
    assert _ids(out) == [("sampling", "error")]
    assert "poisson" in out[0].message and "shuffle" in out[0].message and "0.25" in out[0].message


def test_sampling_trips_on_rate_mismatch():
    out = check_sampling(RunFacts(sampling_assumed="poisson", sample_rate_assumed=0.25, sampling_used="poisson",
                                  sample_rate_used=0.5))
    assert _ids(out) == [("sampling", "error")] and "0.5" in out[0].message


@pytest.mark.parametrize("assumed,used,q_a,q_u", [
    ("poisson", "poisson", 0.25, 0.25), ("none", "shuffle", None, 0.25),
    ("without-replacement", "without-replacement", 0.5, 0.5), ("poisson", "all", 1.0, 1.0),
])
def test_sampling_passes_matching_samplers(assumed, used, q_a, q_u):
    assert check_sampling(RunFacts(sampling_assumed=assumed, sampling_used=used, sample_rate_assumed=q_a,
                                   sample_rate_used=q_u)) == []


def test_sampling_all_under_a_subsampled_rate_trips():
    assert _ids(check_sampling(RunFacts(sampling_assumed="poisson", sample_rate_assumed=0.1,
                                        sampling_used="all", sample_rate_used=1.0))) == [("sampling", "error")]


# -- steps ----------------------------------------------------------------------------------
def test_steps_trips_when_more_ran_than_accounted():
    out = check_steps(RunFacts(steps_accounted=3, steps_run=4))
    assert _ids(out) == [("steps", "error")] and "4 steps ran" in out[0].message and "composed 3" in out[0].message


def test_steps_over_accounted_is_a_warning_and_equal_passes():
    assert _ids(check_steps(RunFacts(steps_accounted=5, steps_run=4))) == [("steps", "warning")]
    assert check_steps(RunFacts(steps_accounted=4, steps_run=4)) == []


# -- delta ----------------------------------------------------------------------------------
@pytest.mark.parametrize("delta,expected", [
    (1 / 100, [("delta", "error")]),          # = 1/n
    (0.05, [("delta", "error")]),
    (0.0011, [("delta", "warning")]),         # just above 1/(10 n)
    (0.001, []),                              # = 1/(10 n)
    (1e-6, []),
])
def test_delta_thresholds_record_level(delta, expected):
    assert _ids(check_delta(RunFacts(delta=delta, n_records=100, unit_claimed="record"))) == expected


def test_delta_uses_clients_for_a_client_level_claim():
    facts = RunFacts(delta=0.02, n_records=10_000, n_clients=10, unit_claimed="client")
    out = check_delta(facts)
    assert _ids(out) == [("delta", "warning")] and "n = 10 clients" in out[0].message
    assert _ids(check_delta(RunFacts(delta=0.02, n_records=10_000, unit_claimed="record"))) == [("delta", "error")]
    assert check_delta(RunFacts(delta=1e-6, n_records=10_000, n_clients=10, unit_claimed="client")) == []


# -- unit -----------------------------------------------------------------------------------
def test_unit_client_claim_from_record_level_dp_trips():
    out = check_unit(RunFacts(unit_claimed="client", unit_released="record"))
    assert _ids(out) == [("unit", "error")] and "client-level" in out[0].message


def test_unit_with_no_mechanism_trips_and_matching_passes():
    assert _ids(check_unit(RunFacts(unit_claimed="record", unit_released="none"))) == [("unit", "error")]
    assert check_unit(RunFacts(unit_claimed="client", unit_released="client")) == []
    assert _ids(check_unit(RunFacts(unit_claimed="record", unit_released="client"))) == [("unit", "info")]


# -- adjacency ------------------------------------------------------------------------------
def test_adjacency_replace_one_claim_on_add_remove_accounting_trips():
    out = check_adjacency(RunFacts(adjacency_claimed="replace-one", adjacency_accounted="add-remove"))
    assert _ids(out) == [("adjacency", "error")] and "2C" in out[0].message


def test_adjacency_other_direction_trips_and_equal_passes():
    assert _ids(check_adjacency(RunFacts(adjacency_claimed="add-remove", adjacency_accounted="replace-one"))) == [
        ("adjacency", "error")]
    assert check_adjacency(RunFacts(adjacency_claimed="add-remove", adjacency_accounted="add-remove")) == []


# -- noise-scale ----------------------------------------------------------------------------
def test_noise_scale_trips_below_the_accounted_multiplier():
    out = check_noise_scale(RunFacts(noise_multiplier=1.0, effective_noise_multiplier=0.5, noise_source="config"))
    assert _ids(out) == [("noise-scale", "error")] and "0.5" in out[0].message and "(config)" in out[0].message


def test_noise_scale_respects_its_tolerance():
    assert check_noise_scale(RunFacts(noise_multiplier=1.0, effective_noise_multiplier=0.95,
                                      effective_noise_tolerance=0.1)) == []
    assert _ids(check_noise_scale(RunFacts(noise_multiplier=1.0, effective_noise_multiplier=0.85,
                                           effective_noise_tolerance=0.1))) == [("noise-scale", "error")]
    assert _ids(check_noise_scale(RunFacts(noise_multiplier=1.0, effective_noise_multiplier=2.0))) == [
        ("noise-scale", "info")]


def test_noise_scale_trips_on_data_dependent_divisors():
    out = check_noise_scale(RunFacts(mean_divisor_expected=16, mean_divisors_used=(16, 13, 19)))
    assert _ids(out) == [("noise-scale", "error")] and "13 to 19" in out[0].message
    assert check_noise_scale(RunFacts(mean_divisor_expected=16, mean_divisors_used=(16, 16))) == []
    assert _ids(check_noise_scale(RunFacts(mean_divisor_expected=16, mean_divisors_used=(32, 32)))) == [
        ("noise-scale", "info")]


# -- secure-rng -----------------------------------------------------------------------------
def test_secure_rng_off_is_a_warning():
    out = check_secure_rng(RunFacts(secure_rng=False, framework="opacus"))
    assert _ids(out) == [("secure-rng", "warning")] and "secure_mode=True" in out[0].fix
    assert check_secure_rng(RunFacts(secure_rng=True)) == []


# -- clip-order -----------------------------------------------------------------------------
@pytest.mark.parametrize("ops,n_errors", [
    (("noise", "clip", "aggregate"), 1),                 # noise before clip
    (("aggregate", "noise"), 1),                         # no clip at all
    (("secagg", "clip", "aggregate", "noise"), 1),       # clip of masked updates
    (("clip", "aggregate", "noise"), 0),
    (("clip", "noise", "clip", "aggregate", "noise"), 0),  # a later clip is post-processing
    (("clip", "secagg", "aggregate", "noise"), 0),
    (("clip", "aggregate"), 0),                          # no noise: nothing to order
])
def test_clip_order(ops, n_errors):
    assert len([f for f in check_clip_order(RunFacts(operations=ops)) if f.severity == "error"]) == n_errors


# -- run_lint -------------------------------------------------------------------------------
def test_run_lint_skips_unknown_facts_and_says_so_when_asked():
    facts = RunFacts(secure_rng=False)
    assert _ids(run_lint(facts)) == [("secure-rng", "warning")]
    skipped = run_lint(facts, report_skipped=True)
    assert [f.id for f in skipped] == list(RULE_IDS)
    delta = next(f for f in skipped if f.id == "delta")
    assert delta.severity == "info" and "population" in delta.message


def test_run_lint_delta_with_the_wrong_population_is_skipped_not_passed():
    facts = RunFacts(delta=0.5, n_records=100, unit_claimed="client")
    assert run_lint(facts) == []
    assert "population" in next(f for f in run_lint(facts, report_skipped=True) if f.id == "delta").message


def test_facts_are_validated_naming_the_value():
    with pytest.raises(InvalidParameterError, match="'sampling_used'.*'random'"):
        RunFacts(sampling_used="random")
    with pytest.raises(InvalidParameterError, match="'delta'.*1.5"):
        RunFacts(delta=1.5)
    with pytest.raises(InvalidParameterError, match="'operations'"):
        RunFacts(operations="clip,noise")
    with pytest.raises(InvalidParameterError, match="'facts' parameter of run_lint"):
        run_lint({"delta": 0.1})
    assert RunFacts(operations=["clip"]).to_dict()["operations"] == ["clip"]
