"""The membership-inference audit: build the game, train the federated target through the
defense, hand each attack what its threat model observes, score the ROC, and turn the
scores into an empirical epsilon (one-run, Steinke et al. 2023).

Threat models: ``model-analyst`` (the released final model plus shadow models trained with
the target's procedure and population data: LOSS, LiRA, RMIA) and ``hbc-server`` /
``hbc-server-population`` (one client's observed update in one round: the update-based
attack). For the update-based attack the members are the attacked client's examples and
the non-members the candidates outside the target's training; other clients' members are
left out of its ROC.

Empirical epsilon: the target's members are independent fair coin flips over the
candidates, so the final-model scores form a one-run audit; the unit is one example in or
out of a client's data with the clients fixed, i.e. *replace-one* at the client level.
For a DP-FedAvg claim stated for add-or-remove clients (central mode) the comparison uses
the same mechanism accounted for replace-one (PLD), and the finding says so.

Each finding says who is exposed (``finding["exposure"]``,
:func:`audit.membership.score_evidence.exposure_evidence`): per class of the candidates,
and the top-k most exposed members, named by their dataset index.

:func:`recorded_scores` exports what the final-model attacks saw (the target's and the
reference models' logits, with the memberships) as a scores file for the score-level
audit (:mod:`audit.membership.score_audit`), which reproduces these findings from it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from audit.core.attack import ATTACKS, Attack, LabelledData, MembershipView
from audit.core.config import AuditConfig
from audit.data.registry import create_dataset
from audit.core.defense import FederationSchedule
from audit.core.errors import InvalidParameterError
from attacks.membership_signals import logits_of, reference_masks
from audit.membership.game import MembershipGame, TrainingRecipe, client_split, make_game, model_from_weights, shadow_seed, simulate, train_federated
from audit.membership.score_file import RecordedScores, validate_arrays
from audit.membership.record_groups import class_groups
from audit.membership.score_evidence import (DEFAULT_DELTA, exposure_evidence, one_run_evidence,
                                             roc_image, score_evidence, score_meaning)
from audit.core.threat_model import Knowledge, ObservationPoint, create_threat_model


@dataclass(frozen=True)
class TrainingBackend:
    """Where shadow models are trained and cached."""

    backend: str = "auto"
    ray_address: str | None = None
    workers: int | None = None
    cache_dir: str | None = None


@dataclass
class MembershipRun:
    """A trained target, ready to be attacked by several membership attacks."""

    config: AuditConfig
    game: MembershipGame
    recipe: TrainingRecipe
    target: torch.nn.Module
    transcript: Any
    defense: Any
    schedule: FederationSchedule
    claim: Any
    client_indices: list[np.ndarray]
    utility: dict[str, float]
    backend: TrainingBackend
    device: torch.device
    runtime_s: float
    shadow_stats: list[dict] | None = None


def default_sizes(n: int) -> tuple[int, int]:
    """Candidates and population for a dataset of ``n`` items (40% / 20%, capped)."""
    return min(2000, int(0.4 * n)), min(1000, int(0.2 * n))


def prepare_membership(config: AuditConfig, *, device: torch.device, backend: TrainingBackend,
                       control: bool = False, exact_members: int | None = None,
                       progress: bool = False) -> MembershipRun:
    """Build the game of ``config`` and train its federated target."""
    start = time.perf_counter()
    dataset = create_dataset(config.dataset, **config.dataset_params)
    cand, pop = default_sizes(len(dataset))
    game = make_game(dataset, num_candidates=config.num_candidates or cand,
                     num_population=pop if config.num_population is None else config.num_population,
                     seed=config.seed, control=control, exact_members=exact_members)
    recipe = TrainingRecipe(
        config.dataset, dict(config.dataset_params), config.model, dict(config.model_params),
        config.defense, dict(config.defense_params), config.num_targets,
        config.clients_per_round or config.num_targets, config.rounds,
        dict(config.local_training), config.weights,
    )
    spec = recipe.spec(game.target_indices, config.seed)
    model, sim, transcript = simulate(spec, device=device, progress=progress)
    clients = client_split(spec["indices"], recipe.num_clients, spec["seed"])
    utility = target_utility(model, game)
    return MembershipRun(config, game, recipe, model, transcript, sim.defense, sim.schedule,
                         sim.defense.claim(sim.schedule), clients, utility, backend, device,
                         time.perf_counter() - start)


def target_utility(model, game: MembershipGame) -> dict[str, float]:
    """Accuracy of the target on its training data and on non-member candidates."""
    ds = game.dataset

    def top1(idx):
        if len(idx) == 0:
            return float("nan")
        z = logits_of(model, ds.images[idx])
        return float((z.argmax(1) == ds.labels[idx]).double().mean())

    out = game.candidates[~game.target_in]
    return {"train_accuracy": top1(game.target_indices), "test_accuracy": top1(out)}


def _reference_trainer(run: MembershipRun, progress: bool):
    from audit.models.cache import ModelCache
    from audit.fl.parallel_training import train_models

    b = run.backend
    cache = ModelCache(b.cache_dir) if b.cache_dir else None

    def trainer(masks) -> list[torch.nn.Module]:
        specs = [run.recipe.spec(run.game.candidates[m], shadow_seed(run.config.seed, k))
                 for k, m in enumerate(np.asarray(masks, dtype=bool))]
        weights, stats = train_models(specs, train_federated, cache=cache, backend=b.backend,
                                      ray_address=b.ray_address, workers=b.workers,
                                      progress=progress)
        run.shadow_stats = (run.shadow_stats or []) + [
            {"loaded": stats.loaded, "trained": stats.trained, "backend": stats.backend,
             "workers": stats.workers, "threads_per_worker": stats.threads_per_worker,
             "seconds": stats.seconds, "reason": stats.reason}]
        return [model_from_weights(s, w).to(run.device) for s, w in zip(specs, weights)]

    return trainer


def membership_view(run: MembershipRun, attack: Attack, threat_model_name: str | None):
    """The view of ``attack`` and the true labels of the candidates it scores."""
    tm = create_threat_model(threat_model_name or attack.default_threat_model or "model-analyst")
    game, ds = run.game, run.game.dataset
    population = game.population_data() if tm.knows_(Knowledge.POPULATION_DATA) else None
    common = dict(threat_model=tm, input_shape=ds.input_shape, num_classes=ds.num_classes,
                  modality=ds.modality, population=population,
                  defense_params=run.defense.params())
    if tm.observes is ObservationPoint.FINAL_MODEL:
        trainer = _reference_trainer(run, False) if tm.knows_(Knowledge.TRAINING_PROCEDURE) else None
        view = MembershipView(model=run.target, candidates=game.candidate_data(),
                              train_references=trainer, **common)
        return view, game.target_in.copy(), None
    if tm.observes is ObservationPoint.CLIENT_UPDATE:
        params = attack.params()
        client, rnd = int(params.get("client", 0)), int(params.get("round", 0))
        if rnd >= len(run.transcript.rounds):
            raise InvalidParameterError(
                f"The 'round' parameter of {attack.name} must be below the {len(run.transcript.rounds)} "
                f"simulated rounds. Got {rnd!r} instead.")
        record = run.transcript.rounds[rnd]
        obs = [o for o in record.observations if o.client_id == client]
        if not obs:
            raise InvalidParameterError(
                f"The 'client' parameter of {attack.name} must name a client sampled in round {rnd} "
                f"(sampled: {record.sampled}). Got {client!r} instead.")
        if game.control:  # the client trained on neither set: "members" are the coin flips
            keep = np.ones(len(game.candidates), dtype=bool)
            labels = game.target_in.copy()
        else:
            members = set(run.client_indices[client].tolist())
            keep = np.array([(i in members) or not m for i, m in zip(game.candidates, game.target_in)])
            labels = np.array([i in members for i in game.candidates[keep]])
        idx = game.candidates[keep]
        model = _broadcast_model(run, record.broadcast)
        view = MembershipView(model=model, candidates=LabelledData(ds.images[idx], ds.labels[idx]),
                              observation=obs[0], local_training=run.defense.local_training, **common)
        return view, labels, keep
    raise InvalidParameterError(
        f"The 'threat_model' parameter of a membership attack must observe the final model or a "
        f"client update. Got {tm.name!r} instead.")


def _broadcast_model(run: MembershipRun, broadcast):
    import copy

    model = copy.deepcopy(run.target)
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(broadcast[n])
    return model


def attack_generator(run: MembershipRun) -> torch.Generator:
    """The generator each attack on ``run`` starts from: attacks with as many reference
    models draw the same masks, so they share (cached) reference models."""
    return torch.Generator().manual_seed(run.config.seed * 1_000_003)


def recorded_scores(run: MembershipRun, shadow_models: int) -> RecordedScores:
    """What a deployment of ``run`` would record, as a scores file in memory.

    The target's and ``shadow_models`` reference models' logits on the candidates and the
    population, with the true labels and memberships: the very reference models (same
    masks, seeds and cache) that LiRA and RMIA with ``shadow_models`` train on ``run``, so a
    score-level audit of these values (:mod:`audit.membership.score_audit`) reproduces the
    built-in one.
    """
    masks = reference_masks(shadow_models, len(run.game.candidates), attack_generator(run))
    models = _reference_trainer(run, False)(masks)
    cand, pop = run.game.candidate_data(), run.game.population_data()
    arrays = {"member": run.game.target_in, "label": cand.labels.numpy(),
              "record_id": run.game.candidates.astype(str),
              "logits": logits_of(run.target, cand.inputs).double().numpy(),
              "ref_logits": np.stack([logits_of(m, cand.inputs).double().numpy() for m in models]),
              "ref_in": np.asarray(masks, dtype=bool)}
    if len(pop):
        arrays.update({"pop_label": pop.labels.numpy(),
                       "pop_logits": logits_of(run.target, pop.inputs).double().numpy(),
                       "ref_pop_logits": np.stack([logits_of(m, pop.inputs).double().numpy()
                                                   for m in models])})
    return validate_arrays(f"<recorded from the {run.config.defense} audit, seed {run.config.seed}>",
                           arrays, lambda name, idx: repr(name))


def attack_scores(run: MembershipRun, attack: Attack, *, threat_model: str | None = None,
                  progress: bool = False):
    """(scores, true membership, view, result) of ``attack`` on ``run``."""
    return _scored(run, attack, threat_model, progress)[:4]


def _scored(run: MembershipRun, attack: Attack, threat_model: str | None, progress: bool):
    """:func:`attack_scores` and the scored candidates' dataset indices."""
    view, truth, keep = membership_view(run, attack, threat_model)
    result = attack.run(view, generator=attack_generator(run), device=run.device, progress=progress)
    scores = result.scores.detach().double().cpu().numpy()
    indices = run.game.candidates if keep is None else run.game.candidates[keep]
    return scores, truth, view, result, indices


def example_level_claim(run: MembershipRun) -> tuple[float | None, str]:
    """The claim's epsilon for the game's unit (replace-one client data), with an explanation."""
    claim = run.claim
    if not claim.has_dp:
        return None, "no DP claim: the empirical epsilon stands alone"
    if "replace-one" in (claim.unit or ""):
        return float(claim.epsilon), "the claim is replace-one at the client level, the game's unit"
    spec_of = getattr(run.defense, "event_spec", None)
    if spec_of is None:
        return None, "the claim's unit differs from the game's and cannot be re-accounted"
    from audit.privacy.accounting.accountants import Neighbouring
    from audit.privacy.accounting.accountants import epsilon as account

    spec = replace(spec_of(run.schedule), neighbouring=Neighbouring.REPLACE)
    eps = account(spec, delta=float(claim.delta), accountant="pld")
    return float(eps), (f"the claim ({float(claim.epsilon):.4g}) is for add-or-remove clients; a "
                        f"member changes one example of a client, i.e. replace-one: the same "
                        f"mechanism accounted for replace-one (PLD) gives {eps:.4g}")


def empirical_epsilon(run: MembershipRun, scores, truth) -> dict[str, Any]:
    """One-run lower bound from final-model membership scores, beside the claim."""
    delta = float(run.claim.delta) if run.claim.has_dp else DEFAULT_DELTA
    eps_claim, why = example_level_claim(run)
    return one_run_evidence(scores, truth, delta=delta, epsilon_claim=eps_claim, comparison=why)


def membership_finding(run: MembershipRun, attack: Attack, *, threat_model: str | None = None,
                       bootstrap: int = 200, progress: bool = False,
                       curves: dict | None = None) -> dict[str, Any]:
    """The report finding of ``attack`` on ``run`` (ROC metrics, plot, empirical epsilon).

    ``curves`` (name -> (fpr, tpr)) holds earlier attacks' ROC curves to draw in the same
    plot; this attack's curve is added to it, so one dict passed to successive calls gives
    each plot the curves of the attacks before it.
    """
    start = time.perf_counter()
    scores, truth, view, result, indices = _scored(run, attack, threat_model, progress)
    cfg = run.config
    final = view.observation is None
    eps = empirical_epsilon(run, scores, truth) if final else None
    mm, metrics = score_evidence(scores, truth, seed=cfg.seed, bootstrap=bootstrap, eps=eps)
    images = roc_image({} if curves is None else curves, attack.name + _variant(attack), mm,
                       name=attack.name, title=f"{attack.name} against {run.defense.name}")
    exposed = exposure_evidence(
        scores, truth, record_ids=[str(int(i)) for i in indices],
        groups=class_groups(view.candidates.labels.numpy()), group_source="class",
        ids_from="the candidates' dataset indices", score=score_meaning(attack.name, attack.params()),
        title=f"{attack.name}{_variant(attack)} against {run.defense.name}: who is exposed")
    return {
        "id": f"{cfg.defense}:{attack.name}",
        "title": f"{attack.name} membership inference against {run.defense.name}",
        "defense": {"name": run.defense.name, "params": run.defense.params()},
        "claim": run.claim.to_dict(),
        "threat_model": view.threat_model.to_dict(),
        "attack": {"name": attack.name, "family": attack.family, "params": attack.params()},
        "setting": {
            "dataset": cfg.dataset, "model": cfg.model, "model_params": dict(cfg.model_params),
            "batch_size": int(np.mean([len(c) for c in run.client_indices])),
            "num_targets": int(len(truth)), "local_steps": run.defense.local_training.steps,
            "rounds": cfg.rounds, "clients": cfg.num_targets,
            "local_training": run.defense.local_training.with_overrides(cfg.local_training).describe(),
            "target_train_accuracy": run.utility["train_accuracy"],
            "target_test_accuracy": run.utility["test_accuracy"],
        },
        "metrics": metrics,
        "images": images,
        "membership": {
            "game": run.game.summary(), "metrics": mm.to_dict(), "target_utility": run.utility,
            "observes": "final global model" if final else
                        f"client {attack.params().get('client', 0)}'s update in round "
                        f"{attack.params().get('round', 0)}",
            "shadow_training": run.shadow_stats, "empirical_epsilon": eps,
            "attack_stats": dict(result.stats),
        },
        "exposure": exposed,
        "runtime_s": time.perf_counter() - start + run.runtime_s,
    }


def _variant(attack: Attack) -> str:
    v = attack.params().get("variant")
    return f" ({v})" if v else ""


def run_membership_findings(config: AuditConfig, *, device: torch.device,
                            backend: TrainingBackend, progress: bool = False) -> list[dict]:
    """The finding of ``config.attack`` (a membership attack) on a freshly trained target."""
    attack = ATTACKS.create(config.attack, **config.attack_params)
    create_threat_model(config.threat_model or attack.default_threat_model)
    run = prepare_membership(config, device=device, backend=backend, progress=progress)
    return [membership_finding(run, attack, threat_model=config.threat_model, progress=progress)]
