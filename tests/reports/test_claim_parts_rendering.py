"""Tests of the per-layer budget (``claim.parts``) in report.html, Markdown and the schema."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from sample_report import make_report

from audit.core.claims import PrivacyClaim, TrustModel
from audit.core.errors import InvalidParameterError
from reports.html import PARTS_COLLAPSE_ABOVE, render_html
from reports.markdown import render_markdown
from reports.schema import validate_report

TITLE = "Per-layer budget (composes to \u03b5 = 7.93)"
MD_HEADER = ("| Layer | Share | Noise multiplier z_l | Clip C_l | \u03c3_l = z_l\u00b7C_l "
             "| \u03b5_l |")


def _part(name: str, epsilon: float, z: float, clip: float, share: float) -> dict:
    return {"name": name, "epsilon": epsilon, "noise_multiplier": z, "clip_norm": clip,
            "share": share}


THREE = [
    _part("enc1.conv1", 1.234567, 2.449489743, 0.57735, 0.5),
    _part("enc1.conv2", 0.9876543, 3.4641016, 0.57735, 0.25),
    _part("head.fc", 0.0123456, 3.4641016, 0.57735, 0.25),
]
#: (layer, share, z_l, C_l, sigma_l = z_l * C_l, epsilon_l) as displayed
THREE_ROWS = [
    ["enc1.conv1", "0.5", "2.449", "0.5774", "1.414", "1.235"],
    ["enc1.conv2", "0.25", "3.464", "0.5774", "2", "0.9877"],
    ["head.fc", "0.25", "3.464", "0.5774", "2", "0.01235"],
]


def _report(parts=None, *, drop: bool = False) -> dict:
    report = make_report()
    claim = report["findings"][0]["claim"]
    if drop:
        claim.pop("parts", None)
    else:
        claim["parts"] = parts
    return report


class _Tables(HTMLParser):
    """Rows (cell texts) of every <table class="parts">, and the <details> summaries."""

    def __init__(self):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.summaries: list[str] = []
        self.details_classes: list[str | None] = []
        self._in_parts = self._in_summary = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("class") == "parts":
            self._in_parts = True
            self.tables.append([])
        elif tag == "tr" and self._in_parts:
            self.tables[-1].append([])
        elif tag in ("td", "th") and self._in_parts:
            self._cell = []
        elif tag == "details":
            self.details_classes.append(attrs.get("class"))
        elif tag == "summary":
            self._in_summary = True
            self.summaries.append("")

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_parts = False
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "summary":
            self._in_summary = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._in_summary:
            self.summaries[-1] += data


def _parse(page: str) -> _Tables:
    parser = _Tables()
    parser.feed(page)
    parser.close()
    return parser


def test_parts_render_as_a_table_under_the_claim():
    page = render_html(_report(THREE))
    tables = _parse(page).tables
    assert len(tables) == 1
    header, *rows = tables[0]
    assert header == ["Layer", "Share", "Noise multiplier zl", "Clip Cl",
                      "\u03c3l = zl\u00b7Cl", "\u03b5l"]
    assert rows == THREE_ROWS
    assert TITLE in page
    # under the claim table, before the claim statement and the threat model
    claim_at = page.index("Differential privacy claim:")
    assert claim_at < page.index(TITLE) < page.index("(7.93, 1e-05)-DP per example")
    assert page.index(TITLE) < page.index("<h3>Threat model")
    # few rows: shown directly, not folded
    assert "parts" not in _parse(page).details_classes


def test_many_parts_are_folded_into_details_with_count_and_range():
    n = PARTS_COLLAPSE_ABOVE + 4
    parts = [_part(f"layer{i}", 0.5 + 0.25 * i, 3.0, 0.25, 1 / n) for i in range(n)]
    parsed = _parse(render_html(_report(parts)))
    assert parsed.details_classes.count("parts") == 1
    (summary,) = [s for s in parsed.summaries if s.startswith("Per-layer")]
    assert summary.startswith(TITLE)
    assert f"{n} layers" in summary
    assert "from 0.5 to 3.25" in summary  # min and max epsilon_l
    rows = parsed.tables[0][1:]
    assert len(rows) == n and rows[0][0] == "layer0" and rows[-1][-1] == "3.25"


def test_exactly_the_threshold_is_not_folded():
    parts = [_part(f"l{i}", 0.5, 3.0, 0.25, 1 / PARTS_COLLAPSE_ABOVE)
             for i in range(PARTS_COLLAPSE_ABOVE)]
    parsed = _parse(render_html(_report(parts)))
    assert "parts" not in parsed.details_classes
    assert len(parsed.tables[0]) == PARTS_COLLAPSE_ABOVE + 1


@pytest.mark.parametrize("kind", ["absent", "empty", "null"])
def test_no_parts_no_table(kind):
    report = {"absent": lambda: _report(drop=True), "empty": lambda: _report([]),
              "null": lambda: _report(None)}[kind]()
    page = render_html(report)
    assert "Per-layer budget" not in page and 'class="parts"' not in page
    assert "Per-layer budget" not in render_markdown(report)
    assert page == render_html(_report(drop=True))


def test_layer_names_are_escaped():
    page = render_html(_report([_part("<b>x</b>", 1.0, 1.0, 1.0, 1.0)]))
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    text = render_markdown(_report([_part("a|b", 1.0, 1.0, 1.0, 1.0)]))
    assert "| a\\|b |" in text


def test_markdown_renders_the_same_table():
    text = render_markdown(_report(THREE))
    lines = text.splitlines()
    at = lines.index(MD_HEADER)
    assert lines[at - 2].startswith(TITLE + ": 3 layers")
    assert lines[at + 1] == "|---|---:|---:|---:|---:|---:|"
    assert [row.strip("| ").split(" | ") for row in lines[at + 2: at + 5]] == THREE_ROWS
    assert lines[at + 5] == ""
    assert text.index(MD_HEADER) < text.index("(7.93, 1e-05)-DP per example")


def test_parts_from_privacy_claim_validate_and_render_before_and_after_json():
    """PrivacyClaim.to_dict() holds a tuple of parts; report.json holds a list."""
    claim = PrivacyClaim(has_dp=True, statement="composed", epsilon=7.93, delta=1e-5,
                         unit="client", trust_model=TrustModel.LOCAL, compositions=1,
                         accountant="pld", mechanism="layer-wise Gaussian",
                         parts=tuple(THREE)).to_dict()
    assert isinstance(claim["parts"], tuple)
    report = make_report()
    report["findings"][0]["claim"] = claim
    validate_report(report)
    round_trip = json.loads(json.dumps(report))
    assert render_html(round_trip) == render_html(report)
    assert _parse(render_html(report)).tables[0][1:] == THREE_ROWS
    # a claim without parts (the default) still validates and renders no table
    report["findings"][0]["claim"] = PrivacyClaim.none("no DP").to_dict()
    assert "Per-layer budget" not in render_html(report)


@pytest.mark.parametrize(
    "mutate, path",
    [
        (lambda p: p[0].__setitem__("epsilon", "1.0"), "findings[0].claim.parts[0].epsilon"),
        (lambda p: p[0].__setitem__("epsilon", float("inf")),
         "findings[0].claim.parts[0].epsilon"),
        (lambda p: p[1].__setitem__("noise_multiplier", float("nan")),
         "findings[0].claim.parts[1].noise_multiplier"),
        (lambda p: p[2].__setitem__("clip_norm", True), "findings[0].claim.parts[2].clip_norm"),
        (lambda p: p[0].__setitem__("share", None), "findings[0].claim.parts[0].share"),
        (lambda p: p[0].__setitem__("name", 3), "findings[0].claim.parts[0].name"),
        (lambda p: p[1].pop("epsilon"), "findings[0].claim.parts[1].epsilon"),
        (lambda p: p.__setitem__(0, "enc1"), "findings[0].claim.parts[0]"),
    ],
)
def test_schema_rejects_a_bad_part_naming_the_path(mutate, path):
    parts = [dict(p) for p in THREE]
    mutate(parts)
    with pytest.raises(InvalidParameterError, match=re.escape(repr(path))) as info:
        validate_report(_report(parts))
    assert "\n" not in str(info.value)


def test_schema_rejects_parts_that_are_not_a_list():
    with pytest.raises(InvalidParameterError, match=re.escape("'findings[0].claim.parts'")):
        validate_report(_report({"enc1": 1.0}))


@pytest.mark.parametrize("kind", ["absent", "empty", "null", "three"])
def test_schema_accepts_absent_empty_or_good_parts(kind):
    report = {"absent": lambda: _report(drop=True), "empty": lambda: _report([]),
              "null": lambda: _report(None), "three": lambda: _report(THREE)}[kind]()
    assert validate_report(report) is report
