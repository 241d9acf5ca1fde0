"""Verdicts on papers' claims about a privacy-utility frontier (``docs/frontier.md``): each
claim is data (:class:`FrontierClaim`), the built-in ones are registered in
:data:`BUILTIN_CLAIMS`, and :func:`judge` turns a claim and the curves of
:func:`reports.frontier.build_frontier` into ``holds``, ``fails`` or ``not judgeable: ...``.

The claims paraphrase what each paper claims (``/work/shared/specs/defenses.md``; the
numbers in them are this project's reading of words such as "close to", never a figure
attributed to a paper, and each says so in ``note``):

* FedRE (arXiv 2505.04889): utility (IoU) stays close to the undefended model's, and the
  reconstruction inside the privacy-sensitive regions is worse than under uniform LDP at
  the same epsilon;
* DEeR (arXiv 2410.12926): better utility than FedIT (``fedit-lora``) and FFA-LoRA at the
  same epsilon;
* DR-Encoder (arXiv 2412.17053): accuracy competitive with undefended federated
  training under compression;
* dp-fedavg: not a paper figure but what the DP definition implies: the empirical epsilon
  (a lower bound) does not exceed the claimed epsilon.

FedQSN claims no epsilon (its protection is a worse proxy model), so it has no point on an
epsilon axis and no frontier claim.

The rule (per claimed-epsilon point, with the 95% Student-t intervals of the point means):

* ``ratio-at-least`` (metric / undefended metric >= ``threshold``): the ratio's interval is
  ``[lo_d / hi_b, hi_d / lo_b]`` from the defended interval ``[lo_d, hi_d]`` and the
  undefended one ``[lo_b, hi_b]`` (interval arithmetic, conservative; needs ``lo_b > 0``);
* ``below-reference`` / ``above-reference`` (metric below / above each reference defense's
  at the same epsilon): the difference's interval is ``[lo_a - hi_r, hi_a - lo_r]``;
* ``at-most-epsilon`` (metric <= the claimed epsilon): the metric's own interval.

A point *supports* the claim when its whole interval lies on the claimed side, and
*contradicts* it when its whole interval lies on the other side: a ratio supports when
``lo >= threshold`` and contradicts when ``hi < threshold``; a difference supports when it
is wholly above 0 (above-reference; below 0 for below-reference) and contradicts when it is
wholly at or below 0 (at or above 0); an empirical epsilon supports when ``hi <= epsilon``
and contradicts when ``lo > epsilon``. The verdict is ``fails`` when any covered point contradicts the claim
(the claim is stated for every epsilon it covers), ``holds`` when every covered point
supports it, otherwise ``not judgeable: intervals overlap``.

Before that, in this order: ``not judgeable: N ε points / M seeds, need ≥ 5 / ≥ 3`` (N
finite epsilon points the claim covers, M the fewest seeds with a value at any point it
uses); a missing metric, undefended baseline or reference defense; ``not judgeable:
undefended utility below X`` when the claim states a floor ``min_baseline_utility`` and the
undefended mean utility is below it (a model that does not learn cannot show a utility
cost, nor a privacy gain worth having).

A claim's metric is the curve's metric of that name, else the first (by name) that begins
with it (``epsilon_emp`` finds ``epsilon_emp (one-run)``); ``"utility"`` is the curve's
primary utility metric. An empirical epsilon is compared with the point's claimed epsilon,
or with the claimed epsilon its metric names (``epsilon_claims`` of the point: a membership
audit's bound is for one example, replace-one, and the claim re-accounted for that unit).

Project choices: per-point 95% intervals with no correction for the several points (a
``holds`` needs every point, which is stricter than one point; a ``fails`` needs one, each
at 2.5% one-sided error); a reference point matches when the two claimed epsilons agree
within :data:`EPSILON_RTOL` (an accountant calibrating noise to a target lands within it);
a claim covers the finite points at or above its ``min_epsilon`` (all when None).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

MIN_EPSILON_POINTS = 5
MIN_SEEDS = 3
#: relative tolerance within which two claimed epsilons are the same point
EPSILON_RTOL = 0.01
KINDS = ("ratio-at-least", "below-reference", "above-reference", "at-most-epsilon")
STATUSES = ("holds", "fails", "not judgeable")
#: the metric name a claim uses for "the curve's primary utility metric"
UTILITY = "utility"


@dataclass(frozen=True)
class FrontierClaim:
    """A paper's claim about its frontier, as data (see the module docstring for the rule)."""

    id: str
    defense: str
    statement: str
    source: str
    #: a metric name of the curve, or ``"utility"`` for its primary utility metric
    metric: str
    kind: str
    #: ratio-at-least: the fraction of the undefended metric; the others: unused (0)
    threshold: float = 0.0
    #: below- / above-reference: the defenses compared with at the same epsilon
    references: tuple[str, ...] = ()
    #: the undefended primary utility below which the claim cannot be judged (None: no floor)
    min_baseline_utility: float | None = None
    #: the claim covers epsilon >= this only (None: every finite point)
    min_epsilon: float | None = None
    #: where the threshold and the floor come from
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"FrontierClaim.kind must be one of {KINDS}; got {self.kind!r}")
        if self.kind.endswith("reference") and not self.references:
            raise ValueError(f"FrontierClaim {self.id!r} of kind {self.kind!r} needs references")


_FLOOR_NOTE = ("the floor is this project's choice: an undefended model near chance cannot show "
               "a utility cost or a privacy gain worth having")
BUILTIN_CLAIMS: tuple[FrontierClaim, ...] = (
    FrontierClaim(
        "fedre-utility", "fedre", "keeps utility (IoU) close to the undefended model's",
        "FedRE (arXiv 2505.04889)", UTILITY, "ratio-at-least", threshold=0.95,
        min_baseline_utility=0.2,
        note="'close to' read as >= 95% of the undefended utility; IoU floor 0.2 (an all-tampered "
             "model scores 0.024 on documents); " + _FLOOR_NOTE),
    FrontierClaim(
        "fedre-psi-privacy", "fedre",
        "reconstruction quality inside privacy-sensitive regions is worse than under uniform LDP "
        "at the same ε", "FedRE (arXiv 2505.04889)", "psnr (PSI)", "below-reference",
        references=("uniform-ldp",), min_baseline_utility=0.2,
        note="PSNR inside the PSI regions; " + _FLOOR_NOTE),
    FrontierClaim(
        "deer-beats-baselines", "deer", "beats FedIT and FFA-LoRA in utility at the same ε",
        "DEeR (arXiv 2410.12926)", UTILITY, "above-reference", references=("fedit-lora", "ffa-lora"),
        min_baseline_utility=0.3, note="accuracy floor 0.3 (3x chance on 10 classes); " + _FLOOR_NOTE),
    FrontierClaim(
        "dr-encoder-competitive", "dr-encoder",
        "competitive accuracy with undefended federated training under compression",
        "DR-Encoder (arXiv 2412.17053)", UTILITY, "ratio-at-least", threshold=0.95,
        min_baseline_utility=0.3,
        note="'competitive' read as >= 95% of the undefended accuracy; " + _FLOOR_NOTE),
    FrontierClaim(
        "dp-fedavg-bound", "dp-fedavg", "the empirical ε does not exceed the claimed ε",
        "the definition of (ε, δ)-DP; a project check, not a paper figure", "epsilon_emp",
        "at-most-epsilon", note="epsilon_emp is a lower bound: above the claim contradicts it"),
)


def claims_for(defense: str, claims: Iterable[FrontierClaim] | None = None) -> list[FrontierClaim]:
    """The claims (default :data:`BUILTIN_CLAIMS`) about ``defense``."""
    return [c for c in (BUILTIN_CLAIMS if claims is None else claims) if c.defense == defense]


# -- interval arithmetic ---------------------------------------------------------------------------


def ratio_interval(num: Sequence[float], den: Sequence[float]) -> tuple[float, float] | None:
    """The interval of x / y for x in ``num`` and y in ``den`` (None unless ``den > 0``)."""
    (a, b), (c, d) = num, den
    if c <= 0:
        return None
    return (a / d if a >= 0 else a / c), (b / c if b >= 0 else b / d)


def difference_interval(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """The interval of x - y for x in ``a`` and y in ``b``."""
    return a[0] - b[1], a[1] - b[0]


def same_epsilon(x: float, y: float) -> bool:
    """Two finite claimed epsilons are the same point (relative :data:`EPSILON_RTOL`)."""
    return math.isclose(x, y, rel_tol=EPSILON_RTOL)


# -- judging ----------------------------------------------------------------------------------------


def _stat(point: Mapping, metric: str) -> Mapping | None:
    stat = point["metrics"].get(metric)
    return stat if stat and stat.get("mean") is not None else None


def _verdict(claim: FrontierClaim, curve: Mapping, status: str, reason: str,
             evidence: list[dict] | None = None) -> dict:
    text = status if status != "not judgeable" else f"not judgeable: {reason}"
    return {"claim": claim.id, "defense": claim.defense, "statement": claim.statement,
            "source": claim.source, "note": claim.note, "kind": claim.kind,
            "threshold": claim.threshold, "references": list(claim.references),
            "min_baseline_utility": claim.min_baseline_utility, "curve": curve["id"],
            "metric": _metric_name(claim, curve) or claim.metric, "status": status,
            "verdict": text, "reason": reason, "evidence": evidence or []}


def _metric_name(claim: FrontierClaim, curve: Mapping) -> str | None:
    """The curve's metric the claim is about: its primary utility for ``"utility"``, else the
    metric of that name, else the first (by name) that begins with it (``epsilon_emp`` finds
    ``epsilon_emp (one-run)``)."""
    if claim.metric == UTILITY:
        return curve.get("utility_metric")
    names = sorted(m["name"] for m in curve["metrics"])
    return claim.metric if claim.metric in names else next(
        (n for n in names if n.startswith(claim.metric)), None)


def _reference(curve: Mapping, curves: Sequence[Mapping], name: str) -> Mapping | None:
    """The curve of defense ``name`` with ``curve``'s attack and setting (most points first)."""
    same = [c for c in curves if c["defense"] == name and c["match"] == curve["match"]]
    return max(same, key=lambda c: (len(c["points"]), c["label"]), default=None) if same else None


def _common(point: Mapping, other: Mapping) -> Mapping | None:
    return next((p for p in other["points"] if p["epsilon"] is not None
                 and same_epsilon(p["epsilon"], point["epsilon"])), None)


def _side(support: bool, contradict: bool) -> str:
    return "support" if support else ("contradict" if contradict else "overlap")


def judge(claim: FrontierClaim, curve: Mapping, curves: Sequence[Mapping] = ()) -> dict:
    """The verdict on ``claim`` from ``curve`` (and, for a reference claim, the other
    ``curves``): a dict with ``status`` (one of :data:`STATUSES`), ``verdict`` (``holds``,
    ``fails`` or ``not judgeable: <reason>``), the reason and the per-point evidence."""
    metric = _metric_name(claim, curve)
    if metric is None or not any(_stat(p, metric) for p in curve["points"] if p["epsilon"] is not None):
        what = "utility metric (accuracy / IoU)" if claim.metric == UTILITY else f"{claim.metric!r} metric"
        return _verdict(claim, curve, "not judgeable", f"the runs carry no {what}")
    covered = [p for p in curve["points"] if p["epsilon"] is not None
               and (claim.min_epsilon is None or p["epsilon"] >= claim.min_epsilon)]
    baseline = curve.get("baseline")
    refs = []
    for name in claim.references:
        ref = _reference(curve, curves, name)
        if ref is None:
            return _verdict(claim, curve, "not judgeable",
                            f"no {name} runs with the same attack and setting")
        refs.append(ref)
    for ref in refs:
        covered = [p for p in covered if _common(p, ref) is not None]
    used = [_stat(p, metric) for p in covered]
    used += [_stat(_common(p, ref), metric) for ref in refs for p in covered]
    if claim.kind == "ratio-at-least" and baseline is not None and _stat(baseline, metric):
        used.append(_stat(baseline, metric))
    seeds = min((s["n"] if s else 0 for s in used), default=0)
    if len(covered) < MIN_EPSILON_POINTS or seeds < MIN_SEEDS:
        shared = f" in common with {', '.join(claim.references)}" if refs else ""
        return _verdict(claim, curve, "not judgeable",
                        f"{len(covered)} ε points{shared} / {seeds} seeds, need ≥ {MIN_EPSILON_POINTS} "
                        f"/ ≥ {MIN_SEEDS}")
    if claim.kind == "ratio-at-least" or claim.min_baseline_utility is not None:
        if baseline is None:
            return _verdict(claim, curve, "not judgeable", "no undefended baseline (fedavg / fedsgd) "
                            "with the same attack and setting among the runs")
        if claim.kind == "ratio-at-least" and _stat(baseline, metric) is None:
            return _verdict(claim, curve, "not judgeable",
                            f"the undefended runs ({baseline['defense']}) carry no {metric!r} metric")
    if claim.min_baseline_utility is not None:
        umetric = curve.get("utility_metric")
        ustat = _stat(baseline, umetric) if umetric else None
        if ustat is None:
            return _verdict(claim, curve, "not judgeable",
                            "the runs carry no utility metric (accuracy / IoU)")
        if ustat["mean"] < claim.min_baseline_utility:
            return _verdict(claim, curve, "not judgeable",
                            f"undefended utility below {claim.min_baseline_utility:g} "
                            f"({umetric} = {ustat['mean']:.3g})")
    evidence = []
    for p in covered:
        evidence += _point_evidence(claim, metric, p, baseline, refs)
    if any(e["interval"] is None for e in evidence):
        return _verdict(claim, curve, "not judgeable",
                        "an undefended interval reaches 0: the utility ratio is unbounded", evidence)
    sides = {e["side"] for e in evidence}
    if "contradict" in sides:
        bad = ", ".join(e["epsilon_text"] for e in evidence if e["side"] == "contradict")
        return _verdict(claim, curve, "fails", f"the intervals exclude the claim at ε = {bad}", evidence)
    if sides == {"support"}:
        return _verdict(claim, curve, "holds", "every interval supports the claim", evidence)
    return _verdict(claim, curve, "not judgeable", "intervals overlap", evidence)


def _point_evidence(claim: FrontierClaim, metric: str, p: Mapping, baseline: Mapping | None,
                    refs: Sequence[Mapping]) -> list[dict]:
    own = _stat(p, metric)
    eps = p["epsilon"]
    base = {"epsilon": eps, "epsilon_text": f"{eps:.3g}", "against": None}
    if claim.kind == "at-most-epsilon":
        lo, hi = own["interval"]
        bound = (p.get("epsilon_claims") or {}).get(metric, eps)
        return [{**base, "quantity": f"{metric} vs claimed {bound:.4g}", "interval": [lo, hi],
                 "side": _side(hi <= bound, lo > bound)}]
    if claim.kind == "ratio-at-least":
        iv = ratio_interval(own["interval"], _stat(baseline, metric)["interval"])
        t = claim.threshold
        return [{**base, "against": baseline["defense"], "quantity": f"{metric} / undefended",
                 "interval": None if iv is None else list(iv),
                 "side": None if iv is None else _side(iv[0] >= t, iv[1] < t)}]
    out = []
    for ref in refs:
        lo, hi = difference_interval(own["interval"], _stat(_common(p, ref), metric)["interval"])
        side = _side(lo > 0, hi <= 0) if claim.kind == "above-reference" else _side(hi < 0, lo >= 0)
        out.append({**base, "against": ref["defense"], "quantity": f"{metric} - {ref['defense']}",
                    "interval": [lo, hi], "side": side})
    return out


def judge_all(curves: Sequence[Mapping], claims: Iterable[FrontierClaim] | None = None) -> list[dict]:
    """Every claim about a defense that has a curve, judged on each of its curves."""
    claims = list(BUILTIN_CLAIMS if claims is None else claims)
    return [judge(c, curve, curves) for curve in curves for c in claims_for(curve["defense"], claims)]


__all__ = ["BUILTIN_CLAIMS", "EPSILON_RTOL", "KINDS", "MIN_EPSILON_POINTS", "MIN_SEEDS", "STATUSES",
           "UTILITY", "FrontierClaim", "claims_for", "difference_interval", "judge", "judge_all",
           "ratio_interval", "same_epsilon"]
