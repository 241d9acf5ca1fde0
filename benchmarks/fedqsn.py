"""FedQSN benchmark: global model vs the proxy a client gets, for a few (p1, p2, bits), and how
much of the gap the proxy-extraction attack closes for coalitions k in {1, 4} and rounds
observed R in {1, ``--rounds``}, with the official activation masks and the hardened
weight masks.

Setting (CPU scale, 1 torch thread): ``records`` (generated customer records, 64 byte
tokens), ``tiny-lm`` (GPT-2, 2 layers, hidden 64) pre-trained centrally for
``--pretrain-steps`` on records no client holds (FedQSN fine-tunes a pre-trained model);
``--clients`` clients of ``--client-size`` records; ``--rounds`` rounds of ``--local-steps``
full-batch SGD steps at ``--lr``; every run goes through the audit harness
(:mod:`audit.extraction.extraction_audit`), so each row is one ``fedaudit audit --defense fedqsn
--attack proxy-extraction`` finding. Quality is perplexity on 256 held-out records (lower
is better); "gap closed" = (proxy - extracted) / (proxy - global).

Usage: ``python3 benchmarks/fedqsn.py [--out DIR]`` (``--out`` writes every finding into one
report, ``report.json`` and ``report.html``).
"""

from __future__ import annotations

import argparse
import time

import torch

GRID = ((0.1, 0.1, 4), (0.3, 0.3, 4), (0.5, 0.5, 4), (0.3, 0.3, 2), (0.3, 0.3, 8))


def _m(finding: dict) -> dict:
    return {m["name"]: m for m in finding["metrics"]}


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--client-size", type=int, default=32)
    ap.add_argument("--local-steps", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.2)
    ap.add_argument("--pretrain-steps", type=int, default=300)
    ap.add_argument("--fine-tune-steps", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--sections", default="fedavg,grid,extraction")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from audit.core.config import AuditConfig
    from audit.harness import run_audit_findings

    findings = []
    dev = torch.device("cpu")
    start = time.perf_counter()

    def audit(defense: str, defense_params: dict, coalition: int, **attack) -> dict:
        cfg = AuditConfig(
            defense=defense, defense_params={"local_steps": args.local_steps, "lr": args.lr, **defense_params},
            attack="proxy-extraction", attack_params={"coalition": coalition, **attack},
            dataset="records", dataset_params={"num_items": args.clients * args.client_size + 512,
                                               "length": 64, "canaries": 0, "seed": args.seed},
            model="tiny-lm", batch_size=args.client_size, num_targets=args.clients, rounds=args.rounds,
            pretrain_steps=args.pretrain_steps, seed=args.seed)
        (f,) = run_audit_findings(cfg, device=dev, lpips_scorer=None)
        label = ",".join(f"{k}={v}" for k, v in {**defense_params, "coalition": coalition, **attack}.items())
        f["id"] = f"{f['id']}:{label}"
        f["title"] = f"{f['title']} ({label})"
        findings.append(f)
        return f

    print(f"torch threads: 1; device: cpu; {args.clients} clients x {args.client_size} records, "
          f"{args.rounds} rounds x {args.local_steps} steps (lr {args.lr}), tiny-lm pre-trained "
          f"{args.pretrain_steps} steps")
    sections = set(args.sections.split(","))
    if "fedavg" in sections:  # the reference: plain FedAvg, whose clients get the global model
        from audit.extraction.extraction_audit import held_out_quality
        from audit.harness import prepare

        t = time.perf_counter()
        cfg = AuditConfig(
            defense="fedavg", defense_params={"local_steps": args.local_steps, "lr": args.lr},
            attack="proxy-extraction", dataset="records",
            dataset_params={"num_items": args.clients * args.client_size + 512, "length": 64,
                            "canaries": 0, "seed": args.seed},
            model="tiny-lm", batch_size=args.client_size, num_targets=args.clients, rounds=args.rounds,
            pretrain_steps=args.pretrain_steps, seed=args.seed)
        run = prepare(cfg, device=dev)
        print(f"\nFedAvg (no proxies): global perplexity {held_out_quality(run, run.model):.2f} "
              f"({time.perf_counter() - t:.0f} s)")
    grid_modes = ("activation", "weights") if "grid" in sections else ()
    if grid_modes:
        print("\n## Global model vs one proxy (perplexity; the paper's direction: the proxy much worse)")
        print(f"{'mask mode':<11} {'p1':>4} {'p2':>4} {'bits':>4} {'global':>8} {'proxy':>8} "
              f"{'proxy/global':>12} {'s':>4}")
    for mode in grid_modes:
        for p1, p2, bits in GRID if mode == "activation" else GRID[:3]:
            t = time.perf_counter()
            m = _m(audit("fedqsn", {"p1": p1, "p2": p2, "bits": bits, "mask_mode": mode}, args.clients))
            g = m["global_perplexity"]["mean"]
            p = m["extracted_perplexity"]["baseline"]["mean"]
            print(f"{mode:<11} {p1:>4} {p2:>4} {bits:>4} {g:>8.2f} {p:>8.2f} {p / g:>12.2f} "
                  f"{time.perf_counter() - t:>4.0f}", flush=True)

    if "extraction" not in sections:
        return
    print("\n## Proxy extraction (p1 = p2 = 0.3, 4 bits): gap closed, weights on server-kept units")
    print(f"{'mask mode':<11} {'fine-tune':>9} {'k':>2} {'R':>3} {'extracted':>9} {'gap closed':>10} "
          f"{'rel err':>7} {'cosine':>6} {'seen kept':>9} {'seen masked':>11} {'s':>4}")
    for mode in ("activation", "weights"):
        for steps in (0, args.fine_tune_steps):
            for k in (1, 4):
                for r in (1, args.rounds):
                    t = time.perf_counter()
                    m = _m(audit("fedqsn", {"p1": 0.3, "p2": 0.3, "bits": 4, "mask_mode": mode}, k,
                                 rounds_observed=r, fine_tune_steps=steps))
                    print(f"{mode:<11} {steps:>9} {k:>2} {r:>3} {m['extracted_perplexity']['mean']:>9.2f} "
                          f"{_fmt(m['gap_closed']['mean']):>10} {m['weights_rel_error_unmasked']['mean']:>7.3f} "
                          f"{m['weights_cosine_unmasked']['mean']:>6.3f} "
                          f"{m['weights_seen_fraction_server_kept']['mean']:>9.2f} "
                          f"{m['weights_seen_fraction_server_masked']['mean']:>11.2f} "
                          f"{time.perf_counter() - t:>4.0f}", flush=True)
    if args.out:
        from audit.core.environment import environment_info
        from reports.assembly import assemble_report, write_report

        report = assemble_report(findings, title="FedQSN: proxies and model extraction",
                                 command="python3 benchmarks/fedqsn.py", seed=args.seed,
                                 environment=environment_info(device="cpu", threads=1), notes=[],
                                 runtime_s=time.perf_counter() - start)
        print("wrote", *write_report(args.out, report))


if __name__ == "__main__":
    main()
