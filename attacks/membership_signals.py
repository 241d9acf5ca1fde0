"""What a membership attack measures on a model for one example: the loss, the
probability of the true label, and LiRA's logit-scaled confidence, on the example and on
its query augmentations.

Logit scaling (Carlini et al. 2022, Sec. IV-B): ``phi = log(p_y / (1 - p_y))``, computed
stably as ``z_y - logsumexp_{j != y} z_j`` from the logits ``z``, so its distribution over
training runs is close to Gaussian.

The same signals from values a deployment recorded (:func:`signal_of_logits`,
:func:`signal_of_loss`) feed the score-level audit (:mod:`audit.membership.score_audit`),
so it shares the attacks' maths.

Query augmentations (project choice): for images, the identity and the four one-pixel
shifts (reflect padding); no horizontal flip, since flipping changes the meaning of
digits and documents. Tabular data has no augmentation.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


#: floor of a recorded loss (the smallest positive double), see :func:`signal_of_loss`
MIN_LOSS = float(np.nextafter(0.0, 1.0))

SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))


def augmentations(modality: str, input_shape: tuple[int, int, int]) -> tuple[tuple[int, int], ...]:
    """The (dy, dx) query shifts used for ``modality`` (identity first)."""
    _, h, w = input_shape
    if modality != "image" or h < 4 or w < 4:
        return SHIFTS[:1]
    return SHIFTS


def shifted(inputs: torch.Tensor, shift: tuple[int, int]) -> torch.Tensor:
    """``inputs`` (N, C, H, W) moved by ``shift`` pixels, borders reflected."""
    dy, dx = shift
    if dy == 0 and dx == 0:
        return inputs
    padded = F.pad(inputs, (1, 1, 1, 1), mode="reflect")
    h, w = inputs.shape[-2:]
    return padded[..., 1 - dy:1 - dy + h, 1 - dx:1 - dx + w]


def logit_confidence(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``log(p_y / (1 - p_y))`` per row, computed from logits without cancellation."""
    logits = logits.double()
    true = logits.gather(1, labels.view(-1, 1)).squeeze(1)
    others = logits.scatter(1, labels.view(-1, 1), float("-inf"))
    return true - torch.logsumexp(others, dim=1)


def true_label_probability(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Softmax probability of the true label per row."""
    return torch.softmax(logits.double(), dim=1).gather(1, labels.view(-1, 1)).squeeze(1)


def signal_of_logits(logits: torch.Tensor, labels: torch.Tensor, signal: str) -> torch.Tensor:
    """(N,) ``signal`` ("logit" | "probability" | "loss") from logits (N, C) and true labels."""
    if signal == "logit":
        return logit_confidence(logits, labels)
    if signal == "probability":
        return true_label_probability(logits, labels)
    if signal == "loss":
        return F.cross_entropy(logits.double(), labels, reduction="none")
    raise ValueError(f"unknown signal {signal!r}")


def signal_of_loss(loss: torch.Tensor, signal: str) -> torch.Tensor:
    """(N,) ``signal`` from a recorded cross-entropy ``loss`` of the true label (``p_y = exp(-loss)``).

    Logit scaling without cancellation: ``log(p / (1 - p)) = -loss - log(-expm1(-loss))``.
    A loss is floored at the smallest positive double (project choice): a recorded 0 (a
    saturated float softmax) means "at least that confident" and scales to ~744, not inf.
    """
    loss = loss.double().clamp(min=MIN_LOSS)
    if signal == "loss":
        return loss
    if signal == "probability":
        return torch.exp(-loss)
    if signal == "logit":
        return -loss - torch.log(-torch.expm1(-loss))
    raise ValueError(f"unknown signal {signal!r}")


def query(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor,
          shifts: tuple[tuple[int, int], ...], signal: str) -> torch.Tensor:
    """(N, A) ``signal`` ("logit" | "probability" | "loss") of ``model`` per example and shift."""
    cols = [signal_of_logits(logits_of(model, shifted(inputs, s)), labels, signal) for s in shifts]
    return torch.stack(cols, dim=1)


def reference_signals(view, num_models: int, generator: torch.Generator, signal: str,
                      *, population: bool = False):
    """Train ``num_models`` reference models on balanced candidate halves and query them.

    Returns ``(masks, candidate_signals, population_signals)``: masks (K, N) bool, signals
    (K, N, A) and (K, P, A) (``None`` without ``population``). The masks depend only on
    ``generator``, so attacks given the same generator share (cached) reference models.
    """
    if view.train_references is None:
        raise ValueError("this attack needs reference models: its threat model must know the "
                         "training procedure")
    masks = reference_masks(num_models, len(view.candidates), generator)
    models = view.train_references(masks)
    shifts = augmentations(view.modality, view.input_shape)
    cand = torch.stack([query(m, view.candidates.inputs, view.candidates.labels, shifts, signal)
                        for m in models])
    pop = None
    if population and view.population is not None:
        pop = torch.stack([query(m, view.population.inputs, view.population.labels, shifts, signal)
                           for m in models])
    return masks, cand, pop


def reference_masks(num_models: int, num_candidates: int, generator: torch.Generator) -> np.ndarray:
    """The (K, N) masks :func:`reference_signals` trains on, drawn from ``generator``."""
    rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))
    return balanced_masks(num_models, num_candidates, rng)


def balanced_masks(num_models: int, num_candidates: int, generator: np.random.Generator) -> np.ndarray:
    """(K, N) boolean masks: each candidate in exactly ``K // 2`` models (K = 1: coin flips)."""
    if num_models == 1:
        return generator.random((1, num_candidates)) < 0.5
    order = np.argsort(generator.random((num_models, num_candidates)), axis=0)
    return order < num_models // 2


@torch.no_grad()
def logits_of(model: nn.Module, inputs: torch.Tensor, *, batch: int = 2048) -> torch.Tensor:
    """The model's logits on ``inputs`` (eval mode, on the model's device), on CPU."""
    model.eval()
    device = next(model.parameters()).device
    out = [model(inputs[i:i + batch].to(device)).float().cpu() for i in range(0, len(inputs), batch)]
    return torch.cat(out) if out else torch.empty(0)
