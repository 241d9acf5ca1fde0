"""Tests of reports.io: atomic writes and load_report."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from sample_report import make_report

from audit.core.errors import InvalidParameterError
from reports.io import load_report, write_bytes_atomic, write_json_atomic, write_text_atomic


def test_write_text_and_bytes_leave_only_the_target(tmp_path):
    target = tmp_path / "report.md"
    write_text_atomic(target, "héllo\nworld\n")
    assert target.read_bytes() == "héllo\nworld\n".encode()
    write_bytes_atomic(tmp_path / "grid.png", b"\x89PNG")
    write_text_atomic(str(target), "replaced")
    assert target.read_text() == "replaced"
    assert sorted(os.listdir(tmp_path)) == ["grid.png", "report.md"]


def test_json_is_sorted_indented_with_final_newline(tmp_path):
    target = tmp_path / "report.json"
    write_json_atomic(target, {"b": 1, "a": [1.5, None], "c": np.float32(0.5), "d": np.int64(3)})
    text = target.read_text()
    assert text.endswith("}\n")
    assert text == json.dumps({"a": [1.5, None], "b": 1, "c": 0.5, "d": 3},
                              indent=2, sort_keys=True) + "\n"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), object()])
def test_failed_serialization_does_not_clobber(tmp_path, bad):
    target = tmp_path / "report.json"
    write_json_atomic(target, {"ok": 1})
    before = target.read_bytes()
    with pytest.raises(InvalidParameterError, match="report.json"):
        write_json_atomic(target, {"ok": 1, "bad": bad})
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["report.json"]


def test_failure_during_write_removes_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomic(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_existing_mode_is_kept(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("x")
    target.chmod(0o600)
    write_text_atomic(target, "y")
    assert target.stat().st_mode & 0o777 == 0o600
    write_text_atomic(tmp_path / "new.txt", "z")
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o644


def test_bad_targets(tmp_path):
    with pytest.raises(InvalidParameterError, match="existing directory"):
        write_text_atomic(tmp_path / "missing" / "x.txt", "x")
    with pytest.raises(InvalidParameterError, match="not a directory"):
        write_text_atomic(tmp_path, "x")
    with pytest.raises(InvalidParameterError, match="'text'"):
        write_text_atomic(tmp_path / "x.txt", b"bytes")
    assert os.listdir(tmp_path) == []


def test_round_trip(tmp_path):
    target = tmp_path / "report.json"
    report = make_report()
    write_json_atomic(target, report)
    assert load_report(target) == report


def _assert_one_line(exc, *parts):
    msg = str(exc.value)
    assert "\n" not in msg
    for part in parts:
        assert part in msg, msg


def test_load_missing_file(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(InvalidParameterError) as info:
        load_report(path)
    _assert_one_line(info, str(path), "no such file")


def test_load_directory(tmp_path):
    with pytest.raises(InvalidParameterError) as info:
        load_report(tmp_path)
    _assert_one_line(info, str(tmp_path), "directory")


@pytest.mark.parametrize("content, problem", [
    (b'{"schema_version": "1.0", ', "invalid JSON"),
    (b"", "invalid JSON"),
    (b'{"x": NaN}', "NaN"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
])
def test_load_corrupt(tmp_path, content, problem):
    path = tmp_path / "report.json"
    path.write_bytes(content)
    with pytest.raises(InvalidParameterError) as info:
        load_report(path)
    _assert_one_line(info, str(path), problem)


def test_load_old_version(tmp_path):
    path = tmp_path / "report.json"
    report = make_report()
    report["schema_version"] = "0.1"
    path.write_text(json.dumps(report))
    with pytest.raises(InvalidParameterError) as info:
        load_report(path)
    _assert_one_line(info, str(path), "'0.1'", "'1.0'", "schema_version")


def test_load_invalid_structure(tmp_path):
    path = tmp_path / "report.json"
    report = make_report()
    report["findings"][1]["claim"]["epsilon"] = "big"
    write_json_atomic(path, report)
    with pytest.raises(InvalidParameterError) as info:
        load_report(path)
    _assert_one_line(info, str(path), "findings[1].claim.epsilon")
