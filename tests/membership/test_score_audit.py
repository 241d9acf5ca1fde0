"""The score-level membership audit (``fedaudit mia --scores FILE``).

(a) Acceptance: the values the built-in audit's target and shadow models give, exported to
a scores file, reproduce the built-in audit's figures exactly (LiRA online and offline,
RMIA, LOSS: AUC, TPR at 0.1% / 1% FPR, balanced accuracy, one-run epsilon, to 1e-9).
(b) Every bad input ends with exit code 2, one line ``Error: ...`` naming the bad column
or value, and nothing written. (c) A CSV written here goes end to end through the CLI.
"""

import csv
import json
import sys

import numpy as np
import pytest
import torch

from attacks.membership_signals import logit_confidence, signal_of_logits, signal_of_loss
from audit.cli.main import main
from audit.core.attack import ATTACKS
from audit.core.config import AuditConfig
from audit.membership import score_audit
from audit.membership.membership_audit import (TrainingBackend, attack_scores, membership_finding,
                                               prepare_membership, recorded_scores)
from audit.membership.score_file import read_scores, validate_arrays, write_scores
from audit.membership.score_table import table_of
from reports.io import load_report

SHADOWS = 4
BUILT_IN = [("lira", {"variant": "online"}, "lira"), ("lira", {"variant": "offline"}, "lira-offline"),
            ("rmia", {}, "rmia"), ("loss", {}, "loss")]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny built-in membership audit: target, its findings, and its recorded values."""
    cache = tmp_path_factory.mktemp("shadow-cache")
    cfg = AuditConfig(defense="fedavg", defense_params={"local_steps": 3, "lr": 0.3}, attack="lira",
                      dataset="purchase-synthetic", model="mlp", model_params={"hidden": 32},
                      num_targets=4, rounds=2, seed=3, num_candidates=400, num_population=200)
    run = prepare_membership(cfg, device=torch.device("cpu"),
                             backend=TrainingBackend(backend="serial", cache_dir=str(cache)))
    findings, scores = {}, {}
    for name, params, label in BUILT_IN:
        params = {**params, "shadow_models": SHADOWS} if name != "loss" else params
        findings[label] = membership_finding(run, ATTACKS.create(name, **params), bootstrap=50)
        scores[label] = attack_scores(run, ATTACKS.create(name, **params))[0]
    return run, findings, recorded_scores(run, SHADOWS), scores


def _figures(finding):
    m = finding["membership"]["metrics"]
    return {"auc": m["auc"], "tpr@0.1%": m["tpr_at_fpr"]["0.001"], "tpr@1%": m["tpr_at_fpr"]["0.01"],
            "balanced_accuracy": m["balanced_accuracy"], "auc_interval": m["auc_interval"],
            "epsilon": finding["membership"]["empirical_epsilon"]["epsilon_emp"]}


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_score_level_reproduces_the_built_in_audit(trained, tmp_path, suffix):
    run, built_in, recorded, built_in_scores = trained
    path = write_scores(tmp_path / f"scores{suffix}", recorded)
    for label, expected in built_in_scores.items():  # the very same scores, to the bit
        assert np.array_equal(score_audit.attack_scores(read_scores(path), label)[0], expected), label
    score_level = {f["id"].split(":")[1]: f for f in score_audit.audit_scores(
        path, seed=run.config.seed, bootstrap=50)}
    assert sorted(score_level) == sorted(label for _, _, label in BUILT_IN)  # all the file allows
    for label in built_in:
        ours, theirs = _figures(score_level[label]), _figures(built_in[label])
        print(f"{suffix} {label}: built-in AUC {theirs['auc']!r} TPR@1% {theirs['tpr@1%']!r}; "
              f"score-level AUC {ours['auc']!r} TPR@1% {ours['tpr@1%']!r}; differences "
              f"{abs(ours['auc'] - theirs['auc']):.1e}, {abs(ours['tpr@1%'] - theirs['tpr@1%']):.1e}")
        for key in ("auc", "tpr@0.1%", "tpr@1%", "balanced_accuracy", "epsilon"):
            assert ours[key] == pytest.approx(theirs[key], abs=1e-9), (label, key)
        assert ours["auc_interval"] == pytest.approx(theirs["auc_interval"], abs=1e-9)
        assert score_level[label]["attack"]["params"] == built_in[label]["attack"]["params"]
    assert built_in["lira"]["membership"]["metrics"]["auc"] > 0.7  # the target does leak


def test_recorded_values_round_trip_through_every_format(trained, tmp_path):
    recorded = trained[2]
    for suffix in (".csv", ".npz", ".parquet"):
        back = read_scores(write_scores(tmp_path / f"s{suffix}", recorded))
        assert back.arrays().keys() == recorded.arrays().keys()
        for key, values in recorded.arrays().items():
            assert np.array_equal(back.arrays()[key], values), (suffix, key)


def _synthetic(n=200, classes=3, refs=4, population=40, seed=0, leak=2.0):
    """Logits with a known leak: members' true-class logit is raised by ``leak`` in every
    model that trained on them."""
    rng = np.random.default_rng(seed)
    member = rng.random(n) < 0.5
    label = rng.integers(0, classes, n)
    ref_in = rng.random((refs, n)) < 0.5
    hardness = rng.normal(size=n)

    def logits(trained_on, labels, hard):
        z = rng.normal(size=trained_on.shape + (classes,))
        np.put_along_axis(z, labels[..., None], (hard + leak * trained_on)[..., None], -1)
        return z

    arrays = {"member": member, "label": label, "logits": logits(member, label, hardness),
              "ref_logits": logits(ref_in, np.broadcast_to(label, ref_in.shape), hardness),
              "ref_in": ref_in}
    if population:
        pop_label = rng.integers(0, classes, population)
        hard = rng.normal(size=population)
        arrays.update(pop_label=pop_label,
                      pop_logits=logits(np.zeros(population, bool), pop_label, hard),
                      ref_pop_logits=logits(np.zeros((refs, population), bool),
                                            np.broadcast_to(pop_label, (refs, population)), hard))
    return arrays


def _write_csv(path, table: dict):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(table)
        w.writerows(zip(*table.values()))
    return path


def test_csv_end_to_end_through_the_cli(tmp_path, capsys):
    table = table_of(_synthetic())
    table["id"] = [f"example-{i}" for i in range(len(table["member"]))]
    path = _write_csv(tmp_path / "deployment.csv", {k: [str(v) for v in col] for k, col in table.items()})
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main(["mia", "--scores", str(path), "--out", str(out), "--seed", "1"])
    assert exc.value.code == 0, capsys.readouterr().err
    report = load_report(out / "report.json")
    assert (out / "report.html").is_file()
    ids = [f["id"] for f in report["findings"]]
    assert ids == ["scores:loss", "scores:lira", "scores:lira-offline", "scores:rmia"]
    aucs = {f["id"]: f["membership"]["metrics"]["auc"] for f in report["findings"]}
    assert aucs["scores:lira"] > aucs["scores:loss"] > 0.6  # references calibrate the leak
    assert "--scores" in report["command"] and report["seed"] == 1
    lira = report["findings"][1]
    assert lira["attack"]["params"] == {"shadow_models": 4, "variant": "online", "fixed_variance": True}
    assert lira["membership"]["scores_file"]["population"] == 40
    # --attack picks, in the order given
    with pytest.raises(SystemExit) as exc:
        main(["mia", "--scores", str(path), "--out", str(tmp_path / "o2"), "--attack", "rmia",
              "--attack", "loss"])
    assert exc.value.code == 0
    assert [f["id"] for f in json.loads((tmp_path / "o2" / "report.json").read_text())["findings"]] \
        == ["scores:rmia", "scores:loss"]


def test_loss_and_confidence_files_agree_with_logits(tmp_path):
    arrays = _synthetic(population=0)
    logits = score_audit.audit_scores(validate_arrays("mem", arrays, lambda n, i: n), bootstrap=0)
    z, y = arrays["logits"], arrays["label"]
    loss = -(np.take_along_axis(z, y[:, None], 1)[:, 0] - np.logaddexp.reduce(z, axis=1))
    ref_z = arrays["ref_logits"]
    ref_loss = -(np.take_along_axis(ref_z, np.broadcast_to(y, ref_z.shape[:2])[..., None], 2)[..., 0]
                 - np.logaddexp.reduce(ref_z, axis=2))
    for kind, target, ref in (("loss", loss, ref_loss), ("confidence", np.exp(-loss), np.exp(-ref_loss))):
        path = tmp_path / f"{kind}.csv"
        write_scores(path, validate_arrays("mem", {"member": arrays["member"], kind: target,
                                                   f"ref_{kind}": ref, "ref_in": arrays["ref_in"]},
                                           lambda n, i: n))
        findings = score_audit.audit_scores(path, bootstrap=0)
        assert [f["id"] for f in findings] == ["scores:loss", "scores:lira", "scores:lira-offline"]
        for a, b in zip(findings, logits):
            assert a["membership"]["metrics"]["auc"] == pytest.approx(
                b["membership"]["metrics"]["auc"], abs=1e-3), (kind, a["id"])


def _good_table(n=60):
    table = table_of(_synthetic(n=n, population=10))
    return {k: [str(v) for v in col] for k, col in table.items()}


def _edit(**changes):
    def make(tmp_path):
        table = _good_table()
        for key, change in changes.items():
            if change is None:
                table.pop(key)
            elif callable(change):
                table[key] = change(table[key])
            else:
                table[key] = change
        return _write_csv(tmp_path / "bad.csv", table)
    return make


def _at(i, value):
    return lambda col: col[:i] + [value] + col[i + 1:]


def _npz(**changes):
    def make(tmp_path):
        arrays = _synthetic(n=60, population=0)
        arrays.update(changes)
        np.savez(tmp_path / "bad.npz", **{k: v for k, v in arrays.items() if v is not None})
        return tmp_path / "bad.npz"
    return make


def _raw(name, text):
    def make(tmp_path):
        (tmp_path / name).write_text(text)
        return tmp_path / name
    return make


BAD = {
    "missing file": (lambda p: p / "nope.csv", ["no such file"]),
    "unknown suffix": (_raw("scores.txt", "member\n1\n"), ["must end in .csv, .npz, .parquet", "'.txt'"]),
    "empty file": (_raw("empty.csv", ""), ["empty"]),
    "ragged line": (_raw("ragged.csv", "member,loss\n1,0.5\n0\n"), ["line 3 has 1 fields"]),
    "missing member": (_edit(member=None), ["'member' is missing"]),
    "missing label": (_edit(label=None), ["'label' is missing"]),
    "missing logit column": (_edit(logit_1=None), ["'logit_1' is missing"]),
    "missing ref logit column": (_edit(ref2_logit_0=None), ["'ref2_logit_0' is missing"]),
    "missing ref_in": (_edit(ref1_in=None), ["'ref1_in' is missing"]),
    "no ref_in at all": (_edit(ref0_in=None, ref1_in=None, ref2_in=None, ref3_in=None),
                         ["'ref{m}_in' is missing"]),
    "non-binary member": (_edit(member=_at(3, "2")), ["column 'member', line 5 must be 0 or 1", "2.0"]),
    "non-binary ref_in": (_edit(ref3_in=_at(0, "0.5")), ["column 'ref3_in', line 2 must be 0 or 1"]),
    "non-number": (_edit(logit_2=_at(7, "abc")), ["column 'logit_2', line 9 must be a number", "'abc'"]),
    "nan": (_edit(logit_1=_at(1, "nan")), ["column 'logit_1', line 3 must be a finite number", "nan"]),
    "inf in reference": (_edit(ref0_logit_2=_at(4, "inf")), ["column 'ref0_logit_2', line 6", "finite"]),
    "label out of range": (_edit(label=_at(2, "3")), ["column 'label', line 4 must be a class in 0 .. 2"]),
    "fractional label": (_edit(label=_at(2, "1.5")), ["column 'label', line 4"]),
    "unknown column": (_edit(shadow_score=["0"] * 70), ["unknown column(s) shadow_score"]),
    "two kinds": (_edit(loss=["0.5"] * 70), ["exactly one kind", "logits and loss"]),
    "member on population row": (_edit(member=_at(65, "1")), ["line 67 must be 0 on a population row"]),
    "non-binary population": (_edit(population=_at(0, "3")), ["column 'population', line 2 must be 0 or 1"]),
    "too few members": (_raw("few.csv", "member,loss\n" + "1,0.1\n" * 5 + "0,0.9\n" * 30),
                        ["at least 10 members", "Got 5 members and 30 non-members"]),
    "negative loss": (_raw("neg.csv", "member,loss\n" + "1,0.1\n" * 12 + "0,-0.9\n" * 12),
                      ["column 'loss', line 14 must be a loss >= 0"]),
    "confidence above 1": (_raw("conf.csv", "member,confidence\n" + "1,1.5\n" * 12 + "0,0.2\n" * 12),
                           ["column 'confidence', line 2 must be a probability in (0, 1]"]),
    "npz shape disagreement": (_npz(ref_in=np.zeros((4, 61), bool)),
                               ["the array 'ref_in' must have shape (M, N) = (4, 60)", "(4, 61)"]),
    "npz logits of the wrong rank": (_npz(logits=np.zeros(60)), ["'logits' must have shape (N, C)"]),
    "npz unknown array": (_npz(extra=np.zeros(3)), ["the array 'extra'", "unknown"]),
    "npz nan": (_npz(logits=np.full((60, 3), np.nan)), ["'logits' at index [0, 0] must be a finite number"]),
    "npz non-binary member": (_npz(member=np.full(60, 7)), ["the array 'member' at index [0] must be 0 or 1"]),
    "npz missing member": (_npz(member=None), ["the array 'member' is missing"]),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_scores_files_exit_2_naming_the_value(case, tmp_path, capsys):
    make, fragments = BAD[case]
    path = make(tmp_path)
    _expect_error(["mia", "--scores", str(path), "--out", str(tmp_path / "out")], tmp_path,
                  capsys, [str(path)] + fragments)


def _expect_error(argv, tmp_path, capsys, fragments):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert not (tmp_path / "out").exists()


def test_an_attack_the_file_cannot_feed_exits_2(tmp_path, capsys):
    path = _raw("loss.csv", "member,loss\n" + "1,0.1\n" * 12 + "0,0.9\n" * 12)(tmp_path)
    _expect_error(["mia", "--scores", str(path), "--out", str(tmp_path / "out"), "--attack", "lira"],
                  tmp_path, capsys, ["attack 'lira' needs reference models' values"])
    table = table_of(_synthetic(n=60, population=0))
    path = _write_csv(tmp_path / "nopop.csv", table)
    _expect_error(["mia", "--scores", str(path), "--out", str(tmp_path / "out"), "--attack", "rmia"],
                  tmp_path, capsys, ["attack 'rmia' needs population rows"])
    _expect_error(["mia", "--scores", str(path), "--out", str(tmp_path / "out"), "--attack", "lira-online"],
                  tmp_path, capsys, ["'attack'", "'lira-online'"])
    _expect_error(["mia", "--scores", str(path), "--out", str(tmp_path / "out"), "--seed", "x"],
                  tmp_path, capsys, ["'seed'", "'x'"])
    _expect_error(["mia", "--out", str(tmp_path / "out")], tmp_path, capsys, ["--scores"])
    (tmp_path / "a-file").write_text("")
    with pytest.raises(SystemExit) as exc:
        main(["mia", "--scores", str(path), "--out", str(tmp_path / "a-file")])
    assert exc.value.code == 2 and "'out'" in capsys.readouterr().err
    assert (tmp_path / "a-file").read_text() == ""


def test_recorded_loss_gives_the_logit_confidence():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 10.0, 0.0], [-20.0, 0.0, 0.0]])
    labels = torch.tensor([0, 1, 0])
    loss = signal_of_logits(logits, labels, "loss")
    # a recorded loss near 0 loses digits (its rounding error is relative to 1, not to it)
    assert torch.allclose(signal_of_loss(loss, "logit"), logit_confidence(logits, labels), rtol=1e-9)
    assert torch.allclose(signal_of_loss(loss, "probability"),
                          signal_of_logits(logits, labels, "probability"), rtol=1e-12)
    assert signal_of_loss(torch.tensor([0.0]), "logit").item() == pytest.approx(744.44, abs=0.01)


def test_parquet_without_pyarrow_says_to_install_it(tmp_path, capsys, monkeypatch):
    path = tmp_path / "scores.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    _expect_error(["mia", "--scores", str(path), "--out", str(tmp_path / "out")], tmp_path, capsys,
                  ["Parquet needs pyarrow", "pip install pyarrow"])
