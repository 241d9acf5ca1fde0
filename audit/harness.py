"""The audit harness: build a run from an :class:`AuditConfig`, simulate it, hand each
attack what its threat model observes, score against the ground truth, assemble findings.

Data flow (DEVELOPERS.md): broadcast -> client update -> defense (client side) ->
observation -> defense (server side) -> aggregate; the threat model decides whether the
adversary sees one client's observation or the aggregate of the attacked round (round 0).

Choices: each target client holds exactly one batch (``batch_size`` distinct images, in
dataset order); ``num_targets`` clients take part; the first round is attacked (the
broadcast model is the freshly initialised or briefly pre-trained one); pre-training uses
the images that are not targets when there are any.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from audit.core.attack import ATTACKS, Attack, AttackView, CraftingContext, ModelCraftingAttack
from audit.core.claims import PrivacyClaim
from audit.core.config import AuditConfig
from audit.data.client_items import client_data, client_items, population, public_split
from audit.data.dataset import ImageDataset
from audit.data.registry import create_dataset
from audit.core.defense import DEFENSES, Defense, FederationSchedule
from audit.core.errors import InvalidParameterError
from audit.metrics.lpips_metric import LpipsScorer
from audit.metrics.image import score_reconstructions
from audit.models.registry import create_model
from audit.fl.pretraining import pretrain
from audit.metrics.region import score_regions
from audit.metrics.scoring import (
    align,
    gradient_recovery_metrics,
    label_accuracy,
    label_summary,
    update_recovery_summaries,
)
from audit.fl.simulation import ClientData, Transcript, local_update
from audit.fl.held_out_utility import held_out_utility
from audit.fl.vectorised_clients import simulate
from audit.metrics.text_scoring import score_text
from audit.core.updates import LocalTraining
from audit.core.user_code import is_user_spec
from audit.fl.local_steps import check_loss
from audit.models.shape_check import check_model_fits
from audit.models.weights import load_weights
from audit.core.threat_model import Adversary, Knowledge, ObservationPoint, ThreatModel, create_threat_model
from reports.images import image_grid_png, png_base64

MAX_GRID_IMAGES = 16


@dataclass
class PreparedRun:
    """A simulated defense run, ready to be attacked (shared by several attacks)."""

    config: AuditConfig
    dataset: ImageDataset
    model: nn.Module
    defense: Defense
    schedule: FederationSchedule
    claim: PrivacyClaim
    threat_model: ThreatModel
    clients: list[ClientData]
    transcript: Transcript
    runtime_s: float
    training: LocalTraining | None = None  # what clients ran (the task's class weights)
    unused: list[int] | None = None  # the items no client holds, in order
    #: how the federation was simulated (:meth:`~audit.fl.vectorised_clients.SimulationResult.describe`)
    simulation: dict[str, Any] | None = None
    #: the final model on held-out items (:func:`~audit.fl.held_out_utility.held_out_utility`)
    utility: dict[str, float] | None = None


@dataclass(frozen=True)
class Target:
    """One thing to attack and the ground truth behind it."""

    view: AttackView
    images: torch.Tensor
    labels: torch.Tensor
    psi_masks: torch.Tensor | None = None  # (N, H, W) privacy-sensitive regions, when known
    #: the clients behind the target and the round: to recompute their raw update (the
    #: ground truth of an update-reconstruction attack)
    clients: tuple[int, ...] = ()
    round: int = 0


def validate(config: AuditConfig) -> None:
    """Check every name and parameter before any computation (cheap constructors only)."""
    defense = DEFENSES.create(config.defense, **config.defense_params)
    attack = ATTACKS.create(config.attack, **config.attack_params)
    threat_model = run_threat_model(config, defense, attack)
    malicious = threat_model.adversary is Adversary.MALICIOUS_SERVER
    if malicious != isinstance(attack, ModelCraftingAttack):
        raise InvalidParameterError(
            f"The 'threat_model' parameter must be a malicious server's exactly when the attack "
            f"crafts the broadcast model (imprint, trap-weights: threat models malicious-server, "
            f"malicious-server-secagg). Got {threat_model.name!r} with attack {attack.name!r} instead.")
    if malicious and type(defense).trainable is not Defense.trainable:
        raise InvalidParameterError(
            f"The 'defense' parameter must let clients train every parameter of the model a "
            f"malicious server crafts; {defense.name!r} trains only some. Got {defense.name!r} "
            f"with attack {attack.name!r} instead.")
    client_training(config, defense)


def run_threat_model(config: AuditConfig, defense: Defense, attack: Attack | None = None) -> ThreatModel:
    """The audit's adversary: the one named, else the attack's own (a malicious server's
    attack), else the defense's."""
    default = getattr(attack, "default_threat_model", None)
    return create_threat_model(config.threat_model or default or defense.default_threat_model)


def crafted_model(config: AuditConfig, attack: Attack, model: nn.Module, dataset: ImageDataset,
                  unused: list[int]) -> nn.Module:
    """The model a malicious server broadcasts instead of ``model``: the attack's crafting,
    given the data domain, the batch size and up to :data:`audit.data.client_items.MAX_POPULATION` of the items
    no client holds (its public data)."""
    assert isinstance(attack, ModelCraftingAttack)
    context = CraftingContext(tuple(dataset.input_shape), dataset.num_classes, config.batch_size,
                              population(dataset, unused))
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + 7)
    return attack.craft(model, context=context, generator=generator)


def client_training(config: AuditConfig, defense: Defense) -> LocalTraining | None:
    """The clients' local training: the defense's, with the user's description
    (``config.local_training``) over it; None when the user gave none. A user's loss is
    loaded here, so a bad ``module:function`` fails before any work."""
    if not config.local_training:
        return None
    training = defense.local_training.with_overrides(config.local_training, source="the 'local_training' settings")
    check_loss(training)
    return training


def prepare(config: AuditConfig, *, device: torch.device, progress: bool = False) -> PreparedRun:
    """Build data, model and defense from ``config`` and run the federated simulation."""
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    dataset = create_dataset(config.dataset, **config.dataset_params)
    held, unused = client_items(config, dataset)
    defense = DEFENSES.create(config.defense, **config.defense_params)
    attack = ATTACKS.create(config.attack, **config.attack_params)
    threat_model = run_threat_model(config, defense, attack)
    model = create_model(
        config.model,
        input_shape=dataset.input_shape,
        num_classes=dataset.num_classes,
        channel_mean=dataset.channel_mean,
        channel_std=dataset.channel_std,
        **config.model_params,
    )
    if config.weights:
        load_weights(model, config.weights, what=f"model {config.model!r}")
    if is_user_spec(config.model):
        check_model_fits(model, dataset.images[:1], num_classes=dataset.num_classes, task=dataset.task,
                         model_name=config.model, dataset_name=config.dataset)
    if config.pretrain_steps:
        rest = unused or list(range(len(dataset)))
        pretrain(model, dataset.subset(rest), steps=config.pretrain_steps, seed=config.seed)
    if threat_model.adversary is Adversary.MALICIOUS_SERVER:
        model = crafted_model(config, attack, model, dataset, unused)
    clients = [client_data(dataset, items) for items in held]
    schedule = FederationSchedule(
        num_clients=config.num_targets,
        clients_per_round=config.clients_per_round or config.num_targets,
        rounds=config.rounds,
        examples_per_client=tuple(len(c) for c in clients),
        sampling=config.client_sampling,
    )
    public = public_split(dataset, defense, unused)
    defense.prepare(schedule)
    sim = simulate(
        model=model, clients=clients, defense=defense, schedule=schedule, seed=config.seed,
        device=device, path=config.simulation, public=public, class_weights=dataset.class_weights,
        training=client_training(config, defense), keep_observations=True, progress=progress,
    )
    claim = defense.claim(schedule)  # after the run: a defense may set budgets from data
    public_n = 0 if public is None else len(public)
    utility = held_out_utility(model, dataset, unused[public_n:], device=device)
    return PreparedRun(
        config, dataset, model, defense, schedule, claim, threat_model, clients, sim.transcript,
        time.perf_counter() - start, sim.training, unused, sim.describe(), utility,
    )


def targets(run: PreparedRun, *, attacked_round: int | None = None) -> list[Target]:
    """What the threat model observes in ``attacked_round`` (default: the defense's first
    round that carries model updates), with the ground truth."""
    if attacked_round is None:
        attacked_round = run.defense.first_update_round()
    if not 0 <= attacked_round < len(run.transcript.rounds):
        raise InvalidParameterError(
            f"Defense {run.defense.name!r} sends its first model updates in round "
            f"{attacked_round}, but the audit ran {len(run.transcript.rounds)} round(s): raise "
            f"'rounds'. Got rounds={run.config.rounds} instead.")
    record = run.transcript.rounds[attacked_round]
    tm = run.threat_model
    model = copy.deepcopy(run.model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(record.broadcast[n])

    server_state = run.defense.server_state() if tm.knows_(Knowledge.SERVER_STATE) else None
    public = population(run.dataset, run.unused) if tm.knows_(Knowledge.POPULATION_DATA) else None

    def view(update, images, labels, psi=None, clients=()) -> Target:
        v = AttackView(
            threat_model=tm,
            model=model,
            target=update,
            local_training=run.training or run.defense.local_training,
            batch_size=len(labels),
            input_shape=run.dataset.input_shape,
            num_classes=run.dataset.num_classes,
            defense_params=run.defense.public_state(),
            labels=labels.clone() if tm.knows_(Knowledge.LABELS) else None,
            server_state=server_state,
            public=public,
        )
        return Target(v, images.cpu(), labels.cpu(), None if psi is None else psi.cpu(),
                      tuple(clients), attacked_round)

    if tm.observes is ObservationPoint.CLIENT_UPDATE:
        return [
            view(obs, run.clients[obs.client_id].images, run.clients[obs.client_id].labels,
                 run.clients[obs.client_id].psi_masks, (obs.client_id,))
            for obs in record.observations
        ]
    if tm.observes is ObservationPoint.AGGREGATE:
        sampled = [run.clients[k] for k in record.sampled]
        images = torch.cat([c.images for c in sampled])
        labels = torch.cat([c.labels for c in sampled])
        psi = None if any(c.psi_masks is None for c in sampled) else torch.cat(
            [c.psi_masks for c in sampled])
        return [view(record.aggregate, images, labels, psi, record.sampled)]
    raise InvalidParameterError(
        f"The 'threat_model' parameter must observe client updates or aggregates for "
        f"gradient inversion. Got {tm.name!r} instead."
    )


def attack_run(
    run: PreparedRun,
    attack: Attack,
    *,
    device: torch.device,
    lpips_scorer: LpipsScorer | None,
    progress: bool = False,
) -> dict[str, Any]:
    """Attack every target of ``run`` and return the report's finding."""
    start = time.perf_counter()
    cfg = run.config
    recon, truth, psi, accs, updates, texts = [], [], [], [], [], []
    todo = targets(run)
    gens = [torch.Generator().manual_seed(cfg.seed * 1_000_003 + i) for i in range(len(todo))]
    if type(attack).run_targets is Attack.run_targets:  # one by one, with a bar over targets
        results = [attack.run(t.view, generator=g, device=device, progress=progress)
                   for t, g in zip(tqdm(todo, desc=f"{attack.name} targets", disable=not progress), gens)]
    else:
        results = attack.run_targets([t.view for t in todo], generators=gens, device=device,
                                     progress=progress)
    for target, result in zip(todo, results):
        if result.gradient is not None:
            updates.append(gradient_recovery_metrics(result.gradient, raw_update(run, target)))
        if result.tokens is not None:
            texts.append((result.tokens, target.images))
        if result.images is not None and run.dataset.modality == "image":
            recon.append(align(result.images.float().cpu(), target.images))
            truth.append(target.images)
            psi.append(target.psi_masks)
        if result.labels is not None and run.dataset.task == "classification":
            accs.append(label_accuracy(result.labels, target.labels))
    metrics = []
    images = None
    if recon:
        r, t = torch.cat(recon), torch.cat(truth)
        summaries = score_reconstructions(
            r, t, baseline_image=run.dataset.mean_image(), lpips_scorer=lpips_scorer
        )
        metrics += [s.to_dict() for s in summaries]
        masks = None if any(m is None for m in psi) else torch.cat(psi)
        if masks is not None:  # FedRE's evaluation: inside the privacy-sensitive regions
            metrics += [s.to_dict() for s in score_regions(
                r, t, masks, baseline_image=run.dataset.mean_image(), lpips_scorer=lpips_scorer)]
        n = min(len(t), MAX_GRID_IMAGES)
        png = image_grid_png([t[:n], r[:n]], scale=max(2, 96 // t.shape[-1]),
                             outlines=None if masks is None else masks[:n])
        images = {
            "png_base64": png_base64(png),
            "caption": f"Top row: ground truth; bottom row: {attack.name} reconstruction "
            f"({n} of {len(t)} images, matched by Hungarian assignment)"
            + ("; blue outlines: PSI regions." if masks is not None else "."),
        }
    if accs:
        metrics.append(label_summary(accs, run.dataset.num_classes).to_dict())
    if updates:
        metrics += [m.to_dict() for m in update_recovery_summaries(updates)]
    samples = None
    if texts:
        text_metrics, samples = score_text(texts, baseline=_baseline_record(run),
                                           sequences=attack.family == "text-inversion")
        metrics += [m.to_dict() for m in text_metrics]
    return {
        "id": f"{cfg.defense}:{cfg.attack}",
        "title": f"{attack.name} against {run.defense.name}",
        "defense": {"name": run.defense.name, "params": run.defense.params()},
        "claim": run.claim.to_dict(),
        "threat_model": run.threat_model.to_dict(),
        "attack": {"name": attack.name, "family": attack.family, "params": attack.params()},
        "setting": {
            "dataset": cfg.dataset,
            "model": cfg.model,
            "model_params": dict(cfg.model_params),
            "batch_size": cfg.batch_size,
            "num_targets": len(todo),
            "local_steps": run.defense.local_training.steps,
            "rounds": cfg.rounds,
            "clients": cfg.num_targets,
            "local_training": (run.training or run.defense.local_training).describe(),
            **({"simulation": run.simulation} if run.simulation else {}),
        },
        "metrics": metrics,
        **({"utility": dict(run.utility)} if run.utility else {}),
        "images": images,
        **({"text_samples": samples} if samples else {}),
        "runtime_s": time.perf_counter() - start + run.runtime_s,
    }


def raw_update(run: PreparedRun, target: Target) -> dict[str, torch.Tensor]:
    """The ground truth of an update-reconstruction attack: the raw update (before the
    defense) of the target's client in its round, recomputed from the recorded broadcast
    (local training is deterministic), or the mean over the clients of an aggregate."""
    record = run.transcript.rounds[target.round]
    model = copy.deepcopy(run.model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(record.broadcast[n])
    training = run.training or run.defense.local_training
    total: dict[str, torch.Tensor] = {}
    for k in target.clients:
        raw = local_update(model, run.clients[k], training, client_id=k, round=target.round,
                           trainable=run.defense.trainable(target.round)).tensors
        total = {n: total.get(n, 0) + t.detach().cpu() for n, t in raw.items()}
    return {n: t / len(target.clients) for n, t in total.items()}


def _baseline_record(run: PreparedRun) -> torch.Tensor:
    """A record of the dataset that no client holds (what knowing the data distribution
    alone gives an adversary): the first after the clients' items, or the last record."""
    if run.unused:
        return run.dataset.images[run.unused[0]]
    return run.dataset.images[len(run.dataset) - 1]


def run_audit(
    config: AuditConfig,
    *,
    device: torch.device,
    lpips_scorer: LpipsScorer | None,
    progress: bool = False,
) -> dict[str, Any]:
    """One finding for ``config``."""
    return run_audit_findings(config, device=device, lpips_scorer=lpips_scorer, progress=progress)[0]


def run_audit_findings(
    config: AuditConfig,
    *,
    device: torch.device,
    lpips_scorer: LpipsScorer | None,
    progress: bool = False,
    estimator: str | None = None,
    estimator_params: dict[str, Any] | None = None,
    training_backend: Any = None,
) -> list[dict[str, Any]]:
    """The attack's finding, then (with ``estimator``) the empirical-epsilon finding.

    A membership attack goes through :mod:`audit.membership.membership_audit` (its target is a model
    trained on a member set, shadow models trained on ``training_backend``).
    """
    validate(config)
    attack = ATTACKS.create(config.attack, **config.attack_params)
    if attack.family == "model-extraction":
        from audit.extraction.extraction_audit import run_extraction_findings

        if estimator:
            raise InvalidParameterError(
                f"The 'estimator' parameter does not apply to attack {attack.name!r} (model "
                f"extraction; its defense makes no DP claim). Got {estimator!r} instead.")
        return run_extraction_findings(config, prepare, device=device, progress=progress)
    if attack.family == "membership-inference":
        from audit.membership.membership_audit import TrainingBackend, run_membership_findings

        findings = run_membership_findings(config, device=device, progress=progress,
                                           backend=training_backend or TrainingBackend())
        if not estimator:
            return findings
        run = prepare(config, device=device, progress=progress)
    else:
        run = prepare(config, device=device, progress=progress)
        finding = attack_run(run, attack, device=device, lpips_scorer=lpips_scorer, progress=progress)
        findings = [finding]
        if run.defense.first_update_round() > 0:  # e.g. DR-Encoder's unnoised statistics
            from audit.privacy.auditing.statistics_audit import stage1_statistics_finding

            findings.append(stage1_statistics_finding(run, seed=config.seed))
    if estimator:
        from audit.privacy.auditing.defense_audit import privacy_finding

        claim_tm = create_threat_model(run.defense.default_threat_model).to_dict()
        findings.append(privacy_finding(
            run.defense, run.schedule, run.claim, claim_tm, findings[0]["setting"], estimator,
            seed=config.seed, transcript=run.transcript, **(estimator_params or {}),
        ))
    return findings
