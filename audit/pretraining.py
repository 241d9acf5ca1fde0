"""Brief training of a model on embedded data before an audit (``--pretrain-steps``).

Choices: plain SGD (momentum 0.9) on mini-batches drawn with its own seeded generator, so
pre-training is deterministic and leaves torch's global random state alone.
"""

from __future__ import annotations

import torch
from torch import nn

from audit.datasets import ImageDataset
from audit.validation import check_interval, check_positive


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
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(y), (min(batch_size, len(y)),), generator=gen).to(device)
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x[idx]), y[idx]).backward()
        opt.step()
    with torch.no_grad():
        logits = model(x)
        loss = float(loss_fn(logits, y))
        acc = float((logits.argmax(-1) == y).float().mean())
    return {"steps": steps, "final_loss": loss, "train_accuracy": acc}
