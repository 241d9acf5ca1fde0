"""Flower's own DP strategies and local-DP mod, audited end to end
(``python3 benchmarks/flower.py [--trials N] [--out DIR]``).

Each configuration is one ``fedaudit audit`` run (digits, 3 clients of one image, 1 round,
DLG for 100 iterations against the defense's own threat model, then the Clopper-Pearson
empirical epsilon from ``--trials`` canary trials per side), as a user would run it from the
CLI. Printed per configuration: the attack's PSNR and SSIM on the best-reconstructed client
beside the trivial baseline's,
Flower's claimed epsilon, the epsilon of the mechanism as run, epsilon_emp and the verdict.
A last section runs the example-weighting mismatch directly (a round with weights
1/1/1/997, which the harness's equal-size clients cannot produce), and a compliance report
of all the runs is written to ``DIR/compliance.html``. One torch thread, CPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

CONFIGS = [
    ("local-dp-s=C", "flower-local-dp", ["sensitivity=1", "epsilon=1"], None),
    ("local-dp-s=2C", "flower-local-dp", ["sensitivity=2", "epsilon=1"], None),
    ("local-dp-s=0", "flower-local-dp", ["sensitivity=0", "epsilon=1"], None),
    ("client-clipping-z=2", "flower-dp-client-clipping", ["noise_multiplier=2"], None),
    ("client-clipping-z=2 vs server", "flower-dp-client-clipping", ["noise_multiplier=2"], "hbc-server"),
    ("server-clipping-z=2", "flower-dp-server-clipping", ["noise_multiplier=2"], None),
    ("client-clipping, no mod", "flower-dp-client-clipping", ["noise_multiplier=2", "client_mod=false"], None),
]


def _metric(finding: dict, name: str) -> dict | None:
    return next((m for m in finding["metrics"] if m["name"] == name), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from audit.cli.main import main as cli
    from reports.io import load_report

    out = args.out or Path(tempfile.mkdtemp(prefix="fedaudit-flower-"))
    print(f"torch threads: {torch.get_num_threads()}, device: cpu, trials per side: {args.trials}")
    print("PSNR and SSIM: the best-reconstructed of the 3 clients (the worst case for privacy), "
          "with the trivial baseline (the dataset's mean image) in brackets")
    print(f"{'configuration':32s} {'threat model':19s} {'PSNR (base)':>13s} {'SSIM (base)':>13s} "
          f"{'eps Flower':>10s} {'eps as run':>10s} {'eps_emp':>8s}  verdict      time")
    dirs = []
    for label, defense, params, threat in CONFIGS:
        run_dir = out / label.replace(" ", "_").replace("=", "").replace(",", "")
        argv = ["audit", "--defense", defense, "--attack", "dlg", "--attack-param", "iterations=100",
                "--dataset", "digits", "--num-targets", "3", "--no-progress", "--threads", "1",
                "--estimator", "cp", "--estimator-param", f"trials={args.trials}", "--out", str(run_dir)]
        for p in params:
            argv += ["--defense-param", p]
        if threat:
            argv += ["--threat-model", threat]
        start = time.perf_counter()
        try:
            cli(argv)
        except SystemExit as exc:
            if exc.code:
                raise SystemExit(f"{label}: fedaudit audit exited {exc.code}")
        took = time.perf_counter() - start
        dirs.append(run_dir)
        attack, dp = load_report(run_dir / "report.json")["findings"][:2]
        psnr, ssim = _metric(attack, "psnr"), _metric(attack, "ssim")
        audit = dp["privacy_audit"]
        as_run = next((a["epsilon_claim"] for a in audit.get("alternatives", []) if a["label"] == "as run"), None)
        print(f"{label:32s} {attack['threat_model']['name']:19s} "
              f"{psnr['worst']:6.2f} ({psnr['baseline']['worst']:4.1f}) {ssim['worst']:6.3f} ({ssim['baseline']['worst']:4.2f}) "
              f"{audit['epsilon_claim']:10.3f} {'-' if as_run is None else f'{as_run:.3f}':>10s} "
              f"{audit['estimate']['epsilon']:8.3f}  {audit['verdict']:11s} {took:5.1f} s")

    from audit.core.defense import DEFENSES, FederationSchedule
    from audit.privacy.auditing.defense_audit import estimate, verdict
    from audit.core.updates import ModelUpdate, UpdateKind

    print("\nexample weighting (DifferentialPrivacyClientSideFixedClipping(FedAvg), z = 2, 4 clients):")
    for weights in ([250, 250, 250, 250], [1, 1, 1, 997]):
        d = DEFENSES.create("flower-dp-client-clipping", noise_multiplier=2.0)
        s = FederationSchedule(4, 4, 1)
        d.prepare(s)
        gen = torch.Generator().manual_seed(0)
        obs = [d.client_side(ModelUpdate(UpdateKind.MODEL_DELTA, {"w": torch.randn(5, generator=gen)},
                                         client_id=k, round=0, num_examples=n), generator=gen)
               for k, n in enumerate(weights)]
        d.server_side(obs, generator=gen)
        claim = d.claim(s)
        start = time.perf_counter()
        est = estimate(d, s, claim, "cp", trials=args.trials, seed=0)
        as_run = claim.alternatives[0].epsilon
        print(f"  weights {str(weights):22s} eps Flower {claim.epsilon:.3f}  eps as run {as_run:.3f}  "
              f"eps_emp {est.epsilon:.3f}  {verdict(claim, est).verdict}  ({time.perf_counter() - start:.1f} s)")

    report = out / "compliance.html"
    try:
        cli(["report", *map(str, dirs), "--format", "html", "--out", str(report)])
    except SystemExit as exc:
        if exc.code:
            raise
    print(f"\ncompliance report of all runs: {report}")


if __name__ == "__main__":
    main()
