"""Brief training of a model on embedded data before an audit (``--pretrain-steps``).

Choices: plain SGD (momentum 0.9) on mini-batches drawn with its own seeded generator, so
pre-training is deterministic and leaves torch's global random state alone. A model with a
``pretraining()`` context manager (:class:`audit.models.vit_lora.ViTClassifier`,
:class:`audit.models.text_lm.CausalLM`) is trained inside it, over the parameters it makes
trainable: the base model and its head, not the LoRA adapters; other models train all
their parameters that require gradients. Accuracy is over
items for (N, C) logits, and over the scored positions (label not ``-100``, CrossEntropyLoss's
ignore index) for per-position logits (N, C, ...), e.g. :class:`audit.models.text_lm.CausalLM`'s
(N, V, T) next-token logits.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from audit.data.dataset import ImageDataset
from audit.core.validation import check_interval, check_positive


def pretrain(model: nn.Module, dataset: ImageDataset, *, steps: int, lr: float = 0.05,
             batch_size: int = 32, seed: int = 0) -> dict:
    """Train ``model`` in place for ``steps`` SGD steps; returns loss and accuracy after."""
    steps = check_interval("steps", "pretrain", steps, kind=int, low=0)
    lr = check_positive("lr", "pretrain", lr)
    batch_size = check_interval("batch_size", "pretrain", batch_size, kind=int, low=1)
    if steps == 0:
        return {"steps": 0, "final_loss": None, "train_accuracy": None}
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    x, y = dataset.images.to(device), dataset.labels.to(device)
    loss_fn = nn.CrossEntropyLoss()
    scope = model.pretraining() if callable(getattr(model, "pretraining", None)) else contextlib.nullcontext()
    with scope:
        trainable = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.SGD(trainable or list(model.parameters()), lr=lr, momentum=0.9)  # all frozen: as before
        model.train()
        for _ in range(steps):
            idx = torch.randint(len(y), (min(batch_size, len(y)),), generator=gen).to(device)
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
    with torch.no_grad():
        logits = model(x)
        loss = float(loss_fn(logits, y))
        if logits.dim() == 2:
            acc = float((logits.argmax(-1) == y).float().mean())
        else:  # (N, C, ...) per position (segmentation, language modelling): scored positions only
            scored = y != loss_fn.ignore_index
            hits = (logits.argmax(1) == y) & scored
            acc = float(hits.sum() / scored.sum().clamp(min=1))
    return {"steps": steps, "final_loss": loss, "train_accuracy": acc}
