"""Tests of reports.markdown: tables, content and escaping."""

from __future__ import annotations

import pytest
from sample_report import LPIPS_NOTE, make_report

from audit.core.errors import InvalidParameterError
from reports.markdown import md_code, md_escape, render_markdown


@pytest.fixture(scope="module")
def text() -> str:
    return render_markdown(make_report())


def _tables(text: str) -> list[list[str]]:
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables + ([current] if current else [])


def _cells(line: str) -> int:
    return len(line.replace("\\|", "").strip().strip("|").split("|"))


def test_deterministic_and_ends_with_newline(text):
    assert render_markdown(make_report()) == text
    assert text.startswith("# Sample audit\n") and text.endswith("\n")


def test_results_tables(text):
    header = "| Metric | Unit | Mean | Worst case | Baseline mean | Baseline worst | Advantage |"
    assert text.count(header) == 2
    results = [t for t in _tables(text) if t[0] == header]
    assert [len(t) - 2 for t in results] == [4, 1]
    assert results[0][2].startswith("| psnr | dB | 14.2 | 18.9 | 10.1 | 12.3 | +4.18 ")
    assert "| lpips |" in results[0][5] and "n/a" in results[0][5]
    assert "| label_accuracy | fraction | 1 | 1 | 0.1 | 0.1 | +0.9 " in results[1][2]


def test_every_table_row_has_the_header_width(text):
    for table in _tables(text):
        width = _cells(table[0])
        assert all(_cells(row) == width for row in table), table


def test_summary_claims_notes_images(text):
    summary = _tables(text)[1]
    assert summary[0].startswith("| Finding | Defense | Claim | Attack | Headline metric")
    assert "ε = 7.93, δ = 1e-05 (central)" in summary[2]
    assert "**no DP claim**" in summary[3]
    assert LPIPS_NOTE in text
    assert "(image grid in report.html)" in text
    assert "data:image" not in text and "<img" not in text


def test_escaping(text):
    assert "<script>" not in text
    assert "\\<script\\>" in text
    assert md_escape("a|b\nc") == "a\\|b c"
    assert md_escape("label_accuracy") == "label_accuracy"
    assert md_escape("_x_ *y* [z](u)") == "\\_x\\_ \\*y\\* \\[z\\](u)"
    assert md_escape("# title") == "\\# title"
    assert md_code("a`b") == "``a`b``"


def test_pipe_in_names_keeps_tables_intact():
    report = make_report()
    report["findings"][1]["defense"]["name"] = "a|b"
    report["command"] = "fedaudit audit | tee log"
    for table in _tables(render_markdown(report)):
        assert all(_cells(row) == _cells(table[0]) for row in table)


def test_invalid_report_is_rejected():
    report = make_report()
    del report["findings"][0]["metrics"][0]["direction"]
    with pytest.raises(InvalidParameterError, match=r"findings\[0\]\.metrics\[0\]\.direction"):
        render_markdown(report)
