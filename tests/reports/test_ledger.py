"""The claimed-vs-empirical ledger end to end: rows from a hand-built finding (reports.ledger),
their checks in the hand validator and the published JSON Schema (reports.ledger_schema), the
audit report's HTML / Markdown section and the terminal table (reports.ledger_render), and the
compliance report's ledger (audit.compliance.compliance_report, reports.compliance_render)."""

from __future__ import annotations

import copy
import json
import re

import pytest
from sample_report import NASTY, make_report

from audit.compliance.compliance_report import build_compliance
from audit.compliance.policy import Policy
from audit.core.errors import InvalidParameterError
from reports.assembly import assemble_report
from reports.audit_schema import AUDIT_SCHEMA_PATH, validate_audit_json_schema
from reports.compliance_render import SECTIONS, _pdf_html, compliance_html, compliance_markdown
from reports.compliance_schema import SCHEMA_PATH as COMPLIANCE_SCHEMA_PATH, validate_compliance
from reports.html import render_html
from reports.ledger import ledger_rows, lint_summary
from reports.ledger_render import (
    EMPTY_TEXT, EXPLANATION, TITLE, epsilon_emp_text, ledger_markdown, ledger_text, ledger_view, lint_text,
)
from reports.markdown import render_markdown
from reports.schema import validate_report

PIPE_LABEL = "as run | aggregate <b>"
EVIL_MESSAGE = f"the accountant assumes Poisson sampling {NASTY} | the run shuffles"
LINT = [
    {"id": "delta", "severity": "warning", "message": "delta 1e-05 is above 1/n", "fix": "lower delta"},
    {"id": "sampling", "severity": "error", "message": EVIL_MESSAGE, "fix": "sample with Poisson"},
    {"id": "secure-rng", "severity": "info", "message": "skipped: the RNG is not stated", "fix": "state it"},
    {"id": "steps", "severity": "error", "message": "100 steps accounted, 120 ran", "fix": "account 120"},
]


def _alt_claim(label: str, epsilon: float, **extra) -> dict:
    return {"has_dp": True, "epsilon": epsilon, "delta": 1e-5, "unit": "client", "trust_model": "central",
            "compositions": 3, "accountant": "pld", "mechanism": "gaussian", "statement": f"{label}.",
            "label": label, **extra}


def _finding(lint=LINT) -> dict:
    """The sample's DP-SGD finding with a primary and two alternative claims, a lower bound,
    the primary INCONCLUSIVE, one alternative VIOLATION (own evidence) and one PASS (the
    primary's evidence), and the accounting lint."""
    f = copy.deepcopy(make_report()["findings"][0])
    f["claim"].update(label="official accounting", unit_level="record", adjacency="add-remove",
                      assumptions=["Poisson sampling at q = 0.01", "100 steps composed"],
                      alternatives=[_alt_claim(PIPE_LABEL, 45.1, unit_level="client",
                                               adjacency="replace-one", assumptions=["3 rounds"]),
                                    _alt_claim("as run, each update", 412.0)])
    f["privacy_audit"] = {
        "verdict": "INCONCLUSIVE", "epsilon_claim": 7.93, "delta": 1e-5, "unit": "example",
        "estimate": {"estimator": "clopper-pearson", "epsilon": 1.65, "delta": 1e-5, "nature": "lower-bound",
                     "confidence": 0.95, "trials": 4000},
        "reason": "too weak to say", "power_ceiling": 5.3, "statement": "not a proof",
        "lint": copy.deepcopy(lint),
        "alternatives": [
            {"label": PIPE_LABEL, "epsilon_claim": 45.1, "delta": 1e-5, "unit": "client",
             "trust_model": "central", "verdict": "VIOLATION", "reason": "lower bound 50 exceeds 45.1",
             "estimator": "clopper-pearson-input", "epsilon_emp": 50.0, "power_ceiling": 60.0, "trials": 2000},
            {"label": "as run, each update", "epsilon_claim": 412.0, "delta": 1e-5, "unit": "client",
             "trust_model": "local", "verdict": "PASS", "reason": "lower bound 1.65 below 412"}]}
    return f


def _report(with_ledger: bool = True) -> dict:
    r = make_report()
    r["findings"][0] = _finding()
    if with_ledger:
        r["ledger"] = json.loads(json.dumps(ledger_rows(r["findings"])))
    return validate_report(r)


# -- rows -------------------------------------------------------------------------------------------


def test_rows_of_primary_and_alternative_claims():
    rows = ledger_rows(_report(False)["findings"])
    assert [(r["claim"]["label"], r["verdict"]) for r in rows] == [
        ("official accounting", "INCONCLUSIVE"), (PIPE_LABEL, "VIOLATION"), ("as run, each update", "PASS")]
    primary, alt, each = rows
    assert primary["run"] is None and primary["finding"] == "dpsgd-ig" and primary["defense"] == "dp-sgd"
    assert primary["claim"] == {
        "label": "official accounting", "epsilon": 7.93, "delta": 1e-5, "unit": "example", "unit_level": "record",
        "adjacency": "add-remove", "accountant": "rdp", "trust_model": "central",
        "assumptions": ["Poisson sampling at q = 0.01", "100 steps composed"]}
    assert primary["evidence"] == {"estimator": "clopper-pearson", "nature": "lower-bound", "epsilon_emp": 1.65,
                                   "interval": [1.65, None], "confidence": 0.95, "power_ceiling": 5.3,
                                   "trials": 4000}
    assert primary["reason"] == "too weak to say"
    # matched by label: the alternative claim's full description, its own evidence
    assert alt["claim"]["unit_level"] == "client" and alt["claim"]["adjacency"] == "replace-one"
    assert alt["claim"]["accountant"] == "pld" and alt["claim"]["assumptions"] == ["3 rounds"]
    assert alt["evidence"]["estimator"] == "clopper-pearson-input"
    assert alt["evidence"]["interval"] == [50.0, None] and alt["evidence"]["power_ceiling"] == 60.0
    assert alt["evidence"]["trials"] == 2000
    # no evidence keys of its own: judged on the primary's evidence; the entry's trust model
    assert each["evidence"] == primary["evidence"] and each["claim"]["trust_model"] == "local"
    for r in rows:  # every row of the run carries its lint
        assert r["lint"] == LINT and r["lint_summary"] == {"error": 2, "warning": 1, "info": 1}
    assert lint_summary([]) == {"error": 0, "warning": 0, "info": 0}


def test_rows_of_an_older_report_and_of_findings_without_a_verdict():
    f = _finding()
    for key in ("unit_level", "adjacency", "assumptions", "alternatives"):
        del f["claim"][key]
    del f["privacy_audit"]["lint"]
    for alt in f["privacy_audit"]["alternatives"]:
        for key in ("estimator", "epsilon_emp", "power_ceiling", "trials"):
            alt.pop(key, None)
    rows = ledger_rows([f, make_report()["findings"][1]], run="runs/old")
    assert len(rows) == 3 and {r["run"] for r in rows} == {"runs/old"}
    primary, alt, _ = rows
    assert primary["claim"]["unit_level"] is None and primary["claim"]["adjacency"] is None
    assert primary["claim"]["assumptions"] == [] and primary["lint"] == []
    assert primary["lint_summary"] == {"error": 0, "warning": 0, "info": 0}
    # an alternative that matches no claim: described by its privacy_audit entry
    assert alt["claim"]["epsilon"] == 45.1 and alt["claim"]["unit"] == "client"
    assert alt["claim"]["accountant"] is None and alt["evidence"] == primary["evidence"]
    f["privacy_audit"]["verdict"] = None
    assert ledger_rows([f]) == []


def test_an_estimate_has_no_interval():
    f = _finding()
    f["privacy_audit"]["estimate"].update(nature="estimate", confidence=None, estimator="gdp-fit")
    f["privacy_audit"]["power_ceiling"] = None
    (row, *_) = ledger_rows([f])
    assert row["evidence"]["interval"] is None and row["evidence"]["power_ceiling"] is None
    assert epsilon_emp_text(row["evidence"]) == "1.65 (point estimate, no interval)"


def test_assemble_report_adds_the_ledger():
    r = make_report()
    r["findings"][0] = _finding()
    report = assemble_report(r["findings"], title="t", command="c", seed=0, environment=r["environment"],
                             notes=[], runtime_s=1.0)
    assert report["ledger"] == ledger_rows(r["findings"]) and len(report["ledger"]) == 3
    validate_audit_json_schema(json.loads(json.dumps(report)))
    empty = assemble_report(make_report()["findings"], title="t", command="c", seed=0,
                            environment=r["environment"], notes=[], runtime_s=1.0)
    assert empty["ledger"] == []


def test_assemble_report_names_a_malformed_finding():
    f = _finding()
    del f["defense"]
    with pytest.raises(InvalidParameterError, match=r"findings\[0\]\.defense"):
        assemble_report([f], title="t", command="c", seed=0, environment=make_report()["environment"],
                        notes=[], runtime_s=1.0)


# -- validation -------------------------------------------------------------------------------------


def _rejected_by_both(report: dict, path: str) -> None:
    with pytest.raises(InvalidParameterError) as hand:
        validate_report(copy.deepcopy(report))
    with pytest.raises(InvalidParameterError) as published:
        validate_audit_json_schema(report)
    assert repr(path) in str(hand.value), str(hand.value)
    assert str(published.value).startswith(f"Invalid report: {path!r}: "), str(published.value)


def test_both_validators_accept_the_ledger():
    report = _report()
    validate_report(copy.deepcopy(report))
    validate_audit_json_schema(report)


@pytest.mark.parametrize("mutate, path", [
    (lambda r: r["ledger"][0]["evidence"].__setitem__("power_ceiling", "5.3"), "ledger[0].evidence.power_ceiling"),
    (lambda r: r["ledger"][0]["evidence"].__setitem__("power_ceiling", -1), "ledger[0].evidence.power_ceiling"),
    (lambda r: r["ledger"][2].__setitem__("verdict", "FAIL"), "ledger[2].verdict"),
    (lambda r: r["ledger"][1]["claim"].__setitem__("unit_level", "example"), "ledger[1].claim.unit_level"),
    (lambda r: r["ledger"][0]["lint"][1].__setitem__("severity", "fatal"), "ledger[0].lint[1].severity"),
    (lambda r: r["findings"][0]["claim"].__setitem__("adjacency", "swap-one"), "findings[0].claim.adjacency"),
    (lambda r: r["findings"][0]["claim"]["alternatives"][1].__setitem__("adjacency", 1),
     "findings[0].claim.alternatives[1].adjacency"),
    (lambda r: r["findings"][0]["privacy_audit"]["lint"][2].__setitem__("severity", "critical"),
     "findings[0].privacy_audit.lint[2].severity"),
    (lambda r: r["findings"][0]["privacy_audit"]["alternatives"][0].__setitem__("trials", -3),
     "findings[0].privacy_audit.alternatives[0].trials"),
], ids=["ceiling str", "ceiling negative", "verdict", "unit_level", "row lint severity", "adjacency",
        "alternative adjacency", "lint severity", "alternative trials"])
def test_bad_ledger_keys_are_rejected_by_both(mutate, path):
    report = _report()
    mutate(report)
    _rejected_by_both(report, path)


def test_hand_message_names_the_constraint():
    report = _report()
    report["ledger"][0]["evidence"]["power_ceiling"] = "5.3"
    with pytest.raises(InvalidParameterError, match=r"'ledger\[0\]\.evidence\.power_ceiling' must be a number "
                                                    r">= 0 or null\. Got '5\.3' instead"):
        validate_report(report)


def test_compliance_schema_has_the_audit_schema_ledger_rows():
    audit = json.loads(AUDIT_SCHEMA_PATH.read_text(encoding="utf-8"))["$defs"]
    compliance = json.loads(COMPLIANCE_SCHEMA_PATH.read_text(encoding="utf-8"))["$defs"]
    for key in ("ledger_row", "ledger_claim", "ledger_evidence", "lint_finding", "string_list"):
        assert compliance[key] == audit[key], key


# -- the audit report's renderings ------------------------------------------------------------------


def _section(page: str) -> str:
    start = page.index(f'<h2 id="ledger">{TITLE}</h2>')
    return page[start:page.index("<h2>Environment</h2>")]


@pytest.mark.parametrize("with_ledger", [True, False], ids=["ledger", "older report: from the findings"])
def test_html_has_the_ledger_section_after_the_summary(with_ledger):
    page = render_html(_report(with_ledger))
    assert page.index("<h2>Summary</h2>") < page.index(TITLE) < page.index("<h2>Environment</h2>")
    section = _section(page)
    assert '<strong class="ledger-inconclusive">INCONCLUSIVE</strong>' in section
    assert '<strong class="ledger-violation">VIOLATION</strong>' in section
    assert "\u2265 1.65 at 95%" in section and "\u2265 50 at 95%" in section
    assert "record" in section and "add-remove" in section and "Poisson sampling at q = 0.01; 100 steps composed" in section
    assert "2 errors, 1 warning, 1 info" in section and "too weak to say" in section
    assert "INCONCLUSIVE: the claim is above the power ceiling, the audit was too weak to say." in section
    # the lint once (three rows share it), errors first; user strings escaped
    assert section.count("100 steps accounted, 120 ran") == 1
    severities = re.findall(r'<strong class="lint-(\w+)">', section)
    assert severities == ["error", "error", "warning", "info"]
    assert NASTY not in page and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; | the run shuffles" in section
    assert "<b>" not in section and "as run | aggregate &lt;b&gt;" in section
    assert "table.ledger" in page


def test_no_ledger_section_without_rows():
    page, text = render_html(make_report()), render_markdown(make_report())
    assert TITLE not in page and "table.ledger" not in page and TITLE not in text
    assert ledger_view([]) is None and ledger_markdown([]) == []


@pytest.mark.parametrize("with_ledger", [True, False], ids=["ledger", "older report: from the findings"])
def test_markdown_has_the_ledger_section_after_the_summary(with_ledger):
    text = render_markdown(_report(with_ledger))
    assert text.index("## Summary") < text.index(f"## {TITLE}") < text.index("## Environment")
    section = text[text.index(f"## {TITLE}"):text.index("## Environment")]
    table = [line for line in section.splitlines() if line.startswith("|")]
    assert table[0].startswith("| Finding | Defense | Claim | \u03b5 | \u03b4 | Unit | Adjacency |")
    assert len(table) == 2 + 3
    widths = {len(re.split(r"(?<!\\)\|", line)) for line in table}
    assert len(widths) == 1  # the escaped | in the claim label and the lint keeps every row whole
    assert "**INCONCLUSIVE**" in table[2] and "**VIOLATION**" in table[3] and "| PASS |" in table[4]
    assert "as run \\| aggregate \\<b\\>" in table[3]
    assert "\u2265 1.65 at 95%" in table[2] and "2 errors, 1 warning, 1 info" in table[2]
    lint = [line for line in section.splitlines() if line.startswith("- ")]
    assert [line.split("**")[1] for line in lint] == ["error", "error", "warning", "info"]
    assert "\\<script\\>alert('x')\\</script\\> \\| the run shuffles" in section
    assert "<script>" not in text
    assert "\u03b5_emp with its interval" in section and "too weak to say" in section


def test_lint_text_and_view_strings():
    assert lint_text({"error": 2, "warning": 1, "info": 0}) == "2 errors, 1 warning"
    assert lint_text({"error": 0, "warning": 0, "info": 0}) == "clean"
    assert lint_text({"error": 0, "warning": 0, "info": 3}) == "clean (3 info)"
    assert epsilon_emp_text({"epsilon_emp": None}) == "n/a"
    view = ledger_view(ledger_rows(_report(False)["findings"]))
    assert view["explanation"] == EXPLANATION and not view["show_run"]
    row = view["rows"][0]
    assert (row["unit"], row["trials"], row["power_ceiling"], row["emphasis"]) == ("record", "4000", "5.3", True)
    assert view["rows"][2]["emphasis"] is False and view["rows"][2]["trust_model"] == "local"
    unknown = ledger_rows([{**_finding(), "claim": {**_finding()["claim"], "unit_level": None}}])[0]
    assert ledger_view([unknown])["rows"][0]["unit"] == "example"  # the unit's text when no level
    assert ledger_markdown([unknown])[0] == f"## {TITLE}" and ledger_markdown([unknown], level=1)[0] == f"# {TITLE}"


# -- the terminal table -----------------------------------------------------------------------------


def test_text_of_no_rows():
    assert ledger_text([]) == EMPTY_TEXT + "\n" == "No empirical-epsilon findings: the ledger is empty.\n"


def test_text_of_two_runs():
    findings = _report(False)["findings"]
    clean = copy.deepcopy(findings)
    clean[0]["privacy_audit"]["lint"] = []
    long_dir = "/tmp/a/very/long/path/of/the/sweep/runs/clean"
    rows = ledger_rows(clean, run=long_dir) + ledger_rows(findings, run="runs/bug")
    text = ledger_text(rows)
    lines = text.splitlines()
    assert text.endswith("\n") and "\x1b" not in text
    assert lines[0].split() == ["Run", "Finding", "Claim", "\u03b5", "\u03b4", "Unit", "\u03b5_emp", "Ceiling",
                                "Trials", "Verdict", "Lint"]
    assert set(lines[1]) <= {"-", " "}
    assert max(len(line) for line in lines) <= 120
    table = text.split("\n\n")[0]
    flat = " ".join(table.split())
    assert table.count("runs/bug") == 3 and table.count("\u2026") == 3  # the long dir keeps its tail
    assert "/runs/clean" in table and long_dir not in table
    assert table.count("INCONCLUSIVE") == 2 and table.count("VIOLATION") == 2
    assert "clean" in table and "2 errors," in table and "1 warning, 1 info" in table  # wrapped cell
    assert "assumes: Poisson sampling at q = 0.01; 100 steps composed" in flat
    assert "accountant pld" in flat and "estimator clopper-pearson-input" in flat
    # the lint once, only for the run that has it, errors first, then the explanation's words
    tail = text.split("Accounting lint findings")[1]
    assert tail.count("[error]") == 2 and tail.count("[warning]") == 1 and tail.count("[info]") == 1
    assert tail.index("[error]") < tail.index("[warning]") < tail.index("[info]")
    assert long_dir not in tail and "runs/bug" in tail and EVIL_MESSAGE in " ".join(tail.split())
    assert "too weak to say" in text


def test_text_without_runs_has_no_run_column():
    text = ledger_text(ledger_rows(_report(False)["findings"]))
    assert text.splitlines()[0].split()[0] == "Finding"


# -- the compliance report --------------------------------------------------------------------------


def _run(name: str, report: dict) -> dict:
    report["environment"]["git_revision"] = "0" * 40  # as the compliance tests' runs
    return {"dir": name, "report": validate_report(report), "artifacts": []}


def _compliance() -> dict:
    other = make_report()
    other["findings"][0] = _finding(lint=[])
    runs = [_run("runs/bug", _report(False)), _run("runs/clean", other)]
    return build_compliance(runs, policy=Policy(epsilon_emp_within_claim=True), policy_source="test",
                            command="test")


def test_compliance_json_has_the_rows_of_every_run():
    report = _compliance()
    ledger = report["ledger"]
    assert [r["run"] for r in ledger] == ["runs/bug"] * 3 + ["runs/clean"] * 3
    assert ledger[:3] == ledger_rows(_report(False)["findings"], run="runs/bug")
    assert ledger[3]["lint"] == [] and ledger[0]["lint_summary"]["error"] == 2
    assert list(report).index("defenses") < list(report).index("ledger") < list(report).index("findings")
    validate_compliance(json.loads(json.dumps(report)))
    bad = json.loads(json.dumps(report))
    bad["ledger"][4]["evidence"]["power_ceiling"] = "high"
    with pytest.raises(InvalidParameterError, match=r"'ledger\[4\]\.evidence\.power_ceiling'"):
        validate_compliance(bad)
    older = json.loads(json.dumps(report))
    del older["ledger"]
    validate_compliance(older)


def test_compliance_renderings_have_the_ledger_section():
    report = _compliance()
    assert TITLE in SECTIONS and SECTIONS.index("Defenses") < SECTIONS.index(TITLE)
    page = compliance_html(report)
    section = page[page.index(f'<h2 id="ledger">{TITLE}</h2>'):page.index('<h2 id="findings">')]
    assert "<code>runs/bug</code>" in section and "<code>runs/clean</code>" in section
    assert section.count('class="ledger-violation"') == 2 and section.count('class="ledger-inconclusive"') == 2
    assert section.count("100 steps accounted, 120 ran") == 1 and NASTY not in page
    md = compliance_markdown(report)
    md_section = md[md.index(f"## {TITLE}"):md.index("## Findings by severity")]
    assert md_section.count("| runs/bug |") == 3 and md_section.count("| runs/clean |") == 3
    assert "**VIOLATION**" in md_section and "runs/bug · dpsgd-ig / dp-sgd" in md_section
    assert "\\<script\\>" in md_section and "<script>" not in md
    pdf = _pdf_html(report, {})
    pdf_section = pdf[pdf.index(f"<h2>{TITLE}</h2>"):pdf.index("<h2>Findings by severity</h2>")]
    assert "runs/clean" in pdf_section and "INCONCLUSIVE" in pdf_section and NASTY not in pdf


def test_compliance_without_rows_says_so():
    runs = [_run("runs/plain", make_report())]
    report = build_compliance(runs, policy=Policy(max_psnr=99), policy_source="test", command="test")
    assert report["ledger"] == []
    for text in (compliance_html(report), compliance_markdown(report), _pdf_html(report, {})):
        assert TITLE in text and EMPTY_TEXT in text
