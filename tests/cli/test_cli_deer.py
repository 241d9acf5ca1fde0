"""End to end: ``fedaudit audit --defense deer`` on a tiny ViT with LoRA: gradient inversion
against the LoRA updates, the official claim with the two as-run claims; errors."""

import json

from cli_run import run
from reports.schema import validate_report

TINY = ["--dataset", "digits", "--dataset-param", "size=16", "--model", "vit-lora",
        "--model-param", "hidden=32", "--model-param", "layers=2", "--model-param", "heads=2",
        "--num-targets", "2", "--batch-size", "4", "--pretrain-steps", "20", "--rounds", "2",
        "--attack", "inverting-gradients", "--attack-param", "iterations=5", "--seed", "0"]


def test_deer_audit_reports_the_official_and_the_as_run_claims(tmp_path, capsys):
    code, _, err = run(["audit", *TINY, "--defense", "deer", "--defense-param",
                        "target_epsilon=3", "--threat-model", "hbc-server-labels",
                        "--out", str(tmp_path)], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "report.json").read_text())
    validate_report(report)
    claim = report["findings"][0]["claim"]
    assert claim["label"] == "official accounting" and abs(claim["epsilon"] - 3.0) < 0.01
    alternatives = {a["label"]: a for a in claim["alternatives"]}
    assert set(alternatives) == {"as run, aggregate", "as run, each update"}
    # the mechanism as run is per client and composes two phases: its epsilon is larger
    assert alternatives["as run, each update"]["epsilon"] > alternatives["as run, aggregate"][
        "epsilon"] > claim["epsilon"]
    assert len(alternatives["as run, aggregate"]["parts"]) == 2  # one entry per phase
    html = (tmp_path / "report.html").read_text()
    assert "Claims for this run" in html and "as run, each update" in html


def test_label_recovery_without_the_bias_update_exits_2(tmp_path, capsys):
    code, _, err = run(["audit", *TINY, "--defense", "deer", "--out", str(tmp_path)], capsys)
    assert code == 2 and "hbc-server-labels" in err
    assert not (tmp_path / "report.json").exists()


def test_deer_on_a_model_without_lora_exits_2(tmp_path, capsys):
    args = [a if a != "vit-lora" else "vit" for a in TINY]
    code, _, err = run(["audit", *args, "--defense", "deer", "--threat-model",
                        "hbc-server-labels", "--out", str(tmp_path)], capsys)
    assert code == 2 and "vit-lora" in err


def test_lora_canaries_contradict_the_official_claim_and_not_the_as_run_ones(tmp_path, capsys):
    """White-box LoRA canaries (Clopper-Pearson at 95%: a correct claim is flagged with
    probability <= 5%; seeded)."""
    code, _, err = run(["audit", *TINY, "--defense", "deer", "--defense-param",
                        "target_epsilon=1", "--threat-model", "hbc-server-labels",
                        "--estimator", "cp", "--estimator-param", "trials=400",
                        "--out", str(tmp_path)], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "report.json").read_text())
    validate_report(report)
    audit = report["findings"][1]["privacy_audit"]
    assert audit["verdict"] == "VIOLATION" and audit["epsilon_claim"] <= 1.0
    assert {a["label"]: a["verdict"] for a in audit["alternatives"]} == {
        "as run, aggregate": "PASS", "as run, each update": "PASS"}
    html = (tmp_path / "report.html").read_text()
    assert "The evidence contradicts: official accounting" in html
