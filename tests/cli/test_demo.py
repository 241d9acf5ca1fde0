"""The README's main job: ``fedaudit demo`` writes a report with ten findings and images
(about 95 s on one CPU thread): six gradient-inversion and four membership findings."""

import pytest

from audit.cli.main import main
from reports.io import load_report


def test_demo_writes_report(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--out", str(tmp_path), "--no-progress"])
    assert exc.value.code == 0, capsys.readouterr().err
    report = load_report(tmp_path / "report.json")
    assert len(report["findings"]) == 10
    assert all(f["images"] for f in report["findings"])
    by_id = {f["id"]: f for f in report["findings"]}
    psnr = {k: next(m for m in f["metrics"] if m["name"] == "psnr") for k, f in by_id.items()
            if f["attack"]["family"] == "gradient-inversion"}
    assert len(psnr) == 6
    undefended, strong_dp = psnr["1:fedsgd:inverting-gradients"], psnr["5:dp-fedavg:inverting-gradients"]
    assert undefended["mean"] > undefended["baseline"]["mean"] + 10
    assert strong_dp["mean"] <= strong_dp["baseline"]["mean"] + 2
    assert by_id["5:dp-fedavg:inverting-gradients"]["claim"]["epsilon"] <= 1.0
    assert "<img src=\"data:image/png;base64," in (tmp_path / "report.html").read_text()

    def metric(fid, name):
        return next(m for m in by_id[fid]["metrics"] if m["name"] == name)["mean"]

    # membership: LiRA finds members of the undefended target far beyond LOSS and chance;
    # central DP at epsilon 1 keeps TPR at 1% FPR under the e^eps * 1% ceiling
    assert metric("8:fedavg:lira", "ROC AUC") > 0.85
    assert metric("8:fedavg:lira", "TPR @ 1.0% FPR") > 3 * metric("7:fedavg:loss", "TPR @ 1.0% FPR")
    assert by_id["8:fedavg:lira"]["setting"]["target_train_accuracy"] == 1.0
    assert metric("10:dp-fedavg:lira", "TPR @ 1.0% FPR") <= 0.025
    assert "target accuracy on non-members" in (tmp_path / "report.html").read_text()
