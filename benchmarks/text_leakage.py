"""Text leakage from one client's FedSGD gradient of the tiny GPT-2 (``tiny-lm``, random init,
2 layers, width 64): token accuracy (position-wise, records matched by Hungarian assignment on
ROUGE-L as the report does) and exact-sequence recovery of DAGER, LAMP and TAG at batch 1, 2, 4
on generated records cut to ``--length`` tokens (default 12: B (T - 1) = 44 < 63 at batch 4).

Run: ``python benchmarks/text_leakage.py [--length 12] [--batches 1,2,4] [--targets 2]
[--threads 1] [--device auto] [--quick]`` (``--quick``: fewer optimisation steps for LAMP and
TAG). Prints one line per attack and batch size, and the torch threads and device used.
"""

from __future__ import annotations

import argparse
import time

import torch


def _scores(tokens, truth):
    from audit.metrics.text_scoring import _sequence_scores

    acc = _sequence_scores(tokens, truth)["token_accuracy"]
    exact = sum(1 for t in truth if t in tokens) / len(truth)
    return acc, exact


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--length", type=int, default=12)
    ap.add_argument("--batches", default="1,2,4")
    ap.add_argument("--targets", type=int, default=2, help="batches (clients) per batch size")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)

    from attacks.dager import DAGER
    from attacks.lamp import LAMP
    from attacks.tag import TAG
    from audit.core.attack import AttackView
    from audit.core.device import describe_device, resolve_device, set_threads
    from audit.core.threat_model import create_threat_model
    from audit.core.updates import ClientData, LocalTraining
    from audit.data.registry import create_dataset
    from audit.fl.simulation import local_update
    from audit.models.registry import create_model

    threads = set_threads(args.threads)
    device = resolve_device(args.device)
    print(f"torch threads: {threads}; device: {describe_device(device)}", flush=True)
    batches = [int(b) for b in args.batches.split(",")]
    ds = create_dataset("records", num_items=max(batches) * args.targets, length=args.length,
                        clients=1, canaries=0)
    torch.manual_seed(0)
    model = create_model("tiny-lm", input_shape=ds.input_shape, num_classes=ds.num_classes,
                         channel_mean=ds.channel_mean, channel_std=ds.channel_std)
    steps = 100 if args.quick else None
    attacks = {"dager": DAGER(), "lamp": LAMP(**({"steps": steps} if steps else {})),
               "tag": TAG(**({"steps": steps} if steps else {}))}
    training = LocalTraining()
    for batch in batches:
        for name, attack in attacks.items():
            accs, exacts, t0 = [], [], time.perf_counter()
            for k in range(args.targets):
                items = list(range(k * batch, (k + 1) * batch))
                x = ds.images[items]
                update = local_update(model, ClientData(x, ds.labels[items]), training, client_id=k, round=0)
                view = AttackView(create_threat_model("hbc-server"), model, update, training, batch,
                                  ds.input_shape, ds.num_classes)
                result = attack.run(view, generator=torch.Generator().manual_seed(k), device=device)
                acc, exact = _scores(result.tokens, x.tolist())
                accs.append(acc)
                exacts.append(exact)
            dt = (time.perf_counter() - t0) / args.targets
            print(f"{name:5s} batch {batch}: token accuracy {sum(accs) / len(accs):.2f} "
                  f"(per batch {', '.join(f'{a:.2f}' for a in accs)}), exact sequences "
                  f"{sum(exacts) / len(exacts):.2f}, {dt:.1f} s per batch", flush=True)


if __name__ == "__main__":
    main()
