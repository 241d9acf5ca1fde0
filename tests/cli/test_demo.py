"""The README's main job: ``fedaudit demo`` writes a report with six findings and images
(about 90 s on one CPU thread)."""

import pytest

from audit.cli import main
from reports.io import load_report


def test_demo_writes_report(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--out", str(tmp_path), "--no-progress"])
    assert exc.value.code == 0, capsys.readouterr().err
    report = load_report(tmp_path / "report.json")
    assert len(report["findings"]) == 6
    assert all(f["images"] for f in report["findings"])
    by_id = {f["id"]: f for f in report["findings"]}
    psnr = {k: next(m for m in f["metrics"] if m["name"] == "psnr") for k, f in by_id.items()}
    undefended, strong_dp = psnr["1:fedsgd:inverting-gradients"], psnr["5:dp-fedavg:inverting-gradients"]
    assert undefended["mean"] > undefended["baseline"]["mean"] + 10
    assert strong_dp["mean"] <= strong_dp["baseline"]["mean"] + 2
    assert by_id["5:dp-fedavg:inverting-gradients"]["claim"]["epsilon"] <= 1.0
    assert "<img src=\"data:image/png;base64," in (tmp_path / "report.html").read_text()
