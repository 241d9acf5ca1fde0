"""The setting of ``benchmarks/deer.py``: a domain-shift task on embedded digits and its
pre-trained ViT-LoRA base, cached as safetensors keyed by the base's config.

Choice of task (this project's, not the paper's: the paper fine-tunes BiomedCLIP,
pre-trained on web-scale image-text pairs, on medical images):

* **pre-training**: the base ViT and its head are trained centrally on *sharp* digits,
  the first ``PRETRAIN_IMAGES`` (600) of a fixed permutation of scikit-learn's 1797
  digits (``numpy.random.default_rng(0)``, whatever the benchmark's seed);
* **federated task**: the same ten classes, but every client and test image is *blurred*
  (a 3x3 box filter, zero padding: :func:`blur`), a domain shift, as from another scanner.
  The other 1197 images (disjoint from pre-training) are split per seed into 300 test
  images and 12 clients (Dirichlet(0.1) over labels, at least 5 images each).

Why this shift: the sharp-digit base learns the strokes and shapes of the ten classes (its
frozen head scores all ten, as DEeR's fixed text features do), but its accuracy on blurred
digits falls to about 0.65 (0.94 on sharp digits), and the LoRA factors on query, key and
value can recover most of it. Shifts tried while choosing, on one split (a base trained on
600 sharp digits for 1000 steps; 12 Dirichlet(0.1) clients, 10 rounds x 5 local steps,
lr 0.1, no DP; base -> no-DP LoRA test accuracy): rotation by 90 degrees 0.11 -> 0.21;
rotation by 15 degrees 0.29 -> 0.74; 30% zoom 0.45 -> 0.80; thicker strokes (3x3 max
filter) 0.48 -> 0.79; 3x3 blur 0.65 -> 0.85 (kept). Pre-training on classes 0-4 only and
fine-tuning on all ten failed outright (0.47 -> 0.49 after 20 rounds): the frozen head's
rows for the unseen classes were never trained towards anything.

The cache: the base's non-LoRA tensors (ViT, head, the standardisation buffers) are trained
by :func:`audit.fl.pretraining.pretrain` and stored through
:func:`audit.fl.parallel_training.train_models` (serial backend) in a
:class:`audit.models.cache.ModelCache`, keyed by :func:`base_spec`; a run with the same
config loads them instead of training. The LoRA factors are not cached: each seed draws its
own LoRA init (A Kaiming-uniform, B zero) on the cached base.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from audit.core.updates import ClientData
from audit.data.client_partition import dirichlet_split
from audit.data.registry import create_dataset
from audit.fl.parallel_training import train_models
from audit.fl.pretraining import pretrain
from audit.models.cache import ModelCache
from audit.models.lora import lora_parameter_names
from audit.models.registry import create_model

SIZE = 16
PRETRAIN_IMAGES = 600
TEST_IMAGES = 300
CLIENTS = 12
#: the model of the benchmark (``vit-lora``'s defaults, written out so that they key the cache)
MODEL = {"hidden": 64, "layers": 4, "heads": 4, "patch": 4, "mlp": 128, "r": 8, "alpha": 8.0,
         "targets": "query,key,value"}


def blur(images: torch.Tensor) -> torch.Tensor:
    """The federated domain: a 3x3 box filter with zero padding (edges darken a little)."""
    return F.avg_pool2d(images, 3, stride=1, padding=1)


def base_spec(*, steps: int, lr: float, batch_size: int, seed: int, device: str) -> dict[str, Any]:
    """The JSON-ready config that keys the pre-trained base in the cache."""
    return {"purpose": "benchmarks/deer.py base", "dataset": "digits", "size": SIZE,
            "pretrain_images": f"first {PRETRAIN_IMAGES} of numpy default_rng(0).permutation",
            "pretrain_domain": "sharp", "model": "vit-lora", "model_params": MODEL,
            "steps": steps, "lr": lr, "batch_size": batch_size, "seed": seed, "device": device,
            "stored": "non-LoRA tensors"}


def _build(ds, seed: int):
    torch.manual_seed(seed)
    return create_model("vit-lora", input_shape=ds.input_shape, num_classes=ds.num_classes,
                        channel_mean=ds.channel_mean, channel_std=ds.channel_std, **MODEL)


@dataclass
class Setting:
    """The data and the base of one benchmark run."""

    ds: Any  # the sharp digits (ImageDataset), its statistics standardise the model's input
    blurred: torch.Tensor
    base: dict[str, torch.Tensor]  # the pre-trained non-LoRA tensors
    loaded: bool  # whether ``base`` came from the cache
    seconds: float  # pre-training or loading time

    def split(self, seed: int):
        """(test indices, clients) of ``seed``: disjoint from pre-training and each other."""
        rest = np.random.default_rng(0).permutation(len(self.ds))[PRETRAIN_IMAGES:]
        rest = rest[np.random.default_rng(seed).permutation(len(rest))]
        test, train = rest[:TEST_IMAGES], rest[TEST_IMAGES:]
        parts = dirichlet_split(self.ds.labels[train], CLIENTS, alpha=0.1, seed=seed, min_size=5)
        clients = [ClientData(self.blurred[train[p]], self.ds.labels[train[p]]) for p in parts]
        return test, clients

    def model(self, seed: int, device):
        """The pre-trained base with a fresh LoRA init drawn from ``seed``."""
        model = _build(self.ds, seed)
        missing, unexpected = model.load_state_dict(self.base, strict=False)
        if unexpected or set(missing) != lora_parameter_names(model):
            raise RuntimeError(f"cached base does not fit the model: missing {missing}, "
                               f"unexpected {unexpected}")
        return model.to(device)


def setting(*, steps: int, lr: float, batch_size: int, seed: int, device,
            cache: ModelCache | None) -> Setting:
    """The digits, their blurred copy and the pre-trained base (from ``cache`` when there)."""
    ds = create_dataset("digits", size=SIZE)
    pre = np.random.default_rng(0).permutation(len(ds))[:PRETRAIN_IMAGES]

    def train(spec) -> dict[str, torch.Tensor]:
        model = _build(ds, spec["seed"]).to(device)
        pretrain(model, ds.subset(pre), steps=spec["steps"], lr=spec["lr"],
                 batch_size=spec["batch_size"], seed=spec["seed"])
        lora = lora_parameter_names(model)
        return {n: t for n, t in model.state_dict().items() if n not in lora}

    spec = base_spec(steps=steps, lr=lr, batch_size=batch_size, seed=seed,
                     device=torch.device(device).type)
    t = time.perf_counter()
    (base,), stats = train_models([spec], train, cache=cache, backend="serial")
    return Setting(ds, blur(ds.images), base, stats.loaded == 1, time.perf_counter() - t)
