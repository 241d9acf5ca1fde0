"""The published JSON Schema of report.json against the hand-written validator.

Every valid report the project produces (the sample fixtures, variants with each optional
part, and real reports of tiny in-process CLI audits) passes both ``validate_report`` and
``validate_audit_json_schema``; corrupted reports are rejected by both. The checks that JSON
Schema cannot express are pinned in ``test_documented_gaps``: the hand validator rejects, the
schema accepts, and the schema's description says so.
"""

from __future__ import annotations

import base64
import copy
import json
import math

import pytest
from sample_report import make_report

from audit.core.claims import PrivacyClaim, TrustModel
from audit.cli.main import main
from audit.core.errors import InvalidParameterError
from reports.audit_schema import AUDIT_SCHEMA_PATH, validate_audit_json_schema
from reports.io import load_report
from reports.ledger import ledger_rows
from reports.schema import SCHEMA_VERSION, validate_report


def schema() -> dict:
    return json.loads(AUDIT_SCHEMA_PATH.read_text(encoding="utf-8"))


def accepted_by_both(report: dict) -> None:
    assert validate_report(copy.deepcopy(report)) is not None
    assert validate_audit_json_schema(report) is report


def rejected_by_both(report) -> tuple[str, str]:
    with pytest.raises(InvalidParameterError) as hand:
        validate_report(copy.deepcopy(report))
    with pytest.raises(InvalidParameterError) as published:
        validate_audit_json_schema(report)
    return str(hand.value), str(published.value)


# -- the schema file ------------------------------------------------------------------------------


def test_schema_file_is_a_valid_draft_2020_12_schema_for_this_version():
    import jsonschema

    assert AUDIT_SCHEMA_PATH.name == f"audit-report-{SCHEMA_VERSION}.schema.json"
    s = schema()
    jsonschema.Draft202012Validator.check_schema(s)
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert s["properties"]["schema_version"] == {"const": SCHEMA_VERSION}
    assert s["properties"]["kind"] == {"const": "fedaudit-audit"}
    # unknown extra keys are allowed at every level, as in the hand validator
    def walk(node):
        if isinstance(node, dict):
            assert node.get("additionalProperties", True) is not False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(s)


# -- sample fixtures and their optional parts -----------------------------------------------------


def _layer(name, share):
    return {"name": name, "epsilon": 1.5, "noise_multiplier": 2.0, "clip_norm": 0.5, "share": share}


ROUNDS = tuple({"name": f"round {i}", "noise_multiplier": 1.1, "sensitivity_factor": 1.0 + 0.3 * i}
               for i in range(3))


def _in_memory_claim() -> dict:
    """A claim as PrivacyClaim.to_dict() gives it before the JSON round trip (tuples)."""
    aggregate = PrivacyClaim(
        has_dp=True, statement="As run: (45.1, 1e-05)-DP per client.", epsilon=45.1, delta=1e-5,
        unit="client", trust_model=TrustModel.CENTRAL, compositions=3, accountant="pld",
        mechanism="gaussian", parts=ROUNDS, label="as run, aggregate", unit_level="client",
        adjacency="replace-one", assumptions=("3 rounds composed",))
    return PrivacyClaim(
        has_dp=True, statement="(3.2, 1e-05)-DP per example.", epsilon=3.2, delta=1e-5,
        unit="example", trust_model=TrustModel.LOCAL, compositions=50, accountant="rdp",
        mechanism="gaussian", label="official accounting", alternatives=(aggregate,),
        unit_level="record", adjacency="add-remove",
        assumptions=("Poisson sampling at q = 0.01", "50 steps composed")).to_dict()


def _privacy_audit(alternatives=True) -> dict:
    audit = {"verdict": "PASS", "epsilon_claim": 3.2, "delta": 1e-5, "unit": "example",
             "estimate": {"epsilon": 1.0, "nature": "lower-bound"}, "reason": "lower bound 1.0",
             "statement": "A low empirical epsilon is not a proof of privacy."}
    if alternatives:
        audit["alternatives"] = [
            {"label": "as run, aggregate", "epsilon_claim": 45.1, "delta": 1e-5, "unit": "client",
             "trust_model": "central", "verdict": "PASS", "reason": "lower bound 1.0"},
            {"label": "as run, each update", "epsilon_claim": 0, "delta": None, "unit": None,
             "trust_model": "local", "verdict": "VIOLATION", "reason": "lower bound 1.0"}]
    return audit


LINT = [{"id": "sampling", "severity": "error", "message": "Poisson assumed, shuffling run",
         "fix": "sample with Poisson"},
        {"id": "secure-rng", "severity": "info", "message": "skipped: unknown", "fix": "state it"}]
ALT_EVIDENCE = {"estimator": "clopper-pearson", "epsilon_emp": 1.0, "power_ceiling": 6.1,
                "trials": 400}


def _set(*path_and_value):
    *path, key, value = path_and_value

    def mutate(r):
        target = r
        for p in path:
            target = target[p]
        target[key] = value
    return mutate


def _delete(*path):
    def mutate(r):
        target = r
        for p in path[:-1]:
            target = target[p]
        del target[path[-1]]
    return mutate


def _claim(r):
    return r["findings"][0]["claim"]


VALID_VARIANTS = {
    "sample": lambda r: None,
    "layer parts": lambda r: _claim(r).__setitem__("parts", [_layer("fc1", 0.5), _layer("fc2", 0.5)]),
    "round parts": lambda r: _claim(r).__setitem__("parts", list(ROUNDS)),
    "round part with layer keys of any type": lambda r: _claim(r).__setitem__(
        "parts", [{**ROUNDS[0], "share": "unchecked", "epsilon": None}]),
    "empty parts": lambda r: _claim(r).__setitem__("parts", []),
    "null parts, label, alternatives": lambda r: _claim(r).update(
        parts=None, label=None, alternatives=None),
    "in-memory claim with tuples": lambda r: r["findings"][0].__setitem__("claim", _in_memory_claim()),
    "claim after the JSON round trip": lambda r: r["findings"][0].__setitem__(
        "claim", json.loads(json.dumps(_in_memory_claim()))),
    "nested alternatives": lambda r: _claim(r).__setitem__(
        "alternatives", [{**_in_memory_claim(), "label": "outer"}]),
    "privacy_audit with alternatives": lambda r: r["findings"][0].__setitem__(
        "privacy_audit", _privacy_audit()),
    "privacy_audit, no alternatives, null verdict": lambda r: r["findings"][0].__setitem__(
        "privacy_audit", {**_privacy_audit(False), "verdict": None, "reason": None}),
    "privacy_audit empty": lambda r: r["findings"][0].__setitem__("privacy_audit", {}),
    "privacy_audit with lint and alternatives' evidence": lambda r: r["findings"][0].__setitem__(
        "privacy_audit", {**_privacy_audit(), "lint": LINT, "alternatives": [
            {**_privacy_audit()["alternatives"][0], **ALT_EVIDENCE},
            {**_privacy_audit()["alternatives"][1], "estimator": None, "power_ceiling": None}]}),
    "privacy_audit empty lint, null lint": lambda r: (
        r["findings"][0].__setitem__("privacy_audit", {**_privacy_audit(), "lint": []}),
        r["findings"][1].__setitem__("privacy_audit", {"lint": None})),
    "claim unit_level, adjacency, assumptions null or empty": lambda r: (
        _claim(r).update(unit_level=None, adjacency=None, assumptions=None),
        r["findings"][1]["claim"].update(unit_level="client", adjacency="replace-one", assumptions=[])),
    "ledger of the rich report": lambda r: r.update(_rich_report()),
    "ledger empty": lambda r: r.__setitem__("ledger", []),
    "ledger null": lambda r: r.__setitem__("ledger", None),
    "ledger row of another run, estimate, extra keys": lambda r: r.__setitem__("ledger", [
        {**_rich_report()["ledger"][0], "run": "runs/a", "extra": 1, "evidence": {
            "estimator": "gdp-fit", "nature": "estimate", "epsilon_emp": 2.5, "interval": None,
            "confidence": None, "power_ceiling": None, "trials": 0}}]),
    "privacy_audit null": lambda r: r["findings"][0].__setitem__("privacy_audit", None),
    "text_samples": lambda r: r["findings"][1].__setitem__(
        "text_samples", [{"truth": "Ship 29141", "recovered": ""}]),
    "text_samples null": lambda r: r["findings"][1].__setitem__("text_samples", None),
    "membership section (free-form)": lambda r: r["findings"][1].__setitem__(
        "membership", {"game": {"candidates": 400}, "empirical_epsilon": None}),
    "extra keys everywhere": lambda r: (r.__setitem__("extra", [1, {"x": None}]),
                                       r["findings"][0]["metrics"][0].__setitem__("interval", [0, 1]),
                                       r["environment"].__setitem__("gpu", None)),
    "null images, baseline, means": lambda r: (
        r["findings"][0].__setitem__("images", None),
        r["findings"][0]["metrics"][0].update(baseline=None, mean=None, worst=None, per_item=[None])),
    "empty findings and notes": lambda r: r.update(findings=[], notes=[]),
    "negative seed, zero threads": lambda r: (r.__setitem__("seed", -7),
                                              r["environment"].__setitem__("threads", 0)),
    "nested model_params": lambda r: r["findings"][0]["setting"].__setitem__(
        "model_params", {"a": [1, [2.5, {"b": None}]], "c": True, "d": "x"}),
    "empty png_base64": _set("findings", 0, "images", "png_base64", ""),
    "png_base64 with surplus padding (b64decode accepts it)": _set(
        "findings", 0, "images", "png_base64", "QUJD="),
    "delta bounds and zero epsilon": lambda r: _claim(r).update(epsilon=0, delta=1),
}


@pytest.mark.parametrize("mutate", VALID_VARIANTS.values(), ids=VALID_VARIANTS.keys())
def test_valid_sample_variants_pass_both(mutate):
    report = make_report()
    mutate(report)
    accepted_by_both(report)
    accepted_by_both(json.loads(json.dumps(report)))


@pytest.mark.parametrize("created", [
    "2025-01-02T03:04:05+00:00", "2025-01-02", "20250102T030405", "2025-01-02 03:04:05.123456+05:30",
    "2025-W01-1T03Z", "2025-01-02T03:04:05,5-0130", "2025-01-02T03:04:05xZ",
    "2025-01-02T03:04:05.123456abc+01:00"])
def test_created_utc_forms_fromisoformat_accepts_pass_both(created):
    report = make_report()
    report["created_utc"] = created
    accepted_by_both(report)


# -- real reports of tiny CLI audits --------------------------------------------------------------

DIGITS_VIT = ["--dataset", "digits", "--dataset-param", "size=16", "--model-param", "hidden=32",
              "--model-param", "heads=2"]
AUDITS = {
    # gradient inversion on images with an empirical-epsilon estimator: images + privacy_audit
    "image-estimator": ["--dataset", "digits", "--model", "convnet", "--model-param", "width=4",
                        "--num-targets", "2", "--defense", "dp-fedavg", "--defense-param",
                        "noise_multiplier=2", "--attack", "inverting-gradients", "--attack-param",
                        "iterations=3", "--attack-param", "restarts=1", "--estimator", "one-shot",
                        "--no-progress", "--device", "cpu", "--no-lpips"],
    # membership inference with shadow models: the membership section, ROC image, intervals
    "membership": ["--dataset", "purchase-synthetic", "--model", "mlp", "--model-param", "hidden=32",
                   "--defense", "fedavg", "--defense-param", "local_steps=3", "--defense-param",
                   "lr=0.5", "--num-targets", "4", "--rounds", "3", "--num-candidates", "400",
                   "--num-population", "200", "--backend", "serial", "--attack", "lira",
                   "--shadow-models", "2"],
    # DR-Encoder on a tiny GPT-2 with LoRA: text_samples, the stage-1 statistics finding
    "dr-encoder-text": ["--dataset", "records", "--dataset-param", "num_items=16", "--dataset-param",
                        "length=16", "--model", "tiny-lm-lora", "--model-param", "hidden=32",
                        "--model-param", "heads=2", "--model-param", "targets=attention,embedding",
                        "--num-targets", "2", "--batch-size", "1", "--seed", "0", "--defense",
                        "dr-encoder", "--defense-param", "noise_multiplier=1", "--defense-param",
                        "ae_steps=10", "--defense-param", "local_steps=2", "--rounds", "2",
                        "--attack", "ae-reconstruction", "--no-lpips"],
    # FedQSN proxy extraction: no DP claim, curves as per_item
    "fedqsn-extraction": ["--dataset", "records", "--dataset-param", "num_items=96", "--dataset-param",
                          "length=32", "--model", "tiny-lm", "--model-param", "hidden=32",
                          "--model-param", "heads=2", "--rounds", "3", "--num-targets", "4",
                          "--batch-size", "8", "--seed", "0", "--defense", "fedqsn", "--defense-param",
                          "p1=0.3", "--attack", "proxy-extraction", "--attack-param", "coalition=2",
                          "--no-lpips"],
    # DEeR: claim label + alternatives with per-round parts, privacy_audit alternatives
    "deer-alternatives": [*DIGITS_VIT, "--model", "vit-lora", "--model-param", "layers=2",
                          "--num-targets", "2", "--batch-size", "4", "--pretrain-steps", "20",
                          "--rounds", "2", "--attack", "inverting-gradients", "--attack-param",
                          "iterations=5", "--seed", "0", "--defense", "deer", "--defense-param",
                          "target_epsilon=3", "--threat-model", "hbc-server-labels", "--estimator",
                          "cp", "--estimator-param", "trials=400"],
    # layer-wise LDP: per-layer budget parts {name, epsilon, noise_multiplier, clip_norm, share}
    "layerwise-parts": ["--dataset", "digits", "--model", "mlp", "--num-targets", "1", "--defense",
                        "uniform-ldp", "--defense-param", "target_epsilon=4", "--attack", "llg",
                        "--no-progress"],
}


def _has_layer_parts(r):
    return any("share" in p for f in r["findings"] for p in f["claim"].get("parts") or ())


#: what each audit must exercise, so that the schema is checked on that optional part
EXERCISES = {
    "image-estimator": lambda r: r["findings"][0]["images"]["png_base64"]
    and any(f.get("privacy_audit") for f in r["findings"]) and r["ledger"],
    "membership": lambda r: "membership" in r["findings"][0] and r["findings"][0]["images"],
    "dr-encoder-text": lambda r: r["findings"][0]["text_samples"],
    "fedqsn-extraction": lambda r: r["findings"][0]["claim"]["has_dp"] is False,
    "deer-alternatives": lambda r: r["findings"][0]["claim"]["alternatives"][0]["parts"]
    and r["findings"][1]["privacy_audit"]["alternatives"]
    and len(r["ledger"]) > len([f for f in r["findings"] if f.get("privacy_audit")]),
    "layerwise-parts": _has_layer_parts,
}


@pytest.fixture(scope="module")
def audit_reports(tmp_path_factory):
    """Run every tiny audit once (about 12 s in all on 2 cores); name -> report dict."""
    reports = {}
    for name, args in AUDITS.items():
        out = tmp_path_factory.mktemp(name)
        argv = ["audit", *args, "--out", str(out)]
        if name == "membership":
            argv += ["--cache-dir", str(out / "cache")]
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0, (name, exc.value.code)
        reports[name] = out / "report.json"
    return reports


@pytest.mark.parametrize("name", AUDITS)
def test_real_cli_reports_pass_both(audit_reports, name):
    path = audit_reports[name]
    report = load_report(path)  # strict JSON + validate_report
    assert EXERCISES[name](report), f"the {name} audit no longer exercises its optional part"
    accepted_by_both(report)


def test_corrupted_real_report_is_rejected_by_both(audit_reports):
    report = load_report(audit_reports["deer-alternatives"])
    report["findings"][1]["privacy_audit"]["alternatives"][0]["trust_model"] = "global"
    hand, published = rejected_by_both(report)
    path = "findings[1].privacy_audit.alternatives[0].trust_model"
    assert repr(path) in hand and repr(path) in published


# -- corruptions ----------------------------------------------------------------------------------


def _rich_report() -> dict:
    """The sample with every optional part filled in (after the JSON round trip)."""
    r = make_report()
    r["findings"][0]["claim"] = json.loads(json.dumps(_in_memory_claim()))
    r["findings"][0]["claim"]["parts"] = [_layer("fc1", 0.5), _layer("fc2", 0.5)]
    r["findings"][0]["privacy_audit"] = {**_privacy_audit(), "lint": copy.deepcopy(LINT)}
    r["findings"][0]["privacy_audit"]["alternatives"][0].update(ALT_EVIDENCE)
    r["findings"][1]["text_samples"] = [{"truth": "a", "recovered": "b"}]
    # after the JSON round trip: ledger_rows' rows of one finding share their lint objects
    r["ledger"] = json.loads(json.dumps(ledger_rows(r["findings"])))
    return r


F0, F1 = ("findings", 0), ("findings", 1)
CLAIM = (*F0, "claim")
ALT = (*CLAIM, "alternatives", 0)
PA_ALT = (*F0, "privacy_audit", "alternatives", 0)
LINT0 = (*F0, "privacy_audit", "lint", 0)
ROW = ("ledger", 1)
IMG = (*F0, "images")

#: (id, mutation, the JSON path the published validator must name)
CORRUPTIONS = [
    # missing keys (the schema names the object that lacks the key)
    ("missing schema_version", _delete("schema_version"), "(top level)"),
    ("missing kind", _delete("kind"), "(top level)"),
    ("missing findings", _delete("findings"), "(top level)"),
    ("missing environment.threads", _delete("environment", "threads"), "environment"),
    ("missing claim.epsilon", _delete(*CLAIM, "epsilon"), "findings[0].claim"),
    ("missing claim.statement", _delete(*CLAIM, "statement"), "findings[0].claim"),
    ("missing metric baseline", _delete(*F0, "metrics", 0, "baseline"), "findings[0].metrics[0]"),
    ("missing baseline.worst", _delete(*F0, "metrics", 0, "baseline", "worst"),
     "findings[0].metrics[0].baseline"),
    ("missing images", _delete(*F1, "images"), "findings[1]"),
    ("missing setting.clients", _delete(*F0, "setting", "clients"), "findings[0].setting"),
    ("missing threat_model.knows", _delete(*F0, "threat_model", "knows"), "findings[0].threat_model"),
    ("missing attack.params", _delete(*F0, "attack", "params"), "findings[0].attack"),
    ("missing layer part share", _delete(*CLAIM, "parts", 1, "share"), "findings[0].claim.parts[1]"),
    ("missing round part noise_multiplier", _delete(*ALT, "parts", 0, "noise_multiplier"),
     "findings[0].claim.alternatives[0].parts[0]"),
    ("missing alternative claim has_dp", _delete(*ALT, "has_dp"), "findings[0].claim.alternatives[0]"),
    ("missing alternative verdict reason", _delete(*PA_ALT, "reason"),
     "findings[0].privacy_audit.alternatives[0]"),
    ("missing text sample truth", _delete(*F1, "text_samples", 0, "truth"), "findings[1].text_samples[0]"),
    ("missing png_base64", _delete(*IMG, "png_base64"), "findings[0].images"),
    ("missing lint fix", _delete(*LINT0, "fix"), "findings[0].privacy_audit.lint[0]"),
    ("missing ledger row verdict", _delete(*ROW, "verdict"), "ledger[1]"),
    ("missing ledger row run", _delete(*ROW, "run"), "ledger[1]"),
    ("missing ledger claim assumptions", _delete(*ROW, "claim", "assumptions"), "ledger[1].claim"),
    ("missing ledger evidence interval", _delete(*ROW, "evidence", "interval"), "ledger[1].evidence"),
    ("missing lint_summary info", _delete(*ROW, "lint_summary", "info"), "ledger[1].lint_summary"),
    # wrong types
    ("title int", _set("title", 1), "title"),
    ("seed str", _set("seed", "0"), "seed"),
    ("seed bool", _set("seed", True), "seed"),
    ("seed float with fraction", _set("seed", 0.5), "seed"),
    ("notes str", _set("notes", "one note"), "notes"),
    ("notes item int", _set("notes", [1]), "notes[0]"),
    ("environment list", _set("environment", []), "environment"),
    ("package version float", _set("environment", "packages", "torch", 2.5),
     "environment.packages.torch"),
    ("threads str", _set("environment", "threads", "4"), "environment.threads"),
    ("findings object", _set("findings", {}), "findings"),
    ("finding str", _set("findings", 0, "x"), "findings[0]"),
    ("has_dp int", _set(*CLAIM, "has_dp", 1), "findings[0].claim.has_dp"),
    ("epsilon str", _set(*CLAIM, "epsilon", "8"), "findings[0].claim.epsilon"),
    ("epsilon bool", _set(*CLAIM, "epsilon", True), "findings[0].claim.epsilon"),
    ("unit int", _set(*CLAIM, "unit", 3), "findings[0].claim.unit"),
    ("statement null", _set(*CLAIM, "statement", None), "findings[0].claim.statement"),
    ("label int", _set(*CLAIM, "label", 3), "findings[0].claim.label"),
    ("parts object", _set(*CLAIM, "parts", {"a": 1}), "findings[0].claim.parts"),
    ("part name int", _set(*CLAIM, "parts", 0, "name", 3), "findings[0].claim.parts[0].name"),
    ("part str", _set(*CLAIM, "parts", 0, "fc1"), "findings[0].claim.parts[0]"),
    ("sensitivity_factor null", _set(*ALT, "parts", 0, "sensitivity_factor", None),
     "findings[0].claim.alternatives[0].parts[0].sensitivity_factor"),
    ("alternatives object", _set(*CLAIM, "alternatives", {}), "findings[0].claim.alternatives"),
    ("alternative claim str", _set(*CLAIM, "alternatives", 0, "x"), "findings[0].claim.alternatives[0]"),
    ("alternative has_dp str", _set(*ALT, "has_dp", "yes"), "findings[0].claim.alternatives[0].has_dp"),
    ("defense param list", _set(*F0, "defense", "params", "bad", [1, 2]), "findings[0].defense.params.bad"),
    ("attack param object", _set(*F0, "attack", "params", "bad", {}), "findings[0].attack.params.bad"),
    ("model_params list", _set(*F0, "setting", "model_params", [1]), "findings[0].setting.model_params"),
    ("knows str", _set(*F0, "threat_model", "knows", "x"), "findings[0].threat_model.knows"),
    ("metrics object", _set(*F0, "metrics", {}), "findings[0].metrics"),
    ("per_item str item", _set(*F0, "metrics", 0, "per_item", 1, "x"), "findings[0].metrics[0].per_item[1]"),
    ("per_item number", _set(*F0, "metrics", 0, "per_item", 1.0), "findings[0].metrics[0].per_item"),
    ("mean str", _set(*F0, "metrics", 0, "mean", "1"), "findings[0].metrics[0].mean"),
    ("note int", _set(*F0, "metrics", 0, "note", 1), "findings[0].metrics[0].note"),
    ("baseline str", _set(*F0, "metrics", 0, "baseline", "chance"), "findings[0].metrics[0].baseline"),
    ("images str", _set(*F0, "images", "x"), "findings[0].images"),
    ("caption null", _set(*IMG, "caption", None), "findings[0].images.caption"),
    ("text_samples str", _set(*F1, "text_samples", "x"), "findings[1].text_samples"),
    ("recovered null", _set(*F1, "text_samples", 0, "recovered", None),
     "findings[1].text_samples[0].recovered"),
    ("privacy_audit list", _set(*F0, "privacy_audit", []), "findings[0].privacy_audit"),
    ("privacy_audit verdict int", _set(*F0, "privacy_audit", "verdict", 1),
     "findings[0].privacy_audit.verdict"),
    ("privacy_audit alternatives object", _set(*F0, "privacy_audit", "alternatives", {}),
     "findings[0].privacy_audit.alternatives"),
    ("alternative verdict label null", _set(*PA_ALT, "label", None),
     "findings[0].privacy_audit.alternatives[0].label"),
    ("finding runtime_s str", _set(*F0, "runtime_s", "1"), "findings[0].runtime_s"),
    ("assumptions str", _set(*CLAIM, "assumptions", "Poisson"), "findings[0].claim.assumptions"),
    ("assumption int", _set(*CLAIM, "assumptions", 1, 2), "findings[0].claim.assumptions[1]"),
    ("alternative claim assumptions object", _set(*ALT, "assumptions", {}),
     "findings[0].claim.alternatives[0].assumptions"),
    ("lint object", _set(*F0, "privacy_audit", "lint", {}), "findings[0].privacy_audit.lint"),
    ("lint item str", _set(*F0, "privacy_audit", "lint", 1, "x"), "findings[0].privacy_audit.lint[1]"),
    ("lint message null", _set(*LINT0, "message", None), "findings[0].privacy_audit.lint[0].message"),
    ("lint id int", _set(*LINT0, "id", 3), "findings[0].privacy_audit.lint[0].id"),
    ("alternative estimator int", _set(*PA_ALT, "estimator", 1),
     "findings[0].privacy_audit.alternatives[0].estimator"),
    ("alternative epsilon_emp null", _set(*PA_ALT, "epsilon_emp", None),
     "findings[0].privacy_audit.alternatives[0].epsilon_emp"),
    ("alternative power_ceiling str", _set(*PA_ALT, "power_ceiling", "6"),
     "findings[0].privacy_audit.alternatives[0].power_ceiling"),
    ("alternative trials float", _set(*PA_ALT, "trials", 4.5),
     "findings[0].privacy_audit.alternatives[0].trials"),
    ("ledger object", _set("ledger", {}), "ledger"),
    ("ledger row str", _set("ledger", 0, "row"), "ledger[0]"),
    ("ledger run int", _set(*ROW, "run", 1), "ledger[1].run"),
    ("ledger finding null", _set(*ROW, "finding", None), "ledger[1].finding"),
    ("ledger defense int", _set(*ROW, "defense", 2), "ledger[1].defense"),
    ("ledger claim list", _set(*ROW, "claim", []), "ledger[1].claim"),
    ("ledger claim label int", _set(*ROW, "claim", "label", 1), "ledger[1].claim.label"),
    ("ledger claim epsilon str", _set(*ROW, "claim", "epsilon", "3"), "ledger[1].claim.epsilon"),
    ("ledger claim accountant int", _set(*ROW, "claim", "accountant", 1), "ledger[1].claim.accountant"),
    ("ledger claim assumptions str", _set(*ROW, "claim", "assumptions", "x"), "ledger[1].claim.assumptions"),
    ("ledger claim assumption null", _set(*ROW, "claim", "assumptions", 0, None),
     "ledger[1].claim.assumptions[0]"),
    ("ledger evidence null", _set(*ROW, "evidence", None), "ledger[1].evidence"),
    ("ledger estimator int", _set(*ROW, "evidence", "estimator", 1), "ledger[1].evidence.estimator"),
    ("ledger epsilon_emp str", _set(*ROW, "evidence", "epsilon_emp", "1"), "ledger[1].evidence.epsilon_emp"),
    ("ledger interval str", _set(*ROW, "evidence", "interval", "[1, inf)"), "ledger[1].evidence.interval"),
    ("ledger interval one end", _set(*ROW, "evidence", "interval", [1.0]), "ledger[1].evidence.interval"),
    ("ledger interval three ends", _set(*ROW, "evidence", "interval", [1.0, None, None]),
     "ledger[1].evidence.interval"),
    ("ledger interval low null", _set(*ROW, "evidence", "interval", [None, None]),
     "ledger[1].evidence.interval[0]"),
    ("ledger interval high str", _set(*ROW, "evidence", "interval", [1.0, "inf"]),
     "ledger[1].evidence.interval[1]"),
    ("ledger power_ceiling str", _set(*ROW, "evidence", "power_ceiling", "6"),
     "ledger[1].evidence.power_ceiling"),
    ("ledger trials float", _set(*ROW, "evidence", "trials", 1.5), "ledger[1].evidence.trials"),
    ("ledger reason int", _set(*ROW, "reason", 1), "ledger[1].reason"),
    ("ledger lint object", _set(*ROW, "lint", {}), "ledger[1].lint"),
    ("ledger lint fix null", _set(*ROW, "lint", 0, "fix", None), "ledger[1].lint[0].fix"),
    ("ledger lint_summary list", _set(*ROW, "lint_summary", []), "ledger[1].lint_summary"),
    ("ledger lint_summary float", _set(*ROW, "lint_summary", "error", 1.5), "ledger[1].lint_summary.error"),
    # bad enumerations and constants
    ("kind other", _set("kind", "other"), "kind"),
    ("direction up", _set(*F0, "metrics", 0, "direction", "up"), "findings[0].metrics[0].direction"),
    ("direction null", _set(*F0, "metrics", 0, "direction", None), "findings[0].metrics[0].direction"),
    ("trust_model global", _set(*CLAIM, "trust_model", "global"), "findings[0].claim.trust_model"),
    ("alternative trust_model null", _set(*PA_ALT, "trust_model", None),
     "findings[0].privacy_audit.alternatives[0].trust_model"),
    ("alternative verdict FAIL", _set(*PA_ALT, "verdict", "FAIL"),
     "findings[0].privacy_audit.alternatives[0].verdict"),
    ("unit_level example", _set(*CLAIM, "unit_level", "example"), "findings[0].claim.unit_level"),
    ("adjacency swap", _set(*CLAIM, "adjacency", "swap"), "findings[0].claim.adjacency"),
    ("alternative claim adjacency int", _set(*ALT, "adjacency", 1), "findings[0].claim.alternatives[0].adjacency"),
    ("lint severity fatal", _set(*LINT0, "severity", "fatal"), "findings[0].privacy_audit.lint[0].severity"),
    ("lint severity null", _set(*LINT0, "severity", None), "findings[0].privacy_audit.lint[0].severity"),
    ("ledger verdict FAIL", _set(*ROW, "verdict", "FAIL"), "ledger[1].verdict"),
    ("ledger verdict null", _set(*ROW, "verdict", None), "ledger[1].verdict"),
    ("ledger nature bound", _set(*ROW, "evidence", "nature", "bound"), "ledger[1].evidence.nature"),
    ("ledger unit_level user", _set(*ROW, "claim", "unit_level", "user"), "ledger[1].claim.unit_level"),
    ("ledger adjacency swap", _set(*ROW, "claim", "adjacency", "swap"), "ledger[1].claim.adjacency"),
    ("ledger trust_model global", _set(*ROW, "claim", "trust_model", "global"), "ledger[1].claim.trust_model"),
    ("ledger lint severity fatal", _set(*ROW, "lint", 0, "severity", "fatal"), "ledger[1].lint[0].severity"),
    ("schema_version older", _set("schema_version", "0.9"), "schema_version"),
    ("schema_version newer", _set("schema_version", "2.0"), "schema_version"),
    ("schema_version number", _set("schema_version", 1.0), "schema_version"),
    ("schema_version null", _set("schema_version", None), "schema_version"),
    # negative integers, numbers out of range, non-finite numbers
    ("batch_size negative", _set(*F0, "setting", "batch_size", -1), "findings[0].setting.batch_size"),
    ("rounds negative", _set(*F0, "setting", "rounds", -3), "findings[0].setting.rounds"),
    ("threads negative", _set("environment", "threads", -1), "environment.threads"),
    ("compositions negative", _set(*CLAIM, "compositions", -1), "findings[0].claim.compositions"),
    ("compositions float", _set(*CLAIM, "compositions", 1.5), "findings[0].claim.compositions"),
    ("runtime_s negative", _set("runtime_s", -0.5), "runtime_s"),
    ("epsilon negative", _set(*CLAIM, "epsilon", -1), "findings[0].claim.epsilon"),
    ("delta above 1", _set(*CLAIM, "delta", 2.0), "findings[0].claim.delta"),
    ("share above 1", _set(*CLAIM, "parts", 0, "share", 1.5), "findings[0].claim.parts[0].share"),
    ("clip_norm negative", _set(*CLAIM, "parts", 0, "clip_norm", -0.1),
     "findings[0].claim.parts[0].clip_norm"),
    ("sensitivity_factor negative", _set(*ALT, "parts", 0, "sensitivity_factor", -1),
     "findings[0].claim.alternatives[0].parts[0].sensitivity_factor"),
    ("alternative epsilon negative", _set(*ALT, "epsilon", -2), "findings[0].claim.alternatives[0].epsilon"),
    ("epsilon_claim negative", _set(*PA_ALT, "epsilon_claim", -1),
     "findings[0].privacy_audit.alternatives[0].epsilon_claim"),
    ("alternative delta negative", _set(*PA_ALT, "delta", -1e-5),
     "findings[0].privacy_audit.alternatives[0].delta"),
    ("runtime_s infinite", _set("runtime_s", math.inf), "runtime_s"),
    ("alternative epsilon_emp negative", _set(*PA_ALT, "epsilon_emp", -0.1),
     "findings[0].privacy_audit.alternatives[0].epsilon_emp"),
    ("alternative epsilon_emp infinite", _set(*PA_ALT, "epsilon_emp", math.inf),
     "findings[0].privacy_audit.alternatives[0].epsilon_emp"),
    ("alternative power_ceiling negative", _set(*PA_ALT, "power_ceiling", -1),
     "findings[0].privacy_audit.alternatives[0].power_ceiling"),
    ("alternative trials negative", _set(*PA_ALT, "trials", -1),
     "findings[0].privacy_audit.alternatives[0].trials"),
    ("ledger claim delta above 1", _set(*ROW, "claim", "delta", 1.5), "ledger[1].claim.delta"),
    ("ledger claim epsilon negative", _set(*ROW, "claim", "epsilon", -1), "ledger[1].claim.epsilon"),
    ("ledger epsilon_emp negative", _set(*ROW, "evidence", "epsilon_emp", -1), "ledger[1].evidence.epsilon_emp"),
    ("ledger epsilon_emp infinite", _set(*ROW, "evidence", "epsilon_emp", math.inf),
     "ledger[1].evidence.epsilon_emp"),
    ("ledger interval low negative", _set(*ROW, "evidence", "interval", [-1.0, None]),
     "ledger[1].evidence.interval[0]"),
    ("ledger confidence above 1", _set(*ROW, "evidence", "confidence", 95), "ledger[1].evidence.confidence"),
    ("ledger power_ceiling negative", _set(*ROW, "evidence", "power_ceiling", -1),
     "ledger[1].evidence.power_ceiling"),
    ("ledger trials negative", _set(*ROW, "evidence", "trials", -1), "ledger[1].evidence.trials"),
    ("ledger lint_summary negative", _set(*ROW, "lint_summary", "warning", -1), "ledger[1].lint_summary.warning"),
    ("mean -infinite", _set(*F0, "metrics", 0, "mean", -math.inf), "findings[0].metrics[0].mean"),
    ("defense param infinite", _set(*F0, "defense", "params", "x", math.inf), "findings[0].defense.params.x"),
    ("model_params nested infinite", _set(*F0, "setting", "model_params", "hidden", [64, math.inf]),
     "findings[0].setting.model_params.hidden[1]"),
    # base64 and created_utc
    ("png_base64 not base64", _set(*IMG, "png_base64", "not base64!"), "findings[0].images.png_base64"),
    ("png_base64 bad padding", _set(*IMG, "png_base64", "QUJDQQ"), "findings[0].images.png_base64"),
    ("png_base64 one char over", _set(*IMG, "png_base64", "QUJDQ"), "findings[0].images.png_base64"),
    ("png_base64 three =", _set(*IMG, "png_base64", "QUJD==="), "findings[0].images.png_base64"),
    ("png_base64 trailing newline", _set(*IMG, "png_base64", "QUJD\n"), "findings[0].images.png_base64"),
    ("png_base64 only padding", _set(*IMG, "png_base64", "=="), "findings[0].images.png_base64"),
    ("created_utc words", _set("created_utc", "yesterday"), "created_utc"),
    ("created_utc empty", _set("created_utc", ""), "created_utc"),
    ("created_utc month only", _set("created_utc", "2025-01"), "created_utc"),
    ("created_utc lower-case z", _set("created_utc", "2025-01-02T03:04:05z"), "created_utc"),
    ("created_utc trailing newline", _set("created_utc", "2025-01-02T03:04:05\n"), "created_utc"),
]


@pytest.mark.parametrize("mutate, path", [c[1:] for c in CORRUPTIONS], ids=[c[0] for c in CORRUPTIONS])
def test_corruption_is_rejected_by_both(mutate, path):
    report = _rich_report()
    accepted_by_both(copy.deepcopy(report))
    mutate(report)
    _, published = rejected_by_both(report)
    assert published.startswith(f"Invalid report: {path!r}: "), published
    assert "\n" not in published and len(published) < 320


def test_not_an_object_is_rejected_by_both():
    for value in ([1, 2], "report", None):
        _, published = rejected_by_both(value)
        assert "JSON object" in published


def test_long_values_are_shortened_in_the_message():
    report = make_report()
    report["findings"][0]["images"]["png_base64"] = "QUJD" * 50_000 + "!"
    _, published = rejected_by_both(report)
    assert published.startswith("Invalid report: 'findings[0].images.png_base64': ")
    assert len(published) < 320 and published.endswith("....")


# -- what JSON Schema cannot express --------------------------------------------------------------

GAPS = [
    ("duplicate finding id", _set(*F1, "id", "dpsgd-ig"), "ids unique"),
    ("integer written as a float", _set(*F0, "setting", "batch_size", 2.0), "zero fraction"),
    ("seed written as a float", _set("seed", 3.0), "zero fraction"),
    ("NaN in memory", _set(*F0, "metrics", 0, "per_item", 1, math.nan), "NaN"),
    ("calendar: 30 February", _set("created_utc", "2025-02-30T00:00:00+00:00"), "30 February"),
    ("calendar: month 13", _set("created_utc", "2025-13-01"), "month 13"),
    ("calendar: hour 24", _set("created_utc", "2025-01-02T24:00:00"), "hour 24"),
    ("tuple outside parts/alternatives (in memory)", _set("notes", ("a",)), "tuple"),
    ("tuple of assumptions (in memory)", _set(*CLAIM, "assumptions", ("a",)), "tuple"),
]


@pytest.mark.parametrize("mutate, words", [g[1:] for g in GAPS], ids=[g[0] for g in GAPS])
def test_documented_gaps(mutate, words):
    """The hand validator rejects these; JSON Schema cannot, and the description says so."""
    report = make_report()
    mutate(report)
    with pytest.raises(InvalidParameterError):
        validate_report(copy.deepcopy(report))
    validate_audit_json_schema(report)
    assert words in schema()["description"]


def test_huge_integer_literal_is_rejected_by_the_schema():
    """A number beyond the largest double is rejected by the schema's bounds; the hand validator
    fails on it too (math.isfinite raises OverflowError, not InvalidParameterError)."""
    report = make_report()
    report["runtime_s"] = 10**400
    with pytest.raises((InvalidParameterError, OverflowError)):
        validate_report(copy.deepcopy(report))
    with pytest.raises(InvalidParameterError, match="runtime_s"):
        validate_audit_json_schema(report)
    report["runtime_s"] = json.loads("1e400")  # inf: valid JSON text that load_report accepts
    rejected_by_both(report)


def test_base64_pattern_matches_the_hand_check_exhaustively_on_short_strings():
    """Every string of length <= 6 over a small alphabet: the schema's pattern accepts exactly
    what the hand validator accepts (including b64decode's tolerated surplus padding)."""
    import itertools
    import re

    pattern = re.compile(schema()["$defs"]["images"]["properties"]["png_base64"]["pattern"])
    for n in range(7):
        for chars in itertools.product("Aw+/=\n!", repeat=n):
            s = "".join(chars)
            try:
                hand = bool(re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", s)) and (
                    base64.b64decode(s, validate=True) is not None)
            except ValueError:
                hand = False
            assert hand == bool(pattern.search(s)), repr(s)
