"""FedRE against uniform LDP and no defense, over epsilon and seeds, with a verdict on each
of the paper's two claims.

Setting: :mod:`fedre_setting` (32 px generated documents with an editing trace, a U-Net
pre-trained on a disjoint generated split and cached, 3 rounds of federated fine-tuning,
local DP with clip 0.01 calibrated over the 3 rounds). For every seed (data seed, client
split, noise, inversion targets), every epsilon of ``--epsilons`` (delta 1e-5) and each of
``uniform-ldp`` and ``fedre``, plus the undefended run (``fedavg`` / ``fedsgd``):

1. utility: the test IoU (pooled over the pixels of 80 test documents) after federated
   fine-tuning;
2. privacy: the PSNR inside the PSI regions of Inverting Gradients' reconstruction of
   ``--targets`` documents from their round-0 gradient on the base (batch 1, threat model
   ``hbc-server-labels``), beside the dataset-mean baseline.

Printed per defense and epsilon: the mean over seeds with a 95% Student-t interval
(``mean +- t_{0.975, n-1} sd / sqrt(n)``). The paper's claims, at equal epsilon:

* claim 1, utility: FedRE's IoU is not worse than uniform LDP's;
* claim 2, privacy: FedRE's in-PSI reconstruction PSNR is lower (more private).

Rule, per epsilon, on the paired differences over seeds (FedRE minus uniform LDP, same
seed): the claim **holds** when the 95% interval of the mean difference lies on the claim's
side of 0 (IoU: >= 0; PSNR: < 0), **fails** when it lies on the other side, otherwise
"not judgeable: the interval contains 0". Gates: no claim is judged when the undefended
IoU is below ``MIN_UNDEFENDED_IOU`` (0.36: a model that learned nothing has no utility to
lose); claim 2 is not judged when the undefended attack's in-PSI PSNR does not beat the
baseline (the lower end of the interval of its PSNR minus the baseline's, paired by
seed, above 0): a reconstruction below the baseline carries no information, so a lower one is not "more private". Over the epsilons: holds when it
holds at one or more and fails at none, fails when it fails at one or more and holds at
none, "mixed" when both, otherwise not judgeable.

Usage: ``python3 benchmarks/fedre_frontier.py [--epsilons 4,8,16,32,64] [--seeds 0,1,2]
[--targets 2] [--iterations 200] [--restarts 1] [--device auto]`` (torch threads: 1).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from audit.core.attack import ATTACKS
from audit.harness import attack_run, prepare
from audit.models.cache import ModelCache, default_cache_dir
from fedre_setting import base_iou, federated_iou, inversion_config, metric, setting
from seed_intervals import fmt_interval as fmt
from seed_intervals import paired_verdict
from seed_intervals import t_interval as interval

MIN_UNDEFENDED_IOU = 0.36
DEFENSES = ("uniform-ldp", "fedre")


def overall(verdicts) -> str:
    held = sum(v == "holds" for v in verdicts)
    failed = sum(v == "fails" for v in verdicts)
    counts = f"holds at {held}, fails at {failed}, not judgeable at {len(verdicts) - held - failed} of {len(verdicts)} epsilons"
    word = ("mixed" if held and failed else "holds" if held else "fails" if failed
            else verdicts[0] if len(set(verdicts)) == 1 else "not judgeable")
    return f"{word} ({counts})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epsilons", default="4,8,16,32,64")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--targets", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--restarts", type=int, default=1)
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    args = ap.parse_args()
    epsilons = [float(e) for e in args.epsilons.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    torch.set_num_threads(1)
    from audit.core.device import resolve_device

    device = resolve_device(args.device)
    start = time.perf_counter()
    print(f"torch threads: {torch.get_num_threads()}; device: {device}")
    s = setting(device=device, cache=ModelCache(default_cache_dir()))
    print(f"base: {'loaded from' if s.loaded else 'trained and saved to'} {s.path} ({s.seconds:.0f} s)")
    rows = [("undefended", None)] + [(d, e) for e in epsilons for d in DEFENSES]
    iou = {r: [] for r in rows}
    psnr = {r: [] for r in rows}
    claimed: dict = {}
    base, chance, baselines = [], [], []
    attack = ATTACKS.create("inverting-gradients", iterations=args.iterations,
                            restarts=args.restarts)
    for seed in seeds:
        m = base_iou(s, seed, device)
        base.append(m["iou_pooled"])
        chance.append(m["tampered_fraction"])
        print(f"seed {seed}: base before fine-tuning IoU {m['iou_pooled']:.3f}; all-tampered "
              f"IoU {m['tampered_fraction']:.3f}", flush=True)
        for row in rows:
            t = time.perf_counter()
            defense, eps = row
            iou[row].append(federated_iou(s, defense, eps, seed, device)["iou_pooled"])
            run = prepare(inversion_config(s, defense, eps, seed, targets=args.targets),
                          device=device)
            finding = attack_run(run, attack, device=device, lpips_scorer=None)
            value, baseline = metric(finding, "psnr (PSI)")
            psnr[row].append(value)
            if row == rows[0]:
                baselines.append(baseline)
            claimed[row] = run.claim.epsilon
            label = defense if eps is None else f"{defense} eps={eps:g}"
            print(f"  {label:<22} IoU {iou[row][-1]:.3f}  PSNR PSI {value:.2f} dB  "
                  f"({time.perf_counter() - t:.0f} s)", flush=True)

    n = len(seeds)
    print(f"\n== {n} seeds, mean [95% t-interval]; Inverting Gradients {args.iterations} "
          f"iterations x {args.restarts} restart(s), {args.targets} documents per seed; "
          f"in-PSI baseline (dataset mean) {fmt(baselines, 2)} dB")
    print(f"base before fine-tuning: IoU {fmt(base, 3)}; all-tampered model: IoU {fmt(chance, 3)}")
    print(f"{'defense':<22} {'claimed eps':>11}  {'test IoU':<24} {'PSNR PSI (dB)':<24}")
    for row in rows:
        defense, eps = row
        label = defense if eps is None else f"{defense} eps={eps:g}"
        c = claimed[row]
        print(f"{label:<22} {('-' if c is None else f'{c:.3g}'):>11}  {fmt(iou[row], 3):<24} "
              f"{fmt(psnr[row], 2):<24}")

    undefended_iou = interval(iou[("undefended", None)])[0]
    advantage = np.subtract(psnr[("undefended", None)], baselines)  # same seed, same documents
    attack_low = interval(advantage)[1]
    gate = (f"not judgeable: undefended IoU {undefended_iou:.3f} below {MIN_UNDEFENDED_IOU}"
            if undefended_iou < MIN_UNDEFENDED_IOU else None)
    attack_gate = None
    if not (attack_low > 0):
        attack_gate = (f"not judgeable: the attack does not beat the baseline even undefended "
                       f"(in-PSI PSNR minus baseline {fmt(advantage, 2)} dB)")
    print("\n== paired differences, FedRE minus uniform LDP (same seed), mean [95% t-interval]")
    v1, v2 = [], []
    for eps in epsilons:
        d_iou = np.subtract(iou[("fedre", eps)], iou[("uniform-ldp", eps)])
        d_psnr = np.subtract(psnr[("fedre", eps)], psnr[("uniform-ldp", eps)])
        v1.append(gate or paired_verdict(d_iou, side="nonnegative"))
        v2.append(gate or attack_gate or paired_verdict(d_psnr, side="negative"))
        print(f"eps={eps:<6g} IoU {fmt(d_iou, 3):<26} -> claim 1 {v1[-1]}")
        print(f"{'':<10} PSNR PSI {fmt(d_psnr, 2):<21} -> claim 2 {v2[-1]}")
    print(f"\nclaim 1 (FedRE's IoU not worse than uniform LDP's at equal eps): {overall(v1)}")
    print(f"claim 2 (FedRE's in-PSI reconstruction PSNR lower than uniform LDP's): {overall(v2)}")
    print(f"wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
