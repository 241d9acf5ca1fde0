"""The FedAvg inversion docs page's command, end to end on embedded data (tiny iterations)."""

import json

from cli_run import run


def test_docs_command_writes_a_report_with_the_attacks_stats(tmp_path, capsys):
    out = tmp_path / "audit"
    code, stdout, stderr = run(
        ["audit", "--defense", "fedavg", "--attack", "fedavg-inversion", "--dataset", "natural-32",
         "--model", "convnet", "--model-param", "width=4", "--model-param", "norm=batch", "--batch-size", "4",
         "--local-training", "epochs=3", "--local-training", "batch_size=2", "--attack-param", "iterations=3",
         "--num-targets", "1", "--out", str(out)], capsys)
    assert code == 0, stderr
    report = json.loads((out / "report.json").read_text())
    finding = report["findings"][0]
    assert finding["attack"]["name"] == "fedavg-inversion"
    assert finding["attack"]["params"]["epoch_variables"] is True
    assert {m["name"] for m in finding["metrics"]} >= {"psnr", "label_accuracy"}


def test_a_bad_parameter_exits_2_naming_it(tmp_path, capsys):
    code, _, stderr = run(["audit", "--defense", "fedavg", "--attack", "fedavg-inversion", "--attack-param",
                           "consistency_weight=-2", "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "consistency_weight" in stderr
    assert not (tmp_path / "x").exists()
