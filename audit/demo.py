"""``fedaudit demo``: a fixed small audit that finishes in about two minutes on 2 CPU cores
(its budget is three).

1. Gradient inversion: undefended FedSGD against local DP-FedAvg (clip 1) at two noise
   levels — a weak one (noise multiplier 0.001, a meaningless epsilon) and one calibrated to
   epsilon = 1 at delta = 1e-5 — each attacked by Inverting Gradients and iDLG on 4 embedded
   natural 32x32 images (batch 1, random-init ConvNet). The attacks run with fewer
   iterations than the benchmark (``benchmarks/gradient_inversion.py``) to stay within the
   time budget.
2. Membership inference: FedAvg against central DP-FedAvg at epsilon = 1 (delta 1e-5) on
   ``purchase-synthetic`` (10 clients, 20 rounds, MLP 600-128-10: 100% training accuracy
   without defense), attacked by LOSS and by LiRA with 8 shadow models (fewer than the
   benchmark's 16), trained in this process without a cache so the demo leaves nothing
   behind.
"""

from __future__ import annotations

from typing import Any

import torch

from audit.core.attack import ATTACKS
from audit.core.config import AuditConfig
from audit.harness import attack_run, prepare
from audit.metrics.lpips_metric import LpipsScorer
from audit.membership.membership_audit import TrainingBackend, membership_finding, prepare_membership

DEFENSES_UNDER_TEST: list[tuple[str, dict[str, Any]]] = [
    ("fedsgd", {}),
    ("dp-fedavg", {"clip_norm": 1.0, "noise_multiplier": 0.001, "mode": "local"}),
    ("dp-fedavg", {"clip_norm": 1.0, "target_epsilon": 1.0, "delta": 1e-5, "mode": "local"}),
]
ATTACKS_USED: list[tuple[str, dict[str, Any]]] = [
    ("inverting-gradients", {"iterations": 400, "restarts": 2}),
    ("idlg", {"iterations": 20}),
]
_FEDAVG = {"local_steps": 5, "lr": 0.5}
MEMBERSHIP_DEFENSES: list[tuple[str, dict[str, Any]]] = [
    ("fedavg", _FEDAVG),
    ("dp-fedavg", {"base": "fedavg", **_FEDAVG, "mode": "central", "clip_norm": 1.0,
                   "target_epsilon": 1.0, "delta": 1e-5}),
]
MEMBERSHIP_ATTACKS: list[tuple[str, dict[str, Any]]] = [
    ("loss", {}),
    ("lira", {"shadow_models": 8}),
]


def run_demo(
    *, device: torch.device, lpips_scorer: LpipsScorer | None, progress: bool = False
) -> list[dict[str, Any]]:
    """All findings of the demo (one simulation or target per defense, shared by its attacks)."""
    findings = []
    for defense, params in DEFENSES_UNDER_TEST:
        config = AuditConfig(
            defense=defense, defense_params=params, dataset="natural-32", model="convnet",
            batch_size=1, num_targets=4, seed=0,
        )
        run = prepare(config, device=device, progress=progress)
        for attack, attack_params in ATTACKS_USED:
            finding = attack_run(
                run, ATTACKS.create(attack, **attack_params), device=device,
                lpips_scorer=lpips_scorer, progress=progress,
            )
            finding["id"] = f"{len(findings) + 1}:{defense}:{attack}"
            finding["attack"]["params"] = {**attack_params, **finding["attack"]["params"]}
            findings.append(finding)
    for defense, params in MEMBERSHIP_DEFENSES:
        config = AuditConfig(
            defense=defense, defense_params=params, attack="loss", dataset="purchase-synthetic",
            model="mlp", model_params={"hidden": 128}, num_targets=10, rounds=20, seed=0,
        )
        run = prepare_membership(config, device=device, backend=TrainingBackend(backend="serial"),
                                 progress=progress)
        curves: dict = {}
        for attack, attack_params in MEMBERSHIP_ATTACKS:
            finding = membership_finding(run, ATTACKS.create(attack, **attack_params),
                                         progress=progress, curves=curves)
            finding["id"] = f"{len(findings) + 1}:{defense}:{attack}"
            findings.append(finding)
    return findings
