"""Scoring of text-attack results against the clients' records (which attacks never see).

Per target (one client's batch, or an aggregate's records):

* every text attack: ``token_precision`` and ``token_recall`` of the recovered token set
  (the union of what it returned) against the batch's set of byte tokens (special tokens
  excluded; :func:`audit.metrics.text.token_set_scores`);
* a sequence attack (TAG-style; ``sequences=True``): each recovered sequence is matched to a
  record of the batch by a Hungarian assignment on ROUGE-L, then scored by
  ``token_accuracy`` (position-wise) and ``rouge1``, ``rouge2``, ``rougeL`` (F-measures,
  :func:`audit.metrics.text.rouge_scores`), averaged over the batch.

Baseline beside each metric: the same score for a record of the dataset that no client
holds, taken as the "recovered" text — what knowing the data distribution (the records'
format) alone gives an adversary.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from audit.metrics.image import Baseline, MetricSummary
from audit.metrics.text import decode_tokens, rouge_scores, token_accuracy, token_set_scores

MAX_SAMPLES = 4
SEQUENCE_METRICS = ("token_accuracy", "rouge1", "rouge2", "rougeL")


def _ids(row: torch.Tensor | Sequence[int]) -> list[int]:
    return [int(v) for v in (row.tolist() if isinstance(row, torch.Tensor) else row)]


def _sequence_scores(recovered: Sequence[Sequence[int]], truth: Sequence[Sequence[int]]) -> dict[str, float]:
    """Mean over the truth's records of the matched recovered sequence's scores (a record
    with no recovered sequence scores 0)."""
    texts_r = [decode_tokens(r) for r in recovered]
    texts_t = [decode_tokens(t) for t in truth]
    rouge = [[rouge_scores(r, t) for t in texts_t] for r in texts_r]
    cost = -np.array([[s["rougeL"] for s in row] for row in rouge]).reshape(len(texts_r), len(texts_t))
    rows, cols = linear_sum_assignment(cost)
    out = dict.fromkeys(SEQUENCE_METRICS, 0.0)
    for i, j in zip(rows, cols):
        out["token_accuracy"] += token_accuracy(recovered[i], truth[j])
        for k in ("rouge1", "rouge2", "rougeL"):
            out[k] += rouge[i][j][k]
    return {k: v / len(truth) for k, v in out.items()}


def _summary(name: str, values: list[float], base: list[float], description: str) -> MetricSummary:
    return MetricSummary(name, "", "higher-leaks-more", tuple(values), float(np.mean(values)),
                         float(np.max(values)),
                         Baseline(description, float(np.mean(base)), float(np.max(base))))


def score_text(items: Sequence[tuple[Sequence[Sequence[int]], torch.Tensor]], *, baseline: torch.Tensor,
               sequences: bool) -> tuple[list[MetricSummary], list[dict[str, str]]]:
    """Summaries over targets and a few (truth, recovered) text samples.

    ``items``: per target, the attack's recovered token lists and the batch's token ids
    (N, T); ``baseline``: the ids (T,) of a record no client holds.
    """
    base_ids = _ids(baseline)
    scores: dict[str, list[float]] = {}
    base: dict[str, list[float]] = {}
    samples: list[dict[str, str]] = []
    for recovered, truth_ids in items:
        truth = [_ids(row) for row in truth_ids]
        flat_truth = [t for row in truth for t in row]
        flat_rec = [t for row in recovered for t in row]
        got = token_set_scores(flat_rec, flat_truth)
        ref = token_set_scores(base_ids, flat_truth)
        for k in ("precision", "recall"):
            scores.setdefault(f"token_{k}", []).append(got[k])
            base.setdefault(f"token_{k}", []).append(ref[k])
        if sequences:
            got = _sequence_scores(recovered, truth)
            ref = _sequence_scores([base_ids], truth)
            for k in SEQUENCE_METRICS:
                scores.setdefault(k, []).append(got[k])
                base.setdefault(k, []).append(ref[k])
        if len(samples) < MAX_SAMPLES:
            shown = recovered if sequences else [sorted(set(flat_rec))]
            samples.append({"truth": " | ".join(decode_tokens(t) for t in truth),
                            "recovered": " | ".join(decode_tokens(r) for r in shown)})
    description = "a record of the dataset that no client holds, taken as the recovered text"
    return [_summary(k, v, base[k], description) for k, v in scores.items()], samples
