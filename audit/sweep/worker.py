"""One run of a sweep, as a worker (a Ray task or this process) runs it.

* Device: ``cpu`` by default, the same in every backend (``device = "auto"`` means CPU
  inside Ray workers: see :mod:`audit.sweep.ray_backend`).
* Shadow models of membership runs are trained serially inside their run (the run is the
  unit of parallelism), cached under ``cache_dir`` (default as ``fedaudit audit``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from audit.core.config import AuditConfig

__all__ = ["run_one"]


def run_one(run: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """Run one audit of a sweep and return ``{"report", "threads", "pid", "seconds"}``.

    ``run`` is :meth:`SweepRun.payload`, ``settings`` the spec's execution settings. Top
    level and JSON in, JSON out, so that Ray workers import it by name. Torch runs with
    ``settings["threads"]`` threads (restored afterwards).
    """
    import torch

    from audit.core.config import canonical_command
    from audit.models.cache import default_cache_dir
    from audit.core.device import describe_device, resolve_device
    from audit.core.environment import environment_info
    from audit.harness import run_audit_findings
    from audit.membership.membership_audit import TrainingBackend
    from reports.assembly import assemble_report

    start = time.perf_counter()
    threads = int(settings["threads"])
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        device = resolve_device(settings["device"])
        config = AuditConfig(**run["config"])
        notes: list[str] = []
        scorer = None
        if settings.get("lpips", True):
            from audit.metrics.lpips_metric import LpipsScorer

            scorer = LpipsScorer(device=device)
            if not scorer.available:
                notes.append(scorer.reason)
        else:
            notes.append("LPIPS not computed: disabled with lpips = false in the sweep spec.")
        estimator = run.get("estimator")
        est_params = dict(run.get("estimator_params") or {})
        backend = TrainingBackend(backend="serial",
                                  cache_dir=str(settings.get("cache_dir") or default_cache_dir()))
        findings = run_audit_findings(config, device=device, lpips_scorer=scorer, progress=False,
                                      estimator=estimator, estimator_params=dict(est_params),
                                      training_backend=backend)
        if estimator:
            from audit.privacy.auditing.verdicts import NOT_A_PROOF

            notes.append(NOT_A_PROOF)
        used = torch.get_num_threads()
        report = assemble_report(
            findings, title=f"fedaudit: {config.attack} against {config.defense}",
            command=canonical_command(config, threads=threads, estimator=estimator,
                                      estimator_params=est_params),
            seed=config.seed,
            environment=environment_info(device=describe_device(device), threads=threads),
            notes=notes, runtime_s=time.perf_counter() - start,
        )
    finally:
        torch.set_num_threads(previous)
    return {"report": report, "threads": used, "pid": os.getpid(),
            "seconds": time.perf_counter() - start}
