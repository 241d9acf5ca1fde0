"""examples/score_level_mia.py runs as documented: it writes a scores CSV from small trained
models and prints AUC and TPR at 1% FPR of each attack the score-level audit runs on it."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"(loss|lira|lira-offline|rmia): AUC (\d\.\d{3}) TPR@1%FPR (\d\.\d{3})")


def test_score_level_example_prints_auc_and_tpr(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "score_level_mia.py"),
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0] == f"wrote {tmp_path / 'scores.csv'}"
    assert (tmp_path / "scores.csv").is_file()
    results = {}
    for line in lines[1:]:
        match = LINE.fullmatch(line)
        assert match, line
        results[match.group(1)] = (float(match.group(2)), float(match.group(3)))
    assert list(results) == ["loss", "lira", "lira-offline", "rmia"]
    auc, tpr = results["lira"]
    assert auc > 0.6 and 0.0 <= tpr <= 1.0  # the memorising models leak
    assert all(0.0 <= a <= 1.0 and 0.0 <= t <= 1.0 for a, t in results.values())
