"""DEeR benchmark: test accuracy of DP federated LoRA (``deer``, ``fedit-lora``,
``ffa-lora``) at equal official epsilon over seeds, beside LoRA without DP, and a verdict on
the paper's claim "DEeR >= FedIT and >= FFA-LoRA at equal epsilon".

Setting (scaled to CPU; the paper's code: BiomedCLIP ViT-B/16, 12 clients, Dirichlet(0.1),
50 rounds x 5 local epochs, SGD lr 0.01 momentum 0.9, batch 10-42, eps in {0.1, 0.5, 1, 3, 6}):

* task and base (:mod:`deer_setting`): the base ``vit-lora`` (hidden 64, 4 layers, 4 heads,
  patch 4, 16 px; LoRA r = 8, alpha = 8 on query/key/value) is pre-trained centrally on
  600 *sharp* digits for ``--pretrain-steps`` steps and cached (safetensors keyed by its
  config, ``--cache-dir``); the federated task is the other digits *blurred* (a domain
  shift): per seed, 300 test images and 12 clients by a Dirichlet(0.1) label split;
* federated fine-tuning of LoRA only (base and head frozen): ``--rounds`` T rounds of
  ``--local-steps`` E full-batch SGD steps at ``--lr``, momentum ``--momentum`` (buffer reset
  every round), all 12 clients every round; a DEeR round is two phases (B, then A), i.e.
  two harness rounds, as in the official code; the baselines get T harness rounds;
* DP: per-matrix clip ``--clip`` C, sigma calibrated by the official accounting (opacus
  RDP, sample-level, accounting batch = mean client size) to each epsilon at ``--delta``
  (1e-5; the official code takes delta = 1 / clients, ``--delta 1/12``). With opacus's
  Renyi orders (at most 63) an epsilon below log(1/delta) / 62 (0.19 at 1e-5) cannot be
  reached by any noise; such a cell is printed as unreachable and not judged;
* seeds: seed s fixes the test/client split, the LoRA init, the client order and the
  noise, the same for every method, so methods are compared *paired*.

Intervals: the mean over seeds with a 95% Student-t interval (``scipy.stats.t``, n - 1
degrees of freedom). Verdict rule, per epsilon and baseline: the per-seed paired difference
(DEeR minus baseline, same seed); the claim *holds* when the 95% t-interval of its mean lies
above 0, *fails* when it lies below 0, and is *not judgeable* when it contains 0. At an
epsilon, the claim holds when it holds against both baselines and fails when it fails
against either. Nothing is judged ("not judgeable: no-DP LoRA below 0.8") when no-DP LoRA's
mean test accuracy is below 0.8.

Usage: ``python3 benchmarks/deer.py [--seeds 3] [--epsilons 0.1,0.5,1,3,6] [--rounds 6]
[--device auto]`` (torch threads: 1).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from fractions import Fraction

import torch
from seed_intervals import fmt_interval, paired_verdict

METHODS = ("lora", "deer", "fedit-lora", "ffa-lora")
BASELINES = ("fedit-lora", "ffa-lora")
NO_DP_FLOOR = 0.8


def run_one(method, eps, model, clients, args, seed, device):
    """Fine-tune ``model`` in place; returns the defense and its schedule."""
    from audit.core.defense import DEFENSES, FederationSchedule
    from audit.fl.simulation import FederatedSimulation

    common = {"local_steps": args.local_steps, "lr": args.lr, "momentum": args.momentum}
    if method == "lora":
        defense = DEFENSES.create("fedavg", **common)
    else:
        defense = DEFENSES.create(method, **common, clip_norm=args.clip, target_epsilon=eps,
                                  delta=args.delta)
    rounds = 2 * args.rounds if method == "deer" else args.rounds
    schedule = FederationSchedule(len(clients), len(clients), rounds,
                                  examples_per_client=tuple(len(c) for c in clients))
    defense.prepare(schedule)
    FederatedSimulation(model=model, clients=clients, defense=defense, schedule=schedule,
                        seed=seed, device=device).run()
    return defense, schedule


def print_verdict(acc, base_acc, methods, epsilons, n, unreachable) -> None:
    """The verdict on the claim, per epsilon, by the rule of the module docstring."""
    baselines = [b for b in BASELINES if b in methods]
    if "deer" not in methods or not baselines or "lora" not in methods:
        print("\n== verdict: needs lora, deer and a baseline among --methods")
        return
    no_dp = statistics.fmean(acc["lora", None])
    print(f"\n== verdict on 'DEeR >= FedIT and >= FFA-LoRA at equal epsilon' (paired over "
          f"{n} seeds: DEeR minus baseline, mean [95% t-interval]); no-DP LoRA {no_dp:.3f}, "
          f"{no_dp - statistics.fmean(base_acc):+.3f} over the base")
    if no_dp < NO_DP_FLOOR:
        print(f"not judgeable: no-DP LoRA below {NO_DP_FLOOR}")
        return
    for eps in epsilons:
        if any((m, eps) in unreachable for m in ("deer", *baselines)):
            print(f"eps {eps:g}: not judgeable: unreachable at this delta")
            continue
        parts, verdicts = [], []
        for b in baselines:
            diffs = [d - v for d, v in zip(acc["deer", eps], acc[b, eps])]
            verdict = paired_verdict(diffs, side="positive")
            verdicts.append(verdict)
            parts.append(f"vs {b} {fmt_interval(diffs)} {verdict}")
        overall = ("fails" if "fails" in verdicts else
                   "holds" if all(v == "holds" for v in verdicts) else "not judgeable")
        print(f"eps {eps:g}: {'; '.join(parts)} -> {overall}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epsilons", default="0.1,0.5,1,3,6")
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..n-1 (from --seed)")
    ap.add_argument("--seed", type=int, default=0, help="the first seed")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--local-steps", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--clip", type=float, default=0.2)
    ap.add_argument("--pretrain-steps", type=int, default=1000)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--cache-dir", default=None,
                    help="model cache (default: fedaudit's, ~/.cache/fedaudit/models); 'none': off")
    ap.add_argument("--delta", default="1e-5", help="delta of every claim (a number or 1/K)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    args = ap.parse_args()
    args.delta = float(Fraction(args.delta))
    start = time.perf_counter()
    torch.set_num_threads(1)

    from audit.core.device import describe_device, resolve_device
    from audit.core.errors import InvalidParameterError
    from audit.models.cache import ModelCache, default_cache_dir
    from deer_setting import CLIENTS, PRETRAIN_IMAGES, SIZE, setting

    device = resolve_device(args.device)
    print(f"torch threads: {torch.get_num_threads()}; device: {describe_device(device)}")
    cache = None if args.cache_dir == "none" else ModelCache(args.cache_dir or default_cache_dir())
    s = setting(steps=args.pretrain_steps, lr=0.05, batch_size=64, seed=0, device=device,
                cache=cache)
    how = "loaded from " + str(cache.directory) if s.loaded else "trained" + (
        ", cached in " + str(cache.directory) if cache else "")
    print(f"== base: vit-lora pre-trained on {PRETRAIN_IMAGES} sharp digits {SIZE}x{SIZE}, "
          f"{args.pretrain_steps} steps ({how}, {s.seconds:.0f} s)")
    print(f"== task: blurred digits, {CLIENTS} clients Dirichlet(0.1), 300 test images per seed; "
          f"{args.rounds} rounds x {args.local_steps} local steps, lr {args.lr} momentum "
          f"{args.momentum} (buffer reset every round), clip {args.clip} per matrix, delta {args.delta:.3g}")

    methods = [m for m in METHODS if m in args.methods.split(",")]
    epsilons = [float(e) for e in args.epsilons.split(",")]
    cells = [("lora", None)] if "lora" in methods else []
    cells += [(m, e) for e in epsilons for m in methods if m != "lora"]
    seeds = list(range(args.seed, args.seed + args.seeds))
    acc = {c: [] for c in cells}
    extra = {c: [] for c in cells}  # (official eps, as-run aggregate, as-run each update, sigma)
    base_acc, sharp_acc, unreachable = [], [], set()
    print(f"{'seed':>4} {'method':<11} {'eps':>4} {'test acc':>8} {'s':>4}")
    for seed in seeds:
        test, clients = s.split(seed)
        x, y = s.blurred[test].to(device), s.ds.labels[test].to(device)

        def accuracy(model, x=x, y=y) -> float:
            with torch.no_grad():
                return float((model(x).argmax(-1) == y).float().mean())

        base = s.model(seed, device)
        base_acc.append(accuracy(base))
        sharp_acc.append(accuracy(base, s.ds.images[test].to(device)))
        print(f"{seed:>4} {'base':<11} {'-':>4} {base_acc[-1]:>8.3f}   (sizes "
              f"{[len(c) for c in clients]}; sharp test images {sharp_acc[-1]:.3f})", flush=True)
        for method, eps in cells:
            if (method, eps) in unreachable:
                continue
            t = time.perf_counter()
            model = copy.deepcopy(base)
            try:
                defense, schedule = run_one(method, eps, model, clients, args, seed, device)
            except InvalidParameterError as err:  # the target epsilon cannot be reached
                if "unreachable" not in str(err):
                    raise
                unreachable.add((method, eps))
                print(f"{seed:>4} {method:<11} {eps:>4g} unreachable: {err}", flush=True)
                continue
            acc[method, eps].append(accuracy(model))
            claim = defense.claim(schedule)
            if claim.has_dp:
                alt = {a.label: a.epsilon for a in claim.alternatives}
                extra[method, eps].append((claim.epsilon, alt["as run, aggregate"],
                                           alt["as run, each update"], defense.noise_multiplier))
            label = "-" if eps is None else f"{eps:g}"
            print(f"{seed:>4} {method:<11} {label:>4} {acc[method, eps][-1]:>8.3f} "
                  f"{time.perf_counter() - t:>4.0f}", flush=True)

    n = len(seeds)
    print(f"\n== test accuracy, mean over {n} seeds [95% Student-t interval]; "
          f"epsilons: official claim / as run (mean over seeds)")
    print(f"base (no fine-tuning): {fmt_interval(base_acc)}; on sharp test images "
          f"{fmt_interval(sharp_acc)}")
    print(f"{'method':<11} {'eps':>4} {'test acc [95% CI]':>24} {'official eps':>12} "
          f"{'as-run aggregate':>16} {'as-run each update':>18} {'sigma':>6}")
    for method, eps in cells:
        if extra[method, eps]:
            off, agg, each, sig = (statistics.fmean(v) for v in zip(*extra[method, eps]))
            tail = f"{off:>12.3g} {agg:>16.4g} {each:>18.4g} {sig:>6.3f}"
        else:
            tail = f"{'-':>12} {'-':>16} {'-':>18} {'-':>6}"
        label = "-" if eps is None else f"{eps:g}"
        if (method, eps) in unreachable:
            print(f"{method:<11} {label:>4} {'unreachable at this delta':>24}")
            continue
        print(f"{method:<11} {label:>4} {fmt_interval(acc[method, eps]):>24} {tail}")

    print_verdict(acc, base_acc, methods, epsilons, n, unreachable)
    print(f"\nwall time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
