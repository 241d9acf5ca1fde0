"""End to end: ``fedaudit audit`` with membership attacks on embedded data (serial shadow
training, a temporary cache), and its errors."""

import json
import warnings

import pytest

from cli_run import run
from reports.schema import validate_report

SMALL = ["--dataset", "purchase-synthetic", "--model", "mlp", "--model-param", "hidden=32",
         "--defense", "fedavg", "--defense-param", "local_steps=3", "--defense-param", "lr=0.5",
         "--num-targets", "4", "--rounds", "3", "--num-candidates", "400",
         "--num-population", "200", "--backend", "serial"]


def audit(tmp_path, capsys, *extra, out="out"):
    return run(["audit", *SMALL, "--cache-dir", str(tmp_path / "cache"),
                "--out", str(tmp_path / out), *extra], capsys)


def test_lira_audit_writes_roc_metrics_and_epsilon(tmp_path, capsys):
    code, out, err = audit(tmp_path, capsys, "--attack", "lira", "--shadow-models", "3")
    assert code == 0, err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    validate_report(report)
    f = report["findings"][0]
    names = [m["name"] for m in f["metrics"]]
    assert names[:4] == ["ROC AUC", "TPR @ 0.1% FPR", "TPR @ 1.0% FPR", "balanced accuracy"]
    assert f["metrics"][0]["interval"][0] <= f["metrics"][0]["mean"] <= f["metrics"][0]["interval"][1]
    assert f["threat_model"]["name"] == "model-analyst"
    assert f["membership"]["game"]["candidates"] == 400
    assert f["membership"]["shadow_training"][0]["trained"] == 3
    assert f["membership"]["empirical_epsilon"]["estimator"] == "one-run"
    assert f["images"]["png_base64"]
    assert "--attack-param shadow_models=3" in report["command"]
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 3


def test_rerun_reuses_cache_and_retrains_a_corrupt_entry(tmp_path, capsys):
    assert audit(tmp_path, capsys, "--attack", "rmia", "--shadow-models", "3", out="a")[0] == 0
    first = json.loads((tmp_path / "a" / "report.json").read_text())["findings"][0]
    entries = sorted((tmp_path / "cache").glob("*.safetensors"))
    entries[0].write_bytes(b"\x80\x04 not a safetensors file")  # a pickle header, never loaded
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert audit(tmp_path, capsys, "--attack", "rmia", "--shadow-models", "3", out="b")[0] == 0
    assert any("corrupt" in str(w.message) for w in caught)
    second = json.loads((tmp_path / "b" / "report.json").read_text())["findings"][0]
    stats = second["membership"]["shadow_training"][0]
    assert (stats["loaded"], stats["trained"]) == (2, 1)
    assert second["metrics"][0]["mean"] == first["metrics"][0]["mean"]


def test_update_attack_audit(tmp_path, capsys):
    code, _, err = audit(tmp_path, capsys, "--attack", "update-mia", "--attack-param", "client=1")
    assert code == 0, err
    f = json.loads((tmp_path / "out" / "report.json").read_text())["findings"][0]
    assert f["threat_model"]["name"] == "hbc-server"
    assert f["membership"]["empirical_epsilon"] is None
    assert f["metrics"][0]["mean"] > 0.6


@pytest.mark.parametrize("extra, message", [
    (["--attack", "lira", "--shadow-models", "0"], "'shadow_models' parameter of lira"),
    (["--attack", "update-mia", "--attack-param", "client=9"], "'client' parameter of update-mia"),
    (["--attack", "loss", "--backend", "dask"], "'backend' parameter"),
    (["--attack", "loss", "--workers", "0"], "'workers' parameter"),
    (["--attack", "lira", "--num-candidates", "99999"], "num_candidates + num_population"),
])
def test_bad_membership_input_exits_2(tmp_path, capsys, extra, message):
    code, _, err = audit(tmp_path, capsys, *extra)
    assert code == 2
    assert message in err and err.startswith("Error: ") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_cache_dir_that_is_a_file_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(["audit", *SMALL, "--attack", "lira", "--cache-dir", str(blocker),
                        "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "cache_dir" in err and str(blocker) in err
