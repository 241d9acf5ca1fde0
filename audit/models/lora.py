"""LoRA adapters as peft injects them: finding the LoRA layers and their A/B factors.

Shared by every LoRA model of :mod:`audit.models` (``vit-lora``, ``tiny-lm-lora``) and by the
LoRA defenses (DEeR, FedIT, FFA-LoRA: :mod:`defenses.lora_dp`). A LoRA layer computes
``W x + scaling * B A x`` (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language
Models"); peft stores A and B per adapter in ``lora_A``/``lora_B`` (Linear and
``Conv1D`` layers) or ``lora_embedding_A``/``lora_embedding_B`` (embeddings).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from torch import nn

from audit.core.errors import InvalidParameterError


def lora_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """``(name, module)`` of each LoRA layer (peft's ``LoraLayer``: ``lora_A``/``lora_B`` dicts
    of Linear factors, or, on an ``nn.Embedding``, ``lora_embedding_A``/``lora_embedding_B``
    dicts of bare parameters)."""
    for name, module in model.named_modules():
        a, b = getattr(module, "lora_A", None), getattr(module, "lora_B", None)
        if isinstance(a, nn.ModuleDict) and isinstance(b, nn.ModuleDict) and len(a):
            yield name, module
            continue
        a, b = getattr(module, "lora_embedding_A", None), getattr(module, "lora_embedding_B", None)
        if isinstance(a, nn.ParameterDict) and isinstance(b, nn.ParameterDict) and len(a):
            yield name, module


_LORA_PARTS = ("lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B")


def lora_parameter_names(model: nn.Module) -> set[str]:
    names = set()
    for name, module in lora_modules(model):
        for part in _LORA_PARTS:
            if isinstance(getattr(module, part, None), (nn.ModuleDict, nn.ParameterDict)):
                names.update(f"{name}.{part}.{n}" for n, _ in getattr(module, part).named_parameters())
    return names


@contextlib.contextmanager
def base_trainable(model: nn.Module) -> Iterator[None]:
    """Within: every parameter but the LoRA factors trainable (the base model is being
    pre-trained); the previous ``requires_grad`` flags are restored after."""
    saved = {name: p.requires_grad for name, p in model.named_parameters()}
    lora = lora_parameter_names(model)
    try:
        for name, p in model.named_parameters():
            p.requires_grad_(name not in lora)
        yield
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(saved[name])


@dataclass(frozen=True)
class LoraPair:
    """One LoRA module: names (as in ``named_parameters``) of A (r x d_in) and B (d_out x r).

    For a Linear (or transformers ``Conv1D``) module they are ``<module>.lora_A.<adapter>.weight``
    and ``<module>.lora_B.<adapter>.weight``; for an embedding (peft's ``Embedding`` LoRA, e.g.
    ``tiny-lm-lora`` with ``targets="attention,embedding"``) ``<module>.lora_embedding_A.<adapter>``
    (r x vocab: the one-hot token is the input) and ``<module>.lora_embedding_B.<adapter>``
    (d x r).
    """

    module: str
    a: str
    b: str
    scaling: float


def lora_pairs(model: nn.Module) -> list[LoraPair]:
    """The LoRA A/B pairs of ``model`` in module order (block by block, then ``targets`` order)."""
    params = dict(model.named_parameters())
    pairs = []
    for name, module in lora_modules(model):
        found = [(adapter, f"{name}.lora_A.{adapter}.weight", f"{name}.lora_B.{adapter}.weight")
                 for adapter in getattr(module, "lora_A", ())]
        found += [(adapter, f"{name}.lora_embedding_A.{adapter}", f"{name}.lora_embedding_B.{adapter}")
                  for adapter in getattr(module, "lora_embedding_A", ())]
        for adapter, a, b in found:
            if a not in params or b not in params:  # pragma: no cover - peft layout changed
                raise RuntimeError(f"LoRA module {name!r} has no parameters {a!r} and {b!r}")
            pairs.append(LoraPair(module=name, a=a, b=b, scaling=float(module.scaling[adapter])))
    if not pairs:
        raise InvalidParameterError(
            f"The 'model' parameter of lora_pairs must be a model with LoRA adapters (e.g. built as "
            f"'vit-lora'). Got a {type(model).__name__} without LoRA instead.")
    return pairs
