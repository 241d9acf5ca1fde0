"""The model registry: ``--model NAME``, ``create_model`` and ``describe_model``.

Entries come from the ``fedaudit.models`` entry points (fedaudit's own in
:mod:`audit.models.catalog`); see :mod:`audit.core.registry`.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from audit.core.registry import Registry
from audit.core.validation import check_known_keys

MODELS: Registry[nn.Module] = Registry("model", group="fedaudit.models")


def create_model(name: str, *, input_shape, num_classes: int, channel_mean, channel_std, **params: Any) -> nn.Module:
    """The registered model ``name`` for inputs of ``input_shape``; unknown params are errors."""
    entry = MODELS.get(name)
    allowed = [p for p in inspect.signature(entry.factory).parameters if p not in
               ("input_shape", "num_classes", "channel_mean", "channel_std")]
    check_known_keys(params, allowed, f"model {name!r}")
    return entry.factory(input_shape=tuple(input_shape), num_classes=num_classes,
                         channel_mean=channel_mean, channel_std=channel_std, **params)


def describe_model(model: nn.Module) -> dict[str, Any]:
    """Parameter count and the names of parametrised layers."""
    layers = [n for n, m in model.named_modules() if n and any(True for _ in m.parameters(recurse=False))]
    return {"parameters": sum(p.numel() for p in model.parameters()), "layers": layers}
