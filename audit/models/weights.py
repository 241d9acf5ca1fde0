"""The broadcast weights of the user's model, from a safetensors file (``--weights FILE``).

safetensors holds tensors only (no code, no pickle), so loading it runs nothing of the
file's. Checked before any work: the path exists and ends in ``.safetensors``, the file
parses as safetensors, and its tensors are exactly the model's ``state_dict`` (parameters
and buffers, e.g. BatchNorm running statistics) with the same shapes; every mismatch is an
:class:`~audit.core.errors.InvalidParameterError` naming the file and the first offending
names. Tensors are cast to the model's dtypes.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from audit.core.errors import InvalidParameterError


def _first(names, k: int = 3) -> str:
    names = sorted(names)
    return ", ".join(names[:k]) + (f" (+{len(names) - k} more)" if len(names) > k else "")


def load_weights(model: nn.Module, path: str | Path, *, what: str = "the model") -> nn.Module:
    """Copy the tensors of the safetensors file ``path`` into ``model`` (in place; returned)."""
    p = Path(path).expanduser()
    if p.suffix != ".safetensors":
        raise InvalidParameterError(
            f"The 'weights' parameter must be a .safetensors file. Got {str(path)!r} instead.")
    if not p.is_file():
        raise InvalidParameterError(
            f"The 'weights' parameter must be an existing file. Got {str(path)!r} (no such file) instead.")
    try:
        tensors = load_file(str(p))
    except (SafetensorError, OSError, ValueError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise InvalidParameterError(
            f"The 'weights' parameter must be a safetensors file. Got {str(path)!r} ({first}) instead.") from None
    state = model.state_dict()
    missing, unexpected = set(state) - set(tensors), set(tensors) - set(state)
    if missing or unexpected:
        parts = ([f"lacks {_first(missing)}"] if missing else []) + (
            [f"has unknown {_first(unexpected)}"] if unexpected else [])
        raise InvalidParameterError(
            f"The 'weights' file {str(path)!r} does not fit {what}: it {' and '.join(parts)}.")
    wrong = [n for n in state if tuple(tensors[n].shape) != tuple(state[n].shape)]
    if wrong:
        n = wrong[0]
        raise InvalidParameterError(
            f"The 'weights' file {str(path)!r} does not fit {what}: {n!r} has shape "
            f"{tuple(tensors[n].shape)} in the file and {tuple(state[n].shape)} in the model"
            + (f" (+{len(wrong) - 1} more)" if len(wrong) > 1 else "") + ".")
    with torch.no_grad():
        model.load_state_dict({n: tensors[n].to(state[n].dtype) for n in state}, strict=True)
    return model


def save_weights(model: nn.Module, path: str | Path) -> Path:
    """Write ``model``'s ``state_dict`` to ``path`` (safetensors), the format :func:`load_weights` reads."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({n: t.detach().contiguous().cpu() for n, t in model.state_dict().items()}, str(out))
    return out
