"""The membership audit of the user's own target with the user's own training function
(``fedaudit mia --target-weights W --model B --dataset D --members FILE --train T``).

(a) End to end through the CLI: a target the test overfits on its members leaks (LiRA AUC
> 0.5), and the ``scores.npz`` written beside the report, audited again with
``fedaudit mia --scores``, gives the same figures exactly. (b) The Python API with a CSV
members file gives the same scores as the CLI with the ``.npz`` one (determinism under
the seed); another seed draws other halves. (c) Every bad input ends with exit code 2, one
line ``Error: ...`` naming the value, nothing written and (but for a bad return value,
seen only after training) no training. (d) ``examples/own_training_mia.py`` runs as
documented.
"""

import csv
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from audit.cli.main import main
from audit.membership.score_file import read_scores
from audit.models.weights import save_weights
from reports.io import load_report

ROOT = Path(__file__).resolve().parents[2]
N, D, K, SHADOWS = 200, 10, 4, 4
MODEL = """
import math
from torch import nn


def build(*, input_shape, num_classes, hidden=64):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), hidden), nn.ReLU(),
                         nn.Linear(hidden, num_classes))
"""
TRAIN = """
from pathlib import Path

import torch
from torch import nn


def train(model, images, labels, *, seed, steps=150):
    Path(__file__).with_name("trained.marker").touch()
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(images), labels).backward()
        opt.step()


def returns_number(model, images, labels, *, seed):
    return 42


def raises(model, images, labels, *, seed):
    raise RuntimeError("out of memory on the cluster")


def no_seed(model, data):
    return model
"""


def _write_members_csv(path: Path, member, header=("id", "member")):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([f"item-{i}", int(m)][-len(header):] for i, m in enumerate(member))
    return path


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """The user's files: model builder, training function, data with a ``member`` array, and
    a target trained (long, to overfit) on its members."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("deployment")
    (root / "model.py").write_text(MODEL)
    (root / "train.py").write_text(TRAIN)
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(K, D))
    y = rng.integers(0, K, N)
    x = centers[y] + 1.5 * rng.normal(size=(N, D))
    noisy = rng.random(N) < 0.1
    y[noisy] = rng.integers(0, K, int(noisy.sum()))  # labels a model can only memorise
    member = rng.random(N) < 0.5
    np.savez(root / "data.npz", x=x.astype(np.float32), y=y, member=member)
    from audit.data.registry import create_dataset
    from audit.core.user_code import load_callable

    data = create_dataset("npz", path=str(root / "data.npz"))
    build = load_callable(f"{root / 'model.py'}:build", parameter="model", owner="test")
    train = load_callable(f"{root / 'train.py'}:train", parameter="train", owner="test")
    torch.manual_seed(7)
    target = build(input_shape=data.input_shape, num_classes=data.num_classes)
    idx = torch.from_numpy(np.flatnonzero(member))
    train(target, data.images[idx], data.labels[idx], seed=7, steps=400)
    save_weights(target, root / "target.safetensors")
    _write_members_csv(root / "members.csv", member)
    (root / "trained.marker").unlink()
    return root


def _args(root: Path, out: Path, **override):
    opts = {"--target-weights": root / "target.safetensors", "--model": f"{root / 'model.py'}:build",
            "--dataset": "npz", "--dataset-param": f"path={root / 'data.npz'}",
            "--members": root / "data.npz", "--train": f"{root / 'train.py'}:train",
            "--shadow-models": SHADOWS, "--seed": 3, "--out": out, **override}
    args = ["mia"]
    for flag, value in opts.items():
        if value is not None:
            args += [flag, str(value)]
    return args


def _run(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return exc.value.code, capsys.readouterr()


def _figures(report):
    return {f["id"].split(":")[1]: (f["membership"]["metrics"]["auc"],
                                     f["membership"]["metrics"]["tpr_at_fpr"]["0.01"],
                                     f["membership"]["metrics"]["auc_interval"])
            for f in report["findings"]}


@pytest.fixture(scope="module")
def cli_run(deployment, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "out"
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in _args(deployment, out)])
    assert exc.value.code == 0
    return out


def test_cli_audits_the_users_target_with_the_users_training(deployment, cli_run):
    report = load_report(cli_run / "report.json")
    assert (cli_run / "report.html").is_file() and (cli_run / "scores.npz").is_file()
    assert [f["id"] for f in report["findings"]] == ["target:loss", "target:lira", "target:lira-offline"]
    figures = _figures(report)
    print({k: (round(a, 4), round(t, 4)) for k, (a, t, _) in figures.items()})
    assert figures["lira"][0] > 0.5  # the overfit target leaks its members
    lira = report["findings"][1]
    assert lira["attack"]["params"] == {"shadow_models": SHADOWS, "variant": "online", "fixed_variance": True}
    assert lira["setting"]["model"].endswith("model.py:build") and lira["setting"]["dataset"] == "npz"
    assert lira["membership"]["shadow_training"][0]["trained"] == SHADOWS
    assert "--target-weights" in report["command"] and report["seed"] == 3
    scores = read_scores(cli_run / "scores.npz")
    assert scores.ref_in.shape == (SHADOWS, N) and (scores.ref_in.sum(0) == SHADOWS // 2).all()
    assert np.array_equal(scores.member, np.load(deployment / "data.npz")["member"])


def test_scores_file_written_reproduces_the_audit_exactly(cli_run, tmp_path, capsys):
    code, _ = _run(["mia", "--scores", cli_run / "scores.npz", "--out", tmp_path / "again",
                    "--seed", "3"], capsys)
    assert code == 0
    assert _figures(load_report(tmp_path / "again" / "report.json")) == \
        _figures(load_report(cli_run / "report.json"))


def test_api_with_csv_members_is_determined_by_the_seed(deployment, cli_run, tmp_path):
    from audit.api import audit_membership_scores

    settings = dict(target_weights=deployment / "target.safetensors",
                    model=f"{deployment / 'model.py'}:build", dataset="npz",
                    dataset_params={"path": str(deployment / "data.npz")},
                    members=deployment / "members.csv", train=f"{deployment / 'train.py'}:train",
                    shadow_models=SHADOWS)
    report = audit_membership_scores(**settings, seed=3, out=tmp_path / "api")
    assert _figures(report) == _figures(load_report(cli_run / "report.json"))
    ours, theirs = read_scores(tmp_path / "api" / "scores.npz"), read_scores(cli_run / "scores.npz")
    for key, values in theirs.arrays().items():
        assert np.array_equal(ours.arrays()[key], values), key
    other = audit_membership_scores(**settings, seed=4, out=tmp_path / "api4")
    assert other["seed"] == 4
    assert not np.array_equal(read_scores(tmp_path / "api4" / "scores.npz").ref_in, theirs.ref_in)


def _bad_members(tmp_path, root, kind):
    member = np.load(root / "data.npz")["member"]
    if kind == "short":
        return _write_members_csv(tmp_path / "m.csv", member[:-1])
    if kind == "two":
        return _write_members_csv(tmp_path / "m.csv", np.where(np.arange(N) == 5, 2, member))
    if kind == "few":
        return _write_members_csv(tmp_path / "m.csv", np.arange(N) < 3)
    if kind == "column":
        return _write_members_csv(tmp_path / "m.csv", member, header=("id", "members"))
    np.savez(tmp_path / "m.npz", in_target=member)
    return tmp_path / "m.npz"


BAD = [
    ("both ways", {"--scores": "scores.npz"}, "not both"),
    ("neither way", {"--target-weights": None}, "Got neither"),
    ("target option with --scores", {"--target-weights": None, "--scores": "s.npz"}, "'--model' option"),
    ("missing --members", {"--members": None}, "Got no --members"),
    ("weights not safetensors", {"--target-weights": "w.pt"}, "'w.pt'"),
    ("weights do not fit the model", {"--model-param": "hidden=32"}, "does not fit model"),
    ("members shorter than the data", "short", "Got 199 values"),
    ("member value not 0/1", "two", "line 7 must be 0 or 1. Got 2.0"),
    ("too few members", "few", "Got 3 members"),
    ("misspelt member column", "column", "'members'"),
    ("no member array", "npz", "must hold an array 'member'"),
    ("train file missing", {"--train": "nowhere.py:train"}, "'nowhere.py:train'"),
    ("train name missing", {"--train": "TRAIN:fit"}, "has no 'fit'"),
    ("train signature", {"--train": "TRAIN:no_seed"}, "must name a function train(model, images, labels, *, seed)"),
    ("train returns a number", {"--train": "TRAIN:returns_number"}, "Got 42 (int) from shadow model 0"),
    ("train raises", {"--train": "TRAIN:raises"}, "RuntimeError: out of memory on the cluster"),
    ("one shadow model", {"--shadow-models": "1"}, "'shadow_models'"),
    ("rmia", {"--attack": "rmia"}, "cannot be 'rmia'"),
    ("unknown attack", {"--attack": "lira-online"}, "'lira-online'"),
    ("negative seed", {"--seed": "-1"}, "'seed'"),
    ("unknown dataset", {"--dataset": "nope"}, "'nope'"),
]


@pytest.mark.parametrize("case, change, words", BAD, ids=[b[0] for b in BAD])
def test_bad_input_exits_2_with_one_line_before_training(deployment, tmp_path, capsys, case, change, words):
    shutil.copy(deployment / "train.py", tmp_path / "train.py")
    train = f"{tmp_path / 'train.py'}"
    override = {"--train": f"{train}:train"}
    if isinstance(change, str):
        override["--members"] = _bad_members(tmp_path, deployment, change)
    else:
        override.update({k: (v.replace("TRAIN", train) if isinstance(v, str) else v)
                         for k, v in change.items()})
    if "--scores" in override:
        override["--scores"] = tmp_path / override["--scores"]
    out = tmp_path / "out"
    code, captured = _run(_args(deployment, out, **override), capsys)
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1 and lines[0].startswith("Error: ") and words in lines[0], lines
    assert not out.exists()
    if case not in ("train returns a number", "train raises"):  # those are seen once called
        assert not (tmp_path / "trained.marker").exists()


def test_out_that_is_a_file_is_refused(deployment, tmp_path, capsys):
    (tmp_path / "out").write_text("not a directory")
    code, captured = _run(_args(deployment, tmp_path / "out"), capsys)
    assert code == 2 and "must be a directory" in captured.err


def test_example_prints_auc_and_tpr_and_its_scores_reproduce_them(tmp_path, capsys):
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "own_training_mia.py"), "--out",
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    first, *rows = done.stdout.strip().splitlines()
    assert first == f"wrote {tmp_path / 'report'}"
    line = re.compile(r"(loss|lira|lira-offline): AUC (\d\.\d{3}) TPR@1%FPR (\d\.\d{3})")
    printed = {m.group(1): float(m.group(2)) for m in map(line.fullmatch, rows) if m}
    assert list(printed) == ["loss", "lira", "lira-offline"], rows
    assert printed["lira"] > 0.6  # the memorising target leaks
    code, _ = _run(["mia", "--scores", tmp_path / "report" / "scores.npz", "--out", tmp_path / "again"],
                   capsys)
    assert code == 0
    assert _figures(load_report(tmp_path / "again" / "report.json")) == \
        _figures(load_report(tmp_path / "report" / "report.json"))
