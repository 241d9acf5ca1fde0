"""scripts/compare_reports.py: two reports equal apart from timings compare equal, any
other difference is printed and exits 1, bad input exits 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "compare_reports.py"


def _report(psnr: float, runtime: float) -> dict:
    return {"created_utc": f"2026-01-0{int(runtime)}T00:00:00Z", "runtime_s": runtime,
            "environment": {"git_revision": f"rev{runtime}", "threads": 1},
            "findings": [{"metrics": {"psnr": psnr}, "details": {"compute_s": runtime, "training": {"seconds": runtime}}}]}


def _compare(tmp_path: Path, a: dict, b: dict) -> subprocess.CompletedProcess:
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    return subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "a.json"), str(tmp_path / "b.json")],
                          capture_output=True, text=True, timeout=60, cwd=SCRIPT.parents[1])


def test_timings_and_revision_are_ignored(tmp_path):
    run = _compare(tmp_path, _report(20.0, 1.0), _report(20.0, 2.0))
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip() == "0 diff lines"


def test_a_changed_metric_is_a_difference(tmp_path):
    run = _compare(tmp_path, _report(20.0, 1.0), _report(20.5, 1.0))
    assert run.returncode == 1
    changed = [line.replace(" ", "") for line in run.stdout.splitlines() if line[:1] in "+-"]
    assert '-"psnr":20.0' in changed and '+"psnr":20.5' in changed


def test_a_missing_file_exits_2(tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "nope.json"), str(tmp_path / "nope.json")],
                         capture_output=True, text=True, timeout=60, cwd=SCRIPT.parents[1])
    assert run.returncode == 2 and "no such report" in run.stderr
