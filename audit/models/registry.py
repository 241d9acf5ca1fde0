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

MODELS: Registry[nn.Module] = Registry("model", group="fedaudit.models", kind=nn.Module)


#: what every model is built for; a user's builder takes those of them it names
DATA_KEYS = ("input_shape", "num_classes", "channel_mean", "channel_std")


def create_model(name: str, *, input_shape, num_classes: int, channel_mean, channel_std, **params: Any) -> nn.Module:
    """The model ``name`` (registered, or the user's ``file.py:build`` / ``module:build``) for
    inputs of ``input_shape``; unknown params are errors. The data's ``input_shape``,
    ``num_classes``, ``channel_mean`` and ``channel_std`` are passed to the builder when it
    takes them (a user's builder may declare its own and take none)."""
    entry = MODELS.get(name)
    signature = inspect.signature(entry.factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.values())
    if not takes_any:
        check_known_keys(params, [p for p in signature if p not in DATA_KEYS], f"model {name!r}")
    data = {"input_shape": tuple(input_shape), "num_classes": num_classes, "channel_mean": channel_mean,
            "channel_std": channel_std}
    given = {k: v for k, v in data.items() if k in signature and k not in params}
    return entry.factory(**given, **params)


def describe_model(model: nn.Module) -> dict[str, Any]:
    """Parameter count and the names of parametrised layers."""
    layers = [n for n, m in model.named_modules() if n and any(True for _ in m.parameters(recurse=False))]
    return {"parameters": sum(p.numel() for p in model.parameters()), "layers": layers}
