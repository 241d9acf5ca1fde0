"""Prior-guided gradient inversion with no download: a generator trained on the adversary's
own public data, searched in its latent space, then in its weights (after Jeon, Kim, Lee,
Kim, Shin, Park, Ok 2021, "Gradient Inversion with Generative Image Prior", NeurIPS:
GIAS).

GIAS matches the observed update with images ``G(z)`` of a pre-trained generative model:
first over the latent ``z`` (the image stays on the prior's manifold), then, per image,
over the generator's weights as well, kept near the pre-trained ones (the image may leave
the manifold where the prior is wrong). Pre-trained generators are downloads; fedaudit
instead trains a small convolutional autoencoder on the adversary's public split (the items
no client holds: threat model ``hbc-server-population``, which holds population data) and
uses its decoder as ``G``.

Project choices, where the paper leaves room or assumes a download:

* **Prior**: encoder two stride-2 convolutions (16, 32 channels, ReLU) and a linear map to
  ``latent_dim`` (32); decoder the mirror image with transposed convolutions and a sigmoid,
  cropped to the input size. Trained ``prior_steps`` (400) Adam steps (lr 1e-3, minibatches
  of 64) on mean squared reconstruction error, seeded; trained once per attack instance and
  public split (the targets of one audit share it).
* **Latent search**: ``z`` starts at ``mu + sd * N(0, 1)`` with the mean and standard
  deviation of the public codes per dimension; the loss is Inverting Gradients' ``1 - cos``
  over all tensors plus ``latent_weight`` (1e-3) times ``mean(((z - mu) / sd)^2)``; Adam at
  ``lr`` (0.1) for ``iterations`` (500) with the learning rate divided by 10 at 3/8, 5/8
  and 7/8; ``restarts`` (2) batched with ``torch.func.vmap``, the one with the smallest
  ``1 - cos`` kept.
* **Weight search**: ``weight_iterations`` (200; 0 skips it) Adam steps over the best
  restart's latent and the decoder's weights (lr ``weight_lr`` 1e-4 for the weights), with
  ``weight_penalty`` (1.0) times the squared distance of the weights to the pre-trained
  ones, relative to their squared norm.
* Labels as Inverting Gradients: the true ones when the threat model knows them, else iDLG
  at batch 1 and LLG counts at larger batches.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad, vmap
from tqdm.auto import tqdm

from attacks.gradient_matching import attack_copy, cosine_distance, make_update_fn, observed_tensors
from attacks.label_recovery import recover_labels
from audit.core.attack import Attack, AttackResult, AttackView
from audit.core.errors import InvalidParameterError
from audit.core.validation import check_interval, check_known_keys, check_nonnegative, check_positive


class Autoencoder(nn.Module):
    """The image prior: ``decode(encode(x)) ~ x`` for images of ``input_shape`` in [0, 1]."""

    def __init__(self, input_shape: tuple[int, ...], latent_dim: int) -> None:
        super().__init__()
        c, h, w = input_shape
        self.input_shape = tuple(input_shape)
        self.side = (math.ceil(h / 4), math.ceil(w / 4))
        self.encoder = nn.Sequential(
            nn.Conv2d(c, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.LazyLinear(latent_dim))
        self.decoder = Decoder(input_shape, latent_dim, self.side)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class Decoder(nn.Module):
    """``G(z)``: latent (N, latent_dim) -> images (N, C, H, W) in [0, 1]."""

    def __init__(self, input_shape: tuple[int, ...], latent_dim: int, side: tuple[int, int]) -> None:
        super().__init__()
        c, self.h, self.w = input_shape
        self.side = side
        self.linear = nn.Linear(latent_dim, 32 * side[0] * side[1])
        self.up = nn.Sequential(
            nn.ReLU(), nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(16, c, 4, stride=2, padding=1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.up(self.linear(z).reshape(-1, 32, *self.side))
        return torch.sigmoid(x[..., : self.h, : self.w])


def train_prior(images: torch.Tensor, *, latent_dim: int, steps: int, seed: int,
                device: torch.device) -> tuple[Decoder, torch.Tensor, torch.Tensor]:
    """Train the autoencoder on ``images``; return its decoder and the mean and standard
    deviation of the images' codes per latent dimension."""
    torch.manual_seed(seed)  # the layers' initialisation
    ae = Autoencoder(tuple(images.shape[1:]), latent_dim).to(device)
    x = images.to(device)
    ae(x[:1])  # materialise the lazy layer
    opt = torch.optim.Adam(ae.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(x), (min(64, len(x)),), generator=g).to(device)
        opt.zero_grad(set_to_none=True)
        nn.functional.mse_loss(ae(x[idx]), x[idx]).backward()
        opt.step()
    with torch.no_grad():
        codes = ae.encoder(x)
    sd = codes.std(dim=0).clamp_min(1e-3) if len(x) > 1 else torch.ones_like(codes[0])
    decoder = ae.decoder.eval()
    for p in decoder.parameters():
        p.requires_grad_(False)
    return decoder, codes.mean(dim=0), sd


class PriorGuidedInversion(Attack):
    """GIAS-style inversion through a decoder trained on the adversary's public data."""

    name = "gias"
    family = "gradient-inversion"
    default_threat_model = "hbc-server-population"
    KEYS = ("latent_dim", "prior_steps", "iterations", "restarts", "lr", "latent_weight",
            "weight_iterations", "weight_lr", "weight_penalty")

    def __init__(self, *, latent_dim: int = 32, prior_steps: int = 400, iterations: int = 500,
                 restarts: int = 2, lr: float = 0.1, latent_weight: float = 1e-3,
                 weight_iterations: int = 200, weight_lr: float = 1e-4, weight_penalty: float = 1.0) -> None:
        self.latent_dim = check_interval("latent_dim", self.name, latent_dim, kind=int, low=1, high=4096)
        self.prior_steps = check_interval("prior_steps", self.name, prior_steps, kind=int, low=1, high=10**6)
        self.iterations = check_interval("iterations", self.name, iterations, kind=int, low=1, high=10**7)
        self.restarts = check_interval("restarts", self.name, restarts, kind=int, low=1, high=4096)
        self.lr = check_positive("lr", self.name, lr)
        self.latent_weight = check_nonnegative("latent_weight", self.name, latent_weight)
        self.weight_iterations = check_interval("weight_iterations", self.name, weight_iterations,
                                                kind=int, low=0, high=10**7)
        self.weight_lr = check_positive("weight_lr", self.name, weight_lr)
        self.weight_penalty = check_nonnegative("weight_penalty", self.name, weight_penalty)
        self._prior: tuple[Any, tuple] | None = None

    @classmethod
    def from_params(cls, **params: Any) -> "PriorGuidedInversion":
        """Build from user parameters (see the module docstring)."""
        check_known_keys(params, cls.KEYS, cls.name)
        return cls(**params)

    def params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.KEYS}

    def prior(self, view: AttackView, device: torch.device) -> tuple[Decoder, torch.Tensor, torch.Tensor]:
        """The decoder trained on ``view.public`` (cached for the same public split)."""
        if view.public is None or len(view.public) < 2:
            raise InvalidParameterError(
                f"The 'threat_model' of {self.name} must hold population data (e.g. "
                f"hbc-server-population) and the data must leave at least 2 items to no client, "
                f"to train the image prior. Got {view.threat_model.name!r} with "
                f"{0 if view.public is None else len(view.public)} public items instead.")
        key = (tuple(view.public.inputs.shape), float(view.public.inputs.double().sum()), str(device))
        if self._prior is None or self._prior[1] != key:
            self._prior = (train_prior(view.public.inputs.float(), latent_dim=self.latent_dim,
                                       steps=self.prior_steps, seed=0, device=device), key)
        return self._prior[0]

    def run(self, view: AttackView, *, generator: torch.Generator, device: torch.device,
            progress: bool = False) -> AttackResult:
        decoder, mu, sd = self.prior(view, device)
        labels = recover_labels(view, generator=generator).to(device)
        model, params = attack_copy(view.model, device, view.target.tensors, view.local_training)
        observed = observed_tensors(view.target.tensors, params, device)
        update_fn = make_update_fn(model, view.local_training, client_id=view.target.client_id,
                                   round=view.target.round)

        def distance(z: torch.Tensor) -> torch.Tensor:
            return cosine_distance(update_fn(params, decoder(z), labels), observed)

        def objective(z: torch.Tensor) -> torch.Tensor:
            return distance(z) + self.latent_weight * (((z - mu) / sd) ** 2).mean()

        shape = (self.restarts, view.batch_size, self.latent_dim)
        z = (mu + sd * torch.randn(shape, generator=generator).to(device)).requires_grad_(True)
        opt = torch.optim.Adam([z], lr=self.lr)
        sched = torch.optim.lr_scheduler.MultiStepLR(
            opt, milestones=[int(self.iterations * f) for f in (3 / 8, 5 / 8, 7 / 8)], gamma=0.1)
        step = vmap(grad(objective))
        for _ in tqdm(range(self.iterations), desc=f"{self.name} latent", disable=not progress, leave=False):
            opt.zero_grad(set_to_none=True)
            z.grad = step(z.detach())
            opt.step()
            sched.step()
        with torch.no_grad():
            final = vmap(distance)(z.detach())
        best = int(torch.argmin(final))
        z_best = z.detach()[best]
        images, latent_distance = decoder(z_best).detach(), float(final[best])
        weight_distance = latent_distance
        if self.weight_iterations:
            images, weight_distance = self._weight_search(decoder, z_best, update_fn, params, labels,
                                                          observed, progress)
        return AttackResult(images=images.cpu(), labels=labels.cpu(), stats={
            "latent_gradient_distance": latent_distance, "gradient_distance": weight_distance,
            "best_restart": best, "restart_distances": [float(v) for v in final]})

    def _weight_search(self, decoder, z0, update_fn, params, labels, observed, progress):
        """GIAS's second stage: the latent and the decoder's weights together, the weights
        held near the pre-trained ones."""
        base = {n: p.detach() for n, p in decoder.named_parameters()}
        scale = sum(float((p ** 2).sum()) for p in base.values()) + 1e-12
        weights = {n: p.clone().requires_grad_(True) for n, p in base.items()}
        z = z0.clone().requires_grad_(True)
        opt = torch.optim.Adam([{"params": [z], "lr": self.lr * 0.1},
                                {"params": list(weights.values()), "lr": self.weight_lr}])

        def distance() -> torch.Tensor:
            x = functional_call(decoder, weights, (z,))
            return cosine_distance(update_fn(params, x, labels), observed)

        for _ in tqdm(range(self.weight_iterations), desc=f"{self.name} weights", disable=not progress, leave=False):
            opt.zero_grad(set_to_none=True)
            drift = sum(((weights[n] - base[n]) ** 2).sum() for n in base) / scale
            (distance() + self.weight_penalty * drift).backward()
            opt.step()
        with torch.no_grad():
            images = functional_call(decoder, {n: w.detach() for n, w in weights.items()}, (z.detach(),))
            return images, float(distance())

