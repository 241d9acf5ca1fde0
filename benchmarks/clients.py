"""Many clients: one FedAvg round on the vectorised path against today's loop.

Setting: scikit-learn's digits (1797 images, 8x8, 10 classes) and the registry's ``mlp``
(``--hidden`` 32); ``--clients`` clients (1000) of ``--client-size`` examples (8) each,
drawn from the digits *with replacement*, seeded (1797 images give a partition only 1-2
examples per client; an audit of many clients cares about the clients' count, not about
disjoint data); every client takes part (``clients_per_round = clients``); the defense is
the registry's ``fedavg`` with its default local training (2 full-batch SGD steps at lr
0.1, model deltas). ``--rounds`` rounds (1) are timed on each path, best of ``--repeats``
(3) after one untimed warm-up run (torch.func's first-use setup, the allocator; its time is
printed too, as "cold"); the loop runs ``--loop-clients`` clients (default: all) and its clients/s is extrapolated from them
when fewer. Prints the device, threads, clients, seconds, clients/s and the speedup
(issue 24's goal: 1000 clients in < 10 s on one CPU thread, >= 20x the loop).

``--check`` instead runs fedavg, fedsgd and dp-fedavg (central, z = 1) on ``--check-clients``
clients of unequal sizes (1 to ``--client-size`` examples) on both paths with the same seed
and prints the largest difference of their aggregates (exit status 1 above 1e-5).

Usage: ``python3 benchmarks/clients.py [--clients 1000] [--threads 1] [--device auto|cpu|cuda]
[--seed 0] [--rounds 1] [--repeats 3] [--loop-clients N] [--check]``
"""

from __future__ import annotations

import argparse
import copy
import sys
import time

import torch

from audit.core.defense import DEFENSES, FederationSchedule
from audit.core.device import describe_device, resolve_device, set_threads
from audit.core.updates import ClientData
from audit.data.registry import create_dataset
from audit.fl.simulation import FederatedSimulation
from audit.fl.vectorised_clients import run_vectorised, vectorisable
from audit.models.registry import create_model

CHECK_TOLERANCE = 1e-5


def make_clients(data, sizes: list[int], seed: int) -> list[ClientData]:
    """Clients of ``sizes`` examples drawn with replacement from ``data``."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for n in sizes:
        idx = torch.randint(0, len(data), (n,), generator=gen)
        out.append(ClientData(data.images[idx], data.labels[idx]))
    return out


def timed(fn, device: torch.device) -> float:
    """Wall-clock seconds of ``fn()`` (CUDA synchronised)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def best_time(fn, repeats: int, device: torch.device) -> tuple[float, float]:
    """The first (cold) run's seconds and the best of ``repeats`` runs after it."""
    cold = timed(fn, device)
    return cold, min(timed(fn, device) for _ in range(repeats))


def run_both(model, clients, defense, rounds: int, seed: int, device, loop: bool = True):
    """Aggregates of the last round on the vectorised path and (``loop``) the loop."""
    schedule = FederationSchedule(num_clients=len(clients), clients_per_round=len(clients), rounds=rounds)
    defense.prepare(schedule)
    vec = run_vectorised(model=copy.deepcopy(model), clients=clients, defense=defense, schedule=schedule,
                         seed=seed, device=device)
    out = [vec.transcript.rounds[-1].aggregate.tensors]
    if loop:
        sim = FederatedSimulation(model=copy.deepcopy(model), clients=clients, defense=defense,
                                  schedule=schedule, seed=seed, device=device)
        out.append(sim.run().rounds[-1].aggregate.tensors)
    return out


def check(model, data, args, device) -> int:
    sizes = [1 + (k * 5) % args.client_size for k in range(args.check_clients)]
    clients = make_clients(data, sizes, args.seed)
    worst = 0.0
    for name, params in (("fedavg", {}), ("fedsgd", {}),
                         ("dp-fedavg", {"mode": "central", "noise_multiplier": 1.0, "clip_norm": 0.5})):
        defense = DEFENSES.create(name, **params)
        vec, loop = run_both(model, clients, defense, 2, args.seed, device)
        diff = max(float((vec[n] - loop[n]).abs().max()) for n in loop)
        worst = max(worst, diff)
        print(f"check {name:<10} {len(clients)} clients (sizes {min(sizes)}-{max(sizes)}), 2 rounds: "
              f"largest |vectorised - loop| of the aggregate {diff:.2e}")
    ok = worst <= CHECK_TOLERANCE
    print(f"check {'passed' if ok else 'FAILED'} (tolerance {CHECK_TOLERANCE:g})")
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--client-size", type=int, default=8)
    ap.add_argument("--loop-clients", type=int, default=None, help="clients timed on the loop (default: all)")
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--check-clients", type=int, default=12)
    args = ap.parse_args()
    threads = set_threads(args.threads)
    device = resolve_device(args.device)

    data = create_dataset("digits")
    torch.manual_seed(args.seed)
    model = create_model("mlp", input_shape=data.input_shape, num_classes=data.num_classes,
                         channel_mean=data.channel_mean, channel_std=data.channel_std, hidden=args.hidden)
    print(f"device: {describe_device(device)}; torch threads: {threads}; torch {torch.__version__}")
    if args.check:
        return check(model, data, args, device)

    defense = DEFENSES.create("fedavg")
    print(f"digits + mlp (hidden {args.hidden}, {sum(p.numel() for p in model.parameters())} parameters); "
          f"{args.clients} clients x {args.client_size} examples (drawn with replacement); "
          f"fedavg {defense.params()}; {args.rounds} round(s), all clients each round")
    print("vectorisable:", *vectorisable(defense, model=model))
    clients = make_clients(data, [args.client_size] * args.clients, args.seed)
    loop_n = min(args.loop_clients or args.clients, args.clients)
    schedule = FederationSchedule(num_clients=loop_n, clients_per_round=loop_n, rounds=args.rounds)

    def vectorised():
        run_both(model, clients, defense, args.rounds, args.seed, device, loop=False)

    def loop():
        FederatedSimulation(model=copy.deepcopy(model), clients=clients[:loop_n], defense=defense,
                            schedule=schedule, seed=args.seed, device=device).run()

    cold_vec, t_vec = best_time(vectorised, args.repeats, device)
    cold_loop, t_loop = best_time(loop, args.repeats, device)
    rate_vec = args.clients * args.rounds / t_vec
    rate_loop = loop_n * args.rounds / t_loop
    note = "" if loop_n == args.clients else f" (timed on {loop_n} clients, extrapolated)"
    print(f"best of {args.repeats} after one untimed warm-up run (the first, cold, run in brackets)")
    print(f"{'path':<11} {'clients':>8} {'seconds':>9} {'clients/s':>11} {'(cold s)':>9}")
    print(f"{'loop':<11} {loop_n:>8} {t_loop:>9.3f} {rate_loop:>11.0f} {cold_loop:>9.3f}{note}")
    print(f"{'vectorised':<11} {args.clients:>8} {t_vec:>9.3f} {rate_vec:>11.0f} {cold_vec:>9.3f}")
    print(f"speedup (clients/s): {rate_vec / rate_loop:.1f}x; {args.clients} clients in "
          f"{t_vec:.3f} s vectorised vs {args.clients / rate_loop:.3f} s on the loop"
          f"{' (extrapolated)' if note else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
