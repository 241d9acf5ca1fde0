"""From one membership attack's scores and the true membership to a finding's evidence:
the ROC metrics (:mod:`audit.metrics.membership`), the log-log ROC image and the one-run
empirical epsilon (Steinke, Nasr, Jagielski 2023, "Privacy auditing with one (1) training
run"; :func:`audit.privacy.estimators.best_one_run_epsilon`).

Who is exposed (:func:`exposure_evidence`): the per-group and per-record vulnerability of
:mod:`audit.membership.exposure` (Carlini et al. 2022; Aerni et al. 2024), with its plot
(:mod:`reports.exposure_plot`).

The built-in membership audit (:mod:`audit.membership.membership_audit`) and the
score-level audit (:mod:`audit.membership.score_audit`) both build their findings from
here, so the same scores give the same figures whichever way they were obtained.

Project choices: the one-run guess budgets are k in {10, 30, 100, 300} with 2k at most the
number of candidates (else one budget of half of them), tested under a union bound; delta
is the claim's, or 1e-5 without a DP claim; the ROC plot's finest FPR is 1e-3 or one
non-member, whichever is smaller; the exposure names the top 10 members by default and
plots at most 30 groups.
"""

from __future__ import annotations

from typing import Any

from audit.membership.exposure import DEFAULT_TOP_K, FPR, exposure
from audit.metrics.membership import MembershipMetrics, membership_metrics, metric_entries
from reports.exposure_plot import MAX_GROUPS, exposure_png
from reports.images import png_base64
from reports.roc_plot import roc_png

#: what each attack's score is, per record (LiRA online's is the likelihood ratio itself)
SCORE_MEANINGS = {
    "loss": "-loss of the target on the record (LOSS)",
    "lira": "log likelihood ratio of the record's IN and OUT Gaussians (LiRA online)",
    "lira-offline": "log Phi of the record's z-score under its OUT Gaussian (LiRA offline)",
    "rmia": "share of population samples the record dominates (RMIA)",
    "update-mia": "the update-based attack's score",
}

#: delta of the one-run bound when no DP claim supplies one
DEFAULT_DELTA = 1e-5


def one_run_evidence(scores, truth, *, delta: float, epsilon_claim: float | None,
                     comparison: str) -> dict[str, Any]:
    """One-run lower bound from membership scores, beside the claim's epsilon (if any)."""
    from audit.privacy.estimators import best_one_run_epsilon

    m = len(scores)
    ks = [k for k in (10, 30, 100, 300) if 2 * k <= m] or [max(1, m // 2)]
    est = best_one_run_epsilon(scores, truth, delta=delta, ks=ks)
    verdict = None
    if epsilon_claim is not None:
        verdict = "VIOLATION" if est.epsilon > epsilon_claim else "PASS"
    return {"estimator": "one-run", "epsilon_emp": est.epsilon, "delta": delta,
            "confidence": est.confidence, "epsilon_claim_example_level": epsilon_claim,
            "comparison": comparison, "verdict": verdict, "details": est.to_dict()}


def epsilon_metric(eps: dict[str, Any]) -> dict[str, Any]:
    """The report metric entry of :func:`one_run_evidence`'s result."""
    claim = eps["epsilon_claim_example_level"]
    return {
        "name": "epsilon_emp (one-run)", "unit": "", "direction": "higher-leaks-more",
        "mean": eps["epsilon_emp"], "worst": eps["epsilon_emp"], "per_item": [],
        "baseline": None if claim is None else {
            "description": "claimed epsilon for one example (replace-one client data)",
            "mean": claim, "worst": claim},
        "note": f"lower bound at {eps['confidence']:.0%} confidence; {eps['comparison']}"
                + (f"; {eps['verdict']}" if eps["verdict"] else ""),
    }


def roc_image(curves: dict, label: str, mm: MembershipMetrics, *, name: str,
              title: str) -> dict[str, str]:
    """The finding's ``images`` entry: the log-log ROC of ``curves`` after adding this one.

    ``curves`` (label -> (fpr, tpr)) holds earlier attacks' curves; this attack's is added
    under ``label``, so one dict passed to successive calls draws each plot with the
    curves of the attacks before it.
    """
    curves[label] = (mm.roc_fpr, mm.roc_tpr)
    png = roc_png(curves, title=title, min_fpr=min(1e-3, 1.0 / mm.non_members))
    return {"png_base64": png_base64(png),
            "caption": f"Log-log ROC of {name} ({mm.members} members, {mm.non_members} "
                       "non-members); dashed: chance."}


def score_evidence(scores, truth, *, seed: int, bootstrap: int, eps: dict | None = None):
    """``(metrics, report metric entries)`` of ``scores``; ``eps`` from :func:`one_run_evidence`
    (``None`` for scores that are not a one-run audit) adds its entry."""
    mm = membership_metrics(scores, truth, bootstrap=bootstrap, seed=seed)
    entries = metric_entries(mm)
    if eps is not None:
        entries.append(epsilon_metric(eps))
    return mm, entries


def score_meaning(name: str, params: dict | None = None) -> str:
    """What attack ``name``'s score (with ``params``) says about one record."""
    offline = (params or {}).get("variant") == "offline"
    key = "lira-offline" if name == "lira" and offline else name
    return SCORE_MEANINGS.get(key, f"the {name} attack's score")


def exposure_evidence(scores, truth, *, record_ids, groups, group_source: str, ids_from: str,
                      score: str, title: str, top_k: int = DEFAULT_TOP_K) -> dict[str, Any]:
    """The finding's ``exposure`` entry: groups, top-k exposed member ids, and the plot.

    ``ids_from`` says where the record ids come from, ``score`` what the score means.
    """
    entry = exposure(scores, truth, record_ids, groups, group_source=group_source,
                     top_k=top_k).to_dict()
    entry.update(record_ids=ids_from, score=score)
    drawn = [g for g in entry["groups"] if g["tpr"] is not None or g["global_tpr"] is not None]
    entry["image"] = None
    if drawn:
        png = exposure_png(entry["groups"], fpr=FPR, title=title)
        more = f" (the {MAX_GROUPS} most exposed drawn)" if len(drawn) > MAX_GROUPS else ""
        entry["image"] = {
            "png_base64": png_base64(png),
            "caption": f"TPR at {FPR:.0%} FPR per group, most exposed on top: dots at the "
                       f"group's own threshold with their {entry['confidence']:.0%} "
                       "Clopper-Pearson interval (hollow, marked *: too few non-members, at "
                       f"a coarser FPR), crosses at the global threshold; {len(drawn)} "
                       f"groups{more}."}
    return entry
