"""Who is exposed in the findings: the built-in membership audit's finding carries the
exposure (per class, ids = dataset indices), the score-level audit of the same recorded
values gives the same exposure, and both report validators accept it and reject a
corrupted one, naming the key path."""

from __future__ import annotations

import copy

import pytest
import torch

from audit.core.attack import ATTACKS
from audit.core.config import AuditConfig
from audit.core.errors import InvalidParameterError
from audit.membership.membership_audit import (TrainingBackend, membership_finding,
                                               prepare_membership, recorded_scores)
from audit.membership.score_audit import audit_scores
from audit.membership.score_file import read_scores, write_scores
from reports.assembly import assemble_report
from reports.audit_schema import validate_audit_json_schema
from reports.html import render_html
from reports.markdown import render_markdown
from reports.schema import validate_report


@pytest.fixture(scope="module")
def built_in(tmp_path_factory):
    cache = tmp_path_factory.mktemp("shadow-cache")
    cfg = AuditConfig(defense="fedavg", defense_params={"local_steps": 3, "lr": 0.3}, attack="loss",
                      dataset="purchase-synthetic", model="mlp", model_params={"hidden": 32},
                      num_targets=4, rounds=2, seed=3, num_candidates=400, num_population=100)
    run = prepare_membership(cfg, device=torch.device("cpu"),
                             backend=TrainingBackend(backend="serial", cache_dir=str(cache)))
    finding = membership_finding(run, ATTACKS.create("loss"), bootstrap=20)
    return run, finding


def _report(findings):
    return assemble_report(findings, title="t", command="c", seed=0, notes=[], runtime_s=1.0,
                           environment={"fedaudit": "0", "python": "3", "platform": "p",
                                        "device": "cpu", "threads": 1, "packages": {}})


def test_built_in_finding_carries_the_exposure_per_class(built_in):
    run, finding = built_in
    x = finding["exposure"]
    assert x["group_source"] == "class"
    classes = sorted({f"class {int(c)}" for c in run.game.dataset.labels[run.game.candidates]})
    assert sorted(g["name"] for g in x["groups"]) == classes
    assert sum(g["members"] for g in x["groups"]) == int(run.game.target_in.sum())
    assert sum(g["non_members"] for g in x["groups"]) == int((~run.game.target_in).sum())
    members = {str(int(i)) for i in run.game.candidates[run.game.target_in]}
    assert x["top_exposed"] and {t["record_id"] for t in x["top_exposed"]} <= members
    # the overall TPR is the finding's own TPR at 1% FPR
    assert x["overall"]["tpr"] == pytest.approx(finding["membership"]["metrics"]["tpr_at_fpr"]["0.01"])
    assert x["image"]["png_base64"] and "Clopper-Pearson" in x["image"]["caption"]
    report = _report([finding])
    validate_report(copy.deepcopy(report))
    validate_audit_json_schema(report)


def test_score_level_audit_of_the_recorded_values_gives_the_same_exposure(built_in, tmp_path):
    run, finding = built_in
    path = write_scores(tmp_path / "recorded.csv", recorded_scores(run, 2))
    assert read_scores(path).record_ids.tolist() == [str(i) for i in run.game.candidates]
    (level,) = audit_scores(path, attacks=["loss"], bootstrap=20)

    def figures(x):
        return {k: x[k] for k in ("group_source", "overall", "groups", "top_exposed")}

    assert figures(level["exposure"]) == figures(finding["exposure"])


def test_exposure_renders_in_html_and_markdown(built_in):
    finding = copy.deepcopy(built_in[1])
    finding["exposure"]["groups"][0]["name"] = "<script>alert('g')</script>"
    finding["exposure"]["top_exposed"][0]["record_id"] = "<img src=x onerror=alert(1)>"
    report = _report([finding])
    html = render_html(report)
    assert "Who is exposed" in html and html.count("data:image/png;base64,") == 2
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#39;g&#39;)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    md = render_markdown(report)
    assert "### Who is exposed (per class)" in md
    assert "\\<script\\>" in md and "<script>" not in md
    assert "| Rank | Record id | Group | Score | p-value |" in md


@pytest.mark.parametrize("mutate, path", [
    (lambda x: x["groups"][0].update(tpr=1.5), "exposure.groups[0].tpr"),
    (lambda x: x["groups"][0].pop("global_tpr"), "exposure.groups[0]"),
    (lambda x: x["top_exposed"][0].update(record_id=17), "exposure.top_exposed[0].record_id"),
    (lambda x: x["top_exposed"][0].update(p_value=0), None),
    (lambda x: x.update(group_source="classes"), "exposure.group_source"),
    (lambda x: x.update(top_k=0), "exposure.top_k"),
    (lambda x: x["overall"].update(interval=[0.1]), "exposure.overall.interval"),
    (lambda x: x.update(image={"png_base64": "not base64!", "caption": ""}), "exposure.image.png_base64"),
    (lambda x: x.pop("groups"), "exposure"),
])
def test_a_corrupted_exposure_is_rejected_by_both_validators(built_in, mutate, path):
    report = _report([copy.deepcopy(built_in[1])])
    x = report["findings"][0]["exposure"]
    if path is None:  # p_value 0 is a valid rate; a negative one is not
        mutate(x)
        validate_report(copy.deepcopy(report))
        validate_audit_json_schema(report)
        x["top_exposed"][0]["p_value"] = -0.1
        path = "exposure.top_exposed[0].p_value"
    else:
        mutate(x)
    for validate in (validate_report, validate_audit_json_schema):
        with pytest.raises(InvalidParameterError) as exc:
            validate(copy.deepcopy(report))
        assert f"findings[0].{path}" in str(exc.value), str(exc.value)


def test_null_exposure_is_accepted_by_both(built_in):
    report = _report([dict(copy.deepcopy(built_in[1]), exposure=None)])
    validate_report(copy.deepcopy(report))
    validate_audit_json_schema(report)
    assert "Who is exposed" not in render_html(report)


def test_groups_given_to_the_score_level_audit(built_in):
    run, _ = built_in
    recorded = recorded_scores(run, 2)
    ids = recorded.record_ids.tolist()
    mapping = {r: ("odd" if int(r) % 2 else "even") for r in ids}
    (f,) = audit_scores(recorded, attacks=["loss"], bootstrap=0, groups=mapping, top_k=3)
    x = f["exposure"]
    assert x["group_source"] == "user" and sorted(g["name"] for g in x["groups"]) == ["even", "odd"]
    assert len(x["top_exposed"]) == 3
    assert all(t["group"] == mapping[t["record_id"]] for t in x["top_exposed"])
    with pytest.raises(InvalidParameterError, match=r"no group for the record id '" + ids[0]):
        audit_scores(recorded, attacks=["loss"], groups={r: "g" for r in ids[1:]})
    with pytest.raises(InvalidParameterError, match="'top_k'"):
        audit_scores(recorded, attacks=["loss"], top_k=0)


def test_update_based_finding_names_the_scored_candidates_only(built_in):
    run, _ = built_in
    f = membership_finding(run, ATTACKS.create("update-mia", client=1), bootstrap=0)
    x = f["exposure"]
    client = {str(int(i)) for i in run.client_indices[1]}
    outside = {str(int(i)) for i in run.game.candidates[~run.game.target_in]}
    assert sum(g["members"] for g in x["groups"]) == len(client)
    assert sum(g["non_members"] for g in x["groups"]) == len(outside)
    assert {t["record_id"] for t in x["top_exposed"]} <= client
    validate_audit_json_schema(_report([f]))
