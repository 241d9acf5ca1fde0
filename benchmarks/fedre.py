"""FedRE benchmark, one seed in detail: gradient inversion inside and outside the PSI
regions (two attacks) and the tamper-segmentation IoU, for ``fedre`` against
``uniform-ldp`` at equal epsilon. The same setting over seeds, with intervals and verdicts:
``benchmarks/fedre_frontier.py``.

Setting: :mod:`fedre_setting` (32 px generated documents with an editing trace, a U-Net
pre-trained on a disjoint generated split and cached as safetensors, local DP with clip
0.01 calibrated over 3 rounds). Prints

1. privacy: for epsilon in ``--epsilons`` (delta 1e-5) and undefended FedSGD, the PSNR
   (mean over ``--targets`` documents, batch 1, round-0 gradient on the base, lr 0.1) of
   Inverting Gradients and of the adaptive SNR-weighted variant, inside the PSI regions,
   outside them and over the whole image, beside the dataset-mean baseline; adversary:
   ``hbc-server-labels`` (knows the tamper masks), the strongest;
2. utility (unless ``--skip utility``): test IoU / F1 (pooled over pixels) of the base
   after 3 rounds of federated fine-tuning (8 clients by template, 3 local Adam steps),
   per defense.

Usage: ``python3 benchmarks/fedre.py [--epsilons 4,16,64] [--targets 2] [--iterations 200]
[--skip utility]`` (torch threads: 1; prints the device).
"""

from __future__ import annotations

import argparse
import time

import torch

from audit.core.attack import ATTACKS
from audit.harness import attack_run, prepare
from audit.models.cache import ModelCache, default_cache_dir
from fedre_setting import base_iou, federated_iou, inversion_config, metric, setting


def privacy(args, s, device):
    print(f"== gradient inversion, {args.targets} documents (32x32, batch 1), "
          f"{args.iterations} iterations, threat model hbc-server-labels")
    print(f"{'defense':<22} {'attack':<26} {'PSNR PSI':>9} {'outside':>8} {'global':>7} "
          f"{'baseline PSI':>12} {'claim eps':>9} {'s':>5}")
    rows = [("fedsgd", None)] + [(d, e) for e in args.epsilons for d in ("uniform-ldp", "fedre")]
    for defense, eps in rows:
        for attack in ("inverting-gradients", "snr-inverting-gradients"):
            t = time.perf_counter()
            run = prepare(inversion_config(s, defense, eps, args.seed, targets=args.targets,
                                           attack=attack), device=device)
            f = attack_run(run, ATTACKS.create(attack, iterations=args.iterations,
                                               restarts=args.restarts),
                           device=device, lpips_scorer=None)
            psi, base = metric(f, "psnr (PSI)")
            out, _ = metric(f, "psnr (outside PSI)")
            glob, _ = metric(f, "psnr")
            claim = run.claim.epsilon
            label = defense if eps is None else f"{defense} eps={eps:g}"
            print(f"{label:<22} {attack:<26} {psi:>9.2f} {out:>8.2f} {glob:>7.2f} {base:>12.2f} "
                  f"{('-' if claim is None else f'{claim:.3g}'):>9} {time.perf_counter() - t:>5.0f}",
                  flush=True)


def utility(args, s, device):
    m = base_iou(s, args.seed, device)
    print("== tamper segmentation: 8 clients by template, 3 rounds of federated fine-tuning, "
          "test on 80 documents")
    share = m["tampered_fraction"]
    print(f"{'chance (all tampered)':<22} IoU {share:.3f}  F1 {2 * share / (1 + share):.3f}")
    print(f"{'base (no fine-tuning)':<22} IoU {m['iou_pooled']:.3f}  F1 {m['f1_pooled']:.3f}")
    rows = [("fedavg", None)] + [(d, e) for e in args.epsilons for d in ("uniform-ldp", "fedre")]
    for defense, eps in rows:
        t = time.perf_counter()
        m = federated_iou(s, defense, eps, args.seed, device)
        label = defense if eps is None else f"{defense} eps={eps:g}"
        print(f"{label:<22} IoU {m['iou_pooled']:.3f}  F1 {m['f1_pooled']:.3f}  pixel acc "
              f"{m['pixel_accuracy']:.3f}  ({time.perf_counter() - t:.0f} s)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epsilons", default="4,16,64")
    ap.add_argument("--targets", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--restarts", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ap.add_argument("--skip", default="", help="comma list: privacy,utility")
    args = ap.parse_args()
    args.epsilons = [float(e) for e in args.epsilons.split(",")]
    torch.set_num_threads(1)
    from audit.core.device import resolve_device

    device = resolve_device(args.device)
    print(f"torch threads: {torch.get_num_threads()}; device: {device}")
    s = setting(device=device, cache=ModelCache(default_cache_dir()))
    print(f"base: {'loaded from' if s.loaded else 'trained and saved to'} {s.path} ({s.seconds:.0f} s)")
    skip = set(filter(None, args.skip.split(",")))
    if "privacy" not in skip:
        privacy(args, s, device)
    if "utility" not in skip:
        utility(args, s, device)


if __name__ == "__main__":
    main()
