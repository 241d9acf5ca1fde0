"""Token-set leakage from the embedding gradient (``../shared/specs/attacks.md``): the rows
of the token-embedding gradient that stand out reveal which tokens a client's batch held.

With a trainable token embedding, the input-embedding gradient is non-zero exactly on the
rows of tokens in the batch. GPT-2 ties the embedding to the output head, whose gradient
touches every row, but weakly for tokens the model gives little probability; so the
attack keeps the rows whose L2 norm exceeds ``factor`` times the median row norm
(project's choice: ``factor`` 5; the median is a non-member row as long as the batch holds
fewer than half the vocabulary). Scored by token precision and recall against the set of
input tokens (padding excluded).

Where the token rows come from (:func:`token_rows`): the update of the token embedding
under full fine-tuning (``...wte.weight``, (vocab, d)), or under LoRA on the embedding the
update of ``lora_embedding_A`` (r x vocab, read column-wise): its column of a token is
touched only when the token is in the batch (the factor multiplies a one-hot input), so
its non-zero columns are the batch's token set once B is non-zero (after the first local
step: B starts at zero). Other updates (LoRA on attention or MLP only, DR-Encoder's codes)
carry no token rows, and the attack says so.

Registered as ``token-set`` (:class:`TokenSetLeakage`): on the observed update, one token
set per target (the whole batch's).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

from audit.core.attack import Attack, AttackResult, AttackView
from audit.core.errors import InvalidParameterError
from audit.core.validation import check_positive


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


def token_rows(update: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
    """(vocab, k) rows of ``update`` indexed by token, or None when it has none: the token
    embedding's update (full fine-tuning) or the transposed update of every
    ``lora_embedding_A`` (LoRA on the embedding; several adapters are concatenated)."""
    full = [t for n, t in update.items() if n.endswith("wte.weight") and t.ndim == 2]
    if full:
        return full[0]
    lora = [t.T for n, t in update.items() if "lora_embedding_A" in n and t.ndim == 2]
    return torch.cat(lora, dim=1) if lora else None


class TokenSetLeakage(Attack):
    """The batch's token set from the rows of the embedding (or embedding-LoRA) update."""

    name = "token-set"
    family = "text-leakage"

    def __init__(self, *, factor: float = 5.0) -> None:
        self.factor = check_positive("factor", self.name, factor)

    def params(self) -> dict[str, Any]:
        return {"factor": self.factor}

    def run(self, view: AttackView, *, generator: torch.Generator, device: torch.device,
            progress: bool = False) -> AttackResult:
        rows = token_rows(view.target.tensors)
        if rows is None:
            names = sorted(view.target.tensors)[:4]
            raise InvalidParameterError(
                f"Attack {self.name!r} reads the token-embedding update (full fine-tuning, e.g. "
                f"model 'tiny-lm', or LoRA with targets including 'embedding'); the observation "
                f"has none. Got update entries {names} instead.")
        return AttackResult(tokens=[sorted(leaked_tokens(rows, factor=self.factor))])


