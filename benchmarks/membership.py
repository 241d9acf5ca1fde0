"""Membership-inference benchmark: LOSS, LiRA and RMIA against federated targets, the
update-based attack against one FedSGD client, and Ray's shadow-training speed-up.

Prints
1. for ``fedavg`` and ``dp-fedavg`` (central, epsilon in {1, 8}, delta 1e-5) on
   ``purchase-synthetic`` (and ``fedavg`` on ``digits``, where membership signal is weak):
   target train / test accuracy, then per attack the ROC AUC with its 95% bootstrap
   interval, TPR at 0.1% and 1% FPR, and the one-run empirical epsilon beside the claim;
2. the update-based attack's mean AUC over ``--trials`` seeds for client batches 8, 32, 128
   (FedSGD, freshly initialised model);
3. the wall-clock time of 8 shadow models (MLP 600-``--ray-hidden``-10, the targets' recipe
   with ``--ray-rounds`` rounds: 20 as the targets, about 1 s a model, and 150, about 8 s)
   trained sequentially (1 and 2 torch threads) and with Ray (2 workers, 1 thread each),
   cold (Ray start included) and warm, and with ``backend="auto"``, and the ratios to
   sequential with 1 thread and to the best sequential setting.

Targets: 10 clients, all in every round, 20 rounds of FedAvg (5 local full-batch steps,
lr 0.5), MLP 600-128-10: 100% training accuracy (how: enough rounds of full-batch local
steps on ~100 examples per client, no regularisation).

Usage: ``python3 benchmarks/membership.py [--shadow-models 16] [--trials 30] [--seed 0]``
(about 10 minutes on 2 cores; shadow models are cached under ``--cache-dir``).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

import numpy as np
import torch

from audit.core.attack import ATTACKS
from audit.core.config import AuditConfig
from audit.membership.membership_audit import TrainingBackend, attack_scores, empirical_epsilon, prepare_membership
from attacks.membership_signals import balanced_masks
from audit.membership.game import TrainingRecipe, shadow_seed, train_federated
from audit.metrics.membership import membership_metrics
from audit.fl.parallel_training import shutdown_ray, train_models

FEDAVG = {"local_steps": 5, "lr": 0.5}


def attacks_for(k: int):
    return [("loss", {}), ("lira", {"shadow_models": k}),
            ("lira", {"shadow_models": k, "variant": "offline"}),
            ("lira", {"shadow_models": k, "fixed_variance": False}),
            ("rmia", {"shadow_models": k}), ("rmia", {"shadow_models": k, "variant": "online"})]


def label(name, params):
    extra = [f"{k}={v}" for k, v in params.items() if k != "shadow_models"]
    return name + (f" ({', '.join(extra)})" if extra else "")


def target_table(args, backend):
    rows = [("fedavg", "purchase-synthetic", FEDAVG), ]
    for eps in (1.0, 8.0):
        rows.append(("dp-fedavg", "purchase-synthetic",
                     {"base": "fedavg", **FEDAVG, "mode": "central", "target_epsilon": eps,
                      "clip_norm": 1.0}))
    rows.append(("fedavg", "digits", FEDAVG))
    print(f"== final-model attacks, {args.shadow_models} shadow models, seed {args.seed}")
    print(f"{'defense':<22} {'dataset':<19} {'attack':<32} {'AUC [95% CI]':<22} "
          f"{'TPR@0.1%':>8} {'TPR@1%':>7} {'eps_emp':>7} {'eps_claim':>9}")
    for defense, dataset, params in rows:
        cfg = AuditConfig(defense=defense, defense_params=params, attack="loss", dataset=dataset,
                          model="mlp", model_params={"hidden": 128}, num_targets=10, rounds=20,
                          seed=args.seed)
        t = time.perf_counter()
        run = prepare_membership(cfg, device=torch.device("cpu"), backend=backend)
        name = defense if defense == "fedavg" else f"dp-fedavg eps={params['target_epsilon']:g}"
        u = run.utility
        print(f"{name:<22} {dataset:<19} target: train acc {u['train_accuracy']:.3f}, test acc "
              f"{u['test_accuracy']:.3f}, {run.game.summary()['members']} members / "
              f"{run.game.summary()['non_members']} non-members ({time.perf_counter() - t:.1f} s)")
        for attack, aparams in attacks_for(args.shadow_models):
            scores, truth, _, _ = attack_scores(run, ATTACKS.create(attack, **aparams))
            mm = membership_metrics(scores, truth, bootstrap=1000, seed=args.seed)
            eps = empirical_epsilon(run, scores, truth)
            claim = eps["epsilon_claim_example_level"]
            ci = f"{mm.auc:.3f} [{mm.auc_interval[0]:.3f}, {mm.auc_interval[1]:.3f}]"
            print(f"{'':<22} {'':<19} {label(attack, aparams):<32} {ci:<22} "
                  f"{mm.tpr_at_fpr[0.001]:>8.3f} {mm.tpr_at_fpr[0.01]:>7.3f} "
                  f"{eps['epsilon_emp']:>7.2f} {('-' if claim is None else f'{claim:.2f}'):>9}")


def update_table(args):
    print(f"== update-based attack (hbc-server, FedSGD lr 0.1, fresh model), {args.trials} trials")
    print(f"{'batch':>5} {'signal':<12} {'mean AUC':>8} {'min':>6} {'max':>6}")
    for batch in (8, 32, 128):
        for signal in ("alignment", "loss-change"):
            aucs = []
            for trial in range(args.trials):
                cfg = AuditConfig(defense="fedsgd", defense_params={"lr": 0.1}, attack="update-mia",
                                  dataset="purchase-synthetic", model="mlp",
                                  model_params={"hidden": 128}, num_targets=1, rounds=1,
                                  seed=args.seed + trial, num_candidates=batch + 256,
                                  num_population=0)
                run = prepare_membership(cfg, device=torch.device("cpu"),
                                         backend=TrainingBackend(backend="serial"),
                                         exact_members=batch)
                scores, truth, _, _ = attack_scores(run, ATTACKS.create("update-mia", signal=signal))
                aucs.append(membership_metrics(scores, truth, bootstrap=0).auc)
            print(f"{batch:>5} {signal:<12} {np.mean(aucs):>8.3f} {np.min(aucs):>6.3f} "
                  f"{np.max(aucs):>6.3f}")


def ray_speedup(args):
    from audit.data.registry import create_dataset
    from audit.membership.game import make_game

    game = make_game(create_dataset("purchase-synthetic"), num_candidates=2000,
                     num_population=1000, seed=args.seed)
    masks = balanced_masks(8, 2000, np.random.default_rng(args.seed))
    for rounds in (int(r) for r in args.ray_rounds.split(",")):
        recipe = TrainingRecipe("purchase-synthetic", {}, "mlp", {"hidden": args.ray_hidden},
                                "fedavg", FEDAVG, 10, 10, rounds)

        def specs(offset):
            return [recipe.spec(game.candidates[m], shadow_seed(args.seed + offset, k))
                    for k, m in enumerate(masks)]

        print(f"== 8 shadow models (fedavg, purchase-synthetic, MLP hidden {args.ray_hidden}, "
              f"{rounds} rounds), no cache")
        times = {}
        for threads in (1, 2):
            t = time.perf_counter()
            train_models(specs(99), train_federated, backend="serial", threads_per_worker=threads)
            times[f"sequential, {threads} thread(s)"] = time.perf_counter() - t
        shutdown_ray()
        cold = "ray, 2 workers x 1 thread, cold (Ray start included)"
        t = time.perf_counter()
        train_models(specs(99), train_federated, backend="ray", workers=2,
                                threads_per_worker=1)
        times[cold] = time.perf_counter() - t
        warm = "ray, 2 workers x 1 thread, warm (Ray running)"
        t = time.perf_counter()
        train_models(specs(199), train_federated, backend="ray", workers=2, threads_per_worker=1)
        times[warm] = time.perf_counter() - t
        shutdown_ray()
        auto = "auto (the CLI's default), Ray not running"
        t = time.perf_counter()
        _, stats = train_models(specs(299), train_federated, backend="auto", workers=2)
        times[auto] = time.perf_counter() - t
        shutdown_ray()
        for k, v in times.items():
            print(f"  {k:<55} {v:6.1f} s")
        print(f"  {stats.reason}")
        one = times["sequential, 1 thread(s)"]
        best_seq = min(v for k, v in times.items() if k.startswith("sequential"))
        for name, ref in (("sequential with 1 thread", one), ("the best sequential setting", best_seq)):
            print(f"  speed-up over {name}: Ray cold {ref / times[cold]:.2f}x, warm "
                  f"{ref / times[warm]:.2f}x, auto {ref / times[auto]:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shadow-models", type=int, default=16)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ray-hidden", type=int, default=128, help="shadow MLP width in the Ray timing")
    ap.add_argument("--ray-rounds", default="20,150",
                    help="comma list of FedAvg round counts for the Ray timing (20: the "
                         "targets' recipe, ~1 s a model; 150: ~8 s a model)")
    ap.add_argument("--cache-dir", default=None, help="shadow cache (default: a temporary folder)")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: targets,update,ray")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print("torch threads in the driver: 1; shadow models: Ray workers with 1 thread each")
    cache = args.cache_dir or tempfile.mkdtemp(prefix="fedaudit-bench-")
    skip = set(filter(None, args.skip.split(",")))
    try:
        if "targets" not in skip:
            target_table(args, TrainingBackend(backend="ray", workers=2, cache_dir=cache))
        if "update" not in skip:
            update_table(args)
        if "ray" not in skip:
            ray_speedup(args)
    finally:
        shutdown_ray()
        if args.cache_dir is None:
            shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
