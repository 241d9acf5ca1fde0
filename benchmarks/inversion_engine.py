"""Inverting Gradients engine speed: targets batched with restarts, and torch.compile
(issue 25, item 7).

Prints restart-iterations per CPU-second of Inverting Gradients on a ConvNet of width 32
with BatchNorm (natural-32, 32x32, batch 1, FedSGD), 8 targets, ``--restarts`` restarts
each, for:

* **one target at a time** (``target_batch=1``): the engine before this issue, restarts
  vmapped, targets in a loop;
* **8 targets together** (``target_batch=8``): one optimisation vmapped over targets and
  restarts;
* the same with ``compile=true`` (``torch.compile`` of the batched gradient step).

Each figure is the steady state: the CPU seconds per iteration after the first, which the
attack measures itself (``stats["step_cpu_s"]``), so one-off costs (the first call,
compilation) do not count; the one-off CPU seconds of a run and its wall time are printed
beside (torch.compile's kernel compilation runs partly in worker processes, whose CPU time
this process does not see: read the wall time for what compiling costs). CPU time (``time.process_time``) is used, so
other work on the machine matters less than for wall time.

Usage: ``python3 benchmarks/inversion_engine.py [--threads 1] [--device auto]
[--iterations 60] [--restarts 2] [--no-compile]``
"""

from __future__ import annotations

import argparse
import time

import torch

from audit.core.attack import ATTACKS
from audit.core.config import AuditConfig
from audit.core.device import describe_device, resolve_device, set_threads
from audit.harness import prepare, targets


def timed(attack_params: dict, views, device) -> tuple[float, float, float, dict]:
    """(CPU seconds of the whole run, CPU seconds per iteration after the first over all
    targets, wall seconds of the whole run, the first target's stats)."""
    attack = ATTACKS.create("inverting-gradients", **attack_params)
    gens = [torch.Generator().manual_seed(i) for i in range(len(views))]
    start, wall = time.process_time(), time.perf_counter()
    results = attack.run_targets(views, generators=gens, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    total, wall = time.process_time() - start, time.perf_counter() - wall
    # a group of k targets shares one optimisation and reports its time per iteration on
    # each of its k results; the groups run one after another
    per_iteration = sum(r.stats["step_cpu_s"] / r.stats["targets_batched"] for r in results)
    return total, per_iteration, wall, results[0].stats


def engine_rates(device: torch.device, *, iterations: int = 60, restarts: int = 2, num_targets: int = 8,
                 compile_too: bool = True, emit=print) -> None:
    """Print the restart-iterations per CPU-second of each engine mode."""
    cfg = AuditConfig(defense="fedsgd", attack="inverting-gradients", dataset="natural-32", model="convnet",
                      model_params={"width": 32, "norm": "batch"}, batch_size=1, num_targets=num_targets)
    views = [t.view for t in targets(prepare(cfg, device=device))]
    emit(f"engine: ConvNet width 32 + BatchNorm, natural-32, batch 1, {len(views)} targets, "
         f"{restarts} restarts each; steady state over iterations 2..{iterations}")
    modes = [("one target at a time (before)", {"target_batch": 1}),
             (f"{len(views)} targets together", {"target_batch": len(views)})]
    if compile_too:
        modes.append((f"{len(views)} targets together, torch.compile",
                      {"target_batch": len(views), "compile": True}))
    base = None
    for label, params in modes:
        total, per_iteration, wall, stats = timed({**params, "iterations": iterations, "restarts": restarts},
                                                  views, device)
        rate = len(views) * restarts / per_iteration
        base = base or rate
        once = total - iterations * per_iteration
        extra = f"; {stats['compiled']}" if "compiled" in stats else ""
        emit(f"{label:<40} {rate:8.1f} restart-iterations per CPU-second ({rate / base:.2f}x); "
             f"one-off {once:6.1f} CPU-s per run; run {wall:6.1f} s wall{extra}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--iterations", type=int, default=60)
    ap.add_argument("--restarts", type=int, default=2)
    ap.add_argument("--targets", type=int, default=8)
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()
    if args.iterations < 2:
        ap.error(f"--iterations must be at least 2; got {args.iterations}")
    threads = set_threads(args.threads)
    device = resolve_device(args.device)
    print(f"device: {describe_device(device)}; torch threads: {threads}; torch {torch.__version__}")
    engine_rates(device, iterations=args.iterations, restarts=args.restarts, num_targets=args.targets,
                 compile_too=not args.no_compile)


if __name__ == "__main__":
    main()
