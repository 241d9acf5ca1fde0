"""The utility of the federated model after the simulated rounds, on items no client holds.

A verdict on a defense is worth something only where the undefended system works
(issue 24): every audit finding therefore carries ``utility``, the final global model's
score on held-out items, which the privacy-utility frontier (:mod:`reports.frontier`) sets
against the claimed epsilon.

* classification (images, tabular): ``test_accuracy``, top-1;
* tamper segmentation (documents): ``test_iou`` and ``test_f1`` pooled over every pixel
  of every held-out image, class 1 = tampered (:func:`audit.metrics.segmentation.evaluate_segmentation`,
  the score of tamper-detection benchmarks and of ``benchmarks/fedre.py``);
* text (byte-token language models): none here (their audits score leakage, not utility).

Project choices: the held-out items are the dataset's items that no client holds and that
the server's public split does not take, in order, at most :data:`MAX_ITEMS`; with none
left, there is no utility (``{}``), never a score on training data; the model is put in
eval mode for the scoring and back afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from audit.data.dataset import ImageDataset
from audit.metrics.segmentation import evaluate_segmentation

__all__ = ["MAX_ITEMS", "held_out_utility"]

#: held-out items scored at most (the first ones)
MAX_ITEMS = 2000
_BATCH = 256


def _accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, device: torch.device) -> float:
    correct = 0
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for i in range(0, len(images), _BATCH):
                logits = model(images[i:i + _BATCH].to(device))
                correct += int((logits.argmax(-1).cpu() == labels[i:i + _BATCH]).sum())
    finally:
        model.train(was_training)
    return correct / len(images)


def held_out_utility(model: nn.Module, dataset: ImageDataset, items: Sequence[int], *,
                     device: torch.device | str = "cpu") -> dict[str, float]:
    """The final model's utility on ``items`` of ``dataset`` (the first :data:`MAX_ITEMS`):
    ``{"test_accuracy": a}``, ``{"test_iou": i, "test_f1": f}``, or ``{}`` (no item, or a
    text task)."""
    items = list(items)[:MAX_ITEMS]
    if not items or dataset.modality == "text":
        return {}
    idx = torch.as_tensor(items, dtype=torch.long)
    images, labels = dataset.images[idx], dataset.labels[idx]
    if dataset.task == "segmentation":
        scores = evaluate_segmentation(model, images, labels, batch_size=64)  # on the model's device
        return {"test_iou": scores["iou_pooled"], "test_f1": scores["f1_pooled"]}
    if dataset.task == "classification":
        return {"test_accuracy": _accuracy(model, images, labels, device)}
    return {}

