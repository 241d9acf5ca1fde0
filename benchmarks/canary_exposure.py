"""Canary exposure per defense (Carlini et al. 2019, "The Secret Sharer"): how much a
federatedly fine-tuned language model memorises a secret inserted 1, 10 and 100 times.

Setting (CPU scale; every figure below is a flag):

* data: ``records`` (generated customer records, :mod:`audit.data.generated.text_records`),
  ``--num-items`` records over ``--clients`` non-IID clients, ``--length`` byte tokens; three
  canaries of :class:`CanaryFormat` (``"my pin is d d d d d d"``, |R| = 10^6), canary ``j``
  planted 1, 10 and 100 times in the data of one client each (distinct clients; the dataset
  is built with 100 copies of each and the first 1 / 10 / 100 kept). With the defaults a
  client holds about 192 records, so 100 copies are a third of that client's data and 4% of
  all training data: a realistic minority (a customer whose PIN recurs in their tickets);
* 3 control secrets of the same format are never inserted: their exposure is what an unseen
  secret scores (about log2 e = 1.44 bits on average);
* base: ``tiny-lm`` (GPT-2, 2 layers, hidden 64), pre-trained centrally for
  ``--pretrain-steps`` SGD steps on 256 other records (no canary; :func:`audit.fl.pretraining.pretrain`),
  the same base for every defense; the ``tiny-lm-lora`` rows put LoRA (r 8, on attention, MLP
  and the token embedding) on that base and train only the adapters;
* training: ``--rounds`` rounds, all clients every round, ``--local-steps`` full-batch SGD
  steps at ``--lr`` (momentum 0.9) per round; DR-Encoder adds its stage-1 round, DEeR's
  round is two phases (B then A: ``2 --rounds`` harness rounds);
* defenses (``--defenses``): ``fedavg`` and ``dp-fedavg`` (central mode, client-level,
  clip ``--clip``) fine-tune the whole ``tiny-lm``; ``lora-fedavg`` (undefended FedAvg of
  the LoRA adapters), ``ffa-lora``, ``fedit-lora``, ``deer`` (official sample-level
  accounting, clip ``--lora-clip`` per matrix) and ``dr-encoder`` (ratio 16, blocks of 200,
  ``server_lr`` 16, clip ``--clip``) train ``tiny-lm-lora`` at ``--lora-lr``; every DP
  defense at ``--epsilon`` (delta 1e-5). The claims' units differ (client for dp-fedavg and
  DR-Encoder's code, example for the LoRA-DP official claims); the JSON carries each claim;
* exposure (:mod:`audit.privacy.auditing.canary_exposure`): |R| = 10^6 is too many to
  enumerate at this scale, so the rank is estimated from ``--candidates`` uniform draws (the
  same draws for every canary and defense), with a 95% Clopper-Pearson interval; beside it
  the skew-normal extrapolation of Carlini et al. (not a bound). With 10^4 draws the
  estimate resolves about 13 bits; a canary no draw beats reads 19.93 bits with a lower end
  of about 11.4 bits.

Output: the table (defense x repeats -> exposure in bits) printed and written to ``--out``
(``exposure.json`` and ``exposure.md``); the directory is written whole to a temporary
sibling and renamed into place, so a run that fails leaves the previous one untouched.

Usage: ``python3 benchmarks/canary_exposure.py --out reports/exposure [--quick] [--seed 0]
[--threads 1] [--device auto]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPEATS = (1, 10, 100)
CONTROLS = 3
PUBLIC = 256  # pre-training records (no canary)
HELD_OUT = 128  # validation records
FULL = ("fedavg", "dp-fedavg")
LORA = ("lora-fedavg", "ffa-lora", "fedit-lora", "deer", "dr-encoder")
DEFAULT_DEFENSES = "fedavg,dp-fedavg,lora-fedavg,ffa-lora,dr-encoder"


def _defense(name: str, args):
    from audit.core.defense import DEFENSES

    lr = args.lr if name in FULL else args.lora_lr
    common = {"local_steps": args.local_steps, "lr": lr, "momentum": 0.9}
    if name in ("fedavg", "lora-fedavg"):
        return DEFENSES.create("fedavg", **common)
    if name == "dp-fedavg":
        return DEFENSES.create("dp-fedavg", base="fedavg", **common, mode="central", clip_norm=args.clip,
                               target_epsilon=args.epsilon)
    if name == "dr-encoder":
        return DEFENSES.create("dr-encoder", **common, ratio=16, block=200, clip_norm=args.clip, server_lr=16.0,
                               target_epsilon=args.epsilon)
    return DEFENSES.create(name, **common, clip_norm=args.lora_clip, target_epsilon=args.epsilon)


def _data(args):
    from audit.core.updates import ClientData
    from audit.data.registry import create_dataset

    n = args.num_items
    ds = create_dataset("records", num_items=n + PUBLIC + HELD_OUT, length=args.length, clients=args.clients,
                        canaries=len(REPEATS), canary_repeats=max(REPEATS), seed=args.seed)
    canary_of = np.asarray(ds.meta["items"]["canary"])
    planted = []
    keep = list(range(n))
    for j, reps in enumerate(REPEATS):
        keep += list(np.flatnonzero(canary_of == j)[:reps])
        planted.append({**ds.meta["canaries"][j], "repeats": reps})
    train = torch.as_tensor(keep)
    groups = ds.groups[train]
    clients = [ClientData(ds.images[train][groups == c], ds.labels[train][groups == c]) for c in range(args.clients)]
    for c in planted:
        c["client_records"] = len(clients[c["client"]])
        c["share_of_client"] = c["repeats"] / c["client_records"]
    fmt = ds.meta["canary_format"]
    rng = np.random.default_rng([args.seed, 2])
    controls: list[str] = []
    while len(controls) < CONTROLS:
        s = fmt(rng)
        if s not in controls and all(s != c["secret"] for c in planted):
            controls.append(s)
    public = ds.subset(list(range(n, n + PUBLIC)))
    val = torch.arange(n + PUBLIC, n + PUBLIC + HELD_OUT)
    return ds, clients, planted, controls, public, (ds.images[val], ds.labels[val])


def _val_loss(model, val, device) -> float:
    model.eval()
    with torch.no_grad():
        return float(torch.nn.functional.cross_entropy(model(val[0].to(device)), val[1].to(device)))


def _lora(base, ds):
    """LoRA (attention, MLP, embedding) on a copy of the pre-trained base's weights."""
    from audit.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("tiny-lm-lora", input_shape=ds.input_shape, num_classes=ds.num_classes,
                         channel_mean=ds.channel_mean, channel_std=ds.channel_std,
                         targets="attention,mlp,embedding")
    src = base.state_dict()
    copied = set()
    with torch.no_grad():
        for name, p in model.state_dict().items():
            plain = name.replace(".base_layer", "")
            if "lora_" not in name:
                p.copy_(src[plain])
                copied.add(plain)
    assert copied == set(src), set(src) ^ copied
    return model


def run(args) -> dict:
    from audit.core.defense import FederationSchedule
    from audit.core.device import describe_device, resolve_device, set_threads
    from audit.fl.pretraining import pretrain
    from audit.fl.simulation import FederatedSimulation
    from audit.models.registry import create_model
    from audit.models.text_lm import ByteTokenizer
    from audit.privacy.auditing.canary_exposure import UNSEEN_MEAN_BITS, canary_exposures, exposure_metric

    threads = set_threads(args.threads)
    device = resolve_device(args.device)
    print(f"torch threads: {threads}; device: {describe_device(device)}", flush=True)
    start = time.perf_counter()
    ds, clients, planted, controls, public, val = _data(args)
    sizes = tuple(len(c) for c in clients)
    fmt, tok = ds.meta["canary_format"], ByteTokenizer()
    torch.manual_seed(args.seed)
    base = create_model("tiny-lm", input_shape=ds.input_shape, num_classes=ds.num_classes,
                        channel_mean=ds.channel_mean, channel_std=ds.channel_std)
    pre = pretrain(base, public, steps=args.pretrain_steps, lr=args.pretrain_lr, batch_size=32, seed=args.seed)
    secrets = [c["secret"] for c in planted] + controls

    def exposures(model):
        return canary_exposures(model.to(device), tok, secrets, fmt, estimator="sampled",
                                candidates=args.candidates, seed=args.seed, confidence=0.95)

    print(f"clients {list(sizes)}; canaries x{REPEATS} in clients {[c['client'] for c in planted]} "
          f"({', '.join(format(c['share_of_client'], '.0%') for c in planted)} of their records); "
          f"base pre-trained {args.pretrain_steps} steps: loss {pre['final_loss']:.3f}", flush=True)
    rows = []
    base_res = exposures(base)
    rows.append({"defense": "base (no fine-tuning)", "model": "tiny-lm", "params": {}, "claim": None,
                 "val_loss": _val_loss(base, val, device), "runtime_s": 0.0, "results": base_res})
    _print_header()
    _print_row(rows[-1])
    for name in args.defenses.split(","):
        t = time.perf_counter()
        defense = _defense(name, args)
        model = copy.deepcopy(base) if name in FULL else _lora(base, ds)
        rounds = args.rounds
        if name == "dr-encoder":
            rounds += defense.first_update_round()
        elif name == "deer":
            rounds *= 2
        schedule = FederationSchedule(args.clients, args.clients, rounds, examples_per_client=sizes)
        defense.prepare(schedule)
        FederatedSimulation(model=model, clients=clients, defense=defense, schedule=schedule, seed=args.seed,
                            device=device).run()
        claim = defense.claim(schedule)
        rows.append({"defense": name, "model": "tiny-lm" if name in FULL else "tiny-lm-lora",
                     "params": {k: v for k, v in defense.params().items() if _jsonable(v)},
                     "claim": {"epsilon": claim.epsilon, "delta": claim.delta, "unit": claim.unit,
                               "statement": claim.statement} if claim.has_dp else None,
                     "val_loss": _val_loss(model, val, device), "runtime_s": time.perf_counter() - t,
                     "results": exposures(model)})
        _print_row(rows[-1])

    report = {
        "benchmark": "canary exposure per defense (Carlini et al. 2019, The Secret Sharer)",
        "command": "python3 benchmarks/canary_exposure.py " + " ".join(sys.argv[1:]),
        "threads": threads, "device": describe_device(device), "seed": args.seed, "quick": args.quick,
        "settings": {k: getattr(args, k) for k in ("num_items", "length", "clients", "rounds", "local_steps", "lr",
                                                   "lora_lr", "clip", "lora_clip", "epsilon", "pretrain_steps",
                                                   "pretrain_lr", "candidates", "defenses")}
                    | {"client_sizes": list(sizes), "pretrain_records": PUBLIC, "held_out_records": HELD_OUT,
                       "base_pretrain_loss": pre["final_loss"]},
        "space_size": fmt.space_size, "format": f"{fmt.prefix!r} + {fmt.digits} spaced digits",
        "estimator": {"name": "sampled", "candidates": args.candidates, "confidence": 0.95,
                      "interval": "Clopper-Pearson on (rank - 1) / |R|",
                      "extrapolation": "skew-normal fit to the candidates' log-perplexities (Carlini et al. 4.3)",
                      "resolves_bits": math.log2(args.candidates)},
        "unseen_mean_bits": UNSEEN_MEAN_BITS,
        "canaries": planted, "controls": controls,
        "rows": [],
        "runtime_s": None,
    }
    for row in rows:
        res = row.pop("results")
        row["exposure"] = {f"x{c['repeats']}": r.to_dict() for c, r in zip(planted, res)}
        row["controls"] = [r.to_dict() for r in res[len(planted):]]
        row["control_mean_bits"] = float(np.mean([r.exposure for r in res[len(planted):]]))
        row["metric"] = exposure_metric(res[:len(planted)])
        report["rows"].append(row)
    report["runtime_s"] = time.perf_counter() - start
    return report


def _jsonable(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _cell(r) -> str:
    lo, hi = r.interval
    return f"{r.exposure:5.2f} [{lo:5.2f}, {hi:5.2f}]"


def _print_header() -> None:
    heads = "".join(f" {'x' + str(r):>20}" for r in REPEATS)
    print(f"{'defense':<22} {'eps':>4}{heads} {'unseen':>6} {'val loss':>8} {'s':>5}", flush=True)


def _print_row(row) -> None:
    res = row["results"]
    eps = "-" if row["claim"] is None else f"{row['claim']['epsilon']:.3g}"
    cells = "".join(f" {_cell(r):>20}" for r in res[:len(REPEATS)])
    unseen = np.mean([r.exposure for r in res[len(REPEATS):]])
    print(f"{row['defense']:<22} {eps:>4}{cells} {unseen:>6.2f} {row['val_loss']:>8.3f} {row['runtime_s']:>5.0f}",
          flush=True)


def markdown(report: dict) -> str:
    s = report["settings"]
    est = report["estimator"]
    lines = [
        "# Canary exposure per defense",
        "",
        f"Command: `{report['command']}` (torch threads {report['threads']}, device {report['device']}, "
        f"seed {report['seed']}{', quick' if report['quick'] else ''}; {report['runtime_s']:.0f} s).",
        "",
        f"Exposure = log2 |R| - log2 rank, in bits; |R| = {report['space_size']:,} ({report['format']}), "
        f"so the largest exposure is {math.log2(report['space_size']):.2f} bits. Estimator: {est['name']} rank "
        f"from {est['candidates']:,} uniform candidates (resolves about {est['resolves_bits']:.1f} bits), "
        f"{est['confidence']:.0%} Clopper-Pearson interval in brackets, skew-normal extrapolation "
        f"(Carlini et al. 2019, 4.3; not a bound) after the slash. 'unseen' is the mean over "
        f"{len(report['controls'])} secrets never inserted (expected about "
        f"{report['unseen_mean_bits']:.2f} bits). Without memorisation a secret's rank is uniform, "
        f"so P(exposure >= x) = 2^-x: one canary's exposure below {-math.log2(0.05):.1f} bits "
        "(p = 0.05) is no evidence of memorisation.",
        "",
        "| defense | model | ε | " + " | ".join(f"×{c['repeats']}" for c in report["canaries"])
        + " | unseen | val loss | s |",
        "|---|---|---|" + "---|" * len(report["canaries"]) + "---|---|---|",
    ]
    for row in report["rows"]:
        eps = "—" if row["claim"] is None else f"{row['claim']['epsilon']:.3g}"
        cells = []
        for c in report["canaries"]:
            e = row["exposure"][f"x{c['repeats']}"]
            ext = "—" if e["extrapolated"] is None else f"{e['extrapolated']:.1f}"
            cells.append(f"{e['exposure']:.2f} [{e['interval'][0]:.2f}, {e['interval'][1]:.2f}] / {ext}")
        lines.append(f"| {row['defense']} | {row['model']} | {eps} | " + " | ".join(cells)
                     + f" | {row['control_mean_bits']:.2f} | {row['val_loss']:.3f} | {row['runtime_s']:.0f} |")
    lines += [
        "",
        "Canaries: " + "; ".join(f"×{c['repeats']} in client {c['client']} ({c['client_records']} records, "
                                 f"{c['share_of_client']:.0%})" for c in report["canaries"]) + ".",
        "",
        f"Settings: {s['num_items']} records, {s['clients']} clients (sizes {s['client_sizes']}), "
        f"{s['length']} byte tokens; base tiny-lm pre-trained {s['pretrain_steps']} steps (lr {s['pretrain_lr']}) "
        f"on {s['pretrain_records']} other records; {s['rounds']} rounds × {s['local_steps']} full-batch SGD "
        f"steps, momentum 0.9, lr {s['lr']} (tiny-lm) / {s['lora_lr']} (tiny-lm-lora); clip {s['clip']} "
        f"(dp-fedavg central, dr-encoder), {s['lora_clip']} per matrix (LoRA-DP); ε {s['epsilon']}, δ 1e-5. "
        f"Validation loss on {s['held_out_records']} held-out records.",
        "",
    ]
    return "\n".join(lines)


def write_atomic(out: Path, report: dict) -> None:
    """Write ``exposure.json`` and ``exposure.md`` to a temporary sibling of ``out``, then
    rename it into place (an existing ``out`` is moved aside first and removed after)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        (tmp / "exposure.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
        (tmp / "exposure.md").write_text(markdown(report))
        os.chmod(tmp, 0o755)
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            os.rmdir(old)
            os.rename(out, old)
        os.rename(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="directory for exposure.json and exposure.md")
    ap.add_argument("--defenses", default=DEFAULT_DEFENSES, help=f"comma-separated among {', '.join(FULL + LORA)}")
    ap.add_argument("--epsilon", type=float, default=8.0)
    ap.add_argument("--num-items", type=int, default=1536)
    ap.add_argument("--length", type=int, default=40)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--local-steps", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--lora-lr", type=float, default=0.5)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--lora-clip", type=float, default=0.2)
    ap.add_argument("--pretrain-steps", type=int, default=400)
    ap.add_argument("--pretrain-lr", type=float, default=0.2)
    ap.add_argument("--candidates", type=int, default=10_000)
    ap.add_argument("--quick", action="store_true", help="a smoke run: 256 records, 2 rounds, 1000 candidates")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    args = ap.parse_args(argv)
    bad = [d for d in args.defenses.split(",") if d not in FULL + LORA]
    if bad:
        ap.error(f"unknown defense {bad[0]!r}; choose among {', '.join(FULL + LORA)}")
    if args.quick:
        args.num_items, args.rounds, args.local_steps = 256, 2, 2
        args.pretrain_steps, args.candidates = 50, 1000
    if args.num_items < args.clients * 8:
        ap.error("--num-items must give every client at least 8 records")
    return args


def main(argv=None) -> None:
    args = parse(argv)
    report = run(args)
    write_atomic(args.out, report)
    print(f"wrote {args.out / 'exposure.json'} and {args.out / 'exposure.md'}")


if __name__ == "__main__":
    main()
