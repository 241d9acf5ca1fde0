"""The ``table`` dataset: CSV, TSV and Parquet tables round-trip (features, labels, clients);
every bad table is a clear error naming the parameter and the value."""

from __future__ import annotations

import sys

import pytest
import torch

from audit.core.errors import InvalidParameterError
from audit.data.registry import create_dataset

CSV = """age,city,income,label,site
20,Paris,1000,0,h2
40,Lyon,3000,1,h10
30,Paris,2000,2,h2

60,Nice,5000,1,h1
"""


def _write(tmp_path, text, name="t.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_csv_round_trips_with_default_features_and_clients(tmp_path):
    ds = create_dataset("table", path=_write(tmp_path, CSV), label="label", client_column="site")
    assert ds.modality == "tabular" and ds.task == "classification" and ds.input_shape == (1, 1, 2)
    assert ds.meta["features"] == ("age", "income")  # 'city' is not numeric, 'site' is the client
    x = torch.tensor([[0.0, 0.0], [0.5, 0.5], [0.25, 0.25], [1.0, 1.0]])
    assert torch.allclose(ds.images[:, 0, 0], x)
    assert ds.meta["feature_min"] == (20.0, 1000.0) and ds.meta["feature_max"] == (60.0, 5000.0)
    assert ds.labels.tolist() == [0, 1, 2, 1] and ds.num_classes == 3
    assert ds.meta["client_names"] == ("h1", "h10", "h2") and ds.clients.tolist() == [2, 1, 2, 0]


def test_named_features_tsv_limit_and_integer_clients(tmp_path):
    text = "a\tb\ty\tc\n0.5\t1\t1\t3\n0.25\t0\t0\t10\n1\t1\t1\t3\n"
    ds = create_dataset("table", path=_write(tmp_path, text, "t.tsv"), label="y", features="b, a",
                        client_column="c", scale="none", num_classes=2, limit=2)
    assert ds.meta["features"] == ("b", "a") and len(ds) == 2
    assert torch.allclose(ds.images[:, 0, 0], torch.tensor([[1.0, 0.5], [0.0, 0.25]]))
    assert ds.meta["client_names"] == (3, 10) and ds.clients.tolist() == [0, 1]
    semi = create_dataset("table", path=_write(tmp_path, "a;y\n1;0\n2;1\n", "s.csv"), label="y", delimiter=";")
    assert semi.labels.tolist() == [0, 1]


def test_parquet_round_trips(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    p = tmp_path / "t.parquet"
    pq.write_table(pa.table({"f1": [0.0, 0.5, 1.0], "f2": [True, False, True], "name": ["a", "b", "c"],
                             "y": [2, 0, 1], "client": ["x", "y", "x"]}), p)
    ds = create_dataset("table", path=p, label="y", client_column="client", scale="none")
    assert ds.meta["features"] == ("f1", "f2")
    assert torch.allclose(ds.images[:, 0, 0], torch.tensor([[0.0, 1.0], [0.5, 0.0], [1.0, 1.0]]))
    assert ds.labels.tolist() == [2, 0, 1] and ds.clients.tolist() == [0, 1, 0]


def test_parquet_without_pyarrow_names_the_tables_extra(tmp_path, monkeypatch):
    p = tmp_path / "t.parquet"
    p.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(InvalidParameterError, match=r"fedaudit\[tables\].*'pyarrow'"):
        create_dataset("table", path=p, label="y")


@pytest.mark.parametrize("text, params, match", [
    (CSV, {}, r"'label'.*required.*None"),
    (CSV, {"label": "lbl"}, r"'label'.*columns: age, city, income, label, site\).*'lbl'"),
    (CSV, {"label": "label", "features": "age,zip"}, r"'features'.*'zip'"),
    (CSV, {"label": "label", "features": "age,city"}, r"'features'.*'city' holds a non-number at line 2.*'Paris'"),
    (CSV, {"label": "label", "features": "age,label"}, r"'features'.*other than the label.*'label'"),
    (CSV, {"label": "label", "features": "age,age"}, r"'features'.*distinct.*'age,age'"),
    (CSV, {"label": "label", "client_column": "hospital"}, r"'client_column'.*'hospital'"),
    (CSV, {"label": "city"}, r"'label'.*'city' holds a non-number at line 2.*'Paris'"),
    (CSV, {"label": "label", "num_classes": 2}, r"'label'.*\[0, 2\).*line 4.*Got 2"),
    ("a,y\n1,0\n,1\n", {"label": "y", "features": "a"}, r"'features'.*'a' holds a non-number at line 3.*''"),
    ("a,y\n1,0\nnan,1\n", {"label": "y", "features": "a"}, r"'features'.*line 3.*'nan'"),
    ("a,y\n1,0.5\n", {"label": "y"}, r"'label'.*fraction at line 2.*0\.5"),
    ("a,y\n1,-1\n", {"label": "y"}, r"'label'.*out of range at line 2.*-1"),
    ("a,y\n1,0\n2\n", {"label": "y"}, r"'path'.*header's 2 fields.*line 3 has 1"),
    ("a,y,a\n1,0,1\n", {"label": "y"}, r"'path'.*distinct.*a, y, a"),
    ("a,y\n", {"label": "y"}, r"'path'.*at least one item.*no items"),
    ("", {"label": "y"}, r"'path'.*at least one item.*no items"),
    ("name,y\nx,0\n", {"label": "y"}, r"'features'.*numeric columns.*besides y"),
    ("a,y,c\n1,0,\n", {"label": "y", "client_column": "c"}, r"'client_column'.*line 2.*''"),
    ("a,y\n1,0\n", {"label": "y", "delimiter": "::"}, r"'delimiter'.*one character.*'::'"),
    ("a,y\n1,0\n", {"label": "y", "scale": "z"}, r"'scale'.*'z'"),
])
def test_bad_tables_are_errors_naming_the_value(tmp_path, text, params, match):
    with pytest.raises(InvalidParameterError, match=match):
        create_dataset("table", path=_write(tmp_path, text), **params)


def test_bad_paths(tmp_path):
    with pytest.raises(InvalidParameterError, match=r"'path'.*ending in \.csv or \.tsv or \.parquet.*t\.txt"):
        create_dataset("table", path=_write(tmp_path, CSV, "t.txt"), label="label")
    with pytest.raises(InvalidParameterError, match=r"'path'.*a file.*not a file"):
        create_dataset("table", path=tmp_path, label="label")
    (tmp_path / "latin.csv").write_bytes("a,y\n\xe9,0\n".encode("latin-1"))
    with pytest.raises(InvalidParameterError, match=r"'path'.*UTF-8.*latin\.csv"):
        create_dataset("table", path=tmp_path / "latin.csv", label="y")


def test_scale_none_from_the_command_line(tmp_path, capsys):
    """The CLI reads ``scale=none`` as None; it means "keep the values" like ``"none"``."""
    import pytest as _pytest

    from audit.cli.main import main

    p = tmp_path / "t.csv"
    p.write_text("f1,f2,y\n0.0,1.0,0\n0.5,0.25,1\n1.0,0.0,0\n0.2,0.4,1\n")
    kept = create_dataset("table", path=p, label="y", scale=None)
    assert torch.equal(kept.images, create_dataset("table", path=p, label="y", scale="none").images)
    with _pytest.raises(SystemExit) as exc:
        main(["audit", "--dataset", "table", "--dataset-param", f"path={p}", "--dataset-param", "label=y",
              "--dataset-param", "scale=none", "--model", "mlp", "--attack", "llg", "--num-targets", "2",
              "--batch-size", "2", "--no-progress", "--out", str(tmp_path / "out")])
    assert exc.value.code == 0, capsys.readouterr().err
