"""Compression baselines as defenses: utility and gradient-inversion success on the same runs.

Rows: undefended FedSGD; top-k sparsification keeping 1% and 10% of each tensor
(``top-k-sparsification``, Zhu et al. 2019's gradient pruning at ratios 0.99 / 0.9); QSGD at
4 and 8 bits (``qsgd``, buckets of 512); signSGD with majority vote (``signsgd``, scale
``--sign-scale``); local DP-FedAvg at ``--epsilon`` (clip ``--clip``, z calibrated by the PLD
accountant to the run's rounds at delta 1e-5). Every row wraps the same FedSGD (lr 0.1).

Setting (CPU scale, printed in the header): scikit-learn's ``digits`` (8x8 grey, 10 classes,
1797 images) and an MLP (64 hidden units, ReLU), ``--clients`` clients holding one image
each (items 0..clients-1; batch 1, the attacker's best case), ``--per-round`` clients
sampled per round, ``--rounds`` rounds from a fresh random init of seed ``s``.

* **Utility**: top-1 accuracy of the final global model on the held-out images (every
  image no client holds), the harness's ``utility.test_accuracy``.
* **Attack on the same run**: the honest-but-curious server runs Inverting Gradients
  (Geiping et al. 2020; ``--ig-iterations``, 2 restarts, the attack's default lr and TV) on
  every observation of round 0 (``--per-round`` clients), labels first recovered from the
  observation (iDLG / LLG; the server is not given them). Scores: mean PSNR of the aligned
  reconstructions and, beside it, the PSNR of the dataset-mean image (the trivial baseline);
  the attack's advantage is their difference; iDLG label accuracy.

Statistics: mean over ``--seeds`` with the 95% Student-t interval
(:mod:`seed_intervals`). The attacks are not adaptive: they match the observation by cosine
as if it were the raw gradient (an attack that knows a top-k mask or signs would match only
the kept entries, and could do better).

Usage: ``OMP_NUM_THREADS=1 python3 benchmarks/compression_baselines.py [--threads 1]
[--device auto] [--seeds 0,1,2] [--quick]`` (``--quick``: 1 seed, 10x fewer IG iterations
and rounds, a smoke run whose figures are not the table's).
"""

from __future__ import annotations

import argparse
import time

import torch
from seed_intervals import fmt_interval

from audit.core.config import AuditConfig
from audit.core.device import describe_device, resolve_device, set_threads
from audit.harness import attack_run, prepare


def rows(args) -> list[tuple[str, str, dict]]:
    """(label, defense, defense parameters) of the table's rows."""
    dp = {"clip_norm": args.clip, "target_epsilon": args.epsilon, "delta": 1e-5, "mode": "local"}
    return [
        ("FedSGD (undefended)", "fedsgd", {}),
        ("top-k 1%", "top-k-sparsification", {"fraction": 0.01}),
        ("top-k 10%", "top-k-sparsification", {"fraction": 0.1}),
        ("QSGD 4 bits", "qsgd", {"bits": 4}),
        ("QSGD 8 bits", "qsgd", {"bits": 8}),
        (f"signSGD (scale {args.sign_scale:g})", "signsgd", {"scale": args.sign_scale}),
        (f"DP-FedAvg local, eps = {args.epsilon:g}", "dp-fedavg", dp),
    ]


def metric(finding: dict, name: str) -> dict:
    return next(m for m in finding["metrics"] if m["name"] == name)


def one_run(args, defense: str, params: dict, seed: int, device) -> dict[str, float]:
    """Utility and attack scores of one seeded run of ``defense``."""
    from audit.core.attack import ATTACKS

    config = AuditConfig(
        defense=defense, defense_params={**params, "lr": args.lr}, attack="inverting-gradients",
        attack_params={"iterations": args.ig_iterations, "restarts": 2}, dataset="digits",
        model="mlp", model_params={"hidden": args.hidden}, batch_size=1,
        num_targets=args.clients, clients_per_round=args.per_round, rounds=args.rounds, seed=seed)
    run = prepare(config, device=device)
    finding = attack_run(run, ATTACKS.create(config.attack, **config.attack_params),
                         device=device, lpips_scorer=None)
    psnr = metric(finding, "psnr")
    return {
        "accuracy": run.utility["test_accuracy"],
        "psnr": psnr["mean"],
        "baseline": psnr["baseline"]["mean"],
        "advantage": psnr["mean"] - psnr["baseline"]["mean"],
        "labels": metric(finding, "label_accuracy")["mean"],
        "epsilon": run.claim.epsilon,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--per-round", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--ig-iterations", type=int, default=500)
    ap.add_argument("--sign-scale", type=float, default=0.1)
    ap.add_argument("--epsilon", type=float, default=8.0)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.quick:
        seeds = seeds[:1]
        args.ig_iterations = max(args.ig_iterations // 10, 1)
        args.rounds = max(args.rounds // 10, 1)
    threads = set_threads(args.threads)
    device = resolve_device(args.device)
    print(f"device: {describe_device(device)}; torch threads: {threads}; torch {torch.__version__}")
    print(f"setting: digits 8x8, MLP hidden {args.hidden}, {args.clients} clients x 1 image, "
          f"{args.per_round} per round, {args.rounds} rounds, FedSGD lr {args.lr:g}; Inverting "
          f"Gradients {args.ig_iterations} iterations x 2 restarts on the {args.per_round} "
          f"round-0 observations; seeds {seeds}{' (quick: not the table figures)' if args.quick else ''}")
    print()
    print("| defense | test accuracy | IG PSNR (dB) | dataset-mean PSNR (dB) | PSNR advantage (dB) "
          "| iDLG label accuracy |")
    print("|---|---|---|---|---|---|")
    start = time.perf_counter()
    for label, defense, params in rows(args):
        runs = [one_run(args, defense, params, s, device) for s in seeds]
        col = {k: [r[k] for r in runs] for k in runs[0]}
        if runs[0]["epsilon"] is not None:
            label = f"{label} (claim eps {runs[0]['epsilon']:.3g})"
        print(f"| {label} | {fmt_interval(col['accuracy'])} | {fmt_interval(col['psnr'], 2)} "
              f"| {fmt_interval(col['baseline'], 2)} | {fmt_interval(col['advantage'], 2)} "
              f"| {fmt_interval(col['labels'])} |", flush=True)
    print()
    print(f"mean [95% Student-t interval] over {len(seeds)} seed(s); "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
