"""DR-Encoder compression benchmark: next-token accuracy lost against compression ratio, beside
the autoencoder-reconstruction attack's success on the same runs, on a base that learns.

Setting (CPU scale, 1 torch thread by default):

* **Base**: ``tiny-lm-lora`` (GPT-2, 2 layers, hidden 64, LoRA r 8 on ``--targets``) whose
  base is pre-trained centrally (:func:`audit.fl.pretraining.pretrain`, SGD momentum 0.9,
  ``--pretrain-steps`` batches of 32 at ``--pretrain-lr``) on a *disjoint* generated split of
  ``records``: ``--pretrain-items`` records of data seed ``--pretrain-seed`` with 2 clients,
  so only the locales en_US / en_GB and the templates account, contact, email; the clients'
  data have 8 locales and 6 templates. Cached as safetensors (:class:`audit.models.cache.ModelCache`,
  keyed by the whole pre-training config; ``--cache-dir``, default ``~/.cache/fedaudit/models``).
* **Clients**: ``records`` of data seed ``s`` (one per ``--seeds``), 8 clients non-IID by locale
  and template, the first 512 records; **held-out**: records 512-639 of the same draw (no client
  holds them). Metric: top-1 next-token accuracy pooled over their scored tokens
  (:func:`audit.metrics.text.next_token_accuracy`).
* **Runs** per seed: LoRA FedAvg (no compression, no DP); local DP-FedAvg at ``--epsilon``;
  DR-Encoder at each ``--ratios`` (blocks of ``--block``, ``server_lr`` ``--server-lr``: 1 is
  the paper's plain decoding, ``ratio`` this project's rescaling) without noise and at
  ``--epsilon``. ``--rounds`` rounds of ``--local-steps`` full-batch steps at ``--lr``
  (momentum ``--momentum``), clip ``--clip`` for the DP rows; DR-Encoder without noise clips its
  code at ``--nodp-clip`` (default 1e9: never, so that row measures compression alone; the
  median code norm and the share of clipped codes are printed). DR-Encoder adds its stage-1
  round (statistics of the clients' round-0 updates *of this pre-trained model*: checked and
  printed).
* **Attack on the same run** (through the audit harness: :func:`audit.harness.targets`,
  :func:`audit.harness.raw_update`): every client's observation in the first round that
  carries updates, against its true LoRA update: DR-Encoder by ``ae-reconstruction`` with the
  server's decoder and with an eavesdropper's shadow autoencoder; the baselines' observed update
  itself. Cosine (baseline: 0, a guess independent of the update) and relative error (baseline
  1, the zero update), mean over the clients.

Statistics over seeds: mean and 95% Student-t interval (scipy.stats.t); the accuracy loss vs
FedAvg is paired by seed. Verdict on "competitive accuracy" at each ratio (``--margin`` X
percentage points, ``--min-gain`` Y): *not judgeable* when FedAvg's gain over the base is
below Y points or its interval reaches 0; *holds* when the loss's upper bound is at most X;
*fails* when its lower bound is above X; else *undecided*.

Usage: ``python3 benchmarks/dr_encoder_compression.py [--seeds 0,1,2] [--ratios 2,4,8,16]
[--epsilon 8|none] [--server-lr 1|ratio] [--nodp-clip 1e9] [--device auto]``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import time

import numpy as np
import torch
from seed_intervals import fmt_interval
from seed_intervals import t_interval as _interval

K = 8  # clients
TRAIN, HELD_OUT = 512, 128
LENGTH = 64


def _model(ds, args, device):
    from audit.models.registry import create_model

    return create_model("tiny-lm-lora", input_shape=ds.input_shape, num_classes=ds.num_classes,
                        channel_mean=ds.channel_mean, channel_std=ds.channel_std,
                        targets=args.targets).to(device)


def _pretrain_data(args) -> dict:
    return {"name": "records", "num_items": args.pretrain_items, "length": LENGTH, "clients": 2,
            "canaries": 0, "seed": args.pretrain_seed}


def pretrained_base(args, device) -> dict[str, torch.Tensor]:
    """The base's (non-LoRA) tensors, from the cache or pre-trained now (then cached)."""
    from audit.data.registry import create_dataset
    from audit.fl.pretraining import pretrain
    from audit.models.cache import ModelCache, default_cache_dir

    data = _pretrain_data(args)
    spec = {"what": "benchmarks/dr_encoder_compression base", "model": "tiny-lm-lora",
            "model_params": {"targets": args.targets, "layers": 2, "hidden": 64, "heads": 4, "r": 8,
                             "alpha": 16}, "data": data, "init_seed": 0,
            "pretrain": {"steps": args.pretrain_steps, "lr": args.pretrain_lr, "batch_size": 32,
                         "seed": 0, "optimizer": "sgd momentum 0.9"}, "torch": torch.__version__}
    cache = ModelCache(args.cache_dir or default_cache_dir())
    tensors = cache.load(spec)
    if tensors is not None:
        print(f"base: cached {cache.path(spec)}")
        return tensors
    t = time.perf_counter()
    ds = create_dataset(**data)
    torch.manual_seed(0)
    model = _model(ds, args, device)
    info = pretrain(model, ds, steps=args.pretrain_steps, lr=args.pretrain_lr, batch_size=32, seed=0)
    tensors = {n: v for n, v in model.state_dict().items() if "lora_" not in n}
    path = cache.save(spec, tensors)
    print(f"base: pre-trained {args.pretrain_steps} steps in {time.perf_counter() - t:.0f} s "
          f"(train loss {info['final_loss']:.3f}, train next-token accuracy {info['train_accuracy']:.1%}); "
          f"cached {path}")
    return tensors


def _defense(method: str, eps: float | None, ratio: int | None, args):
    from audit.core.defense import DEFENSES

    common = {"local_steps": args.local_steps, "lr": args.lr, "momentum": args.momentum}
    if method == "fedavg":
        return DEFENSES.create("fedavg", **common)
    if method == "dp-fedavg":
        return DEFENSES.create("dp-fedavg", base="fedavg", **common, mode="local", clip_norm=args.clip,
                               target_epsilon=eps)
    noise = {"noise_multiplier": 0.0} if eps is None else {"target_epsilon": eps}
    slr = float(ratio) if args.server_lr == "ratio" else float(args.server_lr)
    clip = args.clip if eps is not None else args.nodp_clip  # no DP: compression alone by default
    return DEFENSES.create("dr-encoder", **common, ratio=ratio, block=args.block, clip_norm=clip,
                           server_lr=slr, **noise)


def _rows(args) -> list[tuple[str, float | None, int | None]]:
    eps = [] if args.epsilon == "none" else [float(args.epsilon)]
    rows = [("fedavg", None, None)] + [("dp-fedavg", e, None) for e in eps]
    for r in (int(x) for x in args.ratios.split(",")):
        rows += [("dr-encoder", None, r)] + [("dr-encoder", e, r) for e in eps]
    return rows


def _attack(run, method: str) -> dict[str, list[float]]:
    """Recovery of every client's true update in the first round that carries updates."""
    from audit.core.attack import ATTACKS, AttackView
    from audit.harness import raw_update, targets
    from audit.metrics.scoring import gradient_recovery_metrics

    out: dict[str, list[float]] = {}
    adversaries = ("server", "shadow") if method == "dr-encoder" else ("observed",)
    todo = targets(run)
    truths = [raw_update(run, t) for t in todo]
    public = todo[0].view.defense_params  # one object for all targets: the attack trains one shadow
    for adversary in adversaries:
        ae = ATTACKS.create("ae-reconstruction", decoder=adversary) if method == "dr-encoder" else None
        scores = []
        for i, (target, truth) in enumerate(zip(todo, truths)):
            view = AttackView(**{**target.view.__dict__, "defense_params": public})
            if adversary == "shadow":  # the eavesdropper: no server state
                view = AttackView(**{**view.__dict__, "server_state": None})
            recovered = (view.target.tensors if ae is None else
                         ae.run(view, generator=torch.Generator().manual_seed(i), device=torch.device("cpu")).gradient)
            scores.append(gradient_recovery_metrics(recovered, truth))
        out[f"{adversary} cos"] = [float(np.mean([s["cosine"] for s in scores]))]
        out[f"{adversary} rel"] = [float(np.mean([s["relative_error"] for s in scores]))]
    return out


def _stage1_check(run) -> float:
    """Max relative difference between the statistics the server holds and those of the
    clients' round-0 updates of the broadcast (the pre-trained model), recomputed."""
    from audit.harness import raw_update, targets
    from defenses.gradient_autoencoder import layer_statistics

    t0 = targets(run)[0]
    worst = 0.0
    for i, obs in enumerate(run.transcript.rounds[0].observations):
        truth = layer_statistics(raw_update(run, dataclasses.replace(t0, clients=(obs.client_id,), round=0)))
        held = run.defense.statistics[i]
        for n, s in truth.items():
            for a, b in ((held[n].mean, s.mean), (held[n].std, s.std)):
                worst = max(worst, abs(a - b) / max(abs(b), 1e-12))
    return worst


def run_seed(seed: int, base: dict, pre_texts: set[str], args, device) -> dict[tuple, dict[str, list[float]]]:
    from audit.core.config import AuditConfig
    from audit.core.defense import FederationSchedule
    from audit.core.threat_model import create_threat_model
    from audit.core.updates import ClientData
    from audit.data.registry import create_dataset
    from audit.fl.simulation import FederatedSimulation
    from audit.harness import PreparedRun
    from audit.metrics.text import next_token_accuracy

    ds = create_dataset("records", num_items=TRAIN + HELD_OUT, length=LENGTH, clients=K, canaries=0, seed=seed)
    train = torch.arange(TRAIN)
    groups = ds.groups[train]
    clients = [ClientData(ds.images[train][groups == c].to(device), ds.labels[train][groups == c].to(device))
               for c in range(K)]
    sizes = tuple(len(c) for c in clients)
    x_val, y_val = ds.images[TRAIN:].to(device), ds.labels[TRAIN:].to(device)
    texts = ds.meta["items"]["texts"]
    print(f"  seed {seed}: {sum(x in pre_texts for x in texts[TRAIN:])} of {HELD_OUT} held-out and "
          f"{sum(x in pre_texts for x in texts[:TRAIN])} of {TRAIN} client records also in the pre-training data")
    torch.manual_seed(seed)
    start = _model(ds, args, device)
    missing = start.load_state_dict(base, strict=False).missing_keys
    assert all("lora_" in n for n in missing), missing

    def accuracy(model) -> float:
        with torch.no_grad():
            return next_token_accuracy(model(x_val), y_val)

    results = {("base", None, None): {"acc": [accuracy(start)]}}
    checked = False
    for method, eps, ratio in _rows(args):
        t = time.perf_counter()
        model = copy.deepcopy(start)
        defense = _defense(method, eps, ratio, args)
        rounds = args.rounds + (defense.first_update_round() if method == "dr-encoder" else 0)
        schedule = FederationSchedule(K, K, rounds, examples_per_client=sizes)
        defense.prepare(schedule)
        transcript = FederatedSimulation(model=model, clients=clients, defense=defense, schedule=schedule,
                                         seed=seed, device=device).run()
        # the run as the harness holds it (the config only describes it: the clients are the
        # records' own groups, which no AuditConfig client split names)
        config = AuditConfig(defense=defense.name, defense_params=defense.params(), dataset="records",
                             model="tiny-lm-lora", model_params={"targets": args.targets},
                             num_targets=K, rounds=rounds, seed=seed)
        run = PreparedRun(config=config, dataset=ds, model=model, defense=defense, schedule=schedule,
                          claim=defense.claim(schedule),
                          threat_model=create_threat_model(defense.default_threat_model),
                          clients=clients, transcript=transcript, runtime_s=0.0)
        row = {"acc": [accuracy(model)], **_attack(run, method)}
        comp = getattr(defense, "autoencoder_info", {}).get("compression")
        row["compression"] = [1.0 if comp is None else float(comp)]
        if method == "dr-encoder":  # the stage-2 codes before clipping
            info = [o.info for r in transcript.rounds[defense.first_update_round():] for o in r.observations]
            row["code norm"] = [float(np.median([i["code_norm"] for i in info]))]
            row["clipped"] = [float(np.mean([i["clipped"] for i in info]))]
        if method == "dr-encoder" and not checked:
            print(f"  seed {seed}: stage-1 statistics vs the clients' round-0 updates of the pre-trained "
                  f"model, recomputed: max relative difference {_stage1_check(run):.1e}")
            checked = True
        results[(method, eps, ratio)] = row
        codes = (f", code norm median {row['code norm'][0]:.3g}, clipped {row['clipped'][0]:.0%}"
                 if "code norm" in row else "")
        print(f"  seed {seed} {method:<10} eps {'-' if eps is None else f'{eps:g}':>3} ratio "
              f"{'-' if ratio is None else ratio:>2}: accuracy {row['acc'][0]:.2%}{codes}, "
              f"{time.perf_counter() - t:.0f} s", flush=True)
    return results


def report(per_seed: list[dict], args) -> None:
    keys = list(per_seed[0])
    merged = {k: {m: sum((r[k][m] for r in per_seed), []) for m in per_seed[0][k]} for k in keys}
    ref = merged[("fedavg", None, None)]["acc"]
    base = merged[("base", None, None)]["acc"]
    n = len(per_seed)
    pp = 100.0
    print(f"\n## Next-token accuracy vs compression ({n} seed(s); mean [95% t interval]; loss vs FedAvg "
          "paired by seed, in percentage points and relative to FedAvg's accuracy)")
    print(f"{'method':<11} {'eps':>3} {'ratio':>5} {'compr.':>6} {'accuracy %':>21} {'loss vs FedAvg, pp':>21} "
          f"{'relative %':>21} {'gain kept %':>11} {'server cos':>10} {'server rel':>10} {'shadow cos':>10} "
          f"{'shadow rel':>10} {'code norm':>9} {'clipped':>7}")
    for (method, eps, ratio), row in merged.items():
        acc = row["acc"]
        loss = [a - b for a, b in zip(ref, acc)]
        rel = [(a - b) / a for a, b in zip(ref, acc)]
        kept = [(b - c) / (a - c) if a != c else math.nan for a, b, c in zip(ref, acc, base)]
        adv = ("observed", "observed") if method != "dr-encoder" else ("server", "shadow")
        cells = [f"{np.mean(row[f'{a} {m}']):.3f}" if f"{a} {m}" in row else "-" for a in adv for m in ("cos", "rel")]
        if method != "dr-encoder":
            cells[2:] = ["-", "-"]
        comp = f"{np.mean(row['compression']):.1f}x" if "compression" in row else "-"
        same = method in ("base", "fedavg")
        print(f"{method:<11} {'-' if eps is None else f'{eps:g}':>3} {'-' if ratio is None else ratio:>5} {comp:>6} "
              f"{fmt_interval(acc, 1, pp):>21} {('-' if method == 'fedavg' else fmt_interval(loss, 1, pp)):>21} "
              f"{('-' if method == 'fedavg' else fmt_interval(rel, 1, pp)):>21} {('-' if same else fmt_interval(kept, 0, pp)):>11} "
              + " ".join(f"{c:>10}" for c in cells)
              + (f" {np.mean(row['code norm']):>9.3g} {np.mean(row['clipped']):>7.0%}" if "code norm" in row else ""))
    gain = [(a - c) * pp for a, c in zip(ref, base)]
    g, glo, _ = _interval(gain)
    judgeable = g >= args.min_gain and (math.isnan(glo) or glo > 0)
    print(f"\nFedAvg's gain over the pre-trained base: {fmt_interval(gain, 2)} pp "
          f"({'judgeable' if judgeable else 'NOT judgeable'}: needs >= {args.min_gain:g} pp with an interval above 0)")
    print(f"Verdict on 'competitive accuracy' (holds: loss vs FedAvg <= {args.margin:g} pp at the upper bound; "
          f"fails: lower bound > {args.margin:g} pp):")
    for (method, eps, ratio), row in merged.items():
        if method != "dr-encoder":
            continue
        m, lo, hi = _interval([(a - b) * pp for a, b in zip(ref, row["acc"])])
        if not judgeable:
            verdict = f"not judgeable: fine-tuning gains {g:.2f} pp < {args.min_gain:g} pp over the base"
        elif math.isnan(lo):
            verdict = ("holds (one seed, no interval)" if m <= args.margin else "fails (one seed, no interval)")
        else:
            verdict = "holds" if hi <= args.margin else "fails" if lo > args.margin else "undecided"
        print(f"  ratio {ratio:>2}, eps {'-' if eps is None else f'{eps:g}':>3}: loss {m:.2f} pp "
              f"[{lo:.2f}, {hi:.2f}] -> {verdict}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--ratios", default="2,4,8,16")
    ap.add_argument("--epsilon", default="8", help="a float, or 'none' (no DP rows)")
    ap.add_argument("--server-lr", default="1", help="a float, or 'ratio'")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--local-steps", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.15)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--block", type=int, default=256)
    ap.add_argument("--clip", type=float, default=1.0, help="C of the DP rows")
    ap.add_argument("--nodp-clip", type=float, default=1e9,
                    help="clip_norm of DR-Encoder without noise (default 1e9: no code is clipped)")
    ap.add_argument("--targets", default="attention,mlp,embedding", help="LoRA targets of tiny-lm-lora")
    ap.add_argument("--pretrain-items", type=int, default=2048)
    ap.add_argument("--pretrain-seed", type=int, default=1000)
    ap.add_argument("--pretrain-steps", type=int, default=1500)
    ap.add_argument("--pretrain-lr", type=float, default=0.1)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--margin", type=float, default=2.0, help="X: percentage points of 'competitive'")
    ap.add_argument("--min-gain", type=float, default=2.0, help="Y: FedAvg's least gain over the base, pp")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if args.server_lr != "ratio":
        float(args.server_lr)
    if args.epsilon != "none":
        float(args.epsilon)
    torch.set_num_threads(args.threads)
    from audit.core.device import describe_device, resolve_device

    device = resolve_device(args.device)
    print(f"torch threads: {torch.get_num_threads()}; device: {describe_device(device)}")
    t = time.perf_counter()
    from audit.data.registry import create_dataset

    base = pretrained_base(args, device)
    pre_texts = set(create_dataset(**_pretrain_data(args)).meta["items"]["texts"])
    per_seed = [run_seed(int(s), base, pre_texts, args, device) for s in args.seeds.split(",")]
    report(per_seed, args)
    print(f"\nwall time {time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
