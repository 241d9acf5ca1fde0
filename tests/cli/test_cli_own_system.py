"""The user's own pieces through ``fedaudit audit`` (issue 22, items 1, 2 and 4): a model
builder from a file or a module, broadcast weights from safetensors, the clients' local
training, a defense class from a file; and every bad one is exit 2, one line naming the
value, nothing written."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from audit.models.weights import save_weights
from cli_run import run

FAST = ["--attack", "llg", "--dataset", "digits", "--num-targets", "2", "--batch-size", "2", "--no-progress"]

MODEL_FILE = '''
import torch
from torch import nn

def build(*, num_classes, width=8):
    """A user's MLP with BatchNorm for 8x8 grey digits."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.BatchNorm1d(width), nn.ReLU(),
                         nn.Linear(width, num_classes))

def wrong_classes(**kw):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 3))

def wrong_input(**kw):
    return nn.Sequential(nn.Flatten(), nn.Linear(100, 10))

def not_a_model(**kw):
    return {"not": "a model"}

def broken(**kw):
    raise RuntimeError("cannot build")
'''

DEFENSE_FILE = '''
from audit.core.claims import PrivacyClaim
from defenses.fedavg import FedSGD

class HalfNoise(FedSGD):
    """Halves every update (a user's defense, no DP claim)."""
    name = "half"

    def client_side(self, update, *, generator):
        return update.with_tensors({n: t / 2 for n, t in update.tensors.items()})

class NotADefense:
    pass
'''


@pytest.fixture
def user_files(tmp_path):
    (tmp_path / "my_model.py").write_text(MODEL_FILE)
    (tmp_path / "my_defense.py").write_text(DEFENSE_FILE)
    return tmp_path


def _audit(tmp_path, capsys, *args):
    out = tmp_path / "out"
    code, stdout, err = run(["audit", *FAST, *args, "--out", str(out)], capsys)
    return code, err, out


def test_a_users_model_weights_training_and_defense(user_files, capsys):
    from audit.core.user_code import load_object

    torch.manual_seed(3)
    model = load_object(f"{user_files / 'my_model.py'}:build", parameter="model", owner="test")(num_classes=10, width=8)
    with torch.no_grad():
        model[2].running_mean.uniform_(-1, 1)
    weights = save_weights(model, user_files / "w.safetensors")
    code, err, out = _audit(
        user_files, capsys, "--model", f"{user_files / 'my_model.py'}:build", "--model-param", "width=8",
        "--weights", str(weights), "--defense", f"{user_files / 'my_defense.py'}:HalfNoise",
        "--defense-param", "lr=0.1", "--local-training", "model_mode=eval")
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    finding = report["findings"][0]
    assert finding["defense"]["name"] == "half"
    assert finding["setting"]["model"].endswith("my_model.py:build")
    assert finding["setting"]["local_training"]["model_mode"] == "eval"
    assert "--weights" in report["command"] and "--local-training model_mode=eval" in report["command"]


def test_a_model_from_an_importable_module(capsys, tmp_path):
    code, err, out = _audit(tmp_path, capsys, "--model", "audit.models.classifiers:mlp", "--model-param", "hidden=16")
    assert code == 0, err


@pytest.mark.parametrize("args, needle", [
    (["--model", "{d}/my_model.py:wrong_classes"], "(1, 3), but dataset 'digits' (classification, 10 classes) needs (1, 10)"),
    (["--model", "{d}/my_model.py:wrong_input"], "input of shape (1, 1, 8, 8)"),
    (["--model", "{d}/my_model.py:not_a_model"], "must give a Module. Got a dict"),
    (["--model", "{d}/my_model.py:broken"], "cannot build"),
    (["--model", "{d}/my_model.py:nope"], "has no 'nope'"),
    (["--model", "{d}/missing.py:build"], "does not exist"),
    (["--model", "no_such_module_xyz:build"], "no_such_module_xyz"),
    (["--defense", "{d}/my_defense.py:NotADefense"], "must give a Defense"),
    (["--weights", "{d}/w.bin"], "must be a .safetensors file"),
    (["--weights", "{d}/missing.safetensors"], "no such file"),
    (["--weights", "{d}/garbage.safetensors"], "must be a safetensors file"),
    (["--weights", "{d}/other.safetensors"], "does not fit"),
    (["--defense", "fedavg", "--local-training", "optimizer=rmsprop"], "rmsprop"),
    (["--defense", "fedavg", "--local-training", "learning_rate=1"], "learning_rate"),
    (["--defense", "fedavg", "--local-training", "loss={d}/my_model.py:nope"], "nope"),
    (["--local-training", "epochs=2"], "model-delta"),
])
def test_bad_user_pieces_exit_2_naming_the_value(user_files, capsys, args, needle):
    (user_files / "garbage.safetensors").write_bytes(b"not a safetensors file at all")
    save_weights(nn.Linear(3, 2), user_files / "other.safetensors")
    args = [a.replace("{d}", str(user_files)) for a in args]
    code, err, out = _audit(user_files, capsys, *args)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), err
    assert needle in lines[0], lines[0]
    assert not out.exists() or not any(out.iterdir())


def test_user_code_is_loaded_once_and_errors_name_the_spec(tmp_path):
    from audit.core.errors import InvalidParameterError
    from audit.core.user_code import load_object

    path = tmp_path / "bad_syntax.py"
    path.write_text("def f(:\n")
    with pytest.raises(InvalidParameterError, match="failed to import.*SyntaxError"):
        load_object(f"{path}:f", parameter="model", owner="test")
    with pytest.raises(InvalidParameterError, match="'path/to/file.py:name'"):
        load_object("no-colon", parameter="model", owner="test")
    good = tmp_path / "good.py"
    good.write_text("COUNT = []\nCOUNT.append(1)\n")
    first = load_object(f"{good}:COUNT", parameter="x", owner="test")
    again = load_object(f"{good}:COUNT", parameter="x", owner="test")
    assert first is again and first == [1]


def test_client_splits_choose_what_each_client_holds():
    from audit.core.config import AuditConfig
    from audit.data.registry import create_dataset
    from audit.data.client_items import client_items

    data = create_dataset("digits")
    seq, rest = client_items(AuditConfig(dataset="digits", batch_size=2, num_targets=3), data)
    assert seq == [[0, 1], [2, 3], [4, 5]] and rest[0] == 6 and len(rest) == len(data) - 6
    iid, rest = client_items(AuditConfig(dataset="digits", batch_size=2, num_targets=3, client_split="iid"), data)
    assert iid != seq and len({i for c in iid for i in c}) == 6 and not set(rest) & {i for c in iid for i in c}
    again, _ = client_items(AuditConfig(dataset="digits", batch_size=2, num_targets=3, client_split="iid"), data)
    assert again == iid
    skew, _ = client_items(AuditConfig(dataset="digits", batch_size=4, num_targets=3, client_split="dirichlet",
                                       client_split_alpha=0.05), data)
    assert [len({int(data.labels[i]) for i in c}) for c in skew] != [4, 4, 4]  # few classes per client


def test_a_client_column_from_a_table(tmp_path, capsys):
    rows = ["client,f0,f1,f2,label"] + [f"{c},{(i % 7) / 7},{(i % 3) / 3},{(i % 5) / 5},{i % 2}"
                                        for c in ("alice", "bob") for i in range(6)]
    (tmp_path / "rows.csv").write_text("\n".join(rows) + "\n")
    code, err, out = _audit(tmp_path, capsys, "--dataset", "table", "--dataset-param", f"path={tmp_path / 'rows.csv'}",
                            "--dataset-param", "label=label", "--dataset-param", "client_column=client",
                            "--model", "mlp", "--client-split", "column", "--batch-size", "3")
    assert code == 0, err
    code, err, out = _audit(tmp_path, capsys, "--client-split", "dirichlet")
    assert code == 2 and "client_split_alpha" in err


def test_a_users_defense_in_a_sweep_and_its_compliance_check(user_files, capsys):
    spec = user_files / "spec.toml"
    spec.write_text(f'''seeds = [0]
[base]
dataset = "digits"
num_targets = 2
batch_size = 2
[[defenses]]
name = "{user_files / 'my_defense.py'}:HalfNoise"
[[attacks]]
name = "llg"
''')
    out = user_files / "sweep"
    code, stdout, err = run(["sweep", str(spec), "--out", str(out), "--backend", "serial", "--no-progress"], capsys)
    assert code == 0, err
    (run_dir,) = (out / "runs").iterdir()
    assert json.loads((run_dir / "report.json").read_text())["findings"][0]["defense"]["name"] == "half"
    code, stdout, err = run(["check", str(run_dir)], capsys)
    assert code in (0, 1), err  # a verdict, not an input error
