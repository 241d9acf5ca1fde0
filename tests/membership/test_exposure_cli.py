"""Who is exposed through ``fedaudit mia --scores``: a scores file with ``record_id`` and
``group`` columns (or ``--groups FILE``) gives the section in report.json, report.html and
the Markdown report; bad ids or groups exit 2 with one line naming the value, with nothing
written; the text columns survive every spelling of the scores file."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from audit.cli.main import main
from audit.membership.score_file import read_scores, validate_arrays, write_scores
from audit.membership.score_table import table_of
from reports.io import load_report
from reports.markdown import render_markdown

NASTY = "<b>north</b> & $x$"


def _arrays(n=240, seed=0):
    """Logits where members of every third record (group NASTY) leak strongly."""
    rng = np.random.default_rng(seed)
    member = rng.random(n) < 0.5
    label = rng.integers(0, 3, n)
    leaky = np.arange(n) % 3 == 0
    logits = rng.normal(size=(n, 3))
    logits[np.arange(n), label] += 3.0 * (member & leaky)
    return {"member": member, "label": label, "logits": logits,
            "record_id": np.array([f"rec-{i}" for i in range(n)]),
            "group": np.where(leaky, NASTY, "south")}


def _csv(path, table):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(table)
        w.writerows(zip(*([str(v) for v in col] for col in table.values())))
    return path


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code, capsys.readouterr().err


def test_group_and_record_id_columns_give_the_section(tmp_path, capsys):
    arrays = _arrays()
    path = _csv(tmp_path / "deployment.csv", table_of(arrays))
    out = tmp_path / "out"
    code, err = _run(["mia", "--scores", str(path), "--out", str(out), "--attack", "loss"], capsys)
    assert code == 0, err
    report = load_report(out / "report.json")
    x = report["findings"][0]["exposure"]
    assert x["group_source"] == "user" and x["record_ids"] == "the record_id column"
    assert [g["name"] for g in x["groups"]] == [NASTY, "south"]  # the leaky group first
    assert x["groups"][0]["tpr"] > 3 * x["groups"][1]["tpr"]
    members = set(arrays["record_id"][arrays["member"]])
    assert len(x["top_exposed"]) == 10 and {t["record_id"] for t in x["top_exposed"]} <= members
    html = (out / "report.html").read_text()
    assert "Who is exposed" in html and "rec-" in html
    assert "<b>north</b>" not in html and "&lt;b&gt;north&lt;/b&gt; &amp; $x$" in html
    md = render_markdown(report)
    assert "### Who is exposed (per user-named group)" in md and "\\<b\\>north\\</b\\>" in md
    if shutil.which("chromium"):  # the page loads its plots under its CSP, without errors
        from reports.browser_check import check_html_in_chromium

        check = check_html_in_chromium(out / "report.html")
        assert check.ok, check.summary()


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_groups_file_names_the_groups(tmp_path, capsys, suffix):
    arrays = _arrays()
    arrays.pop("group")
    path = write_scores(tmp_path / "s.npz", validate_arrays("s", arrays, lambda n, i: n))
    ids = [str(r) for r in arrays["record_id"]]
    groups = {r: f"site {int(r[4:]) % 2}" for r in ids}
    groups["rec-9999"] = "a record the scores do not hold"  # extra ids are allowed
    gpath = tmp_path / f"groups{suffix}"
    if suffix == ".json":
        gpath.write_text(json.dumps(groups))
    else:
        _csv(gpath, {"group": list(groups.values()), "record_id": list(groups)})
    out = tmp_path / "out"
    code, err = _run(["mia", "--scores", str(path), "--out", str(out), "--attack", "loss",
                      "--groups", str(gpath)], capsys)
    assert code == 0, err
    x = load_report(out / "report.json")["findings"][0]["exposure"]
    assert sorted(g["name"] for g in x["groups"]) == ["site 0", "site 1"]
    assert all(t["group"] == groups[t["record_id"]] for t in x["top_exposed"])


def _with(column, values, n=240):
    table = table_of(_arrays(n))
    table[column] = values
    return table


@pytest.mark.parametrize("table, groups, fragments", [
    (_with("record_id", ["rec-1"] * 240), None,
     ["column 'record_id', line 3", "unique", "'rec-1' again", "first at column 'record_id', line 2"]),
    (_with("group", [""] + ["g"] * 239), None, ["column 'group', line 2", "non-empty"]),
    (table_of(_arrays()), {"rec-0": "g"}, ["has its own group column"]),
])
def test_bad_ids_or_groups_exit_2_naming_the_value(tmp_path, capsys, table, groups, fragments):
    path = _csv(tmp_path / "s.csv", table)
    argv = ["mia", "--scores", str(path), "--out", str(tmp_path / "out"), "--attack", "loss"]
    if groups is not None:
        (tmp_path / "g.json").write_text(json.dumps(groups))
        argv += ["--groups", str(tmp_path / "g.json")]
    code, err = _run(argv, capsys)
    assert code == 2 and err.startswith("Error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("arrays, groups, fragments", [
    ({"record_id": np.array(["a", "b"])}, None, ["'record_id'", "shape (N)", "(240)", "(2,)"]),
    ({"group": np.arange(240)}, None, ["'group'", "must hold strings", "int64"]),
    ({}, "missing", ["Groups file", "no group for the record id 'rec-0'"]),
    ({}, "dup", ["Groups file", "line 3", "'rec-0' appears more than once"]),
    ({}, "header", ["Groups file", "record_id and group", "['id', 'group']"]),
])
def test_bad_npz_or_groups_file_exits_2(tmp_path, capsys, arrays, groups, fragments):
    data = _arrays()
    data.pop("group")
    data.update(arrays)
    np.savez(tmp_path / "s.npz", **data)
    argv = ["mia", "--scores", str(tmp_path / "s.npz"), "--out", str(tmp_path / "out"),
            "--attack", "loss"]
    if groups:
        lines = {"missing": "record_id,group\nrec-1,g\n", "dup": "record_id,group\nrec-0,g\nrec-0,h\n",
                 "header": "id,group\nrec-0,g\n"}[groups]
        (tmp_path / "g.csv").write_text(lines)
        argv += ["--groups", str(tmp_path / "g.csv")]
    code, err = _run(argv, capsys)
    assert code == 2, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert not (tmp_path / "out").exists()


def test_groups_with_target_weights_exits_2(tmp_path, capsys):
    code, err = _run(["mia", "--target-weights", "w.safetensors", "--model", "mlp", "--dataset",
                      "digits", "--members", "m.npz", "--train", "t.py:train", "--out",
                      str(tmp_path / "o"), "--groups", "g.csv"], capsys)
    assert code == 2 and "'--groups' option" in err and "--scores" in err


def test_text_columns_survive_every_spelling(tmp_path):
    arrays = _arrays(60)
    scores = validate_arrays("mem", arrays, lambda n, i: n)
    for suffix in (".csv", ".npz", ".parquet"):
        back = read_scores(write_scores(tmp_path / f"s{suffix}", scores))
        assert back.record_ids.tolist() == arrays["record_id"].tolist(), suffix
        assert back.groups.tolist() == arrays["group"].tolist(), suffix
