"""Control: a target that saw neither the "members" nor the non-members gives every
membership attack AUC 0.5.

Tolerances: 2000 candidates (about 1000 per side) give a per-seed AUC standard deviation
of sqrt((1/12)(1/1000 + 1/1000)) ~= 0.013 under the null, so each seed within +-0.05 is a
3.9-sigma band (false-failure rate ~1e-4 per check) and the 5-seed mean within +-0.03 a
5-sigma band; with 4 attacks x 6 checks the suite's false-failure rate is below 0.5%.
Seeds 0-4 are fixed, so CI is deterministic.
"""

import numpy as np
import pytest
import torch

from audit.core.attack import ATTACKS
from audit.core.config import AuditConfig
from audit.membership.membership_audit import TrainingBackend, attack_scores, prepare_membership
from audit.metrics.membership import membership_metrics

ATTACKS_UNDER_TEST = [
    ("loss", {}, None),
    ("lira", {"shadow_models": 4}, None),
    ("lira", {"shadow_models": 4, "variant": "offline"}, None),
    ("rmia", {"shadow_models": 4}, None),
    ("update-mia", {"signal": "alignment"}, None),
]


@pytest.fixture(scope="module")
def control_aucs(tmp_path_factory):
    cache = tmp_path_factory.mktemp("shadow-cache")
    aucs = {i: [] for i in range(len(ATTACKS_UNDER_TEST))}
    for seed in range(5):
        cfg = AuditConfig(defense="fedavg", defense_params={"local_steps": 5, "lr": 0.5},
                          attack="loss", dataset="purchase-synthetic", model="mlp",
                          model_params={"hidden": 32}, num_targets=4, rounds=6, seed=seed)
        run = prepare_membership(cfg, device=torch.device("cpu"), control=True,
                                 backend=TrainingBackend(backend="serial", cache_dir=str(cache)))
        assert run.utility["train_accuracy"] > 0.9  # the control target did learn its own data
        for i, (name, params, tm) in enumerate(ATTACKS_UNDER_TEST):
            scores, truth, _, _ = attack_scores(run, ATTACKS.create(name, **params), threat_model=tm)
            assert len(truth) == 2000
            aucs[i].append(membership_metrics(scores, truth, bootstrap=0).auc)
    return aucs


@pytest.mark.parametrize("i", range(len(ATTACKS_UNDER_TEST)),
                         ids=[f"{n}-{p.get('variant', '')}" for n, p, _ in ATTACKS_UNDER_TEST])
def test_control_target_gives_chance_auc(control_aucs, i):
    aucs = np.array(control_aucs[i])
    assert abs(aucs.mean() - 0.5) <= 0.03, aucs
    assert np.all(np.abs(aucs - 0.5) <= 0.05), aucs
