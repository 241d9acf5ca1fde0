"""The findings of one attack on a recorded-updates directory, with no simulation: read and
check the directory (:mod:`audit.fl.recorded_updates`), rebuild the model and the views
(:mod:`audit.observed.views`), run the attack, score it (:mod:`audit.observed.reconstruction`,
:mod:`audit.observed.membership`).

Everything is checked before any attack runs: the directory and its metadata, every
tensor against the model, the attack and its parameters, the threat model, the ground
truth. Any problem is an :class:`~audit.core.errors.InvalidParameterError` naming it.

Project choices:

* Attacks of the families ``gradient-inversion`` (inverting-gradients, dlg, idlg,
  analytic-fc...) and ``label-recovery`` (llg) run on every recorded update; a membership
  attack runs when it observes a client update (``update-mia``) and candidates are
  recorded. Others (final-model membership, extraction, text) are refused: a recording has
  no final model, no proxies and no tokens.
* The ground truth is ``DIR/truth/`` unless another folder is named; without one, the
  report's notes and the finding say plainly that no ground truth was given.
* The finding states no DP claim (a recording holds none); the defense named in the
  metadata, if any, is reported as the deployment's.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Any

import torch

from audit.core.attack import ATTACKS, Attack
from audit.core.claims import PrivacyClaim
from audit.core.errors import InvalidParameterError
from audit.core.threat_model import ObservationPoint, ThreatModel, create_threat_model
from audit.fl.recorded_truth import TRUTH_DIR, GroundTruth, read_truth
from audit.fl.recorded_updates import METADATA, VERSION, Recording, read_recording
from audit.metrics.lpips_metric import LpipsScorer
from audit.observed.membership import NO_TRUTH as NO_MEMBERSHIP_TRUTH
from audit.observed.membership import membership_evidence
from audit.observed.reconstruction import NO_TRUTH, reconstruction_evidence
from audit.observed.views import attack_views, checked_model, threat_model_of

FAMILIES = ("gradient-inversion", "label-recovery")


def _attack(name: str, params: dict[str, Any]) -> tuple[Attack, bool]:
    """The attack and whether it is the update-based membership attack."""
    attack = ATTACKS.create(name, **params)
    if attack.family in FAMILIES:
        return attack, False
    tm = attack.default_threat_model
    if attack.family == "membership-inference" and tm and \
            create_threat_model(tm).observes is ObservationPoint.CLIENT_UPDATE:
        return attack, True
    raise InvalidParameterError(
        f"The 'attack' parameter of an audit of recorded updates must be an attack of the families "
        f"{', '.join(FAMILIES)} or the update-based membership attack (update-mia). Got {name!r} "
        f"(family {attack.family!r}) instead.")


def _truth(rec: Recording, truth: str | Path | None) -> tuple[GroundTruth | None, Path]:
    folder = rec.directory / TRUTH_DIR if truth is None else Path(truth).expanduser()
    if not folder.is_dir():
        if truth is not None:
            raise InvalidParameterError(
                f"The 'truth' parameter must be a folder of ground truth. Got {str(truth)!r} "
                "(no such directory) instead.")
        return None, folder
    updates = [(u.file, u.num_examples) for u in rec.updates]
    n = None if rec.candidates is None else len(rec.candidates[0])
    return read_truth(folder, updates, rec.deployment.input_shape, n), folder


def observed_command(directory: str | Path, *, attack: str, attack_params: dict[str, Any],
                     threat_model: str | None, seed: int, threads: int) -> str:
    """The ``fedaudit audit --observed`` command line that reproduces an offline audit."""
    words = ["fedaudit", "audit", "--observed", str(directory), "--attack", attack]
    for k, v in sorted(attack_params.items()):
        words += ["--attack-param", f"{k}={v}"]
    words += (["--threat-model", threat_model] if threat_model else []) + [
        "--seed", str(seed), "--threads", str(threads), "--out", "OUT"]
    return shlex.join(words)


def _finding(rec: Recording, attack: Attack, tm: ThreatModel, evidence: dict[str, Any], *,
             targets: int, observed: dict[str, Any], start: float) -> dict[str, Any]:
    """The report finding: the in-simulation audit's shape, the recording as its setting."""
    d = rec.deployment
    defense = dict(d.defense) if d.defense else {"name": "recorded deployment", "params": {}}
    return {
        "id": f"observed:{attack.name}",
        "title": f"{attack.name} on the recorded updates of {defense['name']} ({rec.directory.name})",
        "defense": defense,
        "claim": PrivacyClaim.none("a recording of updates states no DP claim").to_dict(),
        "threat_model": tm.to_dict(),
        "attack": {"name": attack.name, "family": attack.family, "params": attack.params()},
        "setting": {
            "dataset": f"recorded updates {rec.directory.name}", "model": d.model,
            "model_params": dict(d.model_params), "batch_size": max(u.num_examples for u in rec.updates),
            "num_targets": targets, "local_steps": d.local_training.steps, "rounds": len(rec.broadcast),
            "clients": len({u.client_id for u in rec.updates}), "local_training": d.local_training.describe(),
        },
        **evidence,
        "observed": {"directory": str(rec.directory), "metadata": METADATA, "format_version": VERSION,
                     **observed},
        "runtime_s": time.perf_counter() - start,
    }


def observed_findings(directory: str | Path, *, attack: str, attack_params: dict[str, Any] | None = None,
                      threat_model: str | None = None, truth: str | Path | None = None, seed: int = 0,
                      device: torch.device, lpips_scorer: LpipsScorer | None = None,
                      progress: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
    """``(findings, report notes)`` of ``attack`` on the recorded updates in ``directory``."""
    start = time.perf_counter()
    rec = read_recording(directory)
    att, membership = _attack(attack, dict(attack_params or {}))
    model = checked_model(rec)
    tm = threat_model_of(rec, threat_model or ("hbc-server" if membership else None))
    ground, folder = _truth(rec, truth)
    torch.manual_seed(seed)
    if membership:
        metrics, images, entry = membership_evidence(rec, model, att, tm, truth=ground, seed=seed,
                                                     device=device, progress=progress)
        scored, statement, targets = entry["ground_truth"], NO_MEMBERSHIP_TRUTH, entry["candidates"]
        evidence, observed = {"metrics": metrics, "images": images, "membership": entry}, {}
    else:
        views = attack_views(rec, model, tm)
        metrics, images, rows = reconstruction_evidence(views, att, truth=ground, seed=seed, device=device,
                                                        lpips_scorer=lpips_scorer, progress=progress)
        scored, statement, targets = ground is not None and bool(ground.data), NO_TRUTH, len(views)
        evidence, observed = {"metrics": metrics, "images": images}, {"targets": rows}
    observed = {"ground_truth": bool(scored), "truth": str(folder) if scored else None,
                "statement": f"Scored against the ground truth in {folder}." if scored else statement,
                **observed}
    finding = _finding(rec, att, tm, evidence, targets=targets, observed=observed, start=start)
    return [finding], [] if scored else [statement]
