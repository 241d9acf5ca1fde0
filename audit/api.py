"""The Python API: one function per job, for notebooks and scripts (no CLI needed).

Each function takes the same settings as its ``fedaudit`` command, checks them before any
work (an :class:`~audit.core.errors.InvalidParameterError` naming the bad value), and
returns the report object that is also written as ``report.json`` when ``out`` is given
(atomically, at the end; nothing is written when it fails).

* :func:`run_audit` — ``fedaudit audit``: a defense, an attack, data, a model, and the
  clients' local training; any of them may be the user's own (``"file.py:name"``).
* :func:`compliance_report` — ``fedaudit report``: audit runs judged against a policy,
  written as HTML, Markdown, PDF or JSON by the suffix of ``out``.
* :func:`record_observed` — ``fedaudit record``: a simulated run written as a
  recorded-updates directory (what its server saw; docs/recorded-updates.md).
* :func:`audit_observed` — ``fedaudit audit --observed DIR``: an attack on a recorded-updates
  directory, with no simulation.
* :func:`audit_membership_scores` — ``fedaudit mia --target-weights W``: the membership audit
  of your trained target, with shadow models trained by your own training function.

Choices: ``device="auto"`` picks CUDA when present; ``threads`` sets torch's CPU threads for
the process (as the CLI does) and is recorded in the report; LPIPS is computed only when
its backbone weights are in the local torch hub cache, otherwise the report says why.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from audit.core.config import AuditConfig, canonical_command
from audit.core.device import describe_device, resolve_device, set_threads
from audit.core.environment import environment_info
from audit.core.errors import InvalidParameterError
from audit.metrics.lpips_metric import LpipsScorer


def run_audit(config: AuditConfig | None = None, *, out: str | Path | None = None, device: str = "auto",
              threads: int = 1, lpips: bool = True, progress: bool = False, estimator: str | None = None,
              estimator_params: dict[str, Any] | None = None, **settings: Any) -> dict[str, Any]:
    """Run one audit and return its report (``config``, or the :class:`AuditConfig` keys as
    keyword arguments: ``defense=``, ``model="my_model.py:build"``, ``local_training={...}``...)."""
    from audit.harness import run_audit_findings, validate
    from reports.assembly import assemble_report, write_report

    start = time.perf_counter()
    if config is None:
        config = AuditConfig(**settings)
    elif settings:
        raise InvalidParameterError(
            f"run_audit takes either a config or settings, not both. Got settings {sorted(settings)} too.")
    torch_device = resolve_device(device)
    threads = set_threads(threads)
    validate(config)
    scorer, notes = None, ["LPIPS not computed: disabled (lpips=False)."]
    if lpips:
        scorer = LpipsScorer(device=torch_device)
        notes = [] if scorer.available else [scorer.reason]
    findings = run_audit_findings(config, device=torch_device, lpips_scorer=scorer, progress=progress,
                                  estimator=estimator, estimator_params=estimator_params)
    if estimator is not None:
        from audit.privacy.auditing.verdicts import NOT_A_PROOF

        notes.append(NOT_A_PROOF)
    report = assemble_report(
        findings, title=f"fedaudit: {config.attack} against {config.defense}",
        command=canonical_command(config, threads=threads, estimator=estimator, estimator_params=estimator_params),
        seed=config.seed, environment=environment_info(device=describe_device(torch_device), threads=threads),
        notes=notes, runtime_s=time.perf_counter() - start)
    if out is not None:
        write_report(out, report)
    return report


def compliance_report(run_dirs: list[str | Path], *, policy: str | Path | None = None,
                      out: str | Path | None = None) -> dict[str, Any]:
    """The compliance report of audit runs (their ``out`` directories) against ``policy``
    (default: ``audit/compliance/policies/default.toml``); with ``out``, also written as
    ``out`` (``.json``, ``.html`` or ``.md`` by its suffix)."""
    from audit.compliance.compliance_report import build_compliance, load_run
    from audit.compliance.policy import load_policy

    if not run_dirs:
        raise InvalidParameterError("compliance_report needs at least one run directory. Got none instead.")
    fmt = None if out is None else _format_of(out)
    loaded = load_policy(policy)
    runs = [load_run(d) for d in run_dirs]
    report = build_compliance(
        runs, policy=loaded, policy_source=str(policy) if policy else
        "default policy (audit/compliance/policies/default.toml)",
        command="audit.api.compliance_report(" + ", ".join(repr(str(d)) for d in run_dirs) + ")")
    if out is not None:
        from audit.compliance.compliance_report import finding_images
        from reports.compliance_render import write_compliance

        write_compliance(report, fmt, out, None if fmt in ("json", "md") else finding_images(run_dirs))
    return report


def _format_of(out: str | Path) -> str:
    suffix = Path(out).suffix.lower().lstrip(".")
    fmt = {"htm": "html", "markdown": "md"}.get(suffix, suffix)
    if fmt not in ("html", "md", "pdf", "json"):
        raise InvalidParameterError(
            f"The 'out' parameter of compliance_report must end in .html, .md, .pdf or .json. Got {str(out)!r} instead.")
    return fmt


def record_observed(config: AuditConfig | None = None, *, out: str | Path, labels: bool = False,
                    truth: bool = True, device: str = "cpu", **settings: Any) -> Path:
    """``fedaudit record``: simulate ``config`` (or the :class:`AuditConfig` keys as keyword
    arguments) and write what its server saw as a recorded-updates directory ``out``
    (docs/recorded-updates.md); returns ``out``. ``labels`` records the clients' labels (the
    threat model ``hbc-server-labels`` then applies); ``truth`` writes their data to
    ``truth/`` (a red-team recording), with the dataset's mean image as the baseline."""
    from audit.fl.recorded_updates import Deployment, write_recording
    from audit.harness import prepare, validate

    if config is None:
        config = AuditConfig(**settings)
    elif settings:
        raise InvalidParameterError(
            f"record_observed takes either a config or settings, not both. Got settings {sorted(settings)} too.")
    validate(config)
    run = prepare(config, device=resolve_device(device))
    if any(r.received for r in run.transcript.rounds):
        raise InvalidParameterError(
            f"The 'defense' parameter of record_observed must send clients the broadcast model; "
            f"{run.defense.name!r} sends them other models, which a recording does not hold. "
            f"Got {config.defense!r} instead.")
    data = run.dataset
    deployment = Deployment(config.model, tuple(data.input_shape), data.num_classes,
                            run.training or run.defense.local_training, dict(config.model_params),
                            tuple(data.channel_mean), tuple(data.channel_std),
                            {"name": run.defense.name, "params": run.defense.params()})
    clients = dict(enumerate(run.clients))
    return write_recording(
        out, run.transcript, deployment, buffers=dict(run.model.named_buffers()),
        labels={k: c.labels for k, c in clients.items()} if labels else None,
        truth={k: (c.images, c.labels) for k, c in clients.items()} if truth else None,
        baseline_image=data.mean_image() if truth else None)


def audit_observed(directory: str | Path, *, attack: str = "inverting-gradients",
                   attack_params: dict[str, Any] | None = None, threat_model: str | None = None,
                   truth: str | Path | None = None, out: str | Path | None = None, seed: int = 0,
                   device: str = "auto", threads: int = 1, lpips: bool = True,
                   progress: bool = False) -> dict[str, Any]:
    """``fedaudit audit --observed DIR``: ``attack`` on a recorded-updates directory, with no
    simulation; scored against ``truth`` (default ``DIR/truth/`` when it exists), else the
    reconstructions and their gradient distance. Returns the report (written to ``out``)."""
    from audit.observed.offline_audit import observed_command, observed_findings
    from reports.assembly import assemble_report, write_report

    start = time.perf_counter()
    torch_device = resolve_device(device)
    threads = set_threads(threads)
    scorer = LpipsScorer(device=torch_device) if lpips else None
    findings, notes = observed_findings(directory, attack=attack, attack_params=attack_params,
                                        threat_model=threat_model, truth=truth, seed=seed,
                                        device=torch_device, lpips_scorer=scorer, progress=progress)
    notes += [scorer.reason] if scorer is not None and not scorer.available else []
    report = assemble_report(
        findings, title=f"fedaudit: {attack} on recorded updates ({Path(directory).name})",
        command=observed_command(directory, attack=attack, attack_params=dict(attack_params or {}),
                                 threat_model=threat_model, seed=seed, threads=threads),
        seed=seed, environment=environment_info(device=describe_device(torch_device), threads=threads),
        notes=notes, runtime_s=time.perf_counter() - start)
    if out is not None:
        write_report(out, report)
    return report


def audit_membership_scores(*, target_weights: str | Path, model: str, dataset: str, members: str | Path,
                            train: str, model_params: dict[str, Any] | None = None,
                            dataset_params: dict[str, Any] | None = None, shadow_models: int = 8,
                            attacks: list[str] | None = None, seed: int = 0, threads: int = 1,
                            progress: bool = False, out: str | Path | None = None) -> dict[str, Any]:
    """``fedaudit mia --target-weights W``: the membership audit of your trained target (its
    weights, your ``model`` builder, the ``dataset`` whose items are the candidates and the
    ``members`` file marking its training items), with ``shadow_models`` shadow models trained
    by your ``train(model, images, labels, *, seed)`` (LiRA online) and scored as
    ``fedaudit mia --scores`` scores (LOSS, LiRA online and offline). Returns the report; with
    ``out``, also writes it and the scores (``out/scores.npz``)."""
    from audit.membership.shadow_scores import (command_line, prepare_target_audit, report_title,
                                                run_target_audit)
    from reports.assembly import assemble_report, write_report

    start = time.perf_counter()
    threads = set_threads(threads)
    audit = prepare_target_audit(weights=str(target_weights), model=model, model_params=model_params,
                                 dataset=dataset, dataset_params=dataset_params, members=str(members),
                                 train=train, shadow_models=shadow_models, attacks=attacks, seed=seed,
                                 out=out)
    findings, notes = run_target_audit(audit, out=out, progress=progress)
    report = assemble_report(
        findings, title=report_title(audit),
        command=command_line(audit, threads=threads, out=out), seed=audit.seed,
        environment=environment_info(device=describe_device(resolve_device("cpu")), threads=threads),
        notes=notes, runtime_s=time.perf_counter() - start)
    if out is not None:
        write_report(out, report)
    return report
