"""End to end: ``fedaudit opacus`` audits an Opacus DP-SGD training (the built-in one on
digits): Opacus's epsilon beside epsilon_emp (white-box gradient canaries in one run, 95%
lower bounds: a correct claim is flagged with probability <= 5% per finding; seeded). Reporting an
epsilon the training does not keep (trained at noise multiplier 0.5, epsilon 0.1 reported)
is a VIOLATION; measured epsilon_emp 1.23. Bad input exits 2."""

import json

from cli_run import run

from reports.schema import validate_report


def test_opacus_epsilon_beside_the_empirical_one(tmp_path, capsys):
    """Issue 23's acceptance: the built-in run (Opacus RDP epsilon ~2.02) with 4000 Dirac
    gradient canaries read by the Gaussian aggregate gives epsilon_emp >= 0.5 x epsilon
    (1.651 at seed 0), and the same run claimed at half its epsilon is a VIOLATION."""
    code, out, err = run(["opacus", "--out", str(tmp_path / "ok")], capsys)
    assert code == 0 and "PASS" in out, err
    report = json.loads((tmp_path / "ok" / "report.json").read_text())
    validate_report(report)
    ga, fdp = report["findings"]
    assert ga["id"] == "opacus-dp-sgd:epsilon-gaussian-aggregate" and fdp["id"] == "opacus-dp-sgd:epsilon-fdp-one-run"
    claim = ga["claim"]["epsilon"]
    assert ga["claim"]["accountant"].startswith("opacus") and 1.9 < claim < 2.2
    for f in (ga, fdp):
        pa = f["privacy_audit"]
        assert pa["verdict"] == "PASS" and pa["estimate"]["trials"] == 4000
        assert pa["power_ceiling"] > claim  # this audit could have refuted the claim
    assert ga["privacy_audit"]["estimate"]["epsilon"] >= 0.5 * claim
    assert 0 < fdp["privacy_audit"]["estimate"]["epsilon"] < ga["privacy_audit"]["estimate"]["epsilon"]
    assert report["command"].startswith("fedaudit opacus --out")

    code, out, err = run(["opacus", "--claimed-epsilon", f"{claim / 2:.6g}", "--estimator", "gaussian-aggregate",
                          "--out", str(tmp_path / "half")], capsys)
    assert code == 0 and "VIOLATION" in out, err
    (f,) = json.loads((tmp_path / "half" / "report.json").read_text())["findings"]
    assert f["privacy_audit"]["verdict"] == "VIOLATION" and f["privacy_audit"]["estimate"]["epsilon"] > claim / 2


def test_a_violated_claim_of_a_run_with_too_little_noise(tmp_path, capsys):
    code, out, err = run(["opacus", "--noise-multiplier", "0.5", "--batch-size", "64", "--epochs", "1",
                          "--model-param", "hidden=32", "--estimator", "one-run", "--canaries", "1000",
                          "--claimed-epsilon", "0.1", "--out", str(tmp_path / "bad")], capsys)
    assert code == 0 and "VIOLATION" in out, err
    f = json.loads((tmp_path / "bad" / "report.json").read_text())["findings"][0]
    assert f["privacy_audit"]["verdict"] == "VIOLATION" and f["privacy_audit"]["estimate"]["epsilon"] > 0.1


def test_bad_input_exits_2(tmp_path, capsys):
    for args, word in ((["--noise-multiplier", "-1"], "noise_multiplier"), (["--delta", "2"], "delta"),
                       (["--estimator", "magic"], "magic"), (["--run", "nope.py:x"], "nope.py")):
        code, _, err = run(["opacus", *args, "--out", str(tmp_path)], capsys)
        assert code == 2 and word in err, (args, err)
    assert not (tmp_path / "report.json").exists()
