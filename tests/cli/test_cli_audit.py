"""End-to-end CLI runs on embedded data (tiny settings)."""

import json

import pytest

from cli_run import run
from reports.io import load_report
from reports.schema import strip_volatile

BASE = [
    "--dataset", "digits", "--model", "convnet", "--model-param", "width=4",
    "--num-targets", "2", "--no-progress", "--device", "cpu",
]
TINY = [*BASE, "--attack-param", "iterations=3", "--attack-param", "restarts=2"]



def test_list_names_every_family(capsys):
    code, out, _ = run(["list"], capsys)
    assert code == 0
    for name in ("fedsgd", "dp-fedavg", "inverting-gradients", "idlg", "analytic-fc", "natural-32",
                 "digits", "lfw", "convnet", "mlp", "resnet", "hbc-server"):
        assert name in out


def test_audit_writes_valid_report_with_images(tmp_path, capsys):
    code, out, err = run(["audit", *TINY, "--out", str(tmp_path)], capsys)
    assert code == 0, err
    report = load_report(tmp_path / "report.json")
    finding = report["findings"][0]
    names = [m["name"] for m in finding["metrics"]]
    assert names[:4] == ["mse", "psnr", "ssim", "lpips"] and "label_accuracy" in names
    assert all(m["baseline"] is not None for m in finding["metrics"] if m["name"] != "lpips")
    html = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64," in html and "no DP claim" in html


def test_same_seed_gives_identical_report(tmp_path, capsys):
    args = [*TINY, "--defense", "dp-fedavg", "--defense-param", "noise_multiplier=0.1", "--seed", "3"]
    assert run(["audit", *args, "--out", str(tmp_path / "a")], capsys)[0] == 0
    assert run(["audit", *args, "--out", str(tmp_path / "b")], capsys)[0] == 0
    a = json.loads((tmp_path / "a" / "report.json").read_text())
    b = json.loads((tmp_path / "b" / "report.json").read_text())
    assert strip_volatile(a) == strip_volatile(b)
    assert a["created_utc"] and a["runtime_s"] > 0


def test_dp_claim_appears_in_report(tmp_path, capsys):
    args = [*BASE, "--defense", "dp-fedavg", "--defense-param", "target_epsilon=1", "--attack", "llg"]
    code, _, err = run(["audit", *args, "--out", str(tmp_path)], capsys)
    assert code == 0, err
    claim = load_report(tmp_path / "report.json")["findings"][0]["claim"]
    assert claim["has_dp"] and claim["epsilon"] <= 1.0 and "PLDAccountant" in claim["accountant"]
    assert claim["trust_model"] == "local" and "client" in claim["unit"]


@pytest.mark.parametrize("suffix", ["toml", "yaml"])
def test_config_file_and_cli_override(tmp_path, capsys, suffix):
    cfg = tmp_path / f"audit.{suffix}"
    if suffix == "toml":
        cfg.write_text(
            'defense = "fedavg"\nattack = "llg"\ndataset = "digits"\nmodel = "mlp"\n'
            'num_targets = 2\nbatch_size = 4\n[defense_params]\nlocal_steps = 2\n'
        )
    else:
        cfg.write_text(
            "defense: fedavg\nattack: llg\ndataset: digits\nmodel: mlp\nnum_targets: 2\n"
            "batch_size: 4\ndefense_params:\n  local_steps: 2\n"
        )
    code, _, err = run(["audit", "--config", str(cfg), "--batch-size", "2", "--no-progress",
                        "--out", str(tmp_path / "o")], capsys)
    assert code == 0, err
    finding = load_report(tmp_path / "o" / "report.json")["findings"][0]
    assert finding["defense"]["params"]["local_steps"] == 2
    assert finding["setting"]["batch_size"] == 2  # the command line wins


def test_report_rerenders_html_and_markdown(tmp_path, capsys):
    assert run(["audit", *BASE, "--attack", "llg", "--out", str(tmp_path)], capsys)[0] == 0
    (tmp_path / "report.html").unlink()
    assert run(["report", str(tmp_path / "report.json"), "--format", "html"], capsys)[0] == 0
    assert (tmp_path / "report.html").exists()
    assert run(["report", str(tmp_path / "report.json"), "--format", "md"], capsys)[0] == 0
    assert "| " in (tmp_path / "report.md").read_text()


def test_pretrain_steps_and_threat_model_options(tmp_path, capsys):
    args = [*BASE, "--attack", "llg", "--pretrain-steps", "5", "--threat-model", "aggregate-observer"]
    code, _, err = run(["audit", *args, "--out", str(tmp_path)], capsys)
    assert code == 0, err
    finding = load_report(tmp_path / "report.json")["findings"][0]
    assert finding["threat_model"]["name"] == "aggregate-observer"
    assert finding["setting"]["num_targets"] == 1  # one aggregate
