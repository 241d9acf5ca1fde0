"""examples/offline_gradient_inversion.py runs as documented: it writes a recorded-updates
directory from a tiny simulated deployment, audits it offline with Inverting Gradients and
prints the PSNR beside its baseline."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"inverting-gradients: PSNR (\d+\.\d\d) dB \(baseline (\d+\.\d\d) dB\), "
                  r"gradient distance (\d\.\d{4}) \(baseline (\d\.\d{4})\)")


def test_offline_example_prints_the_psnr(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "offline_gradient_inversion.py"),
                           "--out", str(tmp_path), "--iterations", "150"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    first, result, last = done.stdout.strip().splitlines()
    assert first == f"wrote {tmp_path / 'recorded'}"
    assert (tmp_path / "recorded" / "observed.json").is_file()
    match = LINE.fullmatch(result)
    assert match, result
    psnr, baseline, distance, noise = map(float, match.groups())
    assert psnr > baseline + 10  # an undefended FedSGD gradient of one image leaks it
    assert distance < noise
    assert last == f"wrote {tmp_path / 'report' / 'report.json'}"
