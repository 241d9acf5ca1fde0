"""End to end: ``fedaudit audit --defense fedre`` on generated documents: PSI-region
metrics beside the global ones, the per-layer claim, outlined reconstructions; errors."""

import json

from cli_run import run
from reports.schema import validate_report

DOCS = ["--dataset", "documents", "--dataset-param", "size=32", "--dataset-param",
        "num_items=24", "--model", "unet", "--threat-model", "hbc-server-labels",
        "--num-targets", "1", "--seed", "0"]


def test_fedre_audit_reports_psi_region_metrics_and_per_layer_budgets(tmp_path, capsys):
    code, _, err = run(["audit", *DOCS, "--defense", "fedre", "--defense-param",
                        "target_epsilon=4", "--attack", "snr-inverting-gradients",
                        "--attack-param", "iterations=5", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "report.json").read_text())
    validate_report(report)
    f = report["findings"][0]
    names = [m["name"] for m in f["metrics"]]
    for metric in ("psnr", "psnr (PSI)", "psnr (outside PSI)", "ssim (PSI)", "mse (PSI)"):
        assert metric in names
    assert "label_accuracy" not in names  # segmentation labels are masks, not classes
    parts = f["claim"]["parts"]
    assert len(parts) == 23 and abs(f["claim"]["epsilon"] - 4.0) < 0.04
    assert len({round(p["share"], 6) for p in parts}) > 1  # PSI-guided, not even
    html = (tmp_path / "report.html").read_text()
    assert "Per-layer budget" in html and "PSI regions" in html


def test_fedre_on_data_without_psi_masks_exits_2(tmp_path, capsys):
    code, _, err = run(["audit", "--dataset", "natural-32", "--model", "convnet",
                        "--num-targets", "1", "--defense", "fedre", "--attack",
                        "inverting-gradients", "--attack-param", "iterations=2",
                        "--out", str(tmp_path)], capsys)
    assert code == 2 and "PSI masks" in err
    assert not (tmp_path / "report.json").exists()
