"""Generated receipts and forms with tamper masks and PSI masks (a FedRE stand-in).

FedRE (arXiv 2505.04889) evaluates a federated defense on text-tamper detection in real
receipt and document images: a model segments the tampered text regions (scored by IoU) and
each image has privacy-sensitive-information (PSI) regions. Real receipts cannot ship with
this project, so :func:`documents` *generates* a stand-in. Everything below is the project's
own choice, not the paper's data; the content and font are described in
:mod:`audit.data.generated.document_page`, the templates and their PSI fields in
:mod:`audit.data.generated.document_layouts`, the tamper operations in
:mod:`audit.data.generated.document_tampering`:

* **Seeds**: item ``i`` uses ``Faker.seed_instance(seed * 1_000_003 + i)`` and
  ``default_rng([seed, i])`` (noise: ``default_rng([seed, i, 1])``); templates and tampered
  items are drawn by ``default_rng(seed)``. So a seed gives bit-identical images, the same
  templates, fields and tampered items at every ``size`` (text cut to fit may differ by a
  character), and the same noise with and without tampering.
* **Rendering**: each document is drawn on a canvas 4x the output side (2x above 256 px)
  and reduced with a box filter (``Image.reduce``), then mild Gaussian sensor noise (sigma
  1.5/255) and 8-bit quantisation.
* **Templates** (``groups``): the first ``templates`` of
  :data:`~audit.data.generated.document_layouts.TEMPLATES` are used, items are assigned
  evenly in a seeded random order; :func:`template_split` makes non-IID client splits by
  template.
* **PSI masks** (``psi_masks``): every document has all four PSI fields. Each box is the
  text bounding box scaled to the output size with outward rounding. PSI masks follow the
  clean layout (a tampering that moves text does not move them).
* **Tampering**: exactly ``round(tamper_fraction * num_items)`` items (a seeded random
  choice) are tampered; the tamper mask (``labels``, 1 = tampered) is the union of the
  covered and pasted boxes; untampered items have an all-zero mask.
* **Editing trace** (``tamper_noise``, off by default): the tampered pixels get extra
  Gaussian noise of standard deviation ``tamper_noise`` grey levels (own stream
  ``default_rng([seed, i, 2])``), the noise-level inconsistency that an edited patch
  re-captured or re-saved elsewhere leaves and that forensic detectors look for. Without
  it the edits are exact re-renderings on the same page (ink +-12 levels, background
  +-4): at 64 px they are practically invisible, and a centrally trained U-Net reached
  only test IoU 0.12 after 600 Adam steps; with ``tamper_noise=8`` it reached 0.41, and
  0.58 at 32 px after 800 steps (``benchmarks/fedre_setting.py`` uses 32 px and 8).

The result is an :class:`~audit.data.dataset.ImageDataset` with ``task="segmentation"``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING

import numpy as np
import torch

from audit.core.errors import InvalidParameterError
from audit.core.validation import check_interval
from audit.data.generated.document_layouts import TEMPLATES, _render
from audit.data.generated.document_page import _Page
from audit.data.generated.document_tampering import _Donor, _tamper

if TYPE_CHECKING:
    from audit.data.dataset import ImageDataset

NOISE_SIGMA = 1.5  # in 8-bit grey levels

_OWNER = "dataset 'documents'"


def _scale_for(size: int) -> int:
    return 4 if size <= 256 else 2


def _psi_mask(page: _Page, scale: int, out: int) -> np.ndarray:
    mask = np.zeros((out, out), dtype=bool)
    for f in page.fields:
        if f.psi:
            x0, y0, x1, y1 = f.box
            x0, y0 = max(0, x0 // scale), max(0, y0 // scale)
            x1, y1 = min(out, -(-x1 // scale)), min(out, -(-y1 // scale))
            if x1 > x0 and y1 > y0:
                mask[y0:y1, x0:x1] = True
    return mask


_ITEM_STRIDE = 1_000_003  # > the largest num_items, so (seed, item) -> Faker seed is one-to-one


@functools.lru_cache(maxsize=16)
def _generate(size: int, num_items: int, seed: int, tamper_fraction: float, templates: int,
              tamper_noise: float = 0.0) -> "ImageDataset":
    from faker import Faker

    from audit.data.dataset import from_arrays

    fake = Faker("en_US")
    rng = np.random.default_rng(seed)
    scale = _scale_for(size)
    side = size * scale
    template_of = rng.permutation(np.arange(num_items) % templates)
    tampered = np.zeros(num_items, dtype=bool)
    tampered[rng.permutation(num_items)[: int(round(tamper_fraction * num_items))]] = True
    images = np.empty((num_items, size, size, 3), dtype=np.uint8)
    tamper = np.zeros((num_items, size, size), dtype=bool)
    psi = np.zeros((num_items, size, size), dtype=bool)
    donor: _Donor | None = None
    for i in range(num_items):
        # per-item streams: the same seed gives the same documents at every size
        fake.seed_instance(seed * _ITEM_STRIDE + i)
        page = _render(int(template_of[i]), side, fake, np.random.default_rng([seed, i]))
        psi[i] = _psi_mask(page, scale, size)
        clean = _Donor(page.im.copy(), [dataclasses.replace(f) for f in page.fields])
        if tampered[i]:
            tamper[i] = _tamper(page, donor, scale, size)
        donor = clean
        small = np.asarray(page.im.reduce(scale), dtype=np.float64)
        # own stream: the tampered and untampered versions of an item get the same noise
        noise = np.random.default_rng([seed, i, 1]).normal(0.0, NOISE_SIGMA, size=small.shape)
        if tamper_noise > 0 and tampered[i]:  # the editing trace, inside the tampered boxes only
            trace = np.random.default_rng([seed, i, 2]).normal(0.0, tamper_noise, size=small.shape)
            noise = noise + trace * tamper[i][..., None]
        images[i] = np.clip(np.rint(small + noise), 0, 255).astype(np.uint8)
    ds = from_arrays("documents", images.astype(np.float32) / np.float32(255.0), tamper.astype(np.int64), 2,
                     f"generated receipts and forms (Faker + PIL), {templates} templates, seed {seed}", None)
    return dataclasses.replace(ds, task="segmentation", psi_masks=torch.from_numpy(psi),
                               groups=torch.as_tensor(template_of, dtype=torch.long),
                               class_weights=TAMPER_CLASS_WEIGHTS)


#: the task's cross-entropy class weights (authentic, tampered): tampered pixels are ~2% of
#: the pixels, and unweighted cross-entropy learns to predict none of them (project choice)
TAMPER_CLASS_WEIGHTS = (1.0, 10.0)


def documents(*, size: int = 64, num_items: int = 256, seed: int = 0, tamper_fraction: float = 0.8,
              templates: int = 4, tamper_noise: float = 0.0) -> "ImageDataset":
    """Generated receipts and forms (size x size RGB) with tamper masks and PSI masks.

    ``labels`` are the tamper masks (N, H, W) in {0, 1} (``task="segmentation"``,
    ``num_classes=2``), ``psi_masks`` the PSI regions, ``groups`` the template id (see the
    module docstring, and those it names, for the choices). The same parameters give the same
    (cached) object: do not modify its tensors in place.
    """
    size = check_interval("size", _OWNER, size, kind=int, low=32, high=512)
    num_items = check_interval("num_items", _OWNER, num_items, kind=int, low=1, high=100_000)
    seed = check_interval("seed", _OWNER, seed, kind=int, low=0, high=2**32 - 1)
    tamper_fraction = check_interval("tamper_fraction", _OWNER, tamper_fraction, kind=float, low=0.0, high=1.0)
    templates = check_interval("templates", _OWNER, templates, kind=int, low=1, high=len(TEMPLATES))
    tamper_noise = check_interval("tamper_noise", _OWNER, tamper_noise, kind=float, low=0.0, high=255.0)
    return _generate(size, num_items, seed, tamper_fraction, templates, tamper_noise)


def template_split(groups: torch.Tensor, num_clients: int, *, seed: int) -> list[np.ndarray]:
    """Non-IID client splits by template: each client holds items of (mostly) one template.

    Choice: when ``num_clients >= #templates``, every template gets one client and each
    further client goes to the template with the most items per client so far (ties: lower
    template id), which is round-robin for equal-size templates; a template's items are
    shuffled (``seed``) and divided as evenly as possible among its clients, so every client
    holds a single template. When ``num_clients < #templates``, whole templates are packed
    onto clients (largest template first, onto the client with the fewest items), so a client
    may hold several templates. Every item is in exactly one client and no client is empty;
    ``num_clients > len(groups)`` is an error. Returns sorted int64 index arrays.
    """
    g = np.asarray(torch.as_tensor(groups).detach().cpu()).reshape(-1)
    n = len(g)
    if n == 0:
        raise InvalidParameterError("The 'groups' parameter of template_split must be non-empty. Got 0 items instead.")
    num_clients = check_interval("num_clients", "template_split", num_clients, kind=int, low=1)
    if num_clients > n:
        raise InvalidParameterError(
            f"The 'num_clients' parameter of template_split must be at most the number of items ({n}). "
            f"Got {num_clients!r} instead.")
    seed = check_interval("seed", "template_split", seed, kind=int, low=0)
    rng = np.random.default_rng(seed)
    values, inverse = np.unique(g, return_inverse=True)
    members = [rng.permutation(np.flatnonzero(inverse == t)) for t in range(len(values))]
    sizes = np.array([len(m) for m in members])
    if num_clients >= len(values):
        counts = np.ones(len(values), dtype=int)
        for _ in range(num_clients - len(values)):
            counts[int(np.argmax(sizes / counts))] += 1
        parts = [np.sort(p) for m, c in zip(members, counts) for p in np.array_split(m, c)]
    else:
        bins: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
        load = np.zeros(num_clients, dtype=int)
        for t in np.argsort(-sizes, kind="stable"):
            c = int(np.argmin(load))
            bins[c].append(members[t])
            load[c] += sizes[t]
        parts = [np.sort(np.concatenate(b)) for b in bins]
    return [p.astype(np.int64) for p in parts]
