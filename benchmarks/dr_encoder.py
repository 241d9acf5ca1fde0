"""DR-Encoder benchmark: utility, the attacks and the privacy audit, for DR-Encoder (without
DP and at each epsilon of ``--epsilons``) beside uncompressed LoRA FedAvg (no DP) and
DP-FedAvg on the raw LoRA updates at the same epsilon.

Setting (CPU scale, 1 torch thread): ``records`` (generated customer records, 8 clients
non-IID by locale and template, 64 byte tokens, 4 canary secrets each planted 4 times in one
client); ``tiny-lm-lora`` (GPT-2, 2 layers, hidden 64, LoRA r 8 on ``--targets``: attention,
MLP and the token embedding by default, so token-set leakage has rows to read) on a random
base; ``--rounds`` rounds of ``--local-steps`` full-batch steps at ``--lr`` with momentum
``--momentum``; DR-Encoder spends one stage-1 round on the statistics (no model update) and
``--rounds`` stage-2 rounds; clip C = ``--clip`` for both DP methods.

Printed, one table each:

1. **Utility**: validation loss on 128 held-out records (and vs FedAvg), compression, the
   claimed epsilon, the canary exposure (Carlini et al. 2019; bits, mean over the 4 canaries,
   1000 sampled candidates: resolves up to about 10 bits) on the final model. DR-Encoder
   runs with ``server_lr`` 1 (the paper's plain decoding) and ``--server-lr`` (this
   project's server step; see :mod:`defenses.dr_encoder`).
2. **Attacks at batch 1** (``--attack-clients`` clients holding one record each, the first
   round that carries updates, through the audit harness): the update the adversary
   recovers (cosine, relative error against the client's true LoRA update; for DR-Encoder
   the server's decoder and an eavesdropper's shadow autoencoder; for the baselines the
   observed update itself), token-set precision/recall on it, and TAG (token accuracy,
   ROUGE-1/2/L) on it. A row ``fedavg (attention)`` repeats the undefended attacks with LoRA
   on attention only.
3. **Stage-1 statistics** (no noise): each layer's update norm recovered from them
   (relative error), and membership of a canary in a client from them
   (:mod:`attacks.statistics_membership`: AUC, TPR at 1% FPR, Clopper-Pearson lower bound).
4. **Empirical epsilon of stage 2**: white-box canaries on the code mechanism
   (Clopper-Pearson at 95%, ``--trials`` per side) beside the claim.

Usage: ``python3 benchmarks/dr_encoder.py [--epsilons 1,8] [--sections utility,attacks,stage1,epsilon]``.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch

K = 8  # clients of the utility runs


def _defense(method: str, eps: float | None, args, *, server_lr: float = 1.0):
    from audit.core.defense import DEFENSES

    common = {"local_steps": args.local_steps, "lr": args.lr, "momentum": args.momentum}
    if method == "fedavg":
        return DEFENSES.create("fedavg", **common)
    if method == "dr-encoder":
        noise = {"noise_multiplier": 0.0} if eps is None else {"target_epsilon": eps}
        return DEFENSES.create("dr-encoder", **common, ratio=args.ratio, block=args.block,
                               clip_norm=args.clip, server_lr=server_lr, **noise)
    return DEFENSES.create("dp-fedavg", base="fedavg", **common, mode="local",
                           clip_norm=args.clip, target_epsilon=eps)


def _rows(args) -> list[tuple[str, float | None, float]]:
    rows = [("fedavg", None, 1.0), ("dr-encoder", None, 1.0), ("dr-encoder", None, args.server_lr)]
    for e in args.epsilons.split(","):
        rows += [("dr-encoder", float(e), args.server_lr), ("dp-fedavg", float(e), 1.0)]
    return rows


def _label(method: str, eps: float | None, server_lr: float) -> tuple[str, str]:
    name = method if method != "dr-encoder" else f"dr-encoder s{server_lr:g}"
    return name, "-" if eps is None else f"{eps:g}"


def utility(args) -> None:
    from audit.data.registry import create_dataset
    from audit.core.defense import FederationSchedule
    from audit.models.registry import create_model
    from audit.fl.simulation import FederatedSimulation
    from audit.models.text_lm import ByteTokenizer
    from audit.data.generated.text_records import canary_exposure
    from audit.core.updates import ClientData

    ds = create_dataset("records", num_items=512 + 128, length=64, clients=K, canaries=4,
                        canary_repeats=4, seed=args.seed)
    canary = torch.as_tensor(ds.meta["items"]["canary"]) >= 0
    val = torch.arange(512, 640)  # held-out plain records
    train = torch.cat([torch.arange(512), torch.nonzero(canary).flatten()])
    groups = ds.groups[train]
    clients = [ClientData(ds.images[train][groups == c], ds.labels[train][groups == c])
               for c in range(K)]
    sizes = tuple(len(c) for c in clients)
    torch.manual_seed(args.seed)
    base = create_model("tiny-lm-lora", input_shape=ds.input_shape, num_classes=ds.num_classes,
                        channel_mean=ds.channel_mean, channel_std=ds.channel_std,
                        targets=args.targets)
    x_val, y_val = ds.images[val], ds.labels[val]
    tok, fmt = ByteTokenizer(), ds.meta["canary_format"]

    def val_loss(model) -> float:
        with torch.no_grad():
            return float(torch.nn.functional.cross_entropy(model(x_val), y_val))

    def exposure(model) -> float:
        return float(np.mean([canary_exposure(model, tok, c["secret"], fmt, candidates=1000, seed=j)
                              for j, c in enumerate(ds.meta["canaries"])]))

    lora = sum(p.numel() for p in base.parameters() if p.requires_grad)
    print(f"\n## 1. Utility ({K} clients {list(sizes)}, LoRA on {args.targets}: {lora} entries; "
          f"{args.rounds} rounds x {args.local_steps} steps, lr {args.lr}, momentum {args.momentum})")
    print(f"random base: validation loss {val_loss(base):.4f}, canary exposure {exposure(base):.2f} bits")
    print(f"{'method':<16} {'eps':>4} {'val loss':>9} {'vs fedavg':>9} {'compression':>11} "
          f"{'claim eps':>9} {'exposure':>8} {'s':>4}")
    reference = None
    for method, eps, slr in _rows(args):
        t = time.perf_counter()
        model = copy.deepcopy(base)
        defense = _defense(method, eps, args, server_lr=slr)
        rounds = args.rounds + (defense.first_update_round() if method == "dr-encoder" else 0)
        schedule = FederationSchedule(K, K, rounds, examples_per_client=sizes)
        defense.prepare(schedule)
        FederatedSimulation(model=model, clients=clients, defense=defense, schedule=schedule,
                            seed=args.seed).run()
        loss = val_loss(model)
        reference = loss if method == "fedavg" else reference
        rel = "-" if reference is None else f"{loss / reference - 1:+.1%}"
        comp = getattr(defense, "autoencoder_info", {}).get("compression")
        claim = defense.claim(schedule)
        name, e = _label(method, eps, slr)
        print(f"{name:<16} {e:>4} {loss:>9.4f} {rel:>9} {'-' if comp is None else f'{comp:.1f}x':>11} "
              f"{'-' if not claim.has_dp else f'{claim.epsilon:.3g}':>9} {exposure(model):>8.2f} "
              f"{time.perf_counter() - t:>4.0f}", flush=True)


def _config(method: str, eps: float | None, slr: float, args, attack: str, targets: str, **attack_params):
    from audit.core.config import AuditConfig

    return AuditConfig(
        defense=method, defense_params=_defense_params(method, eps, args, slr),
        attack=attack, attack_params=attack_params, dataset="records",
        dataset_params={"num_items": 64, "length": args.attack_length, "clients": K, "canaries": 0,
                        "seed": args.seed},
        model="tiny-lm-lora", model_params={"targets": targets}, batch_size=1,
        num_targets=args.attack_clients, rounds=2 if method == "dr-encoder" else 1, seed=args.seed)


def _defense_params(method: str, eps: float | None, args, slr: float) -> dict:
    common = {"local_steps": args.local_steps, "lr": args.lr, "momentum": args.momentum}
    if method == "fedavg":
        return common
    if method == "dr-encoder":
        noise = {"noise_multiplier": 0.0} if eps is None else {"target_epsilon": eps}
        return {**common, "ratio": args.ratio, "block": args.block, "clip_norm": args.clip,
                "server_lr": slr, **noise}
    return {"base": "fedavg", **common, "mode": "local", "clip_norm": args.clip, "target_epsilon": eps}


def _metric(finding: dict, name: str) -> float | None:
    for m in finding["metrics"]:
        if m["name"] == name:
            return m["mean"]
    return None


def attack_section(args) -> None:
    from attacks.token_set_leakage import leaked_tokens, token_rows
    from audit.core.attack import ATTACKS, AttackResult, AttackView
    from audit.harness import prepare, raw_update, targets
    from audit.metrics.scoring import gradient_recovery_metrics
    from audit.metrics.text_scoring import score_text
    from audit.core.updates import ModelUpdate

    dev = torch.device("cpu")
    tag = ATTACKS.create("tag", steps=args.tag_steps)
    print(f"\n## 2. Attacks at batch 1 ({args.attack_clients} clients of one record, {args.attack_length} "
          f"byte tokens; TAG {args.tag_steps} Adam steps)")
    print(f"{'method':<16} {'eps':>4} {'adversary':<12} {'cosine':>7} {'rel err':>7} {'tok P':>5} "
          f"{'tok R':>5} {'TAG acc':>7} {'R-1':>5} {'R-2':>5} {'R-L':>5} {'s':>4}")
    rows = [("fedavg", None, 1.0, "attention")] + [(m, e, s, args.targets) for m, e, s in _rows(args)]
    baseline_printed = False
    for method, eps, slr, lora_targets in rows:
        t = time.perf_counter()
        cfg = _config(method, eps, slr, args, "token-set", lora_targets)
        run = prepare(cfg, device=dev)
        todo = targets(run)
        adversaries = ["server", "shadow"] if method == "dr-encoder" else ["observed"]
        for adversary in adversaries:
            upd, texts_set, texts_tag = [], [], []
            for i, target in enumerate(todo):
                truth = raw_update(run, target)
                if method == "dr-encoder":
                    ae = ATTACKS.create("ae-reconstruction", decoder=adversary)
                    view = target.view
                    if adversary == "shadow":  # the eavesdropper: no server state
                        view = AttackView(**{**view.__dict__, "server_state": None})
                    recovered = ae.run(view, generator=torch.Generator().manual_seed(i), device=dev).gradient
                else:
                    recovered = target.view.target.tensors
                upd.append(gradient_recovery_metrics(recovered, truth))
                rows_ = token_rows(recovered)
                if rows_ is not None:
                    texts_set.append(([sorted(leaked_tokens(rows_))], target.images))
                tview = AttackView(**{**target.view.__dict__,
                                      "target": ModelUpdate(target.view.target.kind, recovered)})
                result: AttackResult = tag.run(tview, generator=torch.Generator().manual_seed(i), device=dev)
                texts_tag.append((result.tokens, target.images))
            base_rec = run.dataset.images[len(run.dataset) - 1]
            cos = np.mean([u["cosine"] for u in upd])
            rel = np.mean([u["relative_error"] for u in upd])
            sm = {m.name: m for m in score_text(texts_set, baseline=base_rec, sequences=False)[0]} if texts_set else {}
            tm = {m.name: m for m in score_text(texts_tag, baseline=base_rec, sequences=True)[0]}
            if not baseline_printed:
                b = {k: v.baseline.mean for k, v in tm.items()}
                print(f"{'(a random record)':<16} {'':>4} {'-':<12} {'':>7} {'':>7} "
                      f"{tm['token_precision'].baseline.mean:>5.2f} {tm['token_recall'].baseline.mean:>5.2f} "
                      f"{b['token_accuracy']:>7.2f} {b['rouge1']:>5.2f} {b['rouge2']:>5.2f} {b['rougeL']:>5.2f}")
                baseline_printed = True
            tp = f"{sm['token_precision'].mean:.2f}" if sm else "-"
            tr = f"{sm['token_recall'].mean:.2f}" if sm else "-"
            name, e = _label(method, eps, slr)
            name = name if lora_targets == args.targets else f"{name} (attn)"
            print(f"{name:<16} {e:>4} {adversary:<12} {cos:>7.3f} {rel:>7.3f} {tp:>5} {tr:>5} "
                  f"{tm['token_accuracy'].mean:>7.2f} {tm['rouge1'].mean:>5.2f} {tm['rouge2'].mean:>5.2f} "
                  f"{tm['rougeL'].mean:>5.2f} {time.perf_counter() - t:>4.0f}", flush=True)


def stage1(args) -> None:
    from attacks.statistics_leakage import update_norms
    from attacks.statistics_membership import statistics_membership_game
    from audit.data.registry import create_dataset
    from audit.core.defense import DEFENSES
    from audit.models.registry import create_model
    from audit.fl.simulation import local_update
    from audit.core.updates import ClientData
    from defenses.gradient_autoencoder import layer_statistics

    ds = create_dataset("records", num_items=600, length=64, clients=K, canaries=1, canary_repeats=1,
                        seed=args.seed)
    torch.manual_seed(args.seed)
    model = create_model("tiny-lm-lora", input_shape=ds.input_shape, num_classes=ds.num_classes,
                         channel_mean=ds.channel_mean, channel_std=ds.channel_std, targets=args.targets)
    training = DEFENSES.create("dr-encoder", local_steps=args.local_steps, lr=args.lr,
                               momentum=args.momentum).local_training
    plain = torch.as_tensor(ds.meta["items"]["canary"]) < 0
    population = ClientData(ds.images[plain], ds.labels[plain])
    canary = ClientData(ds.images[~plain], ds.labels[~plain])
    print("\n## 3. Stage-1 statistics (sent without noise)")
    client = ClientData(population.images[:64], population.labels[:64])
    update = local_update(model, client, training, client_id=0, round=0).tensors
    shapes = {n: tuple(t.shape) for n, t in update.items()}
    norms = update_norms(layer_statistics(update), shapes)
    errs = [abs(norms[n] - float(update[n].norm())) / float(update[n].norm()) for n in update
            if float(update[n].norm()) > 0]
    print(f"per-layer update norms from (mean, std): max relative error {max(errs):.1e} over {len(errs)} layers")
    for repeats, size in ((4, 16), (1, 16), (4, 64)):
        t = time.perf_counter()
        res = statistics_membership_game(model, population, canary, training, client_size=size,
                                         repeats=repeats, shadow_trials=args.shadow_trials,
                                         target_trials=args.target_trials, seed=args.seed)
        print(f"canary x{repeats} in a client of {size} records: AUC {res['auc']:.3f}, "
              f"TPR@1%FPR {res['tpr_at_fpr']['0.01']:.3f}, TPR@10%FPR {res['tpr_at_fpr']['0.1']:.3f}, "
              f"epsilon >= {res['epsilon_lower_bound']:.2f} (95%, delta {res['delta']:g}; "
              f"{args.shadow_trials}+{args.target_trials} trials per side, {time.perf_counter() - t:.0f} s)",
              flush=True)


def epsilon_audit(args) -> None:
    from audit.core.defense import FederationSchedule
    from audit.privacy.auditing.defense_audit import privacy_finding

    print(f"\n## 4. Empirical epsilon of the stage-2 code mechanism (Clopper-Pearson 95%, {args.trials} trials per side)")
    for e in args.epsilons.split(","):
        d = _defense("dr-encoder", float(e), args)
        schedule = FederationSchedule(K, K, args.rounds + d.first_update_round())
        d.prepare(schedule)
        claim = d.claim(schedule)
        f = privacy_finding(d, schedule, claim, {}, {}, "cp", seed=args.seed, trials=args.trials)
        m = {x["name"]: x for x in f["metrics"]}
        print(f"claim eps {claim.epsilon:.3g}: stage 2 eps_emp >= {m['epsilon_emp']['mean']:.3f} "
              f"({f['privacy_audit']['verdict']}); stage 1 eps_emp >= "
              f"{m['epsilon_emp (rounds outside the claim)']['mean']:.2f} (no claim)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epsilons", default="1,8")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--local-steps", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--ratio", type=int, default=16)
    ap.add_argument("--block", type=int, default=200)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--server-lr", type=float, default=16.0)
    ap.add_argument("--targets", default="attention,mlp,embedding", help="LoRA targets of tiny-lm-lora")
    ap.add_argument("--attack-clients", type=int, default=4)
    ap.add_argument("--attack-length", type=int, default=32)
    ap.add_argument("--tag-steps", type=int, default=300)
    ap.add_argument("--shadow-trials", type=int, default=100)
    ap.add_argument("--target-trials", type=int, default=100)
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--sections", default="utility,attacks,stage1,epsilon")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)


    print("torch threads: 1; device: cpu")
    sections = {"utility": utility, "attacks": attack_section, "stage1": stage1, "epsilon": epsilon_audit}
    for name in args.sections.split(","):
        sections[name](args)


if __name__ == "__main__":
    main()
