"""Scoring of attack results against the ground truth (which attacks never see).

Reconstructions of a batch are first matched to the ground truth by a Hungarian assignment
on MSE (as the breaching framework does), then scored per image with the trivial baseline
beside each metric. Labels are scored as a multiset: the fraction of the batch's labels
recovered, whatever their order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import torch

from audit.metrics.matching import match_to_truth
from audit.metrics.image import Baseline, MetricSummary


def label_accuracy(predicted: torch.Tensor, truth: torch.Tensor) -> float:
    """Multiset overlap of predicted and true labels divided by the batch size."""
    p = Counter(int(v) for v in predicted.reshape(-1))
    t = Counter(int(v) for v in truth.reshape(-1))
    return sum(min(p[k], t[k]) for k in t) / max(len(truth), 1)


def align(recon: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """``recon`` reordered to match ``truth`` (Hungarian assignment on MSE)."""
    if len(recon) != len(truth):
        raise ValueError(f"{len(recon)} reconstructions for {len(truth)} images")
    perm = match_to_truth(recon, truth)
    return recon[torch.as_tensor(perm)]


def label_summary(accuracies: list[float], num_classes: int) -> MetricSummary:
    """The ``label_accuracy`` metric over targets; baseline: a uniform random guess."""
    chance = 1.0 / num_classes
    return MetricSummary(
        name="label_accuracy",
        unit="",
        direction="higher-leaks-more",
        per_item=tuple(accuracies),
        mean=sum(accuracies) / len(accuracies),
        worst=max(accuracies),
        baseline=Baseline(description="uniform random guess (expected)", mean=chance, worst=chance),
    )


def gradient_recovery_metrics(recovered: Mapping[str, torch.Tensor],
                              truth: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Cosine and relative L2 error of a recovered update against the true one (all names
    of ``truth`` flattened together)."""
    r = torch.cat([recovered[n].reshape(-1).double().cpu() for n in truth])
    t = torch.cat([truth[n].reshape(-1).double().cpu() for n in truth])
    cos = float(torch.nn.functional.cosine_similarity(r, t, dim=0))
    rel = float((r - t).norm() / t.norm().clamp_min(1e-30))
    return {"cosine": cos, "relative_error": rel}


def update_recovery_summaries(scores: Sequence[Mapping[str, float]]) -> list[MetricSummary]:
    """``update_cosine`` and ``update_relative_error`` over targets (one
    :func:`gradient_recovery_metrics` each), with the trivial baselines: a direction
    independent of the update (cosine 0) and the zero update (relative error 1)."""
    cos = tuple(float(s["cosine"]) for s in scores)
    rel = tuple(float(s["relative_error"]) for s in scores)
    return [
        MetricSummary("update_cosine", "", "higher-leaks-more", cos, sum(cos) / len(cos), max(cos),
                      Baseline("a guess independent of the update (expected)", 0.0, 0.0)),
        MetricSummary("update_relative_error", "", "lower-leaks-more", rel, sum(rel) / len(rel),
                      min(rel), Baseline("the zero update", 1.0, 1.0)),
    ]
