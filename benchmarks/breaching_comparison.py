"""fedaudit's Inverting Gradients beside breaching 0.1.2's stock ``invertinggradients``
configuration, on the same images, model and observation (issue 25, item 7).

Setting: ConvNet of width 32 with BatchNorm (clients in train mode: batch statistics),
the 8 first natural-32 images (32x32 RGB, one per source photograph), batch 1, FedSGD,
random init, seed 0; both attacks get the observed gradient and recover the label
themselves (fedaudit: iDLG; breaching: its stock ``bias-corrected`` strategy), with the same
number of iterations and one restart each.

breaching is run through its own API (``breaching.attacks.prepare_attack`` with
``breaching.get_attack_config("invertinggradients")``, only ``optim.max_iterations`` changed
and its progress printing silenced). It works in normalised input space, so it gets the
model without fedaudit's fixed ``standardize`` layer (no parameters: the gradient is the
same) and the data mean and standard deviation as its metadata; its reconstruction is
mapped back to [0, 1]. breaching is an optional extra (``pip install -c constraints.txt
-e ".[breaching]"``); without it the comparison prints the published figure instead:
breaching does not publish a per-iteration figure for this setting, so none is printed.

Usage: ``python3 benchmarks/breaching_comparison.py [--iterations 2000] [--threads 1]
[--device auto]``
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import time
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from audit.core.attack import ATTACKS
from audit.core.config import AuditConfig
from audit.core.device import describe_device, resolve_device, set_threads
from audit.harness import prepare, targets
from audit.metrics.image import psnr
from audit.metrics.scoring import align

SETTING = dict(defense="fedsgd", attack="inverting-gradients", dataset="natural-32", model="convnet",
               model_params={"width": 32, "norm": "batch"}, batch_size=1, num_targets=8, seed=0)


def breaching_available() -> bool:
    return importlib.util.find_spec("breaching") is not None


def breaching_reconstruction(view, iterations: int, device: torch.device) -> torch.Tensor:
    """breaching's stock Inverting Gradients on ``view``'s observation, images in [0, 1]."""
    import breaching

    with contextlib.redirect_stdout(io.StringIO()):
        cfg = breaching.get_attack_config("invertinggradients")
    cfg.optim.max_iterations = iterations
    cfg.optim.callback = iterations + 1
    standardize = view.model.standardize
    body = nn.Sequential(*[m for name, m in view.model.named_children() if name != "standardize"]).to(device)
    names = [n for n, _ in view.model.named_parameters()]
    mean = standardize.mean.flatten().tolist()
    std = standardize.std.flatten().tolist()
    metadata = SimpleNamespace(shape=tuple(view.input_shape), mean=mean, std=std, modality="vision",
                               classes=view.num_classes)
    payload = dict(parameters=[p.detach().to(device) for p in body.parameters()], buffers=None, metadata=metadata)
    shared = dict(gradients=[view.target.tensors[n].detach().to(device) for n in names], buffers=None,
                  metadata=dict(num_data_points=view.batch_size, labels=None, local_hyperparams=None))
    setup = dict(dtype=torch.float, device=device)
    attacker = breaching.attacks.prepare_attack(body, nn.CrossEntropyLoss(), cfg, setup)
    with contextlib.redirect_stdout(io.StringIO()):
        rec, _ = attacker.reconstruct([payload], [shared], {}, dryrun=False)
    dm = torch.tensor(mean).reshape(1, -1, 1, 1)
    ds = torch.tensor(std).reshape(1, -1, 1, 1)
    return (rec["data"].detach().cpu() * ds + dm).clamp(0, 1)


def compare(iterations: int, device: torch.device, emit=print) -> None:
    """Print the two mean PSNRs (and per-image figures) on the same 8 targets."""
    run = prepare(AuditConfig(**SETTING), device=device)
    todo = targets(run)
    truth = torch.cat([t.images for t in todo])
    ours = ATTACKS.create("inverting-gradients", iterations=iterations, restarts=1, target_batch=len(todo))
    start = time.perf_counter()
    results = ours.run_targets([t.view for t in todo], generators=[torch.Generator().manual_seed(i) for i in range(len(todo))],
                               device=device)
    ours_s = time.perf_counter() - start
    ours_p = np.array([float(psnr(align(r.images.cpu(), t.images), t.images)[0]) for r, t in zip(results, todo)])
    emit(f"setting: ConvNet width 32 + BatchNorm, natural-32 (32x32), batch 1, FedSGD, {len(todo)} images, "
         f"{iterations} iterations, 1 restart each")
    emit(f"{'fedaudit inverting-gradients':<36} mean PSNR {ours_p.mean():6.2f} dB  per image "
         f"{np.round(ours_p, 1).tolist()}  ({ours_s:.0f} s, targets batched)")
    if not breaching_available():
        emit("breaching 0.1.2 not installed (pip install -c constraints.txt -e '.[breaching]'): no "
             "figure to compare with; breaching publishes none for this setting and iteration count")
        return
    start = time.perf_counter()
    theirs = [breaching_reconstruction(t.view, iterations, device) for t in todo]
    theirs_s = time.perf_counter() - start
    theirs_p = np.array([float(psnr(align(x, t.images), t.images)[0]) for x, t in zip(theirs, todo)])
    emit(f"{'breaching 0.1.2 invertinggradients':<36} mean PSNR {theirs_p.mean():6.2f} dB  per image "
         f"{np.round(theirs_p, 1).tolist()}  ({theirs_s:.0f} s)")
    diff = ours_p - theirs_p
    emit(f"{'difference (fedaudit - breaching)':<36} mean {diff.mean():+.2f} dB, fedaudit ahead on "
         f"{int((diff > 0).sum())} of {len(diff)} images; baseline (dataset mean) "
         f"{float(psnr(run.dataset.mean_image().expand_as(truth), truth).mean()):.2f} dB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    threads = set_threads(args.threads)
    device = resolve_device(args.device)
    print(f"device: {describe_device(device)}; torch threads: {threads}; torch {torch.__version__}")
    compare(args.iterations, device)


if __name__ == "__main__":
    main()
