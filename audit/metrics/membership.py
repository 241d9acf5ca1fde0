"""Membership-inference metrics: ROC AUC with a bootstrap interval, TPR at low FPR, and
balanced accuracy (``../shared/specs/attacks.md``: never accuracy alone).

Choices: TPR at FPR ``f`` is the highest TPR over ROC points with FPR <= ``f`` (the
threshold an attacker would pick on known non-members; Carlini et al. 2022); with ``n``
non-members the finest reachable FPR is ``1/n``, which is reported beside it. Balanced
accuracy is the best over thresholds of ``(TPR + 1 - FPR) / 2``. The AUC interval is a
percentile bootstrap over candidates (members and non-members resampled separately,
seeded).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from audit.core.errors import InvalidParameterError

DEFAULT_FPRS = (0.001, 0.01)


@dataclass(frozen=True)
class MembershipMetrics:
    """ROC summary of one attack's scores."""

    auc: float
    auc_interval: tuple[float, float]
    tpr_at_fpr: dict[float, float]
    balanced_accuracy: float
    members: int
    non_members: int
    confidence: float
    roc_fpr: np.ndarray = field(repr=False)
    roc_tpr: np.ndarray = field(repr=False)

    @property
    def finest_fpr(self) -> float:
        """The smallest non-zero FPR the non-members can resolve."""
        return 1.0 / self.non_members

    def to_dict(self) -> dict:
        """JSON-ready summary (without the curve)."""
        return {
            "auc": self.auc,
            "auc_interval": list(self.auc_interval),
            "confidence": self.confidence,
            "tpr_at_fpr": {f"{k:g}": v for k, v in self.tpr_at_fpr.items()},
            "balanced_accuracy": self.balanced_accuracy,
            "members": self.members,
            "non_members": self.non_members,
            "finest_fpr": self.finest_fpr,
        }


def _check(scores, is_member) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    m = np.asarray(is_member, dtype=bool).reshape(-1)
    if s.shape != m.shape:
        raise InvalidParameterError(
            f"Membership scores and labels must have the same length. Got {s.size} scores and "
            f"{m.size} labels instead."
        )
    if not np.isfinite(s).all():
        raise InvalidParameterError(
            f"Membership scores must be finite. Got {int((~np.isfinite(s)).sum())} non-finite "
            "scores instead."
        )
    if m.all() or not m.any():
        raise InvalidParameterError(
            "Membership metrics need at least one member and one non-member. Got "
            f"{int(m.sum())} members and {int((~m).sum())} non-members instead."
        )
    return s, m


def tpr_at(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    """Highest TPR among ROC points with FPR <= ``target``."""
    ok = fpr <= target + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def bootstrap_auc(s: np.ndarray, m: np.ndarray, *, reps: int, confidence: float,
                  seed: int) -> tuple[float, float]:
    """Percentile bootstrap interval of the AUC (members / non-members resampled apart)."""
    rng = np.random.default_rng(seed)
    pos, neg = s[m], s[~m]
    aucs = np.empty(reps)
    labels = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    for r in range(reps):
        sample = np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]
        aucs[r] = roc_auc_score(labels, sample)
    tail = (1 - confidence) / 2
    return float(np.quantile(aucs, tail)), float(np.quantile(aucs, 1 - tail))


def membership_metrics(scores, is_member, *, fprs=DEFAULT_FPRS, bootstrap: int = 200,
                       confidence: float = 0.95, seed: int = 0) -> MembershipMetrics:
    """ROC summary of ``scores`` (higher = member) against the true membership."""
    s, m = _check(scores, is_member)
    fpr, tpr, _ = roc_curve(m, s)
    auc = float(roc_auc_score(m, s))
    interval = bootstrap_auc(s, m, reps=bootstrap, confidence=confidence, seed=seed) if bootstrap else (auc, auc)
    return MembershipMetrics(
        auc=auc,
        auc_interval=interval,
        tpr_at_fpr={f: tpr_at(fpr, tpr, f) for f in fprs},
        balanced_accuracy=float(((tpr + 1 - fpr) / 2).max()),
        members=int(m.sum()),
        non_members=int((~m).sum()),
        confidence=confidence,
        roc_fpr=fpr,
        roc_tpr=tpr,
    )


def metric_entries(mm: MembershipMetrics) -> list[dict]:
    """Report metric objects (schema 1.0) with their trivial baselines."""
    n = mm.non_members
    lo, hi = mm.auc_interval
    entries = [{
        "name": "ROC AUC", "unit": "", "direction": "higher-leaks-more", "mean": mm.auc,
        "worst": mm.auc, "per_item": [],
        "baseline": {"description": "random guessing", "mean": 0.5, "worst": 0.5},
        "interval": [lo, hi],
        "note": f"{mm.confidence:.0%} bootstrap interval [{lo:.3f}, {hi:.3f}]; "
                f"{mm.members} members, {n} non-members",
    }]
    for f, t in mm.tpr_at_fpr.items():
        entries.append({
            "name": f"TPR @ {f:.1%} FPR", "unit": "", "direction": "higher-leaks-more",
            "mean": t, "worst": t, "per_item": [],
            "baseline": {"description": "random guessing (TPR = FPR)", "mean": f, "worst": f},
            "note": f"{n} non-members: the finest FPR step is {1 / n:.2%}"
                    + ("; this FPR is below it, so the value rests on zero false positives"
                       if f < 1 / n else ""),
        })
    entries.append({
        "name": "balanced accuracy", "unit": "", "direction": "higher-leaks-more",
        "mean": mm.balanced_accuracy, "worst": mm.balanced_accuracy, "per_item": [],
        "baseline": {"description": "random guessing", "mean": 0.5, "worst": 0.5},
        "note": "best threshold; reported beside AUC and TPR at low FPR, never alone",
    })
    return entries
