"""``fedaudit record`` then ``fedaudit audit --observed DIR``, end to end in-process: a
report from the recording alone, with a user's model file named as the entry point."""

import json

import pytest

from audit.cli.main import main

MODEL = '''
from torch import nn

def build(input_shape, num_classes, width=16):
    c, h, w = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, width), nn.ReLU(), nn.Linear(width, num_classes))
'''


def _run(argv, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    out = capsys.readouterr()
    return done.value.code, out.out, out.err


def test_record_then_audit_the_recording(tmp_path, capsys):
    (tmp_path / "my_model.py").write_text(MODEL)
    config = tmp_path / "run.toml"
    config.write_text(f'model = "{tmp_path / "my_model.py"}:build"\nmodel_params = {{ width = 32 }}\n'
                      'dataset = "digits"\nnum_targets = 2\n')
    rec = tmp_path / "recorded"
    code, out, err = _run(["record", "--config", str(config), "--labels", "--out", str(rec)], capsys)
    assert code == 0, err
    assert out.strip() == f"wrote {rec}"
    meta = json.loads((rec / "observed.json").read_text())
    assert meta["model"] == {"entry_point": f"{tmp_path / 'my_model.py'}:build", "params": {"width": 32}}
    assert [u["labels"] for u in meta["updates"]] == [[0], [1]]
    report_dir = tmp_path / "report"
    code, out, err = _run(["audit", "--observed", str(rec), "--attack", "analytic-fc", "--no-lpips",
                           "--no-progress", "--out", str(report_dir)], capsys)
    assert code == 0, err
    report = json.loads((report_dir / "report.json").read_text())
    assert (report_dir / "report.html").is_file()
    finding = report["findings"][0]
    assert finding["threat_model"]["name"] == "hbc-server-labels"
    assert {m["name"]: m for m in finding["metrics"]}["psnr"]["mean"] > 60
    assert report["command"].startswith(f"fedaudit audit --observed {rec} --attack analytic-fc")


def test_record_refuses_a_directory_in_use(tmp_path, capsys):
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "notes.txt").write_text("mine")
    code, _, err = _run(["record", "--dataset", "digits", "--num-targets", "1", "--out", str(tmp_path / "rec")], capsys)
    assert code == 2 and err.startswith("Error: ") and "not empty" in err
    assert sorted(p.name for p in (tmp_path / "rec").iterdir()) == ["notes.txt"]


def test_a_model_builder_that_fails_is_named(recording, tmp_path, capsys):
    (tmp_path / "broken.py").write_text("def build(input_shape, num_classes):\n    raise RuntimeError('no GPU here')\n")
    meta = json.loads((recording / "observed.json").read_text())
    meta["model"] = {"entry_point": f"{tmp_path / 'broken.py'}:build"}
    (recording / "observed.json").write_text(json.dumps(meta))
    code, _, err = _run(["audit", "--observed", str(recording), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "failed to build" in err and "RuntimeError: no GPU here" in err
    assert not (tmp_path / "out").exists()
