"""Who is exposed: per-group and per-record membership vulnerability from one attack's
scores (higher = more likely a member), the truth, record ids and group names.

An attack's aggregate ROC hides whom it finds. Carlini et al. 2022 ("Membership inference
attacks from first principles") argue for TPR at low FPR, not AUC, and show that
vulnerability is per example: a few outliers carry most of the leak. Aerni et al. 2024
("Evaluations of machine learning privacy defenses are misleading") show that a defense's
average-case figures can hide its most vulnerable records, and evaluate on those. This
module reports both views of one attack's scores:

Per group g (a class, or a name the user gives each record):

* members and non-members of g, the ROC AUC within g (null without both);
* TPR at 1% FPR at **g's own threshold**, fixed on g's non-members: the threshold that
  flags at most ``floor(0.01 n_out)`` of them and as many members as possible, which is
  the highest TPR over ROC points with FPR <= 1% (:func:`audit.metrics.membership.tpr_at`,
  the attacker's choice on known non-members). With fewer than ``1 / 0.01 = 100``
  non-members 1% FPR is below g's resolution: the note says "not enough non-members for
  1% FPR" and the TPR is taken at the lowest FPR g supports, ``1 / n_out`` (one false
  positive allowed), which the entry's ``fpr`` states;
* TPR at 0.1% FPR the same way when g has at least 1000 non-members (else null);
* TPR and FPR of g at the **global threshold**, the 1% FPR threshold fixed on all the
  non-members: the operating point an attacker calibrated on everyone uses, at which a
  group can be exposed (or over-flagged, its FPR above 1%) though the aggregate looks fine;
* a Clopper-Pearson interval on each TPR: given the threshold, the members of g above it
  are binomial(n_in, TPR), so the exact binomial interval applies. It is conditional on
  the threshold: the threshold's own sampling error (it is an order statistic of the
  non-members) is not included.

Per record: the empirical p-value of the record's score against the non-members,
``(1 + #{non-members scoring >= s}) / (1 + n_out)`` (Phipson & Smyth 2010, "Permutation
p-values should never be zero"): about the FPR an attacker must accept to flag the
record. The top-k most exposed records are the k members with the highest scores
(lowest p-values), named by id only: no record's content enters the result.

Project choices: thresholds flag scores strictly above the ``(a + 1)``-th highest
non-member score (``a`` the false positives allowed), so ties never flag a non-member
beyond ``a``; groups are ranked by their own-threshold TPR at 1% FPR, then AUC, then name,
those whose TPR stands at a coarser FPR (too few non-members; not comparable) after those
at 1%, and those without a TPR last; ties among records are broken by record id; the
intervals are 95% by default; nothing is random, so the result is the same on every run
(no seed is needed, and the order of the records does not matter).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from audit.core.errors import InvalidParameterError, invalid
from audit.core.validation import check_interval

OWNER = "the exposure analysis"
FPR = 0.01
STRICT_FPR = 0.001
DEFAULT_TOP_K = 10
GROUP_SOURCES = ("class", "user", "none")
INTERVAL_METHOD = ("Clopper-Pearson (exact binomial) on the members above the threshold, "
                   "given the threshold")


@dataclass(frozen=True)
class OperatingPoint:
    """Members flagged above one threshold: TPR, its interval, and the FPR it stands at
    (``None`` without non-members)."""

    tpr: float
    interval: tuple[float, float]
    fpr: float | None
    flagged: int


@dataclass(frozen=True)
class GroupExposure:
    """One group's vulnerability (see the module docstring)."""

    name: str
    members: int
    non_members: int
    auc: float | None
    own: OperatingPoint | None
    strict: OperatingPoint | None
    at_global: OperatingPoint | None
    note: str | None
    own_fpr: float | None = None

    def to_dict(self, rank: int) -> dict:
        """JSON-ready entry (``rank`` 1 is the most exposed group). ``fpr`` and
        ``strict_fpr`` are the FPRs the own-threshold TPRs are taken at (at most that many
        of the group's non-members flagged); ``global_fpr`` is the share of the group's
        non-members the global threshold flags."""
        def point(p: OperatingPoint | None, prefix: str, fpr) -> dict:
            return {f"{prefix}tpr": None if p is None else p.tpr,
                    f"{prefix}fpr": None if p is None else fpr,
                    f"{prefix}interval": None if p is None else list(p.interval)}

        glob = self.at_global
        return {"name": self.name, "rank": rank, "members": self.members,
                "non_members": self.non_members, "auc": self.auc,
                **point(self.own, "", self.own_fpr), **point(self.strict, "strict_", STRICT_FPR),
                **point(glob, "global_", None if glob is None else glob.fpr), "note": self.note}


@dataclass(frozen=True)
class Exposure:
    """The groups (ranked, most exposed first) and the top-k most exposed member ids."""

    group_source: str
    groups: list[GroupExposure]
    top_exposed: list[dict]
    top_k: int
    overall: OperatingPoint
    confidence: float
    members: int
    non_members: int

    def to_dict(self) -> dict:
        """JSON-ready summary: ids, counts and rates only, never a record's content."""
        return {"group_source": self.group_source, "fpr": FPR, "strict_fpr": STRICT_FPR,
                "confidence": self.confidence, "interval_method": INTERVAL_METHOD,
                "overall": {"members": self.members, "non_members": self.non_members,
                            "tpr": self.overall.tpr, "fpr": self.overall.fpr,
                            "interval": list(self.overall.interval)},
                "groups": [g.to_dict(i) for i, g in enumerate(self.groups, start=1)],
                "top_k": self.top_k, "top_exposed": list(self.top_exposed)}


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided binomial interval of ``k`` successes in ``n`` trials (n >= 1)."""
    from scipy.stats import beta

    tail = (1 - confidence) / 2
    low = 0.0 if k == 0 else float(beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - tail, k + 1, n - k))
    return low, high


def threshold(non_member_scores: np.ndarray, fpr: float) -> float:
    """The score above which at most ``floor(fpr * n)`` non-members lie (``-inf``: all may)."""
    allowed = math.floor(fpr * len(non_member_scores) + 1e-9)
    if allowed >= len(non_member_scores):
        return -math.inf
    return float(np.sort(non_member_scores)[::-1][allowed])


def operating_point(member_scores: np.ndarray, non_member_scores: np.ndarray, cut: float,
                    confidence: float) -> OperatingPoint | None:
    """Members and non-members flagged strictly above ``cut`` (``None`` without members)."""
    n = len(member_scores)
    if n == 0:
        return None
    k = int((member_scores > cut).sum())
    fp = float((non_member_scores > cut).mean()) if len(non_member_scores) else None
    return OperatingPoint(k / n, clopper_pearson(k, n, confidence), fp, k)


def p_values(scores, is_member) -> np.ndarray:
    """Per record: ``(1 + #{non-members scoring >= s}) / (1 + n_out)``."""
    s = np.asarray(scores, dtype=np.float64)
    neg = np.sort(s[~np.asarray(is_member, dtype=bool)])
    above = len(neg) - np.searchsorted(neg, s, side="left")
    return (1.0 + above) / (1.0 + len(neg))


def _auc(pos: np.ndarray, neg: np.ndarray) -> float | None:
    if not len(pos) or not len(neg):
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]))


def group_exposure(name: str, pos: np.ndarray, neg: np.ndarray, global_cut: float, *,
                   confidence: float) -> GroupExposure:
    """The vulnerability of one group with member scores ``pos`` and non-member ``neg``."""
    n_out, note, own, strict, fpr = len(neg), None, None, None, None
    if not len(pos):
        note = "no members in this group: no TPR"
    elif not n_out:
        note = "no non-members in this group: no threshold can be fixed on them"
    else:
        fpr = FPR if n_out * FPR >= 1 - 1e-9 else 1.0 / n_out
        if fpr > FPR:
            note = (f"not enough non-members for {FPR:.0%} FPR ({n_out} < {round(1 / FPR)}): "
                    f"TPR at {fpr:.2%} FPR (1 of {n_out} non-members), the lowest FPR this "
                    "group supports")
        own = operating_point(pos, neg, threshold(neg, fpr), confidence)
        if n_out * STRICT_FPR >= 1 - 1e-9:
            strict = operating_point(pos, neg, threshold(neg, STRICT_FPR), confidence)
    return GroupExposure(name, len(pos), n_out, _auc(pos, neg), own, strict,
                         operating_point(pos, neg, global_cut, confidence), note, fpr)


def _error(param: str, must: str, got: str) -> InvalidParameterError:
    return InvalidParameterError(f"The {param!r} parameter of {OWNER} must {must}. "
                                 f"Got {got} instead.")


def check_inputs(scores, is_member, record_ids, groups, top_k) -> tuple:
    """Validated ``(scores, member, ids, groups, k)``; errors name the bad value."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    m = np.asarray(is_member).reshape(-1)
    n = len(s)
    if m.dtype != bool and not np.isin(m, (0, 1)).all():
        raise invalid("is_member", OWNER, "0/1 or bool values", m[~np.isin(m, (0, 1))][0])
    m = m.astype(bool)
    if not np.isfinite(s).all():
        raise invalid("scores", OWNER, "finite numbers", float(s[~np.isfinite(s)][0]))
    ids, names = list(record_ids), None if groups is None else list(groups)
    for label, values in (("is_member", m), ("record_ids", ids), ("groups", names)):
        if values is not None and len(values) != n:
            raise _error(label, f"have one entry per score ({n})", f"{len(values)}")
    for label, values in (("record_ids", ids), ("groups", names or ())):
        for i, v in enumerate(values):
            if not isinstance(v, str) or not v.strip():
                raise invalid(f"{label}[{i}]", OWNER, "a non-empty str", v)
    first: dict[str, int] = {}
    for i, v in enumerate(ids):
        if v in first:
            raise _error("record_ids", "be unique", f"{v!r} twice (at positions {first[v]} and {i})")
        first[v] = i
    if not m.any() or m.all():
        raise _error("is_member", "mark at least one member and one non-member",
                     f"{int(m.sum())} members of {n} records")
    return s, m, ids, names, check_interval("top_k", OWNER, top_k, kind=int, low=1)


def exposure(scores, is_member, record_ids: Sequence[str], groups: Sequence[str] | None, *,
             group_source: str, top_k: int = DEFAULT_TOP_K,
             confidence: float = 0.95) -> Exposure:
    """Per-group and per-record vulnerability of one attack's ``scores``.

    Args:
        scores: (N,) attack scores, higher = more likely a member.
        is_member: (N,) the truth (bool or 0/1).
        record_ids: N unique non-empty str, the records' names in the report.
        groups: N non-empty str, each record's group (``None``: no groups).
        group_source: ``"class"``, ``"user"`` or ``"none"`` (what the groups are).
        top_k: How many of the most exposed members to name (an int >= 1; fewer when
            there are fewer members).
        confidence: Level of the Clopper-Pearson intervals.

    Raises:
        InvalidParameterError: lengths that differ, duplicate or empty ids, a group name
            that is not a str, ``top_k`` < 1, or a side with no record; named.
    """
    s, m, ids, names, k = check_inputs(scores, is_member, record_ids, groups, top_k)
    if group_source not in GROUP_SOURCES:
        raise invalid("group_source", OWNER, f"one of {GROUP_SOURCES}", group_source)
    confidence = check_interval("confidence", OWNER, confidence, low=0, high=1, closed="neither")
    cut = threshold(s[~m], FPR)
    overall = operating_point(s[m], s[~m], cut, confidence)
    found = []
    if names is not None:
        g = np.asarray(names, dtype=object)
        for name in sorted(set(names)):
            sel = g == name
            found.append(group_exposure(name, s[sel & m], s[sel & ~m], cut,
                                        confidence=confidence))
    found.sort(key=lambda e: (e.own is None, e.note is not None, -(e.own.tpr if e.own else 0.0),
                              e.auc is None, -(e.auc or 0.0), e.name))
    p = p_values(s, m)
    members = sorted(np.flatnonzero(m), key=lambda i: (-s[i], ids[i]))[:k]
    top = [{"rank": r, "record_id": ids[i], "group": None if names is None else names[i],
            "score": float(s[i]), "p_value": float(p[i])}
           for r, i in enumerate(members, start=1)]
    return Exposure(group_source, found, top, k, overall, confidence, int(m.sum()),
                    int((~m).sum()))
