"""Token-set leakage from the embedding gradient (``../shared/specs/attacks.md``): the rows
of the token-embedding gradient that stand out reveal which tokens a client's batch held.

With a trainable token embedding, the input-embedding gradient is non-zero exactly on the
rows of tokens in the batch. GPT-2 ties the embedding to the output head, whose gradient
touches every row, but weakly for tokens the model gives little probability; so the
attack keeps the rows whose L2 norm exceeds ``factor`` times the median row norm
(project's choice: ``factor`` 5; the median is a non-member row as long as the batch holds
fewer than half the vocabulary). Scored by token precision and recall against the set of
input tokens (padding excluded).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def leaked_tokens(embedding_gradient: torch.Tensor, *, factor: float = 5.0) -> set[int]:
    """Token ids whose gradient row norm exceeds ``factor`` x the median row norm."""
    if embedding_gradient.ndim != 2:
        raise ValueError(f"an embedding gradient is (vocab, dim); got {tuple(embedding_gradient.shape)}")
    if factor <= 0:
        raise ValueError(f"factor must be positive, got {factor!r}")
    norms = embedding_gradient.detach().double().norm(dim=1)
    return set(torch.nonzero(norms > factor * norms.median()).flatten().tolist())


def token_set_metrics(predicted: Iterable[int], truth: Iterable[int]) -> dict[str, float]:
    """Precision and recall of a recovered token set."""
    p, t = set(predicted), set(truth)
    hit = len(p & t)
    return {"precision": hit / len(p) if p else 0.0, "recall": hit / len(t) if t else 1.0}
