"""End to end: ``fedaudit sweep SPEC --backend serial`` runs a grid, writes one compliance
report, and a rerun does nothing; ``--status`` lists the runs; bad input exits 2."""

import json

from cli_run import run

SPEC = """name = "cli"
[base]
dataset = "digits"
num_targets = 2
[[defenses]]
name = "dp-fedavg"
params = { noise_multiplier = [1.0, 2.0] }
[[attacks]]
name = "llg"
"""


def test_sweep_runs_resumes_and_reports(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    out = tmp_path / "out"
    code, stdout, err = run(["sweep", str(spec), "--out", str(out), "--backend", "serial", "--no-progress"], capsys)
    assert code == 0, err
    assert len(list((out / "runs").iterdir())) == 2
    assert json.loads((out / "compliance.json").read_text())["kind"] == "compliance-report"
    code, stdout, _ = run(["sweep", str(spec), "--out", str(out), "--status"], capsys)
    assert code == 0 and "2 of 2 run(s) done" in stdout
    code, stdout, _ = run(["sweep", str(spec), "--out", str(out), "--backend", "serial", "--no-progress"], capsys)
    assert code == 0 and "2 done before" in stdout.replace("(s)", ""), stdout


def test_bad_sweep_input_exits_2(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.replace('name = "llg"', 'name = "no-such-attack"'))
    code, _, err = run(["sweep", str(spec), "--out", str(tmp_path / "o"), "--backend", "serial"], capsys)
    assert code == 2 and "no-such-attack" in err
    code, _, err = run(["sweep", str(tmp_path / "spec.toml"), "--out", str(tmp_path / "o"), "--backend", "gpu"], capsys)
    assert code == 2 and "'backend'" in err
