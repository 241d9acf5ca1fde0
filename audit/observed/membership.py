"""The update-based membership attack (``update-mia``) on a recorded update: the server
scores recorded candidates against one client's observed update.

The attack picks the update with its own ``client`` and ``round`` parameters (a Flower
recording's clients are its node ids). With ``truth/candidates.*`` (who was a member of
that client's data) the scores are scored as the built-in membership audit scores them
(:func:`audit.membership.score_evidence.score_evidence`: ROC AUC with a bootstrap
interval, TPR at low FPR, the log-log ROC); without it the finding lists the scores and
says that no ground truth was given.

Project choices: the attack's generator is seeded ``seed * 1_000_003`` (the built-in
membership audit's); the AUC's bootstrap has 200 replicates; no empirical epsilon is
computed (an update-based game is not a one-run audit, as in the built-in audit); the
adversary holds no population data (``hbc-server``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from audit.core.attack import Attack
from audit.core.threat_model import ThreatModel
from audit.fl.recorded_truth import GroundTruth
from audit.fl.recorded_updates import Recording
from audit.membership.score_evidence import roc_image, score_evidence
from audit.observed.views import membership_view

BOOTSTRAP = 200
NO_TRUTH = ("No ground truth was given (no truth/candidates file): the membership scores are "
            "listed, not scored.")


def membership_evidence(rec: Recording, model: nn.Module, attack: Attack, tm: ThreatModel, *,
                        truth: GroundTruth | None, seed: int, device: torch.device,
                        progress: bool = False) -> tuple[list[dict], dict | None, dict[str, Any]]:
    """``(metrics, images entry, the finding's "membership" entry)`` of ``attack``."""
    params = attack.params()
    client, rnd = int(params.get("client", 0)), int(params.get("round", 0))
    update, view = membership_view(rec, model, tm, client=client, round=rnd)
    result = attack.run(view, generator=torch.Generator().manual_seed(seed * 1_000_003),
                        device=device, progress=progress)
    scores = result.scores.detach().double().cpu().numpy()
    entry: dict[str, Any] = {
        "observes": f"client {client}'s recorded update in round {rnd} ({update.file})",
        "candidates": int(len(scores)), "scores": [float(s) for s in scores],
        "attack_stats": dict(result.stats), "ground_truth": False,
    }
    members = None if truth is None else truth.members
    if members is None:
        return [], None, {**entry, "note": NO_TRUTH}
    truth_np = members.numpy()
    mm, metrics = score_evidence(scores, truth_np, seed=seed, bootstrap=BOOTSTRAP)
    images = roc_image({}, attack.name, mm, name=attack.name,
                       title=f"{attack.name} on recorded updates ({rec.directory.name})")
    return metrics, images, {**entry, "ground_truth": True, "metrics": mm.to_dict(),
                             "members": int(truth_np.sum())}
