"""LPIPS (Zhang, Isola, Efros, Shechtman, Wang 2018, "The Unreasonable Effectiveness of Deep
Features as a Perceptual Metric") with the AlexNet backbone.

The linear calibration layers ship inside the ``lpips`` package; the AlexNet backbone
weights must already be in the local torch hub cache (``$TORCH_HOME/hub/checkpoints``):
nothing is downloaded. When they are absent the scorer is unavailable and says why, and
reports carry that sentence instead of a value — never a fake one.

Choices: inputs in [0, 1] are mapped to [-1, 1]; grayscale is repeated to 3 channels;
images smaller than 64x64 are upsampled bilinearly to 64x64 first (AlexNet's strides leave
nothing of an 8x8 image otherwise).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

ALEXNET_WEIGHTS_FILE = "alexnet-owt-7be5be79.pth"
MIN_SIDE = 64


def backbone_weights_path() -> Path:
    """Where torchvision caches the AlexNet weights (honours ``$TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_WEIGHTS_FILE


class LpipsScorer:
    """LPIPS distances, available only when the backbone weights are cached locally."""

    def __init__(self, *, device: str | torch.device = "cpu", weights_path: str | Path | None = None):
        self.device = torch.device(device)
        path = Path(weights_path) if weights_path else backbone_weights_path()
        self.weights_path = path
        self.available = False
        self.reason: str | None = None
        self._net = None
        if not path.is_file():
            self.reason = f"LPIPS not computed: backbone weights not found at {path}"
            return
        try:
            self._net = self._build(path)
            self.available = True
        except Exception as exc:  # any unreadable or mismatching file
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.reason = f"LPIPS not computed: backbone weights at {path} could not be loaded ({first})"

    def _build(self, path: Path):
        import lpips  # imported lazily: it prints and builds torchvision models

        net = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
        state = torch.load(path, map_location="cpu", weights_only=True)
        loaded = 0
        for slice_name in ("slice1", "slice2", "slice3", "slice4", "slice5"):
            for idx, module in getattr(net.net, slice_name).named_children():
                if isinstance(module, torch.nn.Conv2d):
                    module.weight.data.copy_(state[f"features.{idx}.weight"])
                    module.bias.data.copy_(state[f"features.{idx}.bias"])
                    loaded += 1
        if loaded != 5:
            raise RuntimeError(f"expected 5 AlexNet conv layers, loaded {loaded}")
        return net.eval().to(self.device)

    @torch.no_grad()
    def __call__(self, recon, truth) -> np.ndarray:
        """Per-image LPIPS distance between ``recon`` and ``truth`` (N, C, H, W) in [0, 1]."""
        if not self.available:
            raise RuntimeError(self.reason or "LPIPS is not available")
        a, b = (self._prepare(x) for x in (recon, truth))
        return self._net(a, b).reshape(-1).double().cpu().numpy()

    @torch.no_grad()
    def spatial(self, recon, truth) -> np.ndarray:
        """Per-pixel LPIPS distance maps (N, H, W) at the inputs' size (LPIPS's spatial mode)."""
        if not self.available:
            raise RuntimeError(self.reason or "LPIPS is not available")
        a, b = (self._prepare(x) for x in (recon, truth))
        self._net.spatial = True
        try:
            maps = self._net(a, b)
        finally:
            self._net.spatial = False
        size = tuple(torch.as_tensor(np.asarray(truth)).shape[-2:])
        if tuple(maps.shape[-2:]) != size:
            maps = torch.nn.functional.interpolate(maps, size=size, mode="bilinear",
                                                   align_corners=False)
        return maps[:, 0].double().cpu().numpy()

    def _prepare(self, x) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
        x = x.detach().float().to(self.device)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        if min(x.shape[-2:]) < MIN_SIDE:
            x = torch.nn.functional.interpolate(x, size=(MIN_SIDE, MIN_SIDE), mode="bilinear", align_corners=False)
        return x * 2.0 - 1.0
