"""End to end: ``fedaudit audit --defense dr-encoder`` on a tiny GPT-2 with LoRA on generated
records: autoencoder reconstruction (server and eavesdropper), token-set leakage before any
defense, the stage-2 epsilon audit beside the unnoised stage-1 statistics; bad input."""

import json

import pytest

from cli_run import run
from reports.schema import validate_report

TEXT = ["--dataset", "records", "--dataset-param", "num_items=48", "--dataset-param", "length=48",
        "--model-param", "hidden=32", "--model-param", "heads=2", "--num-targets", "2",
        "--batch-size", "1", "--seed", "0"]
LORA = [*TEXT, "--model", "tiny-lm-lora", "--model-param", "targets=attention,embedding"]
DRE = ["--defense", "dr-encoder", "--defense-param", "target_epsilon=8", "--defense-param",
       "ae_steps=50", "--defense-param", "local_steps=2", "--rounds", "2"]


def _metrics(finding):
    return {m["name"]: m for m in finding["metrics"]}


def test_server_decodes_the_code_and_the_report_scores_the_update(tmp_path, capsys):
    code, _, err = run(["audit", *LORA, *DRE, "--attack", "ae-reconstruction",
                        "--out", str(tmp_path), "--no-lpips"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "report.json").read_text())
    validate_report(report)
    finding, stage1 = report["findings"]
    m = _metrics(finding)
    assert {"update_cosine", "update_relative_error", "token_precision", "token_recall"} <= set(m)
    assert len(m["update_cosine"]["per_item"]) == 2  # one per client of the attacked round
    assert -1.0 <= m["update_cosine"]["mean"] <= 1.0
    assert "stage-1" in finding["claim"]["statement"] and "WITHOUT noise" in finding["claim"]["statement"]
    assert finding["threat_model"]["name"] == "hbc-server"
    assert len(finding["text_samples"]) == 2
    html = (tmp_path / "report.html").read_text()
    assert "update_cosine" in html and finding["text_samples"][0]["truth"][:20] in html
    # the unnoised stage-1 statistics, audited on the run: norms exact, the canary's membership
    s1 = _metrics(stage1)
    assert s1["stage1_norm_relative_error"]["worst"] < 1e-3
    assert s1["stage1_membership_auc"]["mean"] > 0.9  # measured 1.000 (canary x4, 8 records)
    assert "stage1_membership_epsilon_lower_bound" in s1


def test_an_eavesdropper_has_no_decoder(tmp_path, capsys):
    code, _, err = run(["audit", *LORA, *DRE, "--attack", "ae-reconstruction", "--attack-param",
                        "decoder=server", "--threat-model", "eavesdropper", "--out",
                        str(tmp_path)], capsys)
    assert code == 2 and "decoder='server'" in err and "eavesdropper" in err
    assert not (tmp_path / "report.json").exists()
    code, _, err = run(["audit", *LORA, *DRE, "--attack", "ae-reconstruction", "--attack-param",
                        "shadow_steps=20", "--threat-model", "eavesdropper", "--out",
                        str(tmp_path), "--no-lpips"], capsys)
    assert code == 0, err
    finding = json.loads((tmp_path / "report.json").read_text())["findings"][0]
    assert finding["attack"]["params"]["decoder"] == "auto" and "update_cosine" in _metrics(finding)


def test_token_set_recall_at_batch_1_without_defense(tmp_path, capsys):
    """Full fine-tuning (trainable embedding), FedAvg, batch 1: measured recall 1.00 and
    precision 1.00 on both clients."""
    code, _, err = run(["audit", *TEXT, "--model", "tiny-lm", "--defense", "fedavg",
                        "--attack", "token-set", "--out", str(tmp_path), "--no-lpips"], capsys)
    assert code == 0, err
    m = _metrics(json.loads((tmp_path / "report.json").read_text())["findings"][0])
    assert min(m["token_recall"]["per_item"]) >= 0.9
    assert m["token_precision"]["mean"] > m["token_precision"]["baseline"]["mean"]


def test_stage2_epsilon_beside_the_unnoised_stage1(tmp_path, capsys):
    """Clopper-Pearson at 95% on the stage-2 mechanism (a correct claim is flagged with
    probability <= 5%; seeded): INCONCLUSIVE, the claim is above what 400 trials per side can
    certify; the stage-1 statistics are distinguished in every
    trial."""
    code, _, err = run(["audit", *LORA, *DRE, "--attack", "ae-reconstruction", "--estimator",
                        "cp", "--estimator-param", "trials=400", "--out", str(tmp_path),
                        "--no-lpips"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "report.json").read_text())
    validate_report(report)
    audit = report["findings"][2]
    pa = audit["privacy_audit"]  # no violation; 400 trials per side cannot reach the claim
    assert pa["verdict"] == "INCONCLUSIVE" and pa["estimate"]["epsilon"] <= pa["epsilon_claim"]
    assert pa["epsilon_claim"] > pa["power_ceiling"]
    stage1 = _metrics(audit)["epsilon_emp (rounds outside the claim)"]
    assert stage1["mean"] > 3.0 and "deterministic" in stage1["note"]


@pytest.mark.parametrize("args, words", [
    (["--model-param", "r=0"], ["'r'", "0"]),
    (["--defense-param", "ratio=2", "--model-param", "targets=attention", "--model-param",
      "layers=1", "--model-param", "r=1"], ["code", "gradient"]),
    (["--model-param", "checkpoint=/no/such/dir"], ["checkpoint", "/no/such/dir"]),
    (["--defense-param", "ratio=0"], ["'ratio'", "0"]),
    (["--rounds", "1"], ["rounds", "stage1_rounds"]),
])
def test_bad_input_exits_2(tmp_path, capsys, args, words):
    code, _, err = run(["audit", *LORA, *DRE, "--attack", "ae-reconstruction", *args,
                        "--out", str(tmp_path)], capsys)
    assert code == 2, err
    assert all(w in err for w in words), err
    assert not (tmp_path / "report.json").exists()
