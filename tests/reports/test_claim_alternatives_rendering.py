"""Tests of alternative claims (``claim.alternatives``) and their empirical-epsilon verdicts
(``privacy_audit.alternatives``) in report.html, Markdown and the schema."""

from __future__ import annotations

import copy
import json
import re
from html.parser import HTMLParser

import pytest
from sample_report import make_report

from audit.core.claims import PrivacyClaim, TrustModel
from audit.core.errors import InvalidParameterError
from reports.html import CLAIMS_TITLE, render_html
from reports.markdown import render_markdown
from reports.schema import validate_report

ROUNDS = tuple({"name": f"round {i}", "noise_multiplier": 1.1,
                "sensitivity_factor": 1.0 + 0.3275 * i} for i in range(5))
LABELS = ("official accounting", "as run, aggregate", "as run, each update")
MD_HEADER = "| Claim | ε | δ | Unit | Trust model | Accountant |"
MD_HEADER_VERDICT = MD_HEADER + " ε_emp verdict |"


def _claim(*, primary_label: str | None = LABELS[0]) -> dict:
    aggregate = PrivacyClaim(
        has_dp=True, statement="As run: each round's aggregate is (45.1, 1e-05)-DP per client.",
        epsilon=45.1, delta=1e-5, unit="client", trust_model=TrustModel.CENTRAL,
        compositions=5, accountant="pld", mechanism="gaussian", parts=ROUNDS,
        label=LABELS[1])
    each = PrivacyClaim(
        has_dp=True, statement="As run: each update is (412, 1e-05)-DP per client.",
        epsilon=412.0, delta=1e-5, unit="client", trust_model=TrustModel.LOCAL,
        compositions=5, accountant="pld-local", mechanism="gaussian", parts=ROUNDS,
        label=LABELS[2])
    return PrivacyClaim(
        has_dp=True, statement="(3.2, 1e-05)-DP per training example (DEeR's accounting).",
        epsilon=3.2, delta=1e-5, unit="example", trust_model=TrustModel.LOCAL,
        compositions=50, accountant="rdp", mechanism="gaussian", label=primary_label,
        alternatives=(aggregate, each)).to_dict()


def _alt_verdict(label, epsilon, trust, verdict, emp=37.2) -> dict:
    word = "exceeds" if verdict == "VIOLATION" else "does not exceed"
    return {"label": label, "epsilon_claim": epsilon, "delta": 1e-5, "unit": "client",
            "trust_model": trust, "verdict": verdict,
            "reason": f"lower bound {emp} at 95% confidence {word} the claimed epsilon {epsilon:g}"}


def _audit(primary: str = "PASS", aggregate: str = "PASS", each: str = "VIOLATION",
           *, alternatives: bool = True, emp: float = 37.2) -> dict:
    word = "exceeds" if primary == "VIOLATION" else "does not exceed"
    audit = {"verdict": primary, "epsilon_claim": 3.2, "delta": 1e-5, "unit": "example",
             "estimate": {"epsilon": emp, "nature": "lower-bound"},
             "reason": f"lower bound {emp} at 95% confidence {word} the claimed epsilon 3.2",
             "statement": "A low empirical epsilon is not a proof of privacy."}
    if alternatives:
        audit["alternatives"] = [_alt_verdict(LABELS[1], 45.1, "central", aggregate, emp),
                                 _alt_verdict(LABELS[2], 412.0, "local", each, emp)]
    return audit


def _report(claim: dict | None = None, audit: dict | None = None) -> dict:
    report = make_report()
    finding = report["findings"][0]
    finding["claim"] = _claim() if claim is None else claim
    if audit is not None:
        finding["privacy_audit"] = audit
    return report


class _Claims(HTMLParser):
    """Rows (cell texts) of <table class="claims"> and of each <table class="alt-parts">."""

    def __init__(self):
        super().__init__()
        self.claims: list[list[str]] = []
        self.alt_parts: list[list[list[str]]] = []
        self.details_classes: list[str | None] = []
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class")
        if tag == "table" and cls == "claims":
            self._table = self.claims
        elif tag == "table" and cls == "alt-parts":
            self.alt_parts.append([])
            self._table = self.alt_parts[-1]
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "details":
            self.details_classes.append(cls)

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._cell is not None:
            self._table[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _parse(page: str) -> _Claims:
    parser = _Claims()
    parser.feed(page)
    parser.close()
    return parser


def _md_table(text: str, header: str) -> list[list[str]]:
    lines = text.splitlines()
    at = lines.index(header)
    rows = []
    for line in lines[at + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return rows


def _contradiction(text: str) -> str:
    """The line with the contradiction sentence, without its HTML paragraph tags."""
    (line,) = [ln for ln in text.splitlines() if "The evidence contradicts" in ln]
    return re.sub(r"</?p[^>]*>", "", line)


# --- HTML ------------------------------------------------------------------------------


def test_html_lists_every_claim_with_its_verdict():
    report = _report(audit=_audit())
    page = render_html(report)
    parsed = _parse(page)
    header, *rows = parsed.claims
    assert header == ["Claim", "\u03b5", "\u03b4", "Unit", "Trust model", "Accountant",
                      "\u03b5emp verdict"]
    assert rows == [
        ["official accounting", "3.2", "1e-05", "example", "local", "rdp", "PASS"],
        ["as run, aggregate", "45.1", "1e-05", "client", "central", "pld", "PASS"],
        ["as run, each update", "412", "1e-05", "client", "local", "pld-local", "VIOLATION"],
    ]
    assert CLAIMS_TITLE in page
    sentence = _contradiction(page)
    assert "The evidence contradicts: as run, each update (\u03b5 = 412)" in sentence
    assert "\u03b5_emp lower bound 37.2 at 95% confidence exceeds the claimed epsilon 412" \
        in sentence
    assert "official accounting (" not in sentence and "aggregate (" not in sentence
    # after the primary claim's statement, before the threat model
    statement_at = page.index("(3.2, 1e-05)-DP per training example")
    assert statement_at < page.index(CLAIMS_TITLE) < page.index("<h3>Threat model")


def test_html_alternative_statements_and_per_round_parts_are_collapsed():
    page = render_html(_report(audit=_audit()))
    parsed = _parse(page)
    assert "As run: each round&#39;s aggregate is (45.1, 1e-05)-DP per client." in page
    assert "As run: each update is (412, 1e-05)-DP per client." in page
    assert parsed.details_classes.count("alt-parts") == 2
    assert 'class="parts"' not in page  # the primary claim has no parts
    header, *rows = parsed.alt_parts[0]
    assert header == ["Round", "noise multiplier", "sensitivity factor"]
    assert rows[0] == ["round 0", "1.1", "1"] and rows[-1] == ["round 4", "1.1", "2.31"]
    assert "sensitivity factors from 1 to 2.31" in page


def test_html_without_audit_alternatives_shows_the_primary_verdict_only():
    page = render_html(_report(audit=_audit("VIOLATION", alternatives=False)))
    header, *rows = _parse(page).claims
    assert header[-1] == "\u03b5emp verdict"
    assert [r[-1] for r in rows] == ["VIOLATION", "n/a", "n/a"]
    sentence = _contradiction(page)
    assert sentence.startswith("The evidence contradicts: official accounting (\u03b5 = 3.2)")
    assert "exceeds the claimed epsilon 3.2" in sentence


def test_html_without_any_audit_has_no_verdict_column():
    page = render_html(_report())
    header, *rows = _parse(page).claims
    assert header == ["Claim", "\u03b5", "\u03b4", "Unit", "Trust model", "Accountant"]
    assert [r[0] for r in rows] == list(LABELS)
    assert "The evidence contradicts" not in page


def test_html_all_pass_contradicts_none():
    page = render_html(_report(audit=_audit(each="PASS", emp=0.5)))
    assert [r[-1] for r in _parse(page).claims[1:]] == ["PASS"] * 3
    assert "The evidence contradicts none of the claims." in page


def test_a_primary_without_label_is_called_claim():
    page = render_html(_report(_claim(primary_label=None), _audit("VIOLATION")))
    rows = _parse(page).claims[1:]
    assert rows[0][0] == "claim"
    sentence = _contradiction(page)
    assert "claim (\u03b5 = 3.2)" in sentence and "as run, each update (\u03b5 = 412)" in sentence


def test_summary_mentions_the_other_claims():
    page = render_html(_report(audit=_audit()))
    assert "(+ 2 other claims)" in page
    assert "(+ 2 other claims)" in render_markdown(_report(audit=_audit()))


def test_alternative_labels_are_escaped():
    claim = _claim()
    claim["alternatives"][0]["label"] = "<b>x</b>|y"
    page = render_html(_report(claim))
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;|y" in page
    assert "| \\<b\\>x\\</b\\>\\|y |" in render_markdown(_report(claim))


def test_an_audited_alternative_the_claim_does_not_list_gets_its_own_row():
    audit = _audit()
    audit["alternatives"].append(_alt_verdict("as run, per step", 900.0, "local", "PASS"))
    rows = _parse(render_html(_report(audit=audit))).claims[1:]
    assert rows[-1] == ["as run, per step", "900", "1e-05", "client", "local", "n/a", "PASS"]


# --- Markdown --------------------------------------------------------------------------


def test_markdown_lists_every_claim_with_its_verdict():
    text = render_markdown(_report(audit=_audit()))
    assert f"**{CLAIMS_TITLE}**" in text
    assert _md_table(text, MD_HEADER_VERDICT) == [
        ["official accounting", "3.2", "1e-05", "example", "local", "rdp", "PASS"],
        ["as run, aggregate", "45.1", "1e-05", "client", "central", "pld", "PASS"],
        ["as run, each update", "412", "1e-05", "client", "local", "pld-local",
         "**VIOLATION**"],
    ]
    lines = text.splitlines()
    assert lines[lines.index(MD_HEADER_VERDICT) + 1] == "|---|---:|---:|---|---|---|---|"
    assert _contradiction(text) == (
        "The evidence contradicts: as run, each update (\u03b5 = 412) \u2014 \u03b5_emp lower "
        "bound 37.2 at 95% confidence exceeds the claimed epsilon 412.")
    statement_at = text.index("(3.2, 1e-05)-DP per training example")
    assert statement_at < text.index(CLAIMS_TITLE) < text.index("### Threat model")


def test_markdown_summarises_per_round_parts_in_one_line():
    text = render_markdown(_report(audit=_audit()))
    (line,) = [ln for ln in text.splitlines() if ln.startswith("- as run, each update")]
    assert "As run: each update is (412, 1e-05)-DP per client." in line
    assert "5 rounds" in line and "sensitivity factors from 1 to 2.31" in line
    assert "round 3" not in text  # no per-round table


def test_markdown_without_audit_alternatives_and_without_audit():
    text = render_markdown(_report(audit=_audit("VIOLATION", alternatives=False)))
    assert [r[-1] for r in _md_table(text, MD_HEADER_VERDICT)] == ["**VIOLATION**", "n/a",
                                                                   "n/a"]
    assert _contradiction(text).startswith(
        "The evidence contradicts: official accounting (\u03b5 = 3.2)")
    text = render_markdown(_report())
    assert [r[0] for r in _md_table(text, MD_HEADER)] == list(LABELS)
    assert MD_HEADER_VERDICT not in text and "The evidence contradicts" not in text


def test_markdown_all_pass_contradicts_none():
    text = render_markdown(_report(audit=_audit(each="PASS", emp=0.5)))
    assert "The evidence contradicts none of the claims." in text


# --- claims without alternatives ------------------------------------------------------


def test_a_claim_without_alternatives_renders_as_before():
    """label None and alternatives [] (PrivacyClaim.to_dict()) or absent: no table, and the
    same page as a claim without the keys, also beside a privacy audit without alternatives."""
    old = make_report()
    new = make_report()
    new["findings"][0]["claim"].update(label=None, alternatives=[])
    for a, b in ((old, new), (json.loads(json.dumps(old)), new)):
        assert render_html(a) == render_html(b)
        assert render_markdown(a) == render_markdown(b)
    for report in (old, new):
        page, text = render_html(report), render_markdown(report)
        assert CLAIMS_TITLE not in page and 'class="claims"' not in page
        assert CLAIMS_TITLE not in text and "other claim" not in text + page
        assert ".violation" not in page  # the table's styles only come with a table
    audited = copy.deepcopy(old)
    audited["findings"][0]["privacy_audit"] = _audit(alternatives=False)
    audited["ledger"] = []  # the ledger section belongs to the privacy audit (tests/reports/test_ledger.py)
    assert render_html(audited) == render_html(old)
    assert render_markdown(audited) == render_markdown(old)


def test_privacy_claim_without_alternatives_has_no_table():
    report = make_report()
    report["findings"][0]["claim"] = PrivacyClaim(
        has_dp=True, statement="plain", epsilon=1.0, delta=1e-5, unit="client",
        trust_model=TrustModel.LOCAL, accountant="pld").to_dict()
    assert CLAIMS_TITLE not in render_html(report) and CLAIMS_TITLE not in render_markdown(report)


def test_per_round_parts_on_the_primary_claim_do_not_crash():
    """Rows without epsilon/share (per-round) get a generic table, not the per-layer one."""
    claim = _claim()
    claim["parts"] = [dict(r) for r in ROUNDS]
    report = _report(claim)
    validate_report(report)
    page, text = render_html(report), render_markdown(report)
    assert "Per-layer budget" not in page and "Per-round parameters" in page
    assert "| Round | noise multiplier | sensitivity factor |" in text


# --- schema ----------------------------------------------------------------------------


def test_schema_accepts_alternatives_before_and_after_json():
    report = _report(audit=_audit())
    assert isinstance(report["findings"][0]["claim"]["alternatives"][0]["parts"], tuple)
    assert validate_report(report) is report
    round_trip = json.loads(json.dumps(report))
    assert validate_report(round_trip) is round_trip
    assert render_html(round_trip) == render_html(report)
    assert render_markdown(round_trip) == render_markdown(report)


def test_schema_accepts_reports_without_the_new_keys():
    report = make_report()
    claim = report["findings"][0]["claim"]
    assert "label" not in claim and "alternatives" not in claim
    validate_report(report)
    report["findings"][0]["privacy_audit"] = _audit(alternatives=False)
    validate_report(report)
    report["findings"][0]["privacy_audit"]["alternatives"] = None
    validate_report(report)


def test_schema_rejects_a_bad_alternative_verdict_with_a_clear_message():
    audit = _audit()
    audit["alternatives"][1]["verdict"] = "MAYBE"
    with pytest.raises(InvalidParameterError) as info:
        validate_report(_report(audit=audit))
    message = str(info.value)
    assert "'findings[0].privacy_audit.alternatives[1].verdict'" in message
    assert "one of {'PASS', 'VIOLATION', 'INCONCLUSIVE'}" in message and "'MAYBE'" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "mutate, path",
    [
        (lambda c, a: c["alternatives"][0].__setitem__("epsilon", -1.0),
         "findings[0].claim.alternatives[0].epsilon"),
        (lambda c, a: c["alternatives"][1].pop("statement"),
         "findings[0].claim.alternatives[1].statement"),
        (lambda c, a: c["alternatives"][1].__setitem__("trust_model", "global"),
         "findings[0].claim.alternatives[1].trust_model"),
        (lambda c, a: c["alternatives"][0].__setitem__("label", 3),
         "findings[0].claim.alternatives[0].label"),
        (lambda c, a: c["alternatives"][0]["alternatives"].append({"has_dp": "yes"}),
         "findings[0].claim.alternatives[0].alternatives[0].has_dp"),
        (lambda c, a: c["alternatives"][0]["parts"][2].__setitem__("sensitivity_factor", "x"),
         "findings[0].claim.alternatives[0].parts[2].sensitivity_factor"),
        (lambda c, a: c.__setitem__("label", 1.0), "findings[0].claim.label"),
        (lambda c, a: c.__setitem__("alternatives", {"x": 1}),
         "findings[0].claim.alternatives"),
        (lambda c, a: a.__setitem__("alternatives", "PASS"),
         "findings[0].privacy_audit.alternatives"),
        (lambda c, a: a["alternatives"][0].pop("label"),
         "findings[0].privacy_audit.alternatives[0].label"),
        (lambda c, a: a["alternatives"][0].__setitem__("epsilon_claim", None),
         "findings[0].privacy_audit.alternatives[0].epsilon_claim"),
        (lambda c, a: a["alternatives"][1].__setitem__("trust_model", None),
         "findings[0].privacy_audit.alternatives[1].trust_model"),
        (lambda c, a: a["alternatives"].__setitem__(0, "PASS"),
         "findings[0].privacy_audit.alternatives[0]"),
    ],
)
def test_schema_rejects_bad_alternatives_naming_the_path(mutate, path):
    claim = json.loads(json.dumps(_claim()))
    audit = _audit()
    mutate(claim, audit)
    with pytest.raises(InvalidParameterError, match=re.escape(repr(path))) as info:
        validate_report(_report(claim, audit))
    assert "\n" not in str(info.value)
