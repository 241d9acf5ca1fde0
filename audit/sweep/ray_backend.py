"""The Ray backend of a sweep: each run a Ray task, at most ``workers`` in flight.

* Ray: a local instance (``ray.init(num_cpus=workers, include_dashboard=False)``, shut down
  at the end) or an existing cluster (``ray_address``; kept); one CPU per run and at most
  ``workers`` runs in flight; torch runs with ``threads`` (default 1) threads in each task,
  so a run's result does not depend on where it ran. Tasks are not retried
  (``max_retries=0``): a crashing run is recorded as failed and retried by the next sweep.
  Ray is imported lazily; without it, ``backend="ray"`` asks to ``pip install
  fedaudit[ray]``. The workers import :func:`audit.sweep.worker.run_one` by name: a local Ray
  started here puts the folder holding this process's ``audit`` package first on their
  ``PYTHONPATH`` (so they run the same code, whatever is installed); on a cluster (or a Ray
  already running) fedaudit must be installed on every node, or pass ``ray_runtime_env``.
* Device: Ray tasks reserve no GPU (Ray hides the GPUs from them), so ``device = "auto"``
  means CPU inside Ray workers.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from audit.core.errors import InvalidParameterError
from audit.sweep.spec import SweepRun
from audit.sweep.worker import run_one


def _import_ray():
    try:
        import ray
    except ImportError:
        raise InvalidParameterError(
            "The 'backend' parameter of run_sweep is 'ray' but Ray is not installed: "
            "pip install 'fedaudit[ray]' (or use backend 'serial').") from None
    return ray


def _run_on_ray(ray, todo: Sequence[SweepRun], settings: Mapping[str, Any], finished, failure, *,
                workers: int | None, ray_address: str | None,
                runtime_env: Mapping[str, Any] | None) -> tuple[int, float | None]:
    """Run ``todo`` as Ray tasks, at most ``workers`` in flight; ``(workers, ray.init seconds)``."""
    started_here = False
    init_s = None
    if not ray.is_initialized():
        t = time.perf_counter()
        if ray_address is None:
            # the workers import audit.sweep.worker by name: from the same checkout as this process
            root = str(Path(__file__).resolve().parents[2])
            path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
            ray.init(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False,
                     log_to_driver=False, logging_level="ERROR",
                     runtime_env={"env_vars": {"PYTHONPATH": path}})
            started_here = True
        else:
            ray.init(address=ray_address, log_to_driver=False, logging_level="ERROR")
        init_s = time.perf_counter() - t
    try:
        if workers is None:
            if ray_address is None and started_here:
                workers = os.cpu_count() or 1
            else:
                workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        remote = ray.remote(num_cpus=1, max_retries=0)(run_one)
        if runtime_env is not None:
            remote = remote.options(runtime_env=dict(runtime_env))
        queue = iter(todo)
        pending: dict[Any, SweepRun] = {}

        def submit() -> None:
            while len(pending) < workers:
                run = next(queue, None)
                if run is None:
                    return
                pending[remote.remote(run.payload(), dict(settings))] = run

        try:
            submit()
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    run = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayError as err:
                        cause = getattr(err, "cause", None)
                        failure(run, cause if isinstance(cause, BaseException) else err, str(err))
                    else:
                        finished(run, result, "ray")
                submit()
        finally:
            for ref in pending:  # interrupted: stop what is still running
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
    finally:
        if started_here:
            ray.shutdown()
    return workers, init_s
