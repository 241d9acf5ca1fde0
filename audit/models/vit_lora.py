"""A small Vision Transformer with LoRA adapters, the model of federated LoRA defenses.

DEeR (Zhu, Mao, Liu, Yuan: "DEeR: Deviation Eliminating and Noise Regulating for
Privacy-preserving Federated Low-rank Adaptation", arXiv 2410.12926) fine-tunes a pretrained
ViT in federated learning by sharing only LoRA matrices (Hu et al. 2021). Its official code
(github.com/CUHK-AIM-Group/DEeR, ``models_dict/CLIP_DyLoRA.py``) freezes the ViT image
encoder of BiomedCLIP and adds LoRA to the query, key and value projections of every block
with ``r = 8`` and ``alpha = 8``: ``W x + (alpha / r) B A x`` with A (r x d_in)
Kaiming-uniform (``a = sqrt(5)``, the default of ``nn.Linear``) and B (d_out x r) zero, so
the adapted model equals the base at initialisation. Classes are scored against fixed text
features there; no classification head is trained, only LoRA is shared.

This module builds that stack small and from configs: ``vit`` is a
``transformers.ViTForImageClassification`` behind the project's ``Standardize`` layer,
``vit-lora`` the same ViT with LoRA injected by ``peft`` (``LoraConfig(r, lora_alpha=alpha,
lora_dropout=0, bias="none", init_lora_weights=True)``, whose init is exactly the one above:
``peft.tuners.lora.layer.LoraLayer.reset_lora_parameters``).

Choices of this project:

* Random init from a ``ViTConfig`` (seeded by torch's global RNG), or a local checkpoint
  directory (``checkpoint=``, e.g. written by :func:`save_checkpoint` after
  :func:`audit.fl.pretraining.pretrain` under :meth:`ViTClassifier.pretraining`); nothing is ever
  downloaded (``local_files_only=True``). With a checkpoint, the architecture comes from
  its ``config.json`` and ``hidden``, ``layers``, ``heads``, ``patch`` and ``mlp`` are
  ignored; its image size, channels and number of labels must match the data.
* Square inputs only (``image_size = H = W``), ``H`` divisible by ``patch``; dropout 0
  (``ViTConfig``'s defaults).
* Eager attention (``attn_implementation="eager"``): the SDPA kernel transformers picks on
  CPU has no double backward, which gradient-inversion attacks need (they differentiate the
  gradient-matching loss through the model's gradients).
* The DEeR model has no trained head, so in ``vit-lora`` the classification head is frozen
  with the rest of the base: only the LoRA A and B matrices are trainable, and they are
  what a client shares. A head for the task comes from pre-training the base
  (:meth:`ViTClassifier.pretraining`), before the federated LoRA fine-tuning.
* ``targets`` names the attention projections in DEeR's words (``query``, ``key``,
  ``value``, and ``output``), mapped to the module names of the installed transformers
  (``attention.q_proj`` ... in transformers 5; ``attention.attention.query`` ... before).
* The model returns a logits tensor (not a transformers output object), like every model
  of :mod:`audit.models.registry`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from audit.core.errors import invalid
from audit.core.validation import check_interval, check_options
from audit.models.hf_checkpoint import bad_checkpoint, checkpoint_dir, load_pretrained, save_base
from audit.models.lora import base_trainable, lora_modules, lora_parameter_names

if TYPE_CHECKING:  # pragma: no cover - imported lazily (transformers takes seconds to import)
    from transformers import ViTForImageClassification

#: ``targets`` entries and the (suffixes of the) module names they stand for, newest first.
TARGETS: dict[str, tuple[str, ...]] = {
    "query": ("attention.q_proj", "attention.attention.query"),
    "key": ("attention.k_proj", "attention.attention.key"),
    "value": ("attention.v_proj", "attention.attention.value"),
    "output": ("attention.o_proj", "attention.output.dense"),
}












class ViTClassifier(nn.Module):
    """``standardize`` (fixed per-channel mean and std) then a transformers ViT; returns logits."""

    def __init__(self, standardize: nn.Module, vit: ViTForImageClassification) -> None:
        super().__init__()
        self.standardize = standardize
        self.vit = vit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vit(pixel_values=self.standardize(x)).logits

    @property
    def has_lora(self) -> bool:
        """Whether LoRA adapters are injected."""
        return any(True for _ in lora_modules(self))

    @contextlib.contextmanager
    def pretraining(self) -> Iterator[ViTClassifier]:
        """Within: the base ViT and its head trainable, LoRA frozen; flags restored after.

        LoRA's B is zero at init, so LoRA does not change the outputs while the base is
        pre-trained. Without LoRA everything is trainable within.
        """
        with base_trainable(self):
            yield self




def _side(input_shape, owner: str) -> tuple[int, int]:
    if len(input_shape) != 3 or input_shape[1] != input_shape[2]:
        raise invalid("input_shape", owner, "(C, H, W) with H == W (square images)", tuple(input_shape))
    return int(input_shape[0]), int(input_shape[1])




def _load_checkpoint(checkpoint: Any, *, channels: int, side: int, num_classes: int, owner: str):
    from transformers import ViTConfig, ViTForImageClassification

    path = checkpoint_dir(checkpoint, owner=owner, model_type="vit", family="ViT")
    config = ViTConfig.from_pretrained(str(path), local_files_only=True)
    size = config.image_size
    size = tuple(size) if isinstance(size, (list, tuple)) else (size, size)
    for key, have, want in (("image_size", size, (side, side)), ("num_channels", config.num_channels, channels),
                            ("num_labels", config.num_labels, num_classes)):
        if have != want:
            shown = have[0] if key == "image_size" and have[0] == have[1] else have
            wanted = side if key == "image_size" else want
            raise bad_checkpoint(owner, f"a ViT checkpoint with {key}={wanted!r} (the data's)", str(checkpoint),
                                  f"{key}={shown!r}")
    return load_pretrained(ViTForImageClassification, path, config, owner=owner, checkpoint=checkpoint,
                           what="the ViT classifier")




def _build(owner: str, *, input_shape, num_classes, channel_mean, channel_std, hidden, layers, heads, patch, mlp,
           checkpoint) -> ViTClassifier:
    from audit.models.standardize import Standardize  # audit.models.registry registers this module's factories

    channels, side = _side(input_shape, owner)
    num_classes = check_interval("num_classes", owner, num_classes, kind=int, low=1)
    hidden = check_interval("hidden", owner, hidden, kind=int, low=1, high=8192)
    layers = check_interval("layers", owner, layers, kind=int, low=1, high=64)
    heads = check_interval("heads", owner, heads, kind=int, low=1, high=hidden)
    if hidden % heads:
        raise invalid("hidden", owner, f"an int divisible by heads={heads}", hidden)
    patch = check_interval("patch", owner, patch, kind=int, low=1, high=side)
    if side % patch:
        raise invalid("patch", owner, f"a divisor of the image side {side}", patch)
    mlp = check_interval("mlp", owner, mlp, kind=int, low=1, high=65536)

    if checkpoint is None:
        from transformers import ViTConfig, ViTForImageClassification

        config = ViTConfig(image_size=side, patch_size=patch, num_channels=channels, hidden_size=hidden,
                           num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=mlp,
                           num_labels=num_classes, attn_implementation="eager")
        base = ViTForImageClassification(config)
    else:
        base = _load_checkpoint(checkpoint, channels=channels, side=side, num_classes=num_classes, owner=owner)
    model = ViTClassifier(Standardize(channel_mean, channel_std), base)
    model.train()  # from_pretrained returns eval mode; a fresh nn.Module trains
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def vit(*, input_shape, num_classes, channel_mean, channel_std, hidden: int = 64, layers: int = 4, heads: int = 4,
        patch: int = 4, mlp: int = 128, checkpoint: str | None = None) -> ViTClassifier:
    """Small ViT (transformers), random init or a local ``checkpoint``; all parameters trainable."""
    return _build("vit", input_shape=input_shape, num_classes=num_classes, channel_mean=channel_mean,
                  channel_std=channel_std, hidden=hidden, layers=layers, heads=heads, patch=patch, mlp=mlp,
                  checkpoint=checkpoint)


def _parse_targets(targets: Any, owner: str) -> list[str]:
    if not isinstance(targets, str):
        raise invalid("targets", owner, "a comma-separated str among " + ", ".join(TARGETS), targets)
    names = [t.strip() for t in targets.split(",") if t.strip()]
    if not names or len(set(names)) != len(names):
        raise invalid("targets", owner, "a non-empty comma-separated str without repeats", targets)
    for t in names:
        check_options("targets", owner, t, TARGETS)
    return names


def _target_modules(model: ViTClassifier, targets: list[str], layers: int) -> list[str]:
    """Names (in ``model``) of the Linear modules ``targets`` stand for, one per block each."""
    found = []
    for t in targets:
        for suffix in TARGETS[t]:
            names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.endswith("." + suffix)]
            if names:
                break
        if len(names) != layers:
            raise RuntimeError(f"vit-lora: found {len(names)} modules for target {t!r} in a ViT of {layers} "
                               f"layers (suffixes {TARGETS[t]}); unsupported transformers layout")
        found.extend(names)
    return found


def vit_lora(*, input_shape, num_classes, channel_mean, channel_std, hidden: int = 64, layers: int = 4,
             heads: int = 4, patch: int = 4, mlp: int = 128, checkpoint: str | None = None, r: int = 8,
             alpha: float = 8, targets: str = "query,key,value") -> ViTClassifier:
    """The ViT with LoRA (peft) on ``targets`` of every block; only LoRA A and B trainable."""
    owner = "vit-lora"
    names = _parse_targets(targets, owner)
    alpha = check_interval("alpha", owner, alpha, kind=float, low=0, closed="right")
    r = check_interval("r", owner, r, kind=int, low=1, high=8192)
    model = _build(owner, input_shape=input_shape, num_classes=num_classes, channel_mean=channel_mean,
                   channel_std=channel_std, hidden=hidden, layers=layers, heads=heads, patch=patch, mlp=mlp,
                   checkpoint=checkpoint)
    modules = _target_modules(model, names, model.vit.config.num_hidden_layers)

    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(r=r, lora_alpha=alpha, target_modules=modules, lora_dropout=0.0, bias="none",
                        init_lora_weights=True)
    injected = inject_adapter_in_model(config, model)
    assert injected is model
    lora = lora_parameter_names(model)
    for name, p in model.named_parameters():
        p.requires_grad_(name in lora)
    return model






def save_checkpoint(model: ViTClassifier, path) -> Path:
    """Write the base ViT of ``model`` (no LoRA) to the directory ``path`` (``save_pretrained``).

    The checkpoint holds the ViT only; ``standardize`` comes from the data when it is
    loaded (``checkpoint=path``). Save the base before injecting LoRA.
    """
    if not isinstance(model, ViTClassifier):
        raise invalid("model", "save_checkpoint", "a ViTClassifier (model 'vit')", type(model).__name__)
    return save_base(model, model.vit, path, what="a ViT")


