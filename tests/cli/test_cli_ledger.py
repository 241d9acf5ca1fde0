"""End to end: ``fedaudit ledger RUN_DIRS...`` prints one claimed-vs-empirical table across
runs, with the accounting lint's findings and their severity; report.json, report.html and
report.md of an audit carry the same ledger. Seeded runs, so deterministic."""

import json

import pytest
from cli_run import run

from audit.cli.main import main
from reports.io import load_report

BASE = ["--attack", "llg", "--dataset", "digits", "--num-targets", "4", "--no-progress", "--device", "cpu",
        "--defense", "dp-fedavg", "--defense-param", "noise_multiplier=1", "--defense-param", "mode=central"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs: every client each round (clean accounting), and a fixed-size cohort of 2 of 4
    under Poisson accounting (a sampling error); plus a run with no empirical epsilon."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for name, extra in (("all", []), ("cohort", ["--clients-per-round", "2", "--rounds", "2"])):
        d = root / "sweep" / name
        args = ["audit", *BASE, *extra, "--estimator", "gaussian-aggregate", "--out", str(d)]
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 0
        out[name] = d
    plain = root / "plain"
    with pytest.raises(SystemExit) as exc:
        main(["audit", "--attack", "llg", "--dataset", "digits", "--num-targets", "2", "--no-progress",
              "--device", "cpu", "--defense", "fedavg", "--out", str(plain)])
    assert exc.value.code == 0
    out["plain"], out["root"] = plain, root
    return out


def test_report_json_html_and_markdown_carry_the_ledger(runs, capsys):
    report = load_report(runs["cohort"] / "report.json")
    (row,) = report["ledger"]
    assert row["claim"]["unit_level"] == "client" and row["claim"]["adjacency"] == "add-remove"
    assert row["evidence"]["estimator"] == "gaussian-aggregate" and row["evidence"]["interval"][1] is None
    assert row["evidence"]["power_ceiling"] > 0 and row["lint_summary"]["error"] == 1
    assert any(x["id"] == "sampling" and x["severity"] == "error" for x in row["lint"])
    html = (runs["cohort"] / "report.html").read_text()
    assert "Claimed vs empirical ledger" in html and "without-replacement" in html
    code, _, err = run(["report", str(runs["cohort"] / "report.json"), "--format", "md"], capsys)
    assert code == 0, err
    md = (runs["cohort"] / "report.md").read_text()
    assert "Claimed vs empirical ledger" in md and "sampling" in md


def test_ledger_prints_one_table_across_runs_with_the_lint(runs, capsys):
    code, out, err = run(["ledger", str(runs["all"]), str(runs["cohort"]), str(runs["plain"])], capsys)
    assert code == 0, err
    assert out.count("INCONCLUSIVE") + out.count("PASS") >= 2
    assert "gaussian-aggregate" in out and "[error] sampling" in out
    assert out.count("[error]") == 1  # only the cohort run's accounting is wrong


def test_ledger_reads_a_directory_of_runs_and_writes_json_and_markdown(runs, capsys, tmp_path):
    code, out, err = run(["ledger", str(runs["root"] / "sweep"), "--format", "json"], capsys)
    assert code == 0, err
    rows = json.loads(out)["rows"]
    assert sorted(r["run"].rsplit("/", 1)[-1] for r in rows) == ["all", "cohort"]
    target = tmp_path / "ledger.md"
    code, out, err = run(["ledger", str(runs["root"] / "sweep"), "--format", "md", "--out", str(target)], capsys)
    assert code == 0 and "2 row(s)" in out
    assert target.read_text().startswith("# Claimed vs empirical ledger")


def test_fail_on_gates_a_pipeline(runs, capsys):
    code, _, err = run(["ledger", str(runs["all"]), str(runs["cohort"]), "--fail-on", "lint-error"], capsys)
    assert code == 1 and "cohort" in err
    code, _, _ = run(["ledger", str(runs["all"]), str(runs["cohort"]), "--fail-on", "violation"], capsys)
    assert code == 0


def test_a_run_without_empirical_epsilon_gives_an_empty_ledger(runs, capsys):
    code, out, _ = run(["ledger", str(runs["plain"])], capsys)
    assert code == 0 and "ledger is empty" in out


@pytest.mark.parametrize("args, match", [
    (["ledger"], "at least one run directory"),
    (["ledger", "/no/such/dir"], "no such file or directory"),
    (["ledger", "{empty}"], "no report.json"),
    (["ledger", "{all}", "--format", "xml"], "'format'"),
    (["ledger", "{all}", "--fail-on", "always"], "'fail-on'"),
    (["ledger", "{all}", "--out", "/no/such/dir/ledger.txt"], "'out'"),
])
def test_bad_input_is_named_with_exit_2(runs, capsys, tmp_path, args, match):
    (tmp_path / "empty").mkdir()
    args = [a.format(empty=tmp_path / "empty", all=runs["all"]) for a in args]
    code, _, err = run(args, capsys)
    assert code == 2 and match in err and err.startswith("Error:")


def test_a_corrupt_report_writes_nothing(runs, capsys, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "report.json").write_text("{not json")
    target = tmp_path / "ledger.txt"
    code, _, err = run(["ledger", str(runs["all"]), str(bad), "--out", str(target)], capsys)
    assert code == 2 and "report.json" in err and not target.exists()
