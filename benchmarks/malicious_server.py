"""Which defenses stop a malicious server (issue 25, item 2).

The server crafts the broadcast model (``imprint``: Fowl et al. 2022; ``trap-weights``:
Boenisch et al. 2023) and reads the clients' updates of it, each one (``malicious-server``)
or only their secure aggregate (``malicious-server-secagg``). On lfw (200 real 25x25
faces), 4 clients of 32 images each, FedSGD unless the row says otherwise, the table gives
the share of the 128 images recovered above 40 dB PSNR (exact up to float error), their
mean PSNR and the dataset-mean baseline's, over ``--seeds`` seeds (95% Student-t interval of
the share).

Usage: ``python3 benchmarks/malicious_server.py [--threads 1] [--device auto] [--seeds 3]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from audit.core.config import AuditConfig
from audit.core.device import describe_device, resolve_device, set_threads
from audit.harness import run_audit
from seed_intervals import fmt_interval

BASE = dict(dataset="lfw", batch_size=32, num_targets=4)
CONVNET = dict(model="convnet", model_params={"width": 16})
MLP = dict(model="mlp", model_params={"hidden": 1024})

#: (row label, attack, threat model, defense, defense params, model)
ROWS = [
    ("imprint, each update, FedSGD", "imprint", "malicious-server", "fedsgd", {}, CONVNET),
    ("imprint, secure aggregate, FedSGD", "imprint", "malicious-server-secagg", "fedsgd", {}, CONVNET),
    ("imprint, secure aggregate, FedAvg (2 local steps)", "imprint", "malicious-server-secagg", "fedavg", {}, CONVNET),
    ("imprint, secure aggregate, clipping only (z = 0)", "imprint", "malicious-server-secagg", "dp-fedavg",
     {"noise_multiplier": 0.0, "clip_norm": 1.0}, CONVNET),
    ("imprint, each update, local DP-FedAvg eps 8", "imprint", "malicious-server", "dp-fedavg",
     {"target_epsilon": 8.0, "mode": "local"}, CONVNET),
    ("imprint, secure aggregate, central DP-FedAvg eps 8", "imprint", "malicious-server-secagg", "dp-fedavg",
     {"target_epsilon": 8.0, "mode": "central"}, CONVNET),
    ("trap weights, each update, FedSGD", "trap-weights", "malicious-server", "fedsgd", {}, MLP),
    ("trap weights, secure aggregate, FedSGD", "trap-weights", "malicious-server-secagg", "fedsgd", {}, MLP),
    ("honest analytic FC (no crafting), each update", "analytic-fc", "hbc-server", "fedsgd", {}, MLP),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    threads = set_threads(args.threads)
    device = resolve_device(args.device)
    print(f"device: {describe_device(device)}; torch threads: {threads}; seeds: {args.seeds}")
    print("| row | share > 40 dB (95% CI) | mean PSNR dB | baseline dB | s/seed |")
    print("|---|---|---|---|---|")
    for label, attack, tm, defense, params, model in ROWS:
        shares, means, baselines, start = [], [], [], time.perf_counter()
        for seed in range(args.seeds):
            cfg = AuditConfig(attack=attack, threat_model=tm, defense=defense, defense_params=params,
                              seed=seed, **BASE, **model)
            finding = run_audit(cfg, device=device, lpips_scorer=None)
            m = next(x for x in finding["metrics"] if x["name"] == "psnr")
            p = np.array(m["per_item"])
            shares.append(float((p > 40).mean()))
            means.append(float(p.mean()))
            baselines.append(float(m["baseline"]["mean"]))
        secs = (time.perf_counter() - start) / args.seeds
        print(f"| {label} | {fmt_interval(shares, 2)} | {np.mean(means):.1f} | {np.mean(baselines):.1f} "
              f"| {secs:.1f} |", flush=True)


if __name__ == "__main__":
    main()
