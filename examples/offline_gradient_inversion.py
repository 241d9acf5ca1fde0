"""Audit a deployment offline, from what its server recorded (docs/recorded-updates.md).

A stand-in for a deployment: a tiny simulated FedSGD run (digits, a ConvNet, 4 clients of
one 8x8 image each). What its server saw — the broadcast weights and each client's
gradient — is written as a recorded-updates directory with :func:`audit.api.record_observed`,
with the clients' real images under ``truth/`` (as in a red-team exercise). fedaudit then
runs Inverting Gradients (Geiping et al. 2020) on the directory alone, through
:func:`audit.api.audit_observed`: no simulation, the model rebuilt from the recorded entry
point, every tensor read from the safetensors files.

    python3 examples/offline_gradient_inversion.py [--out DIR] [--iterations N]

Prints ``wrote <dir>``, then ``inverting-gradients: PSNR <p> dB (baseline <b> dB),
gradient distance <d> (baseline <e>)`` and ``wrote <report.json>``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from audit.api import audit_observed, record_observed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="Folder for the recording and the report (default: a temporary one).")
    parser.add_argument("--iterations", type=int, default=300, help="Inverting Gradients' iterations.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        recording = record_observed(out=out / "recorded", defense="fedsgd", dataset="digits",
                                    model="convnet", num_targets=4, batch_size=1)
        print(f"wrote {recording}")
        report = audit_observed(recording, attack="inverting-gradients",
                                attack_params={"iterations": args.iterations}, lpips=False,
                                out=out / "report")
        metrics = {m["name"]: m for m in report["findings"][0]["metrics"]}
        psnr, distance = metrics["psnr"], metrics["gradient_distance"]
        print(f"inverting-gradients: PSNR {psnr['mean']:.2f} dB (baseline {psnr['baseline']['mean']:.2f} dB), "
              f"gradient distance {distance['mean']:.4f} (baseline {distance['baseline']['mean']:.4f})")
        print(f"wrote {out / 'report' / 'report.json'}")


if __name__ == "__main__":
    main()
