"""The report's finding on what leaves a client *before* its first model update, outside any
claim: DR-Encoder's stage-1 statistics (per LoRA layer, the mean and standard deviation of
the update's entries, sent without noise; ``../shared/specs/defenses.md``, privacy point (a)).

Two measurements on the audited run (:class:`audit.harness.PreparedRun`):

* **update norms**: each layer's update norm recovered from a client's released statistics
  (:func:`attacks.statistics_leakage.update_norms`), against the client's true update in
  that round (recomputed from the recorded broadcast; local training is deterministic);
  ``stage1_norm_relative_error`` is the largest relative error over layers, per client;
* **membership**: :func:`attacks.statistics_membership.statistics_membership_game` on the
  round-0 broadcast: is a candidate record, repeated ``repeats`` times, in a client of
  ``client_size`` records, given its statistics? The candidate is the dataset's first canary
  (``records``: a planted secret, ``canary_repeats`` copies) or else the first record no
  client holds (repeated 4 times); the population is every other record no client holds;
  AUC, TPR at 1% FPR and a Clopper-Pearson lower bound on epsilon at 95%.

Choices: ``client_size`` is the audit's batch size, at least ``repeats + 4`` (a member
client keeps some population records); 64 shadow and 100 target trials per side by default.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import torch

from attacks.statistics_leakage import update_norms
from attacks.statistics_membership import statistics_from_observation, statistics_membership_game
from audit.fl.simulation import local_update
from audit.core.updates import ClientData

#: repeats of a candidate that is not a planted canary
DEFAULT_REPEATS = 4


def _metric(name: str, values: list[float], direction: str, baseline: tuple[str, float] | None,
            note: str) -> dict[str, Any]:
    worst = max(values) if direction == "higher-leaks-more" else min(values)
    return {"name": name, "unit": "", "direction": direction, "mean": sum(values) / len(values),
            "worst": worst, "per_item": values,
            "baseline": None if baseline is None else {"description": baseline[0], "mean": baseline[1],
                                                       "worst": baseline[1]},
            "note": note}


def stage1_statistics_finding(run, *, seed: int = 0, shadow_trials: int = 64,
                              target_trials: int = 100) -> dict[str, Any] | None:
    """The finding, or None when the defense sends model updates from round 0."""
    defense = run.defense
    first = defense.first_update_round()
    if first == 0:
        return None
    start = time.perf_counter()
    record = run.transcript.rounds[0]
    model = copy.deepcopy(run.model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(record.broadcast[n])
    training = run.training or defense.local_training
    trainable = defense.trainable(0)
    errors = []
    for obs in record.observations:
        stats = statistics_from_observation(obs.tensors)
        truth = local_update(model, run.clients[obs.client_id], training, client_id=obs.client_id,
                             round=0, trainable=trainable).tensors
        norms = update_norms(stats, {n: tuple(t.shape) for n, t in truth.items()})
        errors.append(max(abs(norms[n] - float(truth[n].norm())) / max(float(truth[n].norm()), 1e-30)
                          for n in truth))

    ds = run.dataset
    held = sum(len(c) for c in run.clients)
    canary_of = (ds.meta or {}).get("items", {}).get("canary")
    rest = torch.arange(held, len(ds))
    if canary_of is not None and any(c >= 0 for c in canary_of[held:]):
        flags = torch.as_tensor(canary_of)[rest]
        first_canary = int(flags[flags >= 0][0])
        idx = rest[flags == first_canary][:1]
        repeats = int(ds.meta["canaries"][first_canary]["repeats"])
        population_idx = rest[flags < 0]
        what = f"the planted canary {ds.meta['canaries'][first_canary]['secret']!r}"
    else:
        idx, repeats, population_idx = rest[:1], DEFAULT_REPEATS, rest[1:]
        what = "a record no client holds"
    client_size = max(run.config.batch_size, repeats + 4)
    game = None
    if len(idx) and len(population_idx) >= client_size:
        game = statistics_membership_game(
            model, ClientData(ds.images[population_idx], ds.labels[population_idx]),
            ClientData(ds.images[idx], ds.labels[idx]), training, client_size=client_size,
            repeats=repeats, shadow_trials=shadow_trials, target_trials=target_trials, seed=seed,
            trainable=trainable)
    metrics = [_metric(
        "stage1_norm_relative_error", errors, "lower-leaks-more", None,
        "per client of round 0: the largest relative error over layers of the update norms "
        "recovered from the released (mean, std), sqrt(n (std^2 + mean^2)), against the true "
        "update: the statistics give every layer's update norm exactly.")]
    if game is not None:
        setting = (f"{what} x{repeats} in a client of {client_size} records; "
                   f"{shadow_trials} shadow and {target_trials} target trials per side")
        metrics += [
            _metric("stage1_membership_auc", [game["auc"]], "higher-leaks-more",
                    ("a guess independent of the statistics", 0.5), setting),
            _metric("stage1_membership_tpr_at_1pct_fpr", [game["tpr_at_fpr"]["0.01"]],
                    "higher-leaks-more", ("a guess independent of the statistics", 0.01), setting),
            _metric("stage1_membership_epsilon_lower_bound", [game["epsilon_lower_bound"]],
                    "higher-leaks-more", ("no claim covers stage 1", 0.0),
                    f"Clopper-Pearson at 95%, delta {game['delta']:g}; {setting}"),
        ]
    return {
        "id": f"{defense.name}:stage1-statistics",
        "title": f"what {defense.name}'s unnoised rounds before the first update leak",
        "defense": {"name": defense.name, "params": defense.params()},
        "claim": run.claim.to_dict(),
        "threat_model": run.threat_model.to_dict(),
        "attack": {"name": "stage1-statistics", "family": "statistics-leakage",
                   "params": {"shadow_trials": shadow_trials, "target_trials": target_trials,
                              "seed": seed}},
        "setting": {
            "dataset": run.config.dataset, "model": run.config.model,
            "model_params": dict(run.config.model_params), "batch_size": run.config.batch_size,
            "num_targets": len(record.observations), "local_steps": training.steps,
            "rounds": run.config.rounds, "clients": run.config.num_targets,
        },
        "metrics": metrics,
        "images": None,
        "runtime_s": time.perf_counter() - start,
    }
