"""End to end: ``fedaudit sweep`` writes the privacy-utility frontier (OUT/frontier.json, .md,
OUT/frontier_<defense>.png and a section of OUT/compliance.html); ``fedaudit frontier
RUN_DIRS...`` prints the same frontier as text, Markdown or JSON; bad input exits 2 with one
line naming the bad value."""

import json

import pytest
from cli_run import run

from reports.frontier_schema import validate_frontier

#: three membership runs of about two seconds each (the cheapest runs with a utility metric)
SPEC = """name = "frontier"
[base]
dataset = "purchase-synthetic"
model = "mlp"
num_targets = 2
lpips = false
[[defenses]]
name = "fedavg"
[[defenses]]
name = "dp-fedavg"
params = { base = "fedavg", noise_multiplier = [1.0, 2.0] }
[[attacks]]
name = "loss"
"""


@pytest.fixture(scope="module")
def sweep_out(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("frontier")
    spec = tmp / "spec.toml"
    spec.write_text(SPEC)
    out = tmp / "out"
    from audit.sweep import run_sweep

    result = run_sweep(spec, out, backend="serial", progress=False)
    assert not result.failed, result.failed
    return out


def test_the_sweep_writes_the_frontier(sweep_out):
    names = {p.name for p in sweep_out.iterdir()}
    assert {"frontier.json", "frontier.md", "frontier_dp-fedavg.png"} <= names
    f = validate_frontier(json.loads((sweep_out / "frontier.json").read_text()))
    [curve] = f["curves"]
    assert curve["defense"] == "dp-fedavg" and curve["baseline"]["defense"] == "fedavg"
    assert len(curve["points"]) == 2 and all(p["single_seed"] for p in curve["points"])
    assert curve["points"][0]["runs"][0].startswith("runs/dp-fedavg")
    assert curve["utility_metric"] == "target_test_accuracy"
    assert {m["name"] for m in curve["metrics"]} >= {"TPR @ 1.0% FPR", "epsilon_emp (one-run)"}
    [verdict] = f["verdicts"]
    assert verdict["verdict"] == "not judgeable: 2 ε points / 1 seeds, need ≥ 5 / ≥ 3"
    assert (sweep_out / "frontier_dp-fedavg.png").read_bytes().startswith(b"\x89PNG")
    md = (sweep_out / "frontier.md").read_text()
    assert "![dp-fedavg frontier](frontier_dp-fedavg.png)" in md and "∞ (undefended: fedavg)" in md
    page = (sweep_out / "compliance.html").read_text()
    section = page[page.index('<h2 id="frontier">'):page.index('<h2 id="findings">')]
    assert "data:image/png;base64," in section and "not judgeable: 2 ε points" in section


def test_the_frontier_command_prints_the_sweeps_frontier(sweep_out, tmp_path, capsys):
    code, stdout, err = run(["frontier", str(sweep_out)], capsys)
    assert code == 0, err
    assert "dp-fedavg · loss" in stdout and "not judgeable: 2 ε points / 1 seeds" in stdout
    code, stdout, _ = run(["frontier", str(sweep_out / "runs"), "--format", "md"], capsys)
    assert code == 0 and stdout.startswith("# Privacy–utility frontier")
    target = tmp_path / "f.json"
    code, stdout, _ = run(["frontier", str(sweep_out), "--format", "json", "--out", str(target)], capsys)
    assert code == 0 and "1 curve(s), 1 verdict(s)" in stdout
    mine, sweeps = (validate_frontier(json.loads(p.read_text())) for p in (target, sweep_out / "frontier.json"))
    assert mine["verdicts"] == sweeps["verdicts"]
    points = [[p["metrics"] for p in f["curves"][0]["points"]] for f in (mine, sweeps)]
    assert points[0] == points[1]
    # a run named twice is read once
    one = next((sweep_out / "runs").iterdir())
    code, stdout, _ = run(["frontier", str(one), str(one / "report.json"), "--format", "json"], capsys)
    assert code == 0 and json.loads(stdout)["runs"] == 1


@pytest.mark.parametrize("args, named", [
    ([], "'RUN_DIRS'"),
    (["/no/such/dir"], "'/no/such/dir'"),
    (["{tmp}"], "no report.json in it"),
    (["{tmp}", "--format", "xml"], "'xml'"),
    (["{tmp}", "--out", "/no/such/dir/f.md"], "'/no/such/dir/f.md'"),
])
def test_bad_frontier_input_exits_2(tmp_path, capsys, args, named):
    code, stdout, err = run(["frontier", *[a.format(tmp=tmp_path) for a in args]], capsys)
    assert code == 2 and stdout == ""
    assert err.startswith("Error: ") and err.count("\n") == 1 and named in err, err


def test_a_corrupt_report_exits_2(tmp_path, capsys):
    (tmp_path / "report.json").write_text('{"kind": "fedaudit-audit"}')
    code, _, err = run(["frontier", str(tmp_path)], capsys)
    assert code == 2 and err.count("\n") == 1 and "schema_version" in err, err
