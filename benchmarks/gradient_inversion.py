"""Figures of the foundation issue: gradient inversion against FedSGD and DP-FedAvg.

Prints, for a random-init ConvNet (width 16, ELU) on the 8 first embedded natural 32x32
images (one per source image), batch 1:

* Inverting Gradients (``--ig-iterations``, default 2000) mean PSNR vs the dataset-mean
  baseline, undefended and under local DP-FedAvg (clip 1, z calibrated to epsilon = 1 at
  delta = 1e-5 by the PLD accountant);
* DLG on the same setting;
* iDLG label recovery over 20 images (batch 1) and LLG-style batch label recovery at
  batch 8 (3 batches);
* the analytic FC-layer attack on an MLP at batch 1;
* the wall-clock ratio of 4 sequential Inverting-Gradients runs to R = 4 restarts batched
  as one optimisation.

Issue 25's figures (``--section engine``, also run by default): Inverting Gradients on a
ConvNet of width 32 with BatchNorm, 32x32 natural images, batch 1, ``--ig-iterations``
iterations, beside breaching 0.1.2's stock ``invertinggradients`` configuration on the same
images, model and observation (:mod:`breaching_comparison`), and the engine's
restart-iterations per CPU-second with 8 targets batched vs one at a time
(:mod:`inversion_engine`).

Usage: ``python3 benchmarks/gradient_inversion.py [--threads 1] [--device auto] [--quick]
[--section all|foundation|engine]``
(``--quick``: 10x fewer iterations, for a smoke run; its figures are not the issue's).
"""

from __future__ import annotations

import argparse
import time

import torch

from audit.core.attack import ATTACKS
from audit.core.config import AuditConfig
from audit.core.device import describe_device, resolve_device, set_threads
from audit.harness import attack_run, prepare, run_audit


def metric(finding: dict, name: str) -> dict:
    return next(m for m in finding["metrics"] if m["name"] == name)


def psnr_line(label: str, finding: dict) -> str:
    m = metric(finding, "psnr")
    return (
        f"{label:<44} PSNR mean {m['mean']:6.2f} dB (worst case {m['worst']:6.2f}) | "
        f"baseline mean {m['baseline']['mean']:6.2f} dB | {finding['runtime_s']:6.1f} s"
    )


def emit(rows: list[str], line: str) -> None:
    """Print ``line`` now and keep it."""
    print(line, flush=True)
    rows.append(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--ig-iterations", type=int, default=2000)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--section", choices=("all", "foundation", "engine"), default="all")
    args = ap.parse_args()
    threads = set_threads(args.threads)
    device = resolve_device(args.device)
    k = 10 if args.quick else 1
    ig_iters = max(args.ig_iterations // k, 1)
    print(f"device: {describe_device(device)}; torch threads: {threads}; torch {torch.__version__}")
    if args.section in ("all", "foundation"):
        foundation(device, ig_iters, k)
    if args.section in ("all", "engine"):
        from breaching_comparison import compare
        from inversion_engine import engine_rates

        compare(ig_iters, device)
        engine_rates(device, iterations=max(60 // k, 2), restarts=2, compile_too=not args.quick)


def foundation(device, ig_iters: int, k: int) -> None:
    """The foundation issue's figures."""

    def audit(**kw) -> dict:
        return run_audit(AuditConfig(**kw), device=device, lpips_scorer=None)

    ig = {"iterations": ig_iters, "restarts": 2}
    base = dict(dataset="natural-32", model="convnet", batch_size=1, num_targets=8, seed=0)
    rows: list[str] = []  # lines are printed as they come, so a long run shows progress
    f = audit(defense="fedsgd", attack="inverting-gradients", attack_params=ig, **base)
    emit(rows, psnr_line(f"IG, FedSGD, {ig_iters} it, 2 restarts", f))
    f = audit(defense="fedsgd", attack="dlg", attack_params={"iterations": max(50 // k, 1)}, **base)
    emit(rows, psnr_line(f"DLG, FedSGD, {max(50 // k, 1)} L-BFGS steps", f))
    dp = {"clip_norm": 1.0, "target_epsilon": 1.0, "delta": 1e-5, "mode": "local"}
    f = audit(defense="dp-fedavg", defense_params=dp, attack="inverting-gradients", attack_params=ig, **base)
    claim = f["claim"]
    emit(rows, psnr_line(f"IG, local DP-FedAvg eps={claim['epsilon']:.3f}", f))
    emit(rows, f"{'':<44} claim: {claim['statement']} [{claim['accountant']}]")
    # The auditor's stronger setting under noise: a heavy TV prior (chosen with knowledge
    # of the ground truth, which favours the attacker, i.e. is conservative for the defense).
    f = audit(defense="dp-fedavg", defense_params=dp, attack="inverting-gradients",
              attack_params={**ig, "tv_weight": 1.0}, **base)
    emit(rows, psnr_line("IG tv_weight=1.0, local DP-FedAvg eps=1", f))
    f = audit(defense="fedsgd", attack="llg", dataset="natural-32", model="convnet", batch_size=1, num_targets=20)
    emit(rows, f"{'iDLG label recovery, batch 1, 20 images':<44} accuracy {metric(f, 'label_accuracy')['mean']:.3f}")
    f = audit(defense="fedsgd", attack="llg", dataset="natural-32", model="convnet", batch_size=8, num_targets=3)
    emit(rows, f"{'LLG label recovery, batch 8, 3 batches':<44} accuracy {metric(f, 'label_accuracy')['mean']:.3f}")
    f = audit(defense="fedsgd", attack="analytic-fc", dataset="natural-32", model="mlp", batch_size=1, num_targets=8)
    emit(rows, psnr_line("analytic FC layer, MLP, batch 1", f))

    cfg = AuditConfig(defense="fedsgd", dataset="natural-32", model="convnet", batch_size=1, num_targets=1)
    run = prepare(cfg, device=device)
    iters = max(300 // k, 1)
    t = time.perf_counter()
    attack_run(run, ATTACKS.create("inverting-gradients", iterations=iters, restarts=4), device=device, lpips_scorer=None)
    batched = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(4):
        attack_run(run, ATTACKS.create("inverting-gradients", iterations=iters, restarts=1), device=device, lpips_scorer=None)
    sequential = time.perf_counter() - t
    emit(rows, 
        f"{'IG restarts: 4 sequential / R=4 batched':<44} {sequential:.2f} s / {batched:.2f} s "
        f"= {sequential / batched:.2f}x ({iters} iterations each)"
    )
    print(f"done: {len(rows)} lines")


if __name__ == "__main__":
    main()
