"""fedaudit's own models: the ``builtin`` entry point of group ``fedaudit.models``."""

from __future__ import annotations

from audit.core.registry import Registry
from audit.models.classifiers import convnet, mlp, resnet
from audit.models.text_lm import tiny_lm, tiny_lm_lora
from audit.models.unet import unet
from audit.models.vit_lora import vit, vit_lora


def register(registry: Registry) -> None:
    """Register the image classifiers, the U-Net, the ViTs and the tiny LMs."""
    registry.register("convnet", convnet)
    registry.register("mlp", mlp)
    registry.register("resnet", resnet)
    registry.register("unet", unet)
    registry.register("vit", vit)
    registry.register("vit-lora", vit_lora)
    registry.register("tiny-lm", tiny_lm)
    registry.register("tiny-lm-lora", tiny_lm_lora)
