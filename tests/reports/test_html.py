"""Tests of reports.html: content, escaping and self-containment of the page."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from sample_report import LPIPS_NOTE, NASTY, make_report

from audit.core.errors import InvalidParameterError
from reports.html import format_advantage, format_number, format_value, render_html


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(page: str) -> _Collector:
    parser = _Collector()
    parser.feed(page)
    parser.close()
    return parser


@pytest.fixture(scope="module")
def page() -> str:
    return render_html(make_report())


def test_is_deterministic(page):
    assert render_html(make_report()) == page
    assert page.startswith("<!DOCTYPE html>")


def test_contains_the_data_uri_image(page):
    report = make_report()
    data = report["findings"][0]["images"]["png_base64"]
    imgs = [a for t, a in _parse(page).tags if t == "img"]
    assert len(imgs) == 1
    assert imgs[0]["src"] == "data:image/png;base64," + data
    assert "rows: ground truth / reconstruction" in page


def test_escapes_user_strings(page):
    assert NASTY not in page
    assert "<script" not in page.lower()
    assert "&lt;script&gt;" in page
    assert "script" not in {t for t, _ in _parse(page).tags}


def test_attribute_values_cannot_break_out():
    report = make_report()
    report["findings"][0]["metrics"][3]["note"] = '" onmouseover="alert(1)'
    report["findings"][0]["images"]["caption"] = '"><img src=x onerror=alert(1)>'
    page = render_html(report)
    tags = _parse(page).tags
    assert not any("onmouseover" in attrs or "onerror" in attrs for _, attrs in tags)
    assert len([t for t, _ in tags if t == "img"]) == 1


def test_self_contained(page):
    tags = _parse(page).tags
    for tag, attrs in tags:
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            assert not re.match(r"(https?:)?//", value), (tag, attrs)
    assert not any(t in ("link", "script", "iframe") for t, _ in tags)
    assert "<style>" in page


def test_claims_and_no_dp(page):
    assert "7.93" in page and "1e-05" in page
    assert "central" in page and "rdp" in page and "subsampled gaussian" in page
    assert "no DP claim" in page
    assert page.count("no DP claim") >= 2  # summary row and finding section


def test_lpips_null_and_note(page):
    assert LPIPS_NOTE in page
    text = "".join(_parse(page).text)
    assert "n/a" in text


def test_summary_table_uses_psnr_then_first_metric(page):
    summary = page.split('<table class="summary">')[1].split("</table>")[0]
    rows = summary.count("<tr>") - 1
    assert rows == 2
    assert "psnr (dB)" in summary and "14.2" in summary and "10.1" in summary
    assert "+4.18" in summary
    assert "label_accuracy (fraction)" in summary and "+0.9" in summary


def test_results_table(page):
    results = page.split('<table class="results">')[1].split("</table>")[0]
    for header in ("Metric", "Mean", "Worst case", "Baseline mean", "Baseline worst", "Advantage"):
        assert f"<th>{header}</th>" in results
    assert "-0.062" in results and "lower leaks more" in results


def test_environment_and_run_metadata(page):
    for text in ("fedaudit audit --config audit.yaml --seed 0 --out out/", "2025-01-02T03:04:05",
                 "cpu", "3.11.9", "torch", "2.5.0"):
        assert text in page


def test_report_with_no_findings_and_no_images():
    report = make_report()
    report["findings"] = []
    assert "no findings" in render_html(report)
    report = make_report()
    report["findings"][0]["images"] = None
    report["findings"][0]["metrics"] = []
    page = render_html(report)
    assert "<img" not in page and "No metrics." in page


def test_invalid_report_is_rejected():
    report = make_report()
    report["schema_version"] = "0.3"
    with pytest.raises(InvalidParameterError, match="schema_version"):
        render_html(report)


@pytest.mark.parametrize("value, text", [
    (None, "n/a"), (0, "0"), (14.2345, "14.2"), (0.5, "0.5"), (100, "100"), (1234.5, "1234"),
    (12345.0, "1.23e+04"), (1e-05, "1e-05"), (0.000123, "1.23e-04"), (-0.0621, "-0.0621"),
    (1.0, "1"),
])
def test_format_number(value, text):
    assert format_number(value) == text


def test_format_value_and_advantage():
    assert format_value(1.0) == "1.0" and format_value(0.1) == "0.1" and format_value(5) == "5"
    assert format_value(True) == "true" and format_value(None) == "null"
    assert format_advantage(3.0, 1.0) == "+2" and format_advantage(1.0, 3.0) == "-2"
    assert format_advantage(None, 1.0) == "n/a" and format_advantage(1.0, None) == "n/a"
