"""FedRE PSI layer scores: the torch.func estimator against the per-layer autograd loop.

Builds the registry's small U-Net (``create_model("unet", input_shape=(3, 64, 64),
num_classes=2, ...)``, random init, float32) and scores its layers on random 64x64 images
with random segmentation masks as labels and one random rectangular PSI mask per image
(``--examples`` 10, ``--projections`` 8, same seed for both estimators). Times both
estimators (one warm-up call each excluded, best of ``--repeats``) and prints the thread
count, device, both times, their ratio (target >= 10x) and the largest relative difference
between the two estimators' scores.

Usage: ``python3 benchmarks/fedre_psi_scoring.py [--threads 1] [--device auto|cpu|cuda]
[--repeats 3] [--examples 10] [--projections 8] [--model unet]``
"""

from __future__ import annotations

import argparse
import time

import torch

from audit.core.device import describe_device, resolve_device, set_threads
from audit.models.registry import MODELS, create_model
from defenses.psi_scores import parameter_layers, psi_layer_scores, psi_layer_scores_loop


def best_time(fn, repeats: int, device: torch.device) -> tuple[float, dict[str, float]]:
    """Best wall-clock time of ``repeats`` calls after one warm-up call, and the last result."""
    result = fn()  # warm-up: torch.func's first-use setup, allocator, CUDA kernels
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--examples", type=int, default=10)
    ap.add_argument("--projections", type=int, default=8)
    ap.add_argument("--model", default="unet" if "unet" in MODELS else "convnet")
    args = ap.parse_args()
    threads = set_threads(args.threads)
    device = resolve_device(args.device)

    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = create_model(args.model, input_shape=(3, 64, 64), num_classes=2,
                         channel_mean=(0.5,) * 3, channel_std=(0.25,) * 3).to(device)
    n = args.examples
    images = torch.rand(n, 3, 64, 64, generator=gen)
    seg = args.model == "unet"  # per-pixel logits; the classifiers get one class per image
    labels = torch.randint(0, 2, (n, 64, 64) if seg else (n,), generator=gen)
    masks = torch.zeros(n, 64, 64, dtype=torch.bool)
    for i in range(n):  # a random rectangle (a "tax number field") per image
        h, w = (int(v) for v in torch.randint(6, 24, (2,), generator=gen))
        top = int(torch.randint(0, 64 - h, (1,), generator=gen))
        left = int(torch.randint(0, 64 - w, (1,), generator=gen))
        masks[i, top:top + h, left:left + w] = True
    images, labels, masks = images.to(device), labels.to(device), masks.to(device)

    kw = dict(projections=args.projections, seed=0)
    t_func, fast = best_time(lambda: psi_layer_scores(model, images, labels, masks, **kw), args.repeats, device)
    t_loop, slow = best_time(lambda: psi_layer_scores_loop(model, images, labels, masks, **kw), args.repeats, device)
    rel = max(abs(fast[k] - slow[k]) / max(abs(slow[k]), 1e-30) for k in slow)

    print(f"device: {describe_device(device)}; torch threads: {threads}; torch {torch.__version__}")
    print(f"model: {args.model} (3x64x64, 2 classes, float32), {len(parameter_layers(model))} layers, "
          f"{sum(p.numel() for p in model.parameters())} parameters; {n} examples x "
          f"{args.projections} projections; best of {args.repeats} after 1 warm-up")
    print(f"torch.func (jvp of grad, vmap examples x projections): {t_func:8.3f} s")
    print(f"autograd loop (per layer, example, projection):        {t_loop:8.3f} s")
    print(f"ratio loop / torch.func: {t_loop / t_func:.1f}x (target >= 10x)")
    print(f"max relative difference of the scores: {rel:.2e}")
    top = sorted(fast.items(), key=lambda kv: -kv[1])[:5]
    print("highest PSI scores: " + ", ".join(f"{k} {v:.3g}" for k, v in top))


if __name__ == "__main__":
    main()
