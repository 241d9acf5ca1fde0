"""Audit your own defense and put it in a compliance report.

The defense is defined right here: top-k sparsification, each client sends only the
largest ``fraction`` of every gradient tensor (a compression baseline, no DP claim). It
plugs in as ``"examples/own_defense_compliance.py:TopK"`` — the same spec works for
``fedaudit audit --defense``, ``fedaudit sweep`` specs and ``fedaudit check``. The example
audits it with LLG label recovery and Inverting Gradients, then judges both runs against
the default policy.

    python3 examples/own_defense_compliance.py [--out DIR]

Prints each run's PSNR / label accuracy and the compliance verdict.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from audit.core.validation import check_interval, check_known_keys
from defenses.fedavg import FedSGD


class TopK(FedSGD):
    """Top-k sparsification of each gradient tensor (a compression baseline)."""

    name = "top-k"

    def __init__(self, *, fraction: float = 0.1, lr: float = 0.1):
        super().__init__(lr=lr)
        self.fraction = check_interval("fraction", self.name, fraction, low=0, high=1, closed="right")

    @classmethod
    def from_params(cls, **params):
        check_known_keys(params, ("fraction", "lr"), cls.name)
        return cls(**params)

    def params(self):
        return {"fraction": self.fraction, "lr": self.local_training.lr}

    def client_side(self, update, *, generator):
        def keep(t):
            k = max(1, int(self.fraction * t.numel()))
            cut = t.abs().flatten().kthvalue(t.numel() - k + 1).values
            return t * (t.abs() >= cut)
        return update.with_tensors({n: keep(t) for n, t in update.tensors.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="Keep the runs and the compliance report here.")
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()
    from audit.api import compliance_report, run_audit

    defense = f"{Path(__file__).resolve()}:TopK"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp)
        runs = []
        for attack, params in (("llg", {}), ("inverting-gradients", {"iterations": args.iterations, "restarts": 1})):
            out = root / attack
            report = run_audit(defense=defense, defense_params={"fraction": 0.1}, attack=attack, attack_params=params,
                               dataset="digits", model="convnet", batch_size=2, num_targets=2, seed=0,
                               lpips=False, out=out)
            metrics = {m["name"]: m["mean"] for m in report["findings"][0]["metrics"]}
            shown = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if k in ("psnr", "label_accuracy"))
            print(f"{attack} against top-k (10%): {shown}")
            runs.append(out)
        compliance = compliance_report(runs, out=root / "compliance.html")
        print(f"compliance verdict: {compliance['verdict']['status']} (wrote {root / 'compliance.html'})")


if __name__ == "__main__":
    main()
