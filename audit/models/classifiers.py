"""Small image classifiers built from configs with random init (no downloaded weights).

Every model starts with a fixed :class:`Standardize` layer named ``standardize`` (the
dataset's per-channel mean and std), so data stay in [0, 1] everywhere else and attacks box
their candidates to that range.

Choices: ``convnet`` uses stride-2 convolutions and a flattened linear head, no pooling and
no batch norm, with ELU by default: smooth activations and a spatially resolved head are
what the gradient-inversion literature attacks most easily, i.e. the honest worst case for
the defender (``activation=relu`` is available); ``resnet`` uses GroupNorm by default so
its update does not depend on batch statistics. ``vit`` and ``vit-lora`` (a transformers ViT,
with peft LoRA for federated LoRA defenses) live in :mod:`audit.models.vit_lora`, which imports
transformers and peft only when a model is built (they take seconds to import).
``tiny-lm`` and ``tiny-lm-lora`` (a small transformers GPT-2 on byte-level token ids, with
peft LoRA for federated LLM fine-tuning) live in :mod:`audit.models.text_lm`, with the same lazy imports.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from audit.core.validation import check_interval, check_options
from audit.models.standardize import Standardize

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "elu": nn.ELU,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
}


def _act(name: str, owner: str) -> nn.Module:
    return ACTIVATIONS[check_options("activation", owner, name, ACTIVATIONS)]()


#: the ConvNet's normalisation after each convolution
CONVNET_NORMS = ("none", "batch")


def convnet(*, input_shape, num_classes, channel_mean, channel_std, width: int = 16, activation: str = "elu",
            norm: str = "none") -> nn.Module:
    """Small ConvNet: 3 convolutions (two of stride 2) and a linear head; ``width`` channels;
    ``norm="batch"`` puts a BatchNorm after each convolution (``norm1``..``norm3``, before
    the activation; breaching's ConvNet cases have one too)."""
    w = check_interval("width", "convnet", width, kind=int, low=1, high=512)
    norm = check_options("norm", "convnet", norm, CONVNET_NORMS)
    c, h, wd = input_shape
    side = lambda n: math.ceil(math.ceil(n / 2) / 2)  # noqa: E731
    layers: dict[str, nn.Module] = {"standardize": Standardize(channel_mean, channel_std)}
    for i, (cin, cout, stride) in enumerate([(c, w, 1), (w, w, 2), (w, 2 * w, 2)], start=1):
        layers[f"conv{i}"] = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
        if norm == "batch":
            layers[f"norm{i}"] = nn.BatchNorm2d(cout)
        layers[f"act{i}"] = _act(activation, "convnet")
    layers["flatten"] = nn.Flatten()
    layers["fc"] = nn.Linear(2 * w * side(h) * side(wd), num_classes)
    return nn.Sequential(dict_of(**layers))


def mlp(*, input_shape, num_classes, channel_mean, channel_std, hidden: int = 256, activation: str = "relu") -> nn.Module:
    """MLP whose first layer is fully connected (the analytic attack's target)."""
    hidden = check_interval("hidden", "mlp", hidden, kind=int, low=1, high=65536)
    return nn.Sequential(
        dict_of(
            standardize=Standardize(channel_mean, channel_std), flatten=nn.Flatten(),
            fc1=nn.Linear(math.prod(input_shape), hidden), act1=_act(activation, "mlp"),
            fc2=nn.Linear(hidden, num_classes),
        )
    )


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (He et al. 2016)."""

    def __init__(self, cin: int, cout: int, stride: int, norm: Callable[[int], nn.Module]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.norm1 = norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.norm2 = norm(cout)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), norm(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.norm1(self.conv1(x)))
        return torch.relu(self.norm2(self.conv2(out)) + self.shortcut(x))


def resnet(*, input_shape, num_classes, channel_mean, channel_std, width: int = 16, blocks: int = 1, norm: str = "group") -> nn.Module:
    """Small ResNet: 3 stages (widths w, 2w, 4w; strides 1, 2, 2), global pooling, linear head."""
    w = check_interval("width", "resnet", width, kind=int, low=1, high=256)
    blocks = check_interval("blocks", "resnet", blocks, kind=int, low=1, high=8)
    norm = check_options("norm", "resnet", norm, ("group", "batch", "none"))
    make_norm = {
        "group": lambda ch: nn.GroupNorm(min(4, ch), ch),
        "batch": nn.BatchNorm2d,
        "none": lambda ch: nn.Identity(),
    }[norm]
    layers: dict[str, nn.Module] = {
        "standardize": Standardize(channel_mean, channel_std),
        "stem": nn.Conv2d(input_shape[0], w, 3, padding=1, bias=False),
        "stem_norm": make_norm(w),
        "stem_act": nn.ReLU(),
    }
    cin = w
    for stage, (cout, stride) in enumerate(((w, 1), (2 * w, 2), (4 * w, 2)), start=1):
        for b in range(blocks):
            layers[f"stage{stage}_{b}"] = BasicBlock(cin, cout, stride if b == 0 else 1, make_norm)
            cin = cout
    layers.update(pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), fc=nn.Linear(cin, num_classes))
    return nn.Sequential(dict_of(**layers))


def dict_of(**modules: nn.Module):
    """An ordered name -> module mapping for ``nn.Sequential``."""
    from collections import OrderedDict

    return OrderedDict(modules)

