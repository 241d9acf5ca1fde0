"""Prior-guided inversion (GIAS-style) beside pixel-space Inverting Gradients on the same
targets (issue 25, item 3).

lfw (200 real 25x25 faces), random-init ConvNet width 16, FedSGD; the adversary is the
server with population data (``hbc-server-population``: the faces no client holds train the
prior). Three settings: batch 1; batch 8; batch 1 under a small Gaussian noise on each
update (DP-FedAvg mechanism, clip 1, z = 0.01: a setting where the pixel prior is weak,
not a meaningful DP claim). Both attacks run ``--iterations`` optimisation steps in all:
GIAS half in its latent search and half in its weight search, Inverting Gradients all in
pixel space; 2 restarts each. Mean PSNR over the targets' images, beside the dataset-mean
baseline.

Usage: ``python3 benchmarks/prior_inversion.py [--iterations 1000] [--targets 4] [--threads 1]
[--device auto]``
"""

from __future__ import annotations

import argparse
import time

from audit.core.config import AuditConfig
from audit.core.device import describe_device, resolve_device, set_threads
from audit.harness import run_audit

SETTINGS = [
    ("batch 1", 1, "fedsgd", {}),
    ("batch 8", 8, "fedsgd", {}),
    ("batch 1, noise z = 0.01", 1, "dp-fedavg", {"noise_multiplier": 0.01, "clip_norm": 1.0}),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--targets", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    threads = set_threads(args.threads)
    device = resolve_device(args.device)
    print(f"device: {describe_device(device)}; torch threads: {threads}; {args.iterations} iterations in all per "
          f"attack, {args.targets} targets, lfw, ConvNet width 16")
    print("| setting | GIAS PSNR dB | pixel IG PSNR dB | dataset-mean baseline dB | GIAS s | IG s |")
    print("|---|---|---|---|---|---|")
    half = max(args.iterations // 2, 1)
    attacks = [("gias", {"iterations": half, "weight_iterations": args.iterations - half}),
               ("inverting-gradients", {"iterations": args.iterations})]
    for label, batch, defense, params in SETTINGS:
        cells, secs, baseline = [], [], None
        for attack, attack_params in attacks:
            cfg = AuditConfig(attack=attack, attack_params=attack_params, defense=defense, defense_params=params,
                              dataset="lfw", model="convnet", model_params={"width": 16},
                              threat_model="hbc-server-population", batch_size=batch, num_targets=args.targets)
            start = time.perf_counter()
            m = next(x for x in run_audit(cfg, device=device, lpips_scorer=None)["metrics"] if x["name"] == "psnr")
            secs.append(time.perf_counter() - start)
            cells.append(m["mean"])
            baseline = m["baseline"]["mean"]
        print(f"| {label} | {cells[0]:.2f} | {cells[1]:.2f} | {baseline:.2f} | {secs[0]:.0f} | {secs[1]:.0f} |", flush=True)


if __name__ == "__main__":
    main()
