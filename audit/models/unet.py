"""A small U-Net (Ronneberger et al. 2015) for per-pixel segmentation, e.g. tamper masks.

Input (N, C, H, W) in [0, 1], output logits (N, num_classes, H, W); train with
``nn.CrossEntropyLoss()`` against integer masks (N, H, W), exactly as the federated
simulation trains the classifiers of :mod:`audit.models.registry` (``loss_fn(model(x), y)``).

Layout for ``depth`` = D (channels ``c_l = base_channels * 2**l``)::

    standardize -> enc1 -> enc2 -> ... -> encD -> bottleneck -> decD -> ... -> dec1 -> head
                    |______|______________|________skip (concatenation)__^________^

* ``enc{l}`` (l = 1..D) and ``bottleneck``: two 3x3 convolutions (``conv1``, ``conv2``),
  each followed by a norm (``norm1``, ``norm2``) and the activation (``act1``, ``act2``);
  ``enc{l}`` has ``c_{l-1}`` channels, the bottleneck ``c_D``. Every level after the first
  halves the resolution with its ``conv1`` (stride 2).
* ``dec{l}``: a 1x1 convolution ``up`` from ``c_l`` to ``c_{l-1}`` channels and bilinear 2x
  upsampling (``upsample``, no parameters; the two commute, and convolving first is 4x
  cheaper), concatenation with the output of ``enc{l}``, then ``conv1``/``conv2`` as in the
  encoder (``2 c_{l-1} -> c_{l-1} -> c_{l-1}``).
* ``head``: a 1x1 convolution to ``num_classes`` channels.

Choices: stride-2 convolutions instead of max pooling and bilinear upsampling instead of
transposed convolutions, with ELU by default, so the whole network is smooth (like
``convnet`` in :mod:`audit.models.registry`, the honest worst case for gradient inversion); no batch
norm, ever (federated clients and gradient inversion must not depend on batch
statistics): ``norm="group"`` is GroupNorm with ``gcd(4, channels)`` groups and the
convolutions before it have no bias, ``norm="none"`` keeps the biases. Module names are
stable (``enc1.conv1``, ``bottleneck.conv2``, ``dec1.up``, ``head``...) because defenses
group parameters by their owning module. H and W must be divisible by ``2**depth`` (checked
on ``input_shape`` at construction and on every input).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch
from torch import nn

from audit.core.errors import InvalidParameterError, invalid
from audit.core.validation import check_interval, check_options

# audit.models.registry imports this module to register "unet", so Standardize is imported lazily
UNET_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"elu": nn.ELU, "relu": nn.ReLU, "tanh": nn.Tanh}
UNET_NORMS = ("group", "none")


def _norm_factory(norm: str) -> Callable[[int], nn.Module]:
    if norm == "group":
        return lambda ch: nn.GroupNorm(math.gcd(4, ch), ch)
    return lambda ch: nn.Identity()


class ConvBlock(nn.Module):
    """conv1 -> norm1 -> act1 -> conv2 -> norm2 -> act2 (3x3 convolutions, ``stride`` on conv1)."""

    def __init__(self, cin: int, cout: int, *, stride: int, norm: str, activation: str) -> None:
        super().__init__()
        make_norm, bias = _norm_factory(norm), norm == "none"
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=bias)
        self.norm1 = make_norm(cout)
        self.act1 = UNET_ACTIVATIONS[activation]()
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=bias)
        self.norm2 = make_norm(cout)
        self.act2 = UNET_ACTIVATIONS[activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.norm1(self.conv1(x)))
        return self.act2(self.norm2(self.conv2(x)))


class UpBlock(nn.Module):
    """1x1 ``up`` convolution, bilinear 2x upsampling, skip concatenation, two 3x3 convolutions."""

    def __init__(self, cin: int, cout: int, *, norm: str, activation: str) -> None:
        super().__init__()
        make_norm, bias = _norm_factory(norm), norm == "none"
        self.up = nn.Conv2d(cin, cout, 1)
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv1 = nn.Conv2d(2 * cout, cout, 3, padding=1, bias=bias)
        self.norm1 = make_norm(cout)
        self.act1 = UNET_ACTIVATIONS[activation]()
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=bias)
        self.norm2 = make_norm(cout)
        self.act2 = UNET_ACTIVATIONS[activation]()

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = torch.cat([skip, self.upsample(self.up(x))], dim=1)
        x = self.act1(self.norm1(self.conv1(x)))
        return self.act2(self.norm2(self.conv2(x)))


class UNet(nn.Module):
    """The network built by :func:`unet` (see the module docstring for the layout)."""

    def __init__(
        self,
        *,
        in_channels: int,
        num_classes: int,
        channel_mean,
        channel_std,
        base_channels: int,
        depth: int,
        activation: str,
        norm: str,
    ) -> None:
        from audit.models.standardize import Standardize

        super().__init__()
        self.depth = depth
        widths = [base_channels * 2**level for level in range(depth + 1)]
        self.standardize = Standardize(channel_mean, channel_std)
        cin = in_channels
        for level in range(depth):
            block = ConvBlock(cin, widths[level], stride=1 if level == 0 else 2, norm=norm, activation=activation)
            self.add_module(f"enc{level + 1}", block)
            cin = widths[level]
        self.bottleneck = ConvBlock(cin, widths[depth], stride=1 if depth == 0 else 2, norm=norm, activation=activation)
        for level in reversed(range(depth)):
            self.add_module(f"dec{level + 1}", UpBlock(widths[level + 1], widths[level], norm=norm, activation=activation))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor = 2**self.depth
        if x.dim() != 4 or x.shape[-2] % factor or x.shape[-1] % factor:
            raise InvalidParameterError(
                f"The U-Net input must have shape (N, C, H, W) with H and W divisible by "
                f"2**depth = {factor}. Got shape {tuple(x.shape)} instead."
            )
        x = self.standardize(x)
        skips = []
        for level in range(1, self.depth + 1):
            x = getattr(self, f"enc{level}")(x)
            skips.append(x)
        x = self.bottleneck(x)
        for level in range(self.depth, 0, -1):
            x = getattr(self, f"dec{level}")(x, skips[level - 1])
        return self.head(x)


def unet(
    *,
    input_shape,
    num_classes,
    channel_mean,
    channel_std,
    base_channels: int = 8,
    depth: int = 2,
    activation: str = "elu",
    norm: str = "group",
) -> nn.Module:
    """Small U-Net: ``depth`` levels of ``base_channels * 2**level`` channels, logits per pixel.

    ``input_shape`` is (C, H, W) with H and W divisible by ``2**depth``; the network is fully
    convolutional, so it also runs on other such sizes. ``norm``: "group" | "none" (never
    batch norm); ``activation``: "elu" | "relu" | "tanh".
    """
    owner = "unet"
    base = check_interval("base_channels", owner, base_channels, kind=int, low=1, high=256)
    depth = check_interval("depth", owner, depth, kind=int, low=1, high=6)
    activation = check_options("activation", owner, activation, UNET_ACTIVATIONS)
    norm = check_options("norm", owner, norm, UNET_NORMS)
    num_classes = check_interval("num_classes", owner, num_classes, kind=int, low=1)
    factor = 2**depth
    shape_ok = (
        isinstance(input_shape, (tuple, list))
        and len(input_shape) == 3
        and all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in input_shape)
    )
    if not shape_ok:
        raise invalid("input_shape", owner, "(C, H, W), three positive ints", input_shape)
    c, h, w = (int(s) for s in input_shape)
    if h % factor or w % factor:
        raise invalid(
            "input_shape", owner,
            f"(C, H, W) with H and W divisible by 2**depth = {factor} (depth={depth})", (c, h, w),
        )
    for name, stats in (("channel_mean", channel_mean), ("channel_std", channel_std)):
        if len(list(stats)) != c:
            raise invalid(name, owner, f"a sequence of {c} values, one per input channel", stats)
    return UNet(
        in_channels=c, num_classes=num_classes, channel_mean=channel_mean, channel_std=channel_std,
        base_channels=base, depth=depth, activation=activation, norm=norm,
    )
