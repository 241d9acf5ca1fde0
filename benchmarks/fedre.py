"""FedRE benchmark: gradient inversion inside and outside the PSI regions, and the
tamper-segmentation IoU, for ``fedre`` against ``uniform-ldp`` at equal epsilon.

Prints
1. privacy: for epsilon in ``--epsilons`` (delta 1e-5) and undefended FedSGD, the PSNR
   (mean over ``--targets`` documents, batch 1, round 0, FedSGD lr 0.1, U-Net, documents of
   ``--size`` pixels, 32 by default) of
   Inverting Gradients and of the adaptive SNR-weighted variant, inside the PSI regions,
   outside them and over the whole image, beside the dataset-mean baseline; adversary:
   ``hbc-server-labels`` (knows the tamper masks), the strongest;
2. utility (unless ``--skip utility``): test IoU / F1 (pooled over pixels) of the U-Net
   after a fixed federated training budget (``--rounds`` rounds of FedAvg, 8 clients split
   by document template, ``--local-steps`` full-batch steps at lr 0.5, cross-entropy with
   the task's class weights: tampered pixels weigh 10), per defense.

The paper's direction to check: at equal epsilon, FedRE's PSNR inside PSI regions is
lower than uniform LDP's, with IoU not worse.

Usage: ``python3 benchmarks/fedre.py [--epsilons 1,4,8] [--targets 2] [--iterations 200]
[--skip utility]`` (torch threads: 1; prints the device).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from audit.core.config import AuditConfig
from audit.harness import attack_run, prepare
from audit.core.attack import ATTACKS


def _metric(finding, name):
    m = next(m for m in finding["metrics"] if m["name"] == name)
    return m["mean"], (m["baseline"] or {}).get("mean")


def privacy(args, device):
    print(f"== gradient inversion, {args.targets} documents ({args.size}x{args.size}, batch 1), "
          f"{args.iterations} iterations, threat model hbc-server-labels")
    print(f"{'defense':<22} {'attack':<26} {'PSNR PSI':>9} {'outside':>8} {'global':>7} "
          f"{'baseline PSI':>12} {'claim eps':>9} {'s':>5}")
    rows = [("fedsgd", {"lr": 0.1})]
    for eps in args.epsilons:
        for name in ("uniform-ldp", "fedre"):
            rows.append((name, {"lr": 0.1, "target_epsilon": eps, "delta": 1e-5}))
    for defense, params in rows:
        cfg = AuditConfig(defense=defense, defense_params=params, attack="inverting-gradients",
                          dataset="documents", dataset_params={"size": args.size, "num_items": 64},
                          model="unet", batch_size=1, num_targets=args.targets,
                          threat_model="hbc-server-labels", seed=args.seed)
        run = prepare(cfg, device=device)
        label = defense if defense == "fedsgd" else f"{defense} eps={params['target_epsilon']:g}"
        for attack in ("inverting-gradients", "snr-inverting-gradients"):
            t = time.perf_counter()
            f = attack_run(run, ATTACKS.create(attack, iterations=args.iterations), device=device,
                           lpips_scorer=None)
            psi, base = _metric(f, "psnr (PSI)")
            out, _ = _metric(f, "psnr (outside PSI)")
            glob, _ = _metric(f, "psnr")
            eps = run.claim.epsilon
            print(f"{label:<22} {attack:<26} {psi:>9.2f} {out:>8.2f} {glob:>7.2f} {base:>12.2f} "
                  f"{('-' if eps is None else f'{eps:.3g}'):>9} {time.perf_counter() - t:>5.0f}",
                  flush=True)


def utility(args, device):
    from audit.data.registry import create_dataset
    from audit.core.defense import DEFENSES, FederationSchedule
    from audit.data.generated.documents import template_split
    from audit.models.registry import create_model
    from audit.metrics.segmentation import evaluate_segmentation
    from audit.fl.simulation import FederatedSimulation
    from audit.core.updates import ClientData

    ds = create_dataset("documents", size=64, num_items=400, seed=args.seed)
    train, public, test = np.arange(0, 304), np.arange(304, 320), np.arange(320, 400)
    parts = template_split(ds.groups[train], 8, seed=args.seed)
    clients = [ClientData(ds.images[p], ds.labels[p], ds.psi_masks[p]) for p in parts]
    pub = ClientData(ds.images[public], ds.labels[public], ds.psi_masks[public])
    print(f"== tamper segmentation: 8 clients by template, {args.rounds} rounds of FedAvg "
          f"({args.local_steps} local steps, lr 0.5), test on {len(test)} documents")
    share = float(ds.labels[test].float().mean())
    print(f"{'chance (all tampered)':<22} IoU {share:.3f}  F1 {2 * share / (1 + share):.3f}  "
          f"pixel acc {share:.3f}")
    base = {"base": "fedavg", "local_steps": args.local_steps, "lr": 0.5}
    rows = [("fedavg", {"local_steps": args.local_steps, "lr": 0.5})]
    for eps in args.epsilons:
        for name in ("uniform-ldp", "fedre"):
            rows.append((name, {**base, "target_epsilon": eps, "delta": 1e-5}))
    for defense, params in rows:
        t = time.perf_counter()
        torch.manual_seed(args.seed)
        model = create_model("unet", input_shape=ds.input_shape, num_classes=2,
                             channel_mean=ds.channel_mean, channel_std=ds.channel_std)
        d = DEFENSES.create(defense, **params)
        schedule = FederationSchedule(8, 8, args.rounds)
        d.prepare(schedule)
        FederatedSimulation(model=model, clients=clients, defense=d, schedule=schedule,
                            seed=args.seed, device=device, public=pub,
                            class_weights=ds.class_weights).run()
        m = evaluate_segmentation(model, ds.images[test].to(device), ds.labels[test])
        label = defense if defense == "fedavg" else f"{defense} eps={params['target_epsilon']:g}"
        print(f"{label:<22} IoU {m['iou_pooled']:.3f}  F1 {m['f1_pooled']:.3f}  pixel acc "
              f"{m['pixel_accuracy']:.3f}  ({time.perf_counter() - t:.0f} s)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epsilons", default="1,4,8")
    ap.add_argument("--targets", type=int, default=2)
    ap.add_argument("--size", type=int, default=32,
                    help="document size for the inversion (at 64 px the attack needs far more "
                         "iterations than a CPU run allows)")
    ap.add_argument("--iterations", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--local-steps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ap.add_argument("--skip", default="", help="comma list: privacy,utility")
    args = ap.parse_args()
    args.epsilons = [float(e) for e in args.epsilons.split(",")]
    torch.set_num_threads(1)
    from audit.core.device import resolve_device

    device = resolve_device(args.device)
    print(f"torch threads: 1; device: {device}")
    skip = set(filter(None, args.skip.split(",")))
    if "privacy" not in skip:
        privacy(args, device)
    if "utility" not in skip:
        utility(args, device)


if __name__ == "__main__":
    main()
