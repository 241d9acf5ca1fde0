"""End to end: ``fedaudit opacus`` audits an Opacus DP-SGD training (the built-in one on
digits): Opacus's epsilon beside epsilon_emp (white-box one-run gradient canaries, a 95%
lower bound: a correct claim is flagged with probability <= 5%; seeded). Reporting an
epsilon the training does not keep (trained at noise multiplier 0.5, epsilon 0.1 reported)
is a VIOLATION; measured epsilon_emp 1.23. Bad input exits 2."""

import json

from cli_run import run

from reports.schema import validate_report


def test_opacus_epsilon_beside_the_empirical_one(tmp_path, capsys):
    code, out, err = run(["opacus", "--out", str(tmp_path / "ok")], capsys)
    assert code == 0 and "PASS" in out, err
    report = json.loads((tmp_path / "ok" / "report.json").read_text())
    validate_report(report)
    (f,) = report["findings"]
    assert f["claim"]["accountant"].startswith("opacus") and f["claim"]["epsilon"] > 0
    assert f["privacy_audit"]["verdict"] == "PASS"
    assert report["command"].startswith("fedaudit opacus --out")

    code, out, err = run(["opacus", "--noise-multiplier", "0.5", "--claimed-epsilon", "0.1",
                          "--out", str(tmp_path / "bad")], capsys)
    assert code == 0 and "VIOLATION" in out, err
    f = json.loads((tmp_path / "bad" / "report.json").read_text())["findings"][0]
    assert f["privacy_audit"]["verdict"] == "VIOLATION" and f["privacy_audit"]["estimate"]["epsilon"] > 0.1


def test_bad_input_exits_2(tmp_path, capsys):
    for args, word in ((["--noise-multiplier", "-1"], "noise_multiplier"), (["--delta", "2"], "delta"),
                       (["--estimator", "magic"], "magic"), (["--run", "nope.py:x"], "nope.py")):
        code, _, err = run(["opacus", *args, "--out", str(tmp_path)], capsys)
        assert code == 2 and word in err, (args, err)
    assert not (tmp_path / "report.json").exists()
