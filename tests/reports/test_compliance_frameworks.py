"""Tests of the framework mappings of compliance reports (audit.compliance.framework_file,
audit.compliance.framework_eval): every built-in file loads and maps only what fedaudit can
evidence; a malformed file is one error naming the file and the key; a clause is SATISFIED,
NOT SATISFIED or NOT EVIDENCED from hand-built reports (valid under reports.schema) and the
policy's rules; OUT OF SCOPE clauses are never satisfied; a policy selects frameworks, by id
or by the path of the user's own file; every rendering has a section per selected framework."""

from __future__ import annotations

import copy
import json

import pytest
from sample_report import make_report

from audit.cli.main import main
from audit.compliance.compliance_report import build_compliance
from audit.compliance.framework_eval import (
    NOT_EVIDENCED,
    NOT_SATISFIED,
    OUT_OF_SCOPE,
    SATISFIED,
    evaluate_framework,
)
from audit.compliance.framework_file import BUILTIN, BUILTIN_DIR, builtin_framework, load_framework, resolve_frameworks
from audit.compliance.policy import RULE_KEYS, Policy, load_policy
from audit.compliance.results import FAIL, NOT_EVALUATED, PASS
from audit.compliance.rules import evaluate
from audit.core.errors import InvalidParameterError
from reports.compliance_render import compliance_html, compliance_markdown
from reports.compliance_schema import validate_compliance
from reports.pdf import pdf_text
from reports.schema import validate_report

# -- hand-built reports -----------------------------------------------------------------------------


def _metric(name, worst, direction="higher-leaks-more"):
    return {"name": name, "unit": "", "direction": direction, "mean": worst, "worst": worst,
            "per_item": [worst], "baseline": None, "note": None if worst is not None else "not computed"}


def _finding(fid, family, attack, *metrics, has_dp=False):
    """The sample's DP-SGD finding (has_dp) or its no-claim finding, renamed, with this attack."""
    f = copy.deepcopy(make_report()["findings"][0 if has_dp else 1])
    f.update(id=fid, images=None, metrics=list(metrics))
    f["attack"] = {"name": attack, "family": family, "params": {}}
    return f


def membership(fid="m", tpr=0.02):
    return _finding(fid, "membership-inference", "lira", _metric("ROC AUC", 0.6), _metric("TPR @ 1.0% FPR", tpr))


def reconstruction(fid="ig", psnr=12.0, ssim=0.1):
    return _finding(fid, "gradient-inversion", "inverting-gradients", _metric("psnr", psnr), _metric("ssim", ssim),
                    has_dp=True)


def extraction(fid="qsn", gap=0.1):
    return _finding(fid, "model-extraction", "proxy-extraction", _metric("gap_closed", gap),
                    _metric("gap_closed_by_coalition", 0.99))


def labels(fid="llg"):
    return _finding(fid, "label-recovery", "llg", _metric("label_accuracy", 1.0))


def report(*findings) -> dict:
    r = make_report()
    r["findings"] = list(findings)
    r["environment"]["git_revision"] = "0" * 40
    return validate_report(r)


def clause(fid: str, cid: str, policy: Policy, *reports) -> dict:
    """Clause ``cid`` of built-in framework ``fid`` judged against ``reports`` and ``policy``."""
    section = evaluate_framework(builtin_framework(fid), evaluate(policy, list(reports)), list(reports))
    json.dumps(section)
    (out,) = [c for c in section["clauses"] if c["id"] == cid]
    return out


POLICY = Policy(max_psnr=20, max_ssim=0.5, max_tpr_at_1pct_fpr=0.05, max_extraction_gap_closed=0.5,
                epsilon_emp_within_claim=True)


def compliance(policy: Policy, *reports) -> dict:
    runs = [{"dir": f"run{i}", "report": r, "artifacts": []} for i, r in enumerate(reports)]
    return build_compliance(runs, policy=policy, policy_source="test", command="test")


# -- the built-in files -----------------------------------------------------------------------------


def test_every_builtin_file_loads():
    assert sorted(p.stem for p in BUILTIN_DIR.glob("*.toml")) == sorted(BUILTIN)
    for fid in BUILTIN:
        fw = builtin_framework(fid)
        assert fw.id == fid and fw.builtin and fw.name and fw.version and fw.date
        assert fw.source.url.startswith("https://") and 2023 <= fw.source.year <= 2025
        for c in fw.clauses:
            assert c.paraphrase and c.title
            assert (c.out_of_scope is None) == (c.kind != "out_of_scope")
            assert c.kind == "out_of_scope" or c.kind == "all_of" or c.not_evidenced
            assert set(c.rules) <= set(RULE_KEYS)


def test_builtin_mappings_claim_only_what_fedaudit_audits():
    kinds = lambda fid: {c.id: c.kind for c in builtin_framework(fid).clauses}  # noqa: E731
    owasp = kinds("owasp-ml-top-10")
    assert list(owasp) == [f"ML{i:02d}" for i in range(1, 11)]
    assert [k for k, v in owasp.items() if v == "evidence"] == ["ML03", "ML04", "ML05"]
    ai_act = kinds("eu-ai-act-art-15")
    assert [k for k, v in ai_act.items() if v == "evidence"] == ["15(5)-confidentiality"]
    assert {"15(5)-data-poisoning", "15(5)-model-poisoning", "15(5)-adversarial-examples"} <= set(ai_act)
    edpb = kinds("edpb-opinion-28-2024")
    assert edpb["anonymous-model"] == "all_of" and edpb["anonymity-attribute-inference"] == "evidence"
    assert not [c for c in builtin_framework("edpb-opinion-28-2024").clauses
                if c.id == "anonymity-attribute-inference"][0].rules  # no rule judges attribute inference
    ai100 = kinds("nist-ai-100-2")
    assert {"privacy.data-reconstruction", "privacy.membership-inference", "privacy.property-inference",
            "privacy.model-extraction"} <= {k for k, v in ai100.items() if v == "evidence"}
    assert ai100["evasion"] == ai100["poisoning"] == "out_of_scope"


def test_nist_questions_section_is_read_from_its_framework_file():
    report_ = compliance(POLICY, report(reconstruction()))
    nist = builtin_framework("nist-sp-800-226")
    assert [q["id"] for q in report_["nist_sp_800_226"]] == [
        "unit-of-privacy", "epsilon-delta", "trust-model", "empirical-evidence", "floating-point", "randomness",
        "side-channels"] == [c.id for c in nist.clauses]
    assert [q["question"] for q in report_["nist_sp_800_226"]] == [c.title for c in nist.clauses]
    hazards = {q["id"]: q for q in report_["nist_sp_800_226"][4:]}
    assert hazards["floating-point"]["answer"].startswith("No evidence: the audited mechanisms draw Gaussian noise")
    assert all(q["answer"] == c.out_of_scope and not q["answered"] for q, c in zip(hazards.values(), nist.clauses[4:]))


# -- malformed files --------------------------------------------------------------------------------

GOOD_CLAUSE = ('[[clauses]]\nid = "c1"\ntitle = "t"\nparaphrase = "p"\nrules = ["max_psnr"]\n'
               'not_evidenced = "no reconstruction audit"\n')
HEAD = 'name = "mine"\nversion = "1"\ndate = "2025"\n[source]\ntitle = "T"\npublisher = "P"\nyear = 2025\nurl = "u"\n'


@pytest.mark.parametrize("text, key", [
    ('colour = "red"\n' + HEAD + GOOD_CLAUSE, "colour"),
    (HEAD + 'colour = "red"\n' + GOOD_CLAUSE, "source.colour"),
    (HEAD.replace('version = "1"\n', "") + GOOD_CLAUSE, "version"),
    (HEAD.replace("year = 2025", 'year = "2025"') + GOOD_CLAUSE, "source.year"),
    (HEAD.replace('url = "u"\n', "") + GOOD_CLAUSE, "source.url"),
    (HEAD, "clauses"),
    (HEAD + GOOD_CLAUSE.replace('paraphrase = "p"\n', ""), "clauses[0].paraphrase"),
    (HEAD + GOOD_CLAUSE.replace('"max_psnr"', '"max_psnrr"'), "clauses[0].rules"),
    (HEAD + GOOD_CLAUSE + 'findings = [{familly = ["x"]}]\n', "clauses[0].findings[0].familly"),
    (HEAD + GOOD_CLAUSE + 'findings = [{family = "membership-inference"}]\n', "clauses[0].findings[0].family"),
    (HEAD + GOOD_CLAUSE.replace('not_evidenced = "no reconstruction audit"\n', ""), "clauses[0].not_evidenced"),
    (HEAD + GOOD_CLAUSE + 'out_of_scope = "no"\n', "clauses[0]"),
    (HEAD + GOOD_CLAUSE + GOOD_CLAUSE, "clauses[1].id"),
    (HEAD + GOOD_CLAUSE + '[[clauses]]\nid = "all"\ntitle = "t"\nparaphrase = "p"\nall_of = ["c9"]\n',
     "clauses[1].all_of"),
    (HEAD + GOOD_CLAUSE + '[[clauses]]\nid = "c2"\ntitle = "t"\nparaphrase = "p"\n', "clauses[1]"),
])
def test_malformed_file_names_the_file_and_key(tmp_path, text, key):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InvalidParameterError) as info:
        load_framework(path)
    msg = str(info.value)
    assert str(path) in msg and repr(key) in msg and "\n" not in msg, msg


def test_unparsable_or_missing_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("name = = 1\n")
    with pytest.raises(InvalidParameterError, match="not valid") as info:
        load_framework(path)
    assert str(path) in str(info.value)
    with pytest.raises(InvalidParameterError, match="does not exist"):
        load_framework(tmp_path / "none.toml")


# -- judging clauses --------------------------------------------------------------------------------


def test_membership_clause_satisfied_not_satisfied_not_evidenced():
    c = clause("owasp-ml-top-10", "ML04", POLICY, report(membership("m1", tpr=0.02), reconstruction()))
    assert c["status"] == SATISFIED and "max_tpr_at_1pct_fpr" in c["why"]
    (e,) = c["evidence"]
    assert (e["finding"], e["rule"], e["result"], e["values"]["worst"]) == ("m1", "max_tpr_at_1pct_fpr", "pass", 0.02)
    c = clause("owasp-ml-top-10", "ML04", POLICY, report(membership("m1", tpr=0.02), membership("m2", tpr=0.44)))
    assert c["status"] == NOT_SATISFIED and "m2" in c["why"] and "0.44" in c["why"] and "m1 (" not in c["why"]
    c = clause("owasp-ml-top-10", "ML04", POLICY, report(reconstruction()))
    assert c["status"] == NOT_EVIDENCED and c["why"].startswith("No membership audit was run") and not c["evidence"]


def test_a_finding_no_rule_judges_is_not_evidenced_not_satisfied():
    # the policy does not set the rule that reads membership TPR
    c = clause("owasp-ml-top-10", "ML04", Policy(max_psnr=20), report(membership("m1", tpr=0.9)))
    assert c["status"] == NOT_EVIDENCED and "m1" in c["why"] and "max_tpr_at_1pct_fpr" in c["why"]
    assert c["evidence"][0]["result"] == "not judged"
    # a passing image reconstruction does not hide a label recovery no rule judges
    c = clause("owasp-ml-top-10", "ML03", POLICY, report(reconstruction("ig"), labels("llg")))
    assert c["status"] == NOT_EVIDENCED and "llg (label-recovery, llg)" in c["why"] and "1 of 2" in c["why"]
    assert clause("owasp-ml-top-10", "ML03", POLICY, report(reconstruction("ig")))["status"] == SATISFIED


def test_reconstruction_and_extraction_clauses():
    c = clause("nist-ai-100-2", "privacy.data-reconstruction", POLICY, report(reconstruction("ig", psnr=25.0)))
    assert c["status"] == NOT_SATISFIED and "ig (max_psnr: psnr worst 25" in c["why"]
    assert [e["result"] for e in c["evidence"]] == ["fail", "pass"]  # psnr fails, ssim passes
    assert clause("owasp-ml-top-10", "ML05", POLICY, report(extraction(gap=0.1)))["status"] == SATISFIED
    c = clause("owasp-ml-top-10", "ML05", POLICY, report(extraction("q", gap=0.9)))
    assert c["status"] == NOT_SATISFIED and "q (max_extraction_gap_closed" in c["why"]
    assert clause("owasp-ml-top-10", "ML05", POLICY, report(extraction(gap=None)))["status"] == NOT_EVIDENCED
    assert clause("owasp-ml-top-10", "ML05", POLICY, report(membership()))["status"] == NOT_EVIDENCED


def test_claim_clauses_without_finding_selectors():
    c = clause("nist-sp-800-226", "epsilon-delta", Policy(max_epsilon_claim=10), report(reconstruction("ig")))
    assert c["status"] == SATISFIED and c["evidence"][0]["finding"] == "ig"  # the sample's claim: 7.93
    c = clause("nist-sp-800-226", "epsilon-delta", Policy(max_epsilon_claim=5), report(reconstruction("ig")))
    assert c["status"] == NOT_SATISFIED and "7.93" in c["why"]
    c = clause("nist-sp-800-226", "epsilon-delta", Policy(max_psnr=20), report(reconstruction("ig")))
    assert c["status"] == NOT_EVIDENCED and "does not set max_epsilon_claim" in c["why"]
    c = clause("nist-sp-800-226", "trust-model", Policy(required_threat_models=("aggregate-observer",)),
               report(reconstruction("ig")))
    assert c["status"] == NOT_SATISFIED and "aggregate-observer" in c["why"]


def test_out_of_scope_clauses_are_never_satisfied():
    """Evidence that passes every rule fedaudit has still leaves them OUT OF SCOPE, and the
    EDPB's anonymity needs attribute-inference evidence that fedaudit cannot bring."""
    good = report(reconstruction("ig"), membership("m"), extraction("q"))
    lenient = Policy(max_psnr=100, max_ssim=1, max_tpr_at_1pct_fpr=1, max_extraction_gap_closed=1,
                     max_epsilon_claim=100)
    satisfied = 0
    for fid in BUILTIN:
        fw = builtin_framework(fid)
        section = evaluate_framework(fw, evaluate(lenient, [good]), [good])
        for c, result in zip(fw.clauses, section["clauses"]):
            if c.kind == "out_of_scope":
                assert result["status"] == OUT_OF_SCOPE and result["why"] == c.out_of_scope and not result["evidence"]
            else:
                assert result["status"] != OUT_OF_SCOPE
            satisfied += result["status"] == SATISFIED
        assert sum(section["counts"].values()) == len(fw.clauses)
    assert satisfied >= 8  # ML03-05, the AI 100-2 attacks, EDPB (a) and (b), the AI Act's confidentiality...
    edpb = {c["id"]: c for c in compliance(lenient, good)["frameworks"][1]["clauses"]}
    assert edpb["anonymity-extraction"]["status"] == edpb["anonymity-queries"]["status"] == SATISFIED
    assert edpb["anonymity-attribute-inference"]["status"] == NOT_EVIDENCED
    assert edpb["anonymous-model"]["status"] == NOT_EVIDENCED


def test_user_framework_all_of(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(HEAD + GOOD_CLAUSE.replace('"max_psnr"', '"max_psnr", "max_ssim"')
                    + 'findings = [{family = ["gradient-inversion"], threat_model = ["honest-but-curious-server"]}]\n'
                    + '[[clauses]]\nid = "c2"\ntitle = "t"\nparaphrase = "p"\nrules = ["max_tpr_at_1pct_fpr"]\n'
                    'findings = [{attack = ["lira"]}]\nnot_evidenced = "no lira"\n'
                    '[[clauses]]\nid = "both"\ntitle = "t"\nparaphrase = "p"\nall_of = ["c1", "c2"]\n')
    fw = load_framework(path)
    assert fw.id == "mine" and not fw.builtin and len(fw.sha256) == 64

    def statuses(*findings):
        r = report(*findings)
        return [c["status"] for c in evaluate_framework(fw, evaluate(POLICY, [r]), [r])["clauses"]]

    assert statuses(reconstruction(), membership()) == [SATISFIED, SATISFIED, SATISFIED]
    assert statuses(reconstruction(), membership(tpr=0.3)) == [SATISFIED, NOT_SATISFIED, NOT_SATISFIED]
    assert statuses(reconstruction()) == [SATISFIED, NOT_EVIDENCED, NOT_EVIDENCED]


# -- the policy's frameworks key, the report, its renderings ----------------------------------------


def test_new_rule_max_extraction_gap_closed():
    policy = Policy(max_extraction_gap_closed=0.5)
    status = lambda *fs: evaluate(policy, [report(*fs)])[0].status  # noqa: E731
    assert status(extraction(gap=0.4)) == PASS
    assert status(extraction(gap=0.6)) == FAIL  # the curve gap_closed_by_coalition (0.99) is not read
    assert status(extraction(gap=None)) == status(membership()) == NOT_EVALUATED
    with pytest.raises(InvalidParameterError, match="max_extraction_gap_closed"):
        Policy(max_extraction_gap_closed=1.5)


def test_policy_selects_frameworks_by_id_and_path(tmp_path):
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "mine.toml").write_text(HEAD + GOOD_CLAUSE)
    policy_file = tmp_path / "ci" / "policy.toml"
    policy_file.write_text('max_psnr = 20\nframeworks = ["owasp-ml-top-10", "./mine.toml"]\n')
    policy = load_policy(policy_file)
    assert policy.frameworks == ("owasp-ml-top-10", str(tmp_path / "ci" / "mine.toml"))  # next to the policy
    assert Policy.from_dict({k: v for k, v in policy.to_dict().items() if k != "source"}) == policy
    out = compliance(policy, report(reconstruction("ig")))
    assert [f["id"] for f in out["frameworks"]] == ["owasp-ml-top-10", "mine"]
    assert out["frameworks"][1]["clauses"][0]["status"] == SATISFIED
    md, html = compliance_markdown(out), compliance_html(out)
    for text in (md, html):
        assert "OWASP Machine Learning Security Top 10" in text and "mine (1)" in text
        assert "EU AI Act" not in text and "EDPB" not in text
    assert "| `ML04` Membership Inference Attack | **NOT EVIDENCED** |" in md
    assert 'class="fw-OUT-OF-SCOPE">OUT OF SCOPE' in html
    assert [f["id"] for f in compliance(Policy(max_psnr=20), report(reconstruction()))["frameworks"]] == list(BUILTIN)
    none = compliance(Policy(max_psnr=20, frameworks=[]), report(reconstruction()))
    assert none["frameworks"] == [] and "No framework mapping was selected" in compliance_markdown(none)


@pytest.mark.parametrize("line, match", [
    ('frameworks = "owasp-ml-top-10"', "'frameworks'"),
    ('frameworks = ["owasp", "owasp"]', "'frameworks'"),
])
def test_bad_frameworks_value_names_the_key_and_the_policy_file(tmp_path, line, match):
    p = tmp_path / "p.toml"
    p.write_text(f"max_psnr = 20\n{line}\n")
    with pytest.raises(InvalidParameterError, match=match) as info:
        load_policy(p)
    assert str(p) in str(info.value)


def test_unknown_or_duplicate_framework_is_an_error(tmp_path):
    with pytest.raises(InvalidParameterError, match=r"'frameworks'.*owasp-ml-top-10.*'owasp-top-10'"):
        resolve_frameworks(["owasp-top-10"], owner="policy file 'p.toml'")
    (tmp_path / "owasp-ml-top-10.toml").write_text(HEAD + GOOD_CLAUSE)
    with pytest.raises(InvalidParameterError, match="distinct ids"):
        resolve_frameworks(["owasp-ml-top-10", str(tmp_path / "owasp-ml-top-10.toml")], owner="p")


def test_the_frameworks_section_follows_the_schema():
    out = compliance(POLICY, report(reconstruction(), membership(), labels()))
    validate_compliance(out)
    bad = copy.deepcopy(out)
    bad["frameworks"][0]["clauses"][0]["status"] = "PASS"
    with pytest.raises(InvalidParameterError, match=r"frameworks\[0\]\.clauses\[0\]\.status"):
        validate_compliance(bad)
    old = copy.deepcopy(out)
    del old["frameworks"]  # written before frameworks existed: still valid, renders
    validate_compliance(old)
    assert "## Frameworks" in compliance_markdown(old)


def test_cli_report_with_a_user_framework(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "report.json").write_text(json.dumps(report(reconstruction("ig"), membership("m", tpr=0.3))))
    (tmp_path / "mine.toml").write_text(HEAD + GOOD_CLAUSE)
    policy = tmp_path / "policy.toml"
    policy.write_text('max_psnr = 20\nmax_tpr_at_1pct_fpr = 0.05\nframeworks = ["mine.toml", "nist-ai-100-2"]\n')
    for fmt in ("md", "pdf", "json"):
        target = tmp_path / f"c.{fmt}"
        with pytest.raises(SystemExit) as exc:
            main(["report", str(run), "--policy", str(policy), "--format", fmt, "--out", str(target)])
        assert exc.value.code in (0, None), capsys.readouterr().err
    text = pdf_text(tmp_path / "c.pdf")
    assert "Frameworks" in text and "NIST AI 100-2 E2025" in text and "mine (1)" in text
    md = (tmp_path / "c.md").read_text()
    assert "| `privacy.membership-inference` Privacy attack: membership inference | **NOT SATISFIED** |" in md
    data = json.loads((tmp_path / "c.json").read_text())
    assert [f["id"] for f in data["frameworks"]] == ["mine", "nist-ai-100-2"]
    (tmp_path / "mine.toml").write_text(HEAD + GOOD_CLAUSE.replace("rules", "rulez"))
    with pytest.raises(SystemExit) as exc:
        main(["check", str(run), "--policy", str(policy)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "mine.toml" in err and "'clauses[0].rulez'" in err
