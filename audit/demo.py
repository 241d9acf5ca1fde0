"""``fedaudit demo``: a fixed small audit that finishes in about a minute on 2 CPU cores.

Undefended FedSGD against local DP-FedAvg (clip 1) at two noise levels — a weak one
(noise multiplier 0.001, a meaningless epsilon) and one calibrated to epsilon = 1 at delta = 1e-5 —
each attacked by Inverting Gradients and iDLG on 4 embedded natural 32x32 images (batch 1,
random-init ConvNet). The attacks run with fewer iterations than the benchmark
(``benchmarks/gradient_inversion.py``) to stay within the time budget.
"""

from __future__ import annotations

from typing import Any

import torch

from audit.attack import ATTACKS
from audit.config import AuditConfig
from audit.harness import attack_run, prepare
from audit.lpips_metric import LpipsScorer

DEFENSES_UNDER_TEST: list[tuple[str, dict[str, Any]]] = [
    ("fedsgd", {}),
    ("dp-fedavg", {"clip_norm": 1.0, "noise_multiplier": 0.001, "mode": "local"}),
    ("dp-fedavg", {"clip_norm": 1.0, "target_epsilon": 1.0, "delta": 1e-5, "mode": "local"}),
]
ATTACKS_USED: list[tuple[str, dict[str, Any]]] = [
    ("inverting-gradients", {"iterations": 400, "restarts": 2}),
    ("idlg", {"iterations": 20}),
]


def run_demo(
    *, device: torch.device, lpips_scorer: LpipsScorer | None, progress: bool = False
) -> list[dict[str, Any]]:
    """All findings of the demo (one simulation per defense, shared by both attacks)."""
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
    return findings
