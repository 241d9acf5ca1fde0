"""Top-level training functions for the parallel-training tests.

Ray pickles ``train_fn`` by reference (module and name), so these live in a module of
their own that the Ray workers import; the tests put this folder on the workers'
``PYTHONPATH`` through ``ray_runtime_env``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

# serial-backend bookkeeping (the serial backend runs in the test process)
CALLS: list[int] = []
FAIL_SEEDS: set[int] = set()


def tiny_train(spec: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """A deterministic few-step SGD fit of a linear model, seeded by ``spec['seed']``."""
    if spec.get("raise"):
        raise ValueError(f"spec {spec['seed']} asked to fail: {spec['raise']}")
    gen = torch.Generator().manual_seed(int(spec["seed"]))
    dim = int(spec.get("dim", 4))
    x = torch.randn(32, dim, generator=gen)
    y = x @ torch.randn(dim, 1, generator=gen)
    w = torch.zeros(dim, 1, requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    for _ in range(int(spec.get("steps", 20))):
        loss = ((x @ w + b - y) ** 2).mean()
        gw, gb = torch.autograd.grad(loss, (w, b))
        with torch.no_grad():
            w -= 0.1 * gw
            b -= 0.1 * gb
    return {"weight": w.detach().t(), "bias": b.detach(), "threads": torch.tensor(
        torch.get_num_threads())}


def counting_train(spec: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """:func:`tiny_train` that records each call in ``CALLS`` and fails on ``FAIL_SEEDS``."""
    seed = int(spec["seed"])
    if seed in FAIL_SEEDS:
        raise RuntimeError(f"boom on seed {seed}")
    CALLS.append(seed)
    return tiny_train(spec)


def not_tensors(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A broken train_fn whose result is not a state dict."""
    return {"weight": [1.0, 2.0]}
