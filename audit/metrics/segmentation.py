"""Binary segmentation metrics for tamper detection (class 1 = tampered pixel).

Masks are (N, H, W), bool or {0, 1} (torch tensors or numpy arrays). Per image:
``IoU = |P & T| / |P | T|`` and ``F1 = 2 |P & T| / (|P| + |T|)`` (the Dice coefficient);
pooled: the same ratios with the counts summed over every pixel of every image, the usual
dataset-level score of tamper-detection benchmarks.

Choices: an image whose prediction and truth are both empty (no tampered pixel predicted,
none there) scores IoU = F1 = 1, a perfect answer, and so does a pooled score over a data
set with no positive pixel anywhere; predictions are the argmax over the model's classes
(a single output channel is read as a logit, positive where > 0), and only class 1 counts
as tampered when a model has more than two classes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from audit.core.errors import InvalidParameterError
from audit.core.validation import check_interval


def _mask(x, name: str) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim != 3:
        raise InvalidParameterError(f"The {name!r} masks must have shape (N, H, W). Got shape {a.shape} instead.")
    if a.dtype != bool:
        if not (np.issubdtype(a.dtype, np.number) and np.isin(a, (0, 1)).all()):
            raise InvalidParameterError(
                f"The {name!r} masks must be bool or hold only 0 and 1. Got dtype {a.dtype} "
                f"with values {np.unique(a)[:5].tolist()} instead."
            )
        a = a.astype(bool)
    return a


def _pair(pred, truth) -> tuple[np.ndarray, np.ndarray]:
    p, t = _mask(pred, "pred"), _mask(truth, "truth")
    if p.shape != t.shape:
        raise InvalidParameterError(f"The 'pred' masks must have the shape of 'truth' {t.shape}. Got {p.shape} instead.")
    return p, t


def _counts(pred, truth, axis) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intersection, |pred| and |truth| summed over ``axis``."""
    p, t = _pair(pred, truth)
    return (p & t).sum(axis=axis), p.sum(axis=axis), t.sum(axis=axis)


def _iou(inter, sp, st) -> np.ndarray:
    union = sp + st - inter
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def _f1(inter, sp, st) -> np.ndarray:
    total = sp + st
    return np.where(total == 0, 1.0, 2.0 * inter / np.maximum(total, 1))


def iou(pred, truth) -> np.ndarray:
    """Intersection over union per image, shape (N,); 1.0 where both masks are empty."""
    return _iou(*_counts(pred, truth, (1, 2))).astype(float)


def f1(pred, truth) -> np.ndarray:
    """F1 score (Dice coefficient) per image, shape (N,); 1.0 where both masks are empty."""
    return _f1(*_counts(pred, truth, (1, 2))).astype(float)


def iou_pooled(pred, truth) -> float:
    """IoU of all pixels of all images together (1.0 if no pixel is positive in either)."""
    return float(_iou(*_counts(pred, truth, None)))


def f1_pooled(pred, truth) -> float:
    """F1 (Dice) of all pixels of all images together (1.0 if no pixel is positive in either)."""
    return float(_f1(*_counts(pred, truth, None)))


def _images(images) -> torch.Tensor:
    x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if x.dim() != 4:
        raise InvalidParameterError(f"The 'images' must have shape (N, C, H, W). Got shape {tuple(x.shape)} instead.")
    return x


def predict_masks(model: nn.Module, images, *, batch_size: int = 64) -> torch.Tensor:
    """Predicted class per pixel, (N, H, W) int64 on the CPU.

    The argmax over the model's (N, K, H, W) logits (K = 1: logit > 0), computed on the
    model's device in eval mode without gradients, ``batch_size`` images at a time; the
    model's training mode is restored afterwards.
    """
    batch_size = check_interval("batch_size", "predict_masks", batch_size, kind=int, low=1)
    x = _images(images)
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                batch = x[start : start + batch_size].to(device=device, dtype=dtype)
                logits = model(batch)
                if logits.dim() != 4 or logits.shape[0] != len(batch) or logits.shape[2:] != batch.shape[2:]:
                    raise InvalidParameterError(
                        "The model must map (N, C, H, W) images to (N, K, H, W) logits. Got "
                        f"shape {tuple(logits.shape)} for input {tuple(batch.shape)} instead."
                    )
                labels = (logits[:, 0] > 0).long() if logits.shape[1] == 1 else logits.argmax(dim=1)
                out.append(labels.cpu())
    finally:
        model.train(was_training)
    if not out:
        return torch.zeros((0, *x.shape[2:]), dtype=torch.long)
    return torch.cat(out)


def evaluate_segmentation(model: nn.Module, images, masks, *, batch_size: int = 64) -> dict[str, float]:
    """Tamper-segmentation scores of ``model`` on ``images`` (N, C, H, W) against ``masks`` (N, H, W).

    Keys: ``iou_mean`` and ``f1_mean`` (per-image scores averaged), ``iou_pooled`` and
    ``f1_pooled`` (over all pixels), ``pixel_accuracy`` (predicted class 1 or not, against
    the truth) and ``tampered_fraction`` (of the true pixels); all plain floats.
    """
    x = _images(images)
    truth = _mask(masks, "masks")
    if truth.shape[0] != x.shape[0] or truth.shape[1:] != tuple(x.shape[2:]):
        raise InvalidParameterError(
            f"The 'masks' must have shape (N, H, W) = {(x.shape[0], *x.shape[2:])} to match the "
            f"images {tuple(x.shape)}. Got shape {truth.shape} instead."
        )
    if len(truth) == 0:
        raise InvalidParameterError("The 'images' must hold at least one image. Got none instead.")
    pred = (predict_masks(model, x, batch_size=batch_size) == 1).numpy()
    return {
        "iou_mean": float(iou(pred, truth).mean()),
        "f1_mean": float(f1(pred, truth).mean()),
        "iou_pooled": iou_pooled(pred, truth),
        "f1_pooled": f1_pooled(pred, truth),
        "pixel_accuracy": float((pred == truth).mean()),
        "tampered_fraction": float(truth.mean()),
    }
