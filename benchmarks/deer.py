"""DEeR benchmark: test accuracy of DP federated LoRA (``deer``, ``fedit-lora``,
``ffa-lora``) against LoRA without DP, at equal epsilon, and the claims each run makes.

Setting (scaled to 2 CPU cores; the paper's code: BiomedCLIP ViT-B/16, 12 clients,
Dirichlet(0.1), 50 rounds x 5 local epochs, SGD lr 0.01 momentum 0.9, batch 10-42):

* data: scikit-learn digits resized to ``--size`` (16) px, shuffled (seed); 400 images
  pre-train the base, 300 are the test set, the rest go to 12 clients by a Dirichlet(0.1)
  label split (:func:`audit.data.client_partition.dirichlet_split`, at least 5 images each);
* model: ``vit-lora`` (hidden 64, 4 layers, 4 heads, patch 4; LoRA r = 8, alpha = 8 on
  query/key/value); the base and its head are pre-trained centrally for
  ``--pretrain-steps`` SGD steps (:func:`audit.fl.pretraining.pretrain`, LoRA untouched), then
  frozen: the federated runs train LoRA only, all from the same pre-trained weights;
* federated fine-tuning: ``--rounds`` T rounds of ``--local-steps`` E full-batch SGD steps
  at ``--lr``, all 12 clients every round; a DEeR round is two phases (B, then A), i.e. two
  harness rounds, as in the official code; the baselines get T harness rounds; momentum
  ``--momentum`` (0.9, as in the code), its buffer reset every round;
* DP: per-matrix clip ``--clip`` C, sigma calibrated by the official accounting (opacus RDP,
  sample-level, accounting batch = mean client size) to each epsilon, delta 1e-5.

Prints per method and epsilon: test accuracy, the official claim, and the two claims for
the mechanism as run (aggregate observers; the server seeing each update).

Usage: ``python3 benchmarks/deer.py [--epsilons 1,3,6] [--rounds 10] [--local-steps 5]``
(torch threads: 1; prints the device).
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epsilons", default="1,3,6")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--local-steps", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--clip", type=float, default=0.2)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--pretrain-steps", type=int, default=300)
    ap.add_argument("--methods", default="lora,deer,fedit-lora,ffa-lora")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from audit.data.client_partition import dirichlet_split
    from audit.data.registry import create_dataset
    from audit.core.defense import DEFENSES, FederationSchedule
    from audit.core.device import resolve_device
    from audit.models.registry import create_model
    from audit.fl.pretraining import pretrain
    from audit.fl.simulation import FederatedSimulation
    from audit.core.updates import ClientData

    device = resolve_device(args.device)
    print(f"torch threads: 1; device: {device}")
    ds = create_dataset("digits", size=args.size)
    order = np.random.default_rng(args.seed).permutation(len(ds))
    pre, test, train = order[:400], order[400:700], order[700:]
    parts = dirichlet_split(ds.labels[train], 12, alpha=0.1, seed=args.seed, min_size=5)
    clients = [ClientData(ds.images[train[p]], ds.labels[train[p]]) for p in parts]
    sizes = tuple(len(c) for c in clients)
    x_test, y_test = ds.images[test].to(device), ds.labels[test].to(device)

    torch.manual_seed(args.seed)
    base = create_model("vit-lora", input_shape=ds.input_shape, num_classes=ds.num_classes,
                        channel_mean=ds.channel_mean, channel_std=ds.channel_std).to(device)
    t = time.perf_counter()
    pretrain(base, ds.subset(pre), steps=args.pretrain_steps, lr=0.05, batch_size=64,
             seed=args.seed)

    def accuracy(model) -> float:
        with torch.no_grad():
            return float((model(x_test).argmax(-1) == y_test).float().mean())

    print(f"== digits {args.size}x{args.size}: 12 clients, Dirichlet(0.1) sizes {list(sizes)}; "
          f"pre-trained base ({args.pretrain_steps} steps, {time.perf_counter() - t:.0f} s): "
          f"test accuracy {accuracy(base):.3f}")
    print(f"== {args.rounds} rounds x {args.local_steps} local steps, lr {args.lr} momentum "
          f"{args.momentum} (buffer reset every round), clip "
          f"{args.clip} per matrix, delta 1e-5")
    print(f"{'method':<12} {'eps':>4} {'rounds':>6} {'test acc':>8} {'official eps':>12} "
          f"{'as-run aggregate':>16} {'as-run each update':>18} {'sigma':>6} {'s':>4}")
    methods = args.methods.split(",")
    epsilons = [float(e) for e in args.epsilons.split(",")]
    rows = [("lora", None)] if "lora" in methods else []
    rows += [(m, e) for e in epsilons for m in methods if m != "lora"]
    for method, eps in rows:
        t = time.perf_counter()
        model = copy.deepcopy(base)
        if method == "lora":
            defense = DEFENSES.create("fedavg", local_steps=args.local_steps, lr=args.lr,
                                      momentum=args.momentum)
        else:
            defense = DEFENSES.create(method, local_steps=args.local_steps, lr=args.lr,
                                      momentum=args.momentum, clip_norm=args.clip, target_epsilon=eps, delta=1e-5)
        rounds = 2 * args.rounds if method == "deer" else args.rounds
        schedule = FederationSchedule(12, 12, rounds, examples_per_client=sizes)
        defense.prepare(schedule)
        FederatedSimulation(model=model, clients=clients, defense=defense, schedule=schedule,
                            seed=args.seed, device=device).run()
        acc = accuracy(model)
        claim = defense.claim(schedule)
        if claim.has_dp:
            alt = {a.label: a.epsilon for a in claim.alternatives}
            cells = (f"{claim.epsilon:>12.3g} {alt['as run, aggregate']:>16.4g} "
                     f"{alt['as run, each update']:>18.4g} {defense.noise_multiplier:>6.3f}")
        else:
            cells = f"{'-':>12} {'-':>16} {'-':>18} {'-':>6}"
        label = "-" if eps is None else f"{eps:g}"
        print(f"{method:<12} {label:>4} {rounds:>6} {acc:>8.3f} {cells} "
              f"{time.perf_counter() - t:>4.0f}", flush=True)


if __name__ == "__main__":
    main()
