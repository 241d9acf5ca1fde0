"""Tests of audit.compliance (policy, rules, results, units): loading and validating policy
files (TOML, YAML, the default), each rule's PASS / FAIL / NOT EVALUATED on small hand-built
reports (valid under reports.schema), and end to end on real audits: DP-FedAvg with the bug
zoo's "noise-not-scaled-by-clip" bug planted FAILs epsilon_emp_within_claim, the correct
DP-FedAvg PASSes it."""

from __future__ import annotations

import copy
import json

import pytest
from sample_report import LPIPS_NOTE, make_report

from audit.core.errors import InvalidParameterError
from audit.compliance.policy import DEFAULT_POLICY_PATH, POLICY_KEYS, Policy, load_policy
from audit.compliance.results import FAIL, NOT_EVALUATED, PASS, RuleResult, overall, severity
from audit.compliance.rules import evaluate
from audit.compliance.units import unit_level
from reports.schema import validate_report

# -- hand-built reports -----------------------------------------------------------------------------


def _dp_finding(fid="dp-ig", **claim) -> dict:
    """The sample's DP-SGD finding (claim epsilon 7.93 per example, central; PSNR worst 18.9,
    SSIM worst 0.52, LPIPS null with a note), renamed, its claim updated."""
    f = copy.deepcopy(make_report()["findings"][0])
    f["id"], f["images"] = fid, None
    f["claim"].update(claim)
    return f


def _nodp_finding(fid="nodp-idlg") -> dict:
    f = copy.deepcopy(make_report()["findings"][1])
    f["id"] = fid
    return f


def _report(*findings, notes=None) -> dict:
    r = make_report()
    r["findings"] = list(findings)
    if notes is not None:
        r["notes"] = notes
    return validate_report(r)


def _metric(name, worst, direction="higher-leaks-more", note=None, per_item=None):
    return {"name": name, "unit": "", "direction": direction, "mean": worst, "worst": worst,
            "per_item": [worst] if per_item is None else per_item, "baseline": None, "note": note}


def _with_metrics(f, *metrics):
    f["metrics"] = list(metrics)
    return f


def _epsilon_finding(fid="dp:epsilon-cp", verdict="PASS", eps_emp=1.2, eps_claim=7.93,
                     alternatives=None) -> dict:
    f = _dp_finding(fid)
    f["attack"] = {"name": "epsilon-cp", "family": "dp-audit", "params": {"trials": 300}}
    f["metrics"] = [_metric("epsilon_emp", eps_emp)]
    f["privacy_audit"] = {
        "verdict": verdict, "epsilon_claim": eps_claim, "delta": 1e-5, "unit": "example",
        "estimate": {"estimator": "clopper-pearson", "epsilon": eps_emp, "nature": "lower-bound",
                     "confidence": 0.95},
        "reason": "lower bound vs claim"}
    if alternatives is not None:
        f["privacy_audit"]["alternatives"] = alternatives
    return f


def _membership_finding(fid="fedavg:lira", tpr=0.02, verdict=None, has_dp=False) -> dict:
    f = _dp_finding(fid) if has_dp else _nodp_finding(fid)
    f["attack"] = {"name": "lira", "family": "membership-inference", "params": {}}
    f["threat_model"]["name"] = "model-analyst"
    f["metrics"] = [_metric("ROC AUC", 0.7), _metric("TPR @ 0.1% FPR", 0.9),
                    _metric("TPR @ 1.0% FPR", tpr)]
    f["membership"] = {"empirical_epsilon": {
        "estimator": "one-run", "epsilon_emp": 2.5, "confidence": 0.95,
        "epsilon_claim_example_level": 1.0 if verdict else None,
        "comparison": "replace-one client data", "verdict": verdict}}
    return f


def _one(policy: Policy, *reports) -> RuleResult:
    (result,) = evaluate(policy, list(reports))
    json.dumps(result.to_dict())  # JSON-ready
    return result


# -- loading ----------------------------------------------------------------------------------------


def test_toml_policy_loads(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('name = "strict"\nmax_epsilon_claim = 3\nunit_of_privacy = "user"\n'
                 'require_dp_claim = true\nrequired_attacks = ["lira", "epsilon-cp"]\n')
    policy = load_policy(p)
    assert policy.max_epsilon_claim == 3.0 and isinstance(policy.max_epsilon_claim, float)
    assert policy.unit_of_privacy == "client"  # alias
    assert policy.required_attacks == ("lira", "epsilon-cp")
    assert policy.rules == ("require_dp_claim", "max_epsilon_claim", "unit_of_privacy", "required_attacks")
    assert str(p) in policy.source
    d = policy.to_dict()
    assert d["required_attacks"] == ["lira", "epsilon-cp"] and d["name"] == "strict"
    assert Policy.from_dict({k: v for k, v in d.items() if k != "source"}) == policy


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_yaml_policy_loads(tmp_path, suffix):
    p = tmp_path / f"p{suffix}"
    p.write_text("epsilon_emp_within_claim: true\nmax_tpr_at_1pct_fpr: 5e-2\nmin_lpips: 0.25\n"
                 "required_threat_models:\n  - hbc-server\n")
    policy = load_policy(p)
    assert policy.max_tpr_at_1pct_fpr == pytest.approx(0.05)  # PyYAML reads 5e-2 as a str
    assert policy.min_lpips == 0.25 and policy.epsilon_emp_within_claim is True
    assert policy.required_threat_models == ("hbc-server",)


def test_default_policy_loads():
    assert DEFAULT_POLICY_PATH.is_file() and DEFAULT_POLICY_PATH.name == "default.toml"
    policy = load_policy(None)
    assert policy == load_policy(DEFAULT_POLICY_PATH) and policy.source.startswith("default")
    assert policy.require_dp_claim and policy.epsilon_emp_within_claim
    assert policy.max_epsilon_claim == 10.0 and policy.unit_of_privacy == "client"
    assert (policy.max_psnr, policy.max_ssim, policy.min_lpips, policy.max_tpr_at_1pct_fpr) == (20.0, 0.5, 0.3, 0.05)
    assert load_policy() == policy


def test_unknown_key_names_it_and_the_file(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("max_epsilon = 3\n")
    with pytest.raises(InvalidParameterError) as info:
        load_policy(p)
    msg = str(info.value)
    assert "'max_epsilon'" in msg and str(p) in msg and "max_epsilon_claim" in msg and "\n" not in msg


@pytest.mark.parametrize("line, key", [
    ('max_psnr = "high"', "max_psnr"),
    ("require_dp_claim = 1", "require_dp_claim"),
    ("max_epsilon_claim = -1.0", "max_epsilon_claim"),
    ("max_epsilon_claim = true", "max_epsilon_claim"),
    ("max_tpr_at_1pct_fpr = 2.0", "max_tpr_at_1pct_fpr"),
    ("max_ssim = 1.5", "max_ssim"),
    ("min_lpips = nan", "min_lpips"),
    ('unit_of_privacy = "household"', "unit_of_privacy"),
    ('required_attacks = "lira"', "required_attacks"),
    ("required_threat_models = []", "required_threat_models"),
    ('required_attacks = ["lira", "lira"]', "required_attacks"),
    ("name = 3\nrequire_dp_claim = true", "name"),
])
def test_wrong_type_or_value_names_key_and_file(tmp_path, line, key):
    p = tmp_path / "bad.toml"
    p.write_text(line + "\n")
    with pytest.raises(InvalidParameterError) as info:
        load_policy(p)
    msg = str(info.value)
    assert repr(key) in msg and str(p) in msg and "\n" not in msg


def test_wrong_type_in_yaml(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("max_ssim: [0.5]\n")
    with pytest.raises(InvalidParameterError, match=r"'max_ssim'.*bad\.yaml"):
        load_policy(p)


@pytest.mark.parametrize("name, text, match", [
    ("p.toml", "max_psnr = = 3", "not valid"),
    ("p.yaml", "max_psnr: [1,\n", "not valid"),
    ("p.yaml", "- 1\n- 2\n", "table"),
    ("p.toml", "# nothing\n", "sets no rule"),
    ("p.toml", "require_dp_claim = false\n", "sets no rule"),
    ("p.json", "{}", r"\.toml, \.yaml or \.yml"),
])
def test_bad_files(tmp_path, name, text, match):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(InvalidParameterError, match=match) as info:
        load_policy(p)
    assert str(p) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(InvalidParameterError, match="does not exist"):
        load_policy(tmp_path / "none.toml")


def test_policy_keys_are_the_documented_rules():
    assert set(POLICY_KEYS) == {
        "name", "description", "require_dp_claim", "max_epsilon_claim", "unit_of_privacy",
        "epsilon_emp_within_claim", "max_psnr", "max_ssim", "min_lpips", "max_tpr_at_1pct_fpr",
        "max_extraction_gap_closed", "required_threat_models", "required_attacks", "frameworks"}


# -- rules ------------------------------------------------------------------------------------------


def test_require_dp_claim():
    policy = Policy(require_dp_claim=True)
    assert _one(policy, _report(_dp_finding())).status == PASS
    r = _one(policy, _report(_dp_finding(), _nodp_finding("plain")))
    assert r.status == FAIL and "plain" in r.why
    assert [e["finding"] for e in r.evidence if e["result"] == "fail"] == ["plain"]
    assert _one(policy, _report()).status == NOT_EVALUATED


def test_max_epsilon_claim():
    assert _one(Policy(max_epsilon_claim=8), _report(_dp_finding())).status == PASS
    r = _one(Policy(max_epsilon_claim=5), _report(_dp_finding("a"), _nodp_finding()))
    assert r.status == FAIL and "a" in r.why and "7.93" in r.why and "require_dp_claim" in r.why
    (e,) = r.evidence
    assert (e["finding"], e["epsilon_claim"], e["max_epsilon_claim"], e["result"]) == ("a", 7.93, 5.0, "fail")
    r = _one(Policy(max_epsilon_claim=5), _report(_nodp_finding()))
    assert r.status == NOT_EVALUATED and "no" in r.why.lower()


def test_max_epsilon_claim_checks_alternative_claims_and_missing_epsilon():
    alt = dict(copy.deepcopy(_dp_finding()["claim"]), epsilon=50.0, label="as run")
    r = _one(Policy(max_epsilon_claim=8), _report(_dp_finding("d", alternatives=[alt])))
    assert r.status == FAIL and "as run" in r.why
    assert [(e["claim"], e["result"]) for e in r.evidence] == [("primary", "pass"), ("as run", "fail")]
    assert _one(Policy(max_epsilon_claim=8), _report(_dp_finding(epsilon=None))).status == FAIL


@pytest.mark.parametrize("unit, level", [
    ("one client's local data (replace-one, L2 sensitivity 2C per release)", "client"),
    ("one client (add-or-remove, L2 sensitivity C of the sum)", "client"),
    ("one client's data (client-level, replace-one; the clipped code of its update)", "client"),
    ("one training example (sample-level DP-SGD accounting, add-or-remove)", "example"),
    ("example", "example"),
    ("one record of a user", "example"),
    ("User-level", "client"),
    ("a subsampled batch", None),
    ("", None),
    (None, None),
])
def test_unit_level(unit, level):
    assert unit_level(unit) == level


def test_unit_of_privacy():
    example, client = _dp_finding("ex"), _dp_finding("cl", unit="one client's local data (replace-one)")
    r = _one(Policy(unit_of_privacy="client"), _report(example, client))
    assert r.status == FAIL and "ex" in r.why and "example-level" in r.why
    assert [e["result"] for e in r.evidence] == ["fail", "pass"]
    assert _one(Policy(unit_of_privacy="client"), _report(client)).status == PASS
    assert _one(Policy(unit_of_privacy="record"), _report(example, client)).status == PASS  # client covers example
    r = _one(Policy(unit_of_privacy="example"), _report(_dp_finding("u", unit=None)))
    assert r.status == FAIL and "not stated" in r.why
    assert _one(Policy(unit_of_privacy="client"), _report(_nodp_finding())).status == NOT_EVALUATED


def test_epsilon_emp_within_claim_pass_and_fail():
    policy = Policy(epsilon_emp_within_claim=True)
    assert _one(policy, _report(_epsilon_finding())).status == PASS
    r = _one(policy, _report(_epsilon_finding("ok"), _epsilon_finding("bug:epsilon-cp", "VIOLATION", 3.69, 1.99)))
    assert r.status == FAIL
    for text in ("bug:epsilon-cp", "clopper-pearson", "3.69", "1.99"):
        assert text in r.why
    bad = [e for e in r.evidence if e["result"] == "fail"]
    assert [(e["finding"], e["estimator"], e["epsilon_emp"], e["epsilon_claim"]) for e in bad] == [
        ("bug:epsilon-cp", "clopper-pearson", 3.69, 1.99)]


def test_epsilon_emp_within_claim_alternatives_and_membership():
    policy = Policy(epsilon_emp_within_claim=True)
    alt = {"label": "official", "epsilon_claim": 0.5, "delta": 1e-5, "unit": "example",
           "trust_model": "central", "verdict": "VIOLATION", "reason": "1.2 > 0.5"}
    r = _one(policy, _report(_epsilon_finding(alternatives=[alt])))
    assert r.status == FAIL and "official" in r.why
    r = _one(policy, _report(_membership_finding("m", verdict="VIOLATION", has_dp=True)))
    assert r.status == FAIL and "m (one-run)" in r.why
    # no claim to compare: the membership epsilon stands alone, nothing to judge
    assert _one(policy, _report(_membership_finding())).status == NOT_EVALUATED


def test_epsilon_emp_within_claim_not_evaluated():
    policy = Policy(epsilon_emp_within_claim=True)
    r = _one(policy, _report(_dp_finding()))
    assert r.status == NOT_EVALUATED and "--estimator" in r.why and r.evidence == []
    r = _one(policy, _report(_epsilon_finding(verdict="NOT EVALUATED")))
    assert r.status == NOT_EVALUATED and "'NOT EVALUATED'" in r.why


def test_max_psnr():
    assert _one(Policy(max_psnr=20), _report(_dp_finding())).status == PASS
    r = _one(Policy(max_psnr=15), _report(_dp_finding("ig"), _nodp_finding()))
    assert r.status == FAIL and "ig" in r.why and "18.9" in r.why
    (e,) = r.evidence
    assert (e["finding"], e["worst"], e["max"], e["baseline_worst"]) == ("ig", 18.9, 15.0, 12.3)
    assert _one(Policy(max_psnr=15), _report(_nodp_finding())).status == NOT_EVALUATED
    # worst null but per-item values: the most-leaking one counts
    f = _with_metrics(_dp_finding(), _metric("psnr", None, per_item=[12.0, None, 21.0]))
    assert _one(Policy(max_psnr=20), _report(f)).evidence[0]["worst"] == 21.0
    # region metrics are not the whole-image PSNR
    f = _with_metrics(_dp_finding(), _metric("psnr (PSI)", 40.0))
    assert _one(Policy(max_psnr=20), _report(f)).status == NOT_EVALUATED


def test_max_ssim():
    assert _one(Policy(max_ssim=0.6), _report(_dp_finding())).status == PASS
    r = _one(Policy(max_ssim=0.5), _report(_dp_finding("ig")))
    assert r.status == FAIL and "ig" in r.why and "0.52" in r.why
    assert _one(Policy(max_ssim=0.5), _report(_nodp_finding())).status == NOT_EVALUATED


def test_min_lpips():
    r = _one(Policy(min_lpips=0.3), _report(_dp_finding("ig")))  # LPIPS null in the sample
    assert r.status == NOT_EVALUATED and LPIPS_NOTE in r.why and "ig" in r.why
    assert r.evidence[0]["note"] == LPIPS_NOTE
    good = _with_metrics(_dp_finding("good"), _metric("lpips", 0.6, "lower-leaks-more"))
    bad = _with_metrics(_dp_finding("bad"), _metric("lpips", 0.1, "lower-leaks-more"))
    assert _one(Policy(min_lpips=0.3), _report(good)).status == PASS
    r = _one(Policy(min_lpips=0.3), _report(good, bad, _dp_finding("null")))
    assert r.status == FAIL and "bad" in r.why  # a computed failure outweighs the missing value
    r = _one(Policy(min_lpips=0.3), _report(good, _dp_finding("null")))
    assert r.status == NOT_EVALUATED and "null" in r.why  # the worst case is unknown
    assert _one(Policy(min_lpips=0.3), _report(_nodp_finding())).status == NOT_EVALUATED


def test_max_tpr_at_1pct_fpr():
    policy = Policy(max_tpr_at_1pct_fpr=0.05)
    r = _one(policy, _report(_membership_finding(tpr=0.02)))
    assert r.status == PASS and [e["metric"] for e in r.evidence] == ["TPR @ 1.0% FPR"]  # not 0.1%
    r = _one(policy, _report(_membership_finding("a", tpr=0.02), _membership_finding("b", tpr=0.44)))
    assert r.status == FAIL and "b" in r.why and "0.44" in r.why and "a (" not in r.why
    stage1 = _with_metrics(_dp_finding("s1"), _metric("stage1_membership_tpr_at_1pct_fpr", 0.3))
    assert _one(policy, _report(stage1)).status == FAIL
    assert _one(policy, _report(_dp_finding())).status == NOT_EVALUATED


def test_required_threat_models_and_attacks():
    report = _report(_dp_finding("ig"), _membership_finding("mia"))
    r = _one(Policy(required_threat_models=("honest-but-curious-server", "model-analyst")), report)
    assert r.status == PASS and [e["finding"] for e in r.evidence] == ["ig", "mia"]
    r = _one(Policy(required_threat_models=("aggregate-observer",)), report)
    assert r.status == FAIL and "aggregate-observer" in r.why and "model-analyst" in r.why
    r = _one(Policy(required_attacks=("lira", "inverting-gradients")), report)
    assert r.status == PASS
    r = _one(Policy(required_attacks=("lira", "epsilon-cp")), report)
    assert r.status == FAIL and "epsilon-cp" in r.why
    assert r.evidence[1] == {"attack": "epsilon-cp", "finding": None, "report": None, "findings": 0,
                             "result": "fail"}
    assert _one(Policy(required_attacks=("lira",)), _report()).status == NOT_EVALUATED


def test_evidence_names_the_report_of_several():
    r = _one(Policy(max_epsilon_claim=5), _report(_nodp_finding()), _report(_dp_finding("x")))
    assert r.status == FAIL and r.evidence[0]["report"] == 1 and r.evidence[0]["finding"] == "x"


def test_evaluate_order_overall_and_severity():
    policy = load_policy(None)
    results = evaluate(policy, [_report(_dp_finding(), _nodp_finding())])
    assert [r.rule for r in results] == list(policy.rules)
    assert overall(results) == FAIL  # require_dp_claim
    json.dumps([r.to_dict() for r in results])
    ordered = sorted(results, key=severity, reverse=True)
    assert [severity(r) for r in ordered] == sorted((severity(r) for r in results), reverse=True)
    assert severity(FAIL) > severity(NOT_EVALUATED) > severity(PASS)
    assert severity(ordered[0].to_dict()) == 2
    mk = lambda s: RuleResult("r", "t", s, [], "")  # noqa: E731
    assert overall([mk(PASS), mk(NOT_EVALUATED)]) == PASS
    assert overall([mk(PASS), mk(FAIL), mk(NOT_EVALUATED)]) == FAIL
    assert overall([mk(NOT_EVALUATED)]) == NOT_EVALUATED and overall([]) == NOT_EVALUATED
    with pytest.raises(InvalidParameterError):
        mk("OK")


def test_evaluate_rejects_bad_input():
    policy = Policy(require_dp_claim=True)
    bad = _report(_dp_finding())
    del bad["findings"][0]["claim"]["epsilon"]
    with pytest.raises(InvalidParameterError, match=r"reports\[1\].*claim\.epsilon"):
        evaluate(policy, [_report(), bad])
    with pytest.raises(InvalidParameterError, match="sequence"):
        evaluate(policy, _report())
    with pytest.raises(InvalidParameterError, match="Policy"):
        evaluate({"require_dp_claim": True}, [])


# -- end to end: real audits ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def audits(tmp_path_factory):
    """Two real audits (llg on digits, cp estimator, 300 trials per side, < 1 s each):
    DP-FedAvg with the bug zoo's "noise-not-scaled-by-clip" planted, and the correct one."""
    from audit.privacy.testing.bug_zoo import BUGS
    from audit.cli.main import main
    from audit.core.defense import DEFENSES
    from defenses.dp_fedavg import DPFedAvg
    from reports.io import load_report

    assert "noise-not-scaled-by-clip" in BUGS

    class NoiseNotScaledByClip(DPFedAvg):
        """Bug zoo bug 2: noise std z instead of z * C (C = 50, so it matters)."""

        name = "dp-fedavg-zoo-bug"

        def _noise_std(self) -> float:
            return self.noise_multiplier

    DEFENSES.register("dp-fedavg-zoo-bug", NoiseNotScaledByClip.from_params, force=True)
    reports = {}
    try:
        for defense in ("dp-fedavg-zoo-bug", "dp-fedavg"):
            out = tmp_path_factory.mktemp(defense)
            with pytest.raises(SystemExit) as exc:
                main(["audit", "--defense", defense, "--defense-param", "clip_norm=50",
                      "--defense-param", "noise_multiplier=4", "--attack", "llg", "--dataset", "digits",
                      "--num-targets", "2", "--estimator", "cp", "--estimator-param", "trials=300",
                      "--no-progress", "--device", "cpu", "--out", str(out)])
            assert exc.value.code == 0
            reports[defense] = load_report(out / "report.json")
    finally:
        DEFENSES._entries.pop("dp-fedavg-zoo-bug", None)
    return reports


def test_bug_zoo_defense_fails_epsilon_emp_within_claim(audits):
    report = audits["dp-fedavg-zoo-bug"]
    r = _one(Policy(epsilon_emp_within_claim=True), report)
    assert r.status == FAIL
    (e,) = [e for e in r.evidence if e["result"] == "fail"]
    assert e["finding"] == "dp-fedavg-zoo-bug:epsilon-cp" and e["estimator"] == "clopper-pearson"
    assert e["epsilon_emp"] > e["epsilon_claim"] > 0
    for text in (e["finding"], "clopper-pearson", f"{e['epsilon_emp']:.4g}", f"{e['epsilon_claim']:.4g}"):
        assert text in r.why
    assert overall(evaluate(load_policy(None), [report])) == FAIL


def test_correct_dp_fedavg_passes(audits):
    report = audits["dp-fedavg"]
    r = _one(Policy(epsilon_emp_within_claim=True), report)
    assert r.status == PASS and [e["finding"] for e in r.evidence] == ["dp-fedavg:epsilon-cp"]
    results = {x.rule: x.status for x in evaluate(load_policy(None), [report])}
    assert results["require_dp_claim"] == results["unit_of_privacy"] == results["max_epsilon_claim"] == PASS
    assert results["epsilon_emp_within_claim"] == PASS
    assert results["max_psnr"] == NOT_EVALUATED  # llg recovers labels, not images
    # both together: the buggy one fails the pair
    both = _one(Policy(epsilon_emp_within_claim=True), report, audits["dp-fedavg-zoo-bug"])
    assert both.status == FAIL and [e["report"] for e in both.evidence if e["result"] == "fail"] == [1]
