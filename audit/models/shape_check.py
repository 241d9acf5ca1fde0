"""Does the model fit the data? One forward pass of one example, before any work.

A user's model (``--model file.py:build``) declares its own input shape and classes, or
takes them from the dataset; either way a model that cannot take the data's items, or
whose output does not have the data's classes, is caught here with a message naming both
shapes, instead of failing deep inside an attack. The pass runs on a copy in eval mode
(no BatchNorm statistics are updated, no dropout mask drawn, no random number used).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from audit.core.errors import InvalidParameterError


def expected_output(task: str, num_classes: int, example: torch.Tensor) -> tuple[int, ...] | None:
    """The output shape of one item for ``task`` (None: not checked, e.g. language modelling)."""
    if task == "classification":
        return (1, num_classes)
    if task == "segmentation":
        return (1, num_classes, *example.shape[-2:])
    return None


def check_model_fits(model: nn.Module, example: torch.Tensor, *, num_classes: int, task: str,
                     model_name: str, dataset_name: str) -> None:
    """Raise when ``model`` cannot map ``example`` (one item, batch of 1) to ``task``'s output."""
    probe = copy.deepcopy(model).eval()
    x = example[:1]
    try:
        with torch.no_grad():
            out = probe(x)
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise InvalidParameterError(
            f"Model {model_name!r} cannot take the items of dataset {dataset_name!r}: an input of "
            f"shape {tuple(x.shape)} fails ({type(exc).__name__}: {first}).") from None
    want = expected_output(task, num_classes, x)
    got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if want is not None and got != want:
        raise InvalidParameterError(
            f"Model {model_name!r} maps an input of shape {tuple(x.shape)} to an output of shape "
            f"{got}, but dataset {dataset_name!r} ({task}, {num_classes} classes) needs {want}.")
