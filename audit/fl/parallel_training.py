"""Train many models (shadow models, reference models) in parallel, resuming from a cache.

:func:`train_models` takes a list of JSON-ready *specs* and a top-level ``train_fn`` that
turns one spec into a state dict. Models already in the :class:`~audit.models.cache.ModelCache`
are loaded instead of retrained; every newly trained model is saved the moment it finishes,
so an interrupted sweep (Ctrl-C, a killed job, one failing spec) resumes where it stopped.

Choices:

* One torch thread per model by default (``threads_per_worker=1``): on the project's 2-core
  machines, torch's default of 2 threads was measured 4x slower than 1 thread whenever
  another process was busy; parallelism comes from the workers, one model each.
* Ray on the local machine by default (``ray.init(num_cpus=workers)``), started once and
  kept for later calls because starting it costs seconds; ``ray_address`` joins an
  existing cluster instead. ``backend="serial"`` runs in this process without Ray.
* ``backend="auto"`` (the CLI's default) picks Ray only when it pays: it trains the first
  model here, timing it, then starts Ray if ``RAY_START_SECONDS`` plus the remaining models
  spread over the workers is shorter than training them here one after another (a Ray
  already running, or ``ray_address``, is always used). On 2 cores a cold local Ray costs
  about 4.4 s (``ray.init`` 2.7 s, torch imported in each worker 1.7 s), so 8 models of
  one second each are faster in this process and 16 are faster on Ray.
* Models are stored as safetensors, never pickle, so reading a cache cannot run code.
  (Between the Ray workers and this process they travel through Ray's own serialisation,
  among processes this run started.) ``train_fn`` is pickled *by reference* by Ray: it
  must be importable (by module and name) in the workers, e.g. from an installed package,
  or made importable with ``ray_runtime_env={"env_vars": {"PYTHONPATH": ...}}``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from audit.core.errors import InvalidParameterError, invalid
from audit.models.cache import ModelCache, prepared_tensors
from audit.core.validation import check_interval, check_options

__all__ = ["RAY_START_SECONDS", "TrainingStats", "shutdown_ray", "train_models"]

_OWNER = "train_models"

#: what ``backend="auto"`` expects a cold local Ray to cost before its first model
#: (measured 4.4 s on the project's 2-core machines; rounded up)
RAY_START_SECONDS = 5.0

TrainFn = Callable[[Mapping[str, Any]], dict[str, torch.Tensor]]
Todo = list[tuple[str, Mapping[str, Any]]]  # (cache key, spec) of the models to train
Finished = Callable[[str, dict[str, torch.Tensor]], None]  # saves one trained model


@dataclass(frozen=True)
class TrainingStats:
    """What :func:`train_models` did: cache hits, models trained and how."""

    loaded: int
    trained: int
    backend: str
    workers: int
    threads_per_worker: int
    seconds: float
    #: why this backend trained the models (``backend="auto"``'s estimate), else ""
    reason: str = ""


def _train_one(
    train_fn: TrainFn, spec: Mapping[str, Any], threads: int
) -> dict[str, torch.Tensor]:
    """Run ``train_fn(spec)`` with ``threads`` torch threads; CPU, contiguous result."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        out = train_fn(spec)
    finally:
        torch.set_num_threads(previous)
    return prepared_tensors(out, f"The result of train_fn for spec {dict(spec)!r}")


def train_models(
    specs: Sequence[Mapping[str, Any]],
    train_fn: TrainFn,
    *,
    cache: ModelCache | None = None,
    backend: str = "ray",
    ray_address: str | None = None,
    workers: int | None = None,
    threads_per_worker: int = 1,
    progress: bool = False,
    ray_runtime_env: Mapping[str, Any] | None = None,
) -> tuple[list[dict[str, torch.Tensor]], TrainingStats]:
    """Train (or load from ``cache``) one model per spec; results in the order of ``specs``.

    Duplicate specs are trained once and their results share tensors. ``workers`` defaults
    to the number of CPUs (of the cluster when ``ray_address`` is given); Ray reserves one
    CPU per model, so keep ``workers * threads_per_worker`` within the cores. When a model
    fails, no new model is started, the models already running are finished and saved, and
    the original exception is raised (the first one, if several fail).
    ``ray_runtime_env`` is passed to each Ray task (e.g. to set ``PYTHONPATH``).
    """
    backend = check_options("backend", _OWNER, backend, ("auto", "ray", "serial"))
    if workers is not None:
        workers = check_interval("workers", _OWNER, workers, kind=int, low=1)
    threads = check_interval("threads_per_worker", _OWNER, threads_per_worker, kind=int, low=1)
    if not callable(train_fn):
        raise invalid("train_fn", _OWNER, "a callable", train_fn)
    if cache is not None and not isinstance(cache, ModelCache):
        raise invalid("cache", _OWNER, "a ModelCache or None", cache)
    if ray_runtime_env is not None and not isinstance(ray_runtime_env, Mapping):
        raise invalid("ray_runtime_env", _OWNER, "a dict or None", ray_runtime_env)
    if isinstance(specs, (str, bytes, Mapping)) or not isinstance(specs, Sequence):
        raise invalid("specs", _OWNER, "a sequence of mappings", specs)

    start = time.perf_counter()
    keys = [ModelCache.key(spec) for spec in specs]
    unique: dict[str, Mapping[str, Any]] = {}
    for key, spec in zip(keys, specs):
        unique.setdefault(key, spec)

    results: dict[str, dict[str, torch.Tensor]] = {}
    if cache is not None:
        for key, spec in unique.items():
            tensors = cache.load(spec)
            if tensors is not None:
                results[key] = tensors
    loaded = len(results)
    todo = [(key, spec) for key, spec in unique.items() if key not in results]

    to_train = len(todo)
    bar = tqdm(total=len(unique), initial=loaded, desc="shadow models", disable=not progress)

    def finished(key: str, tensors: dict[str, torch.Tensor]) -> None:
        if cache is not None:
            cache._save_prepared(unique[key], tensors)
        results[key] = tensors
        bar.update(1)

    reason = ""
    try:
        if backend == "auto":
            backend, reason, todo = _choose_backend(
                todo, train_fn, finished, threads=threads, workers=workers,
                ray_address=ray_address)
        if backend == "serial":
            used_workers = 1
            for key, spec in todo:
                finished(key, _train_one(train_fn, spec, threads))
        else:
            used_workers = _train_with_ray(
                todo, train_fn, finished, threads=threads, workers=workers,
                ray_address=ray_address, runtime_env=ray_runtime_env,
            )
    finally:
        bar.close()

    stats = TrainingStats(
        loaded=loaded,
        trained=to_train,
        backend=backend,
        workers=used_workers,
        threads_per_worker=threads,
        seconds=time.perf_counter() - start,
        reason=reason,
    )
    return [dict(results[key]) for key in keys], stats


def ray_available() -> bool:
    """Whether the optional Ray extra is installed."""
    import importlib.util

    return importlib.util.find_spec("ray") is not None


def import_ray(what: str):
    """``import ray``, or a clear error saying how to install it (Ray is an optional extra)."""
    try:
        import ray
    except ImportError:
        raise InvalidParameterError(
            f"{what} needs Ray, an optional extra: pip install 'fedaudit[ray]'. Got no 'ray' "
            "package instead.") from None
    return ray


def _choose_backend(
    todo: Todo, train_fn: TrainFn, finished: Finished, *, threads: int, workers: int | None,
    ray_address: str | None,
) -> tuple[str, str, Todo]:
    """``backend="auto"``: the backend for ``todo``, why, and what is left to train."""
    ray = sys.modules.get("ray")
    if ray_address is not None or (ray is not None and ray.is_initialized()):
        return "ray", "auto: Ray is already running" if ray_address is None else (
            "auto: a Ray cluster address was given"), todo
    w = workers or os.cpu_count() or 1
    if w == 1 or len(todo) < 2:
        return "serial", f"auto: {len(todo)} model(s) to train with {w} worker(s)", todo
    if not ray_available():
        return "serial", "auto: Ray is not installed (pip install fedaudit[ray])", todo
    t = time.perf_counter()
    key, spec = todo[0]
    finished(key, _train_one(train_fn, spec, threads))
    per_model = time.perf_counter() - t
    rest = todo[1:]
    here = len(rest) * per_model
    on_ray = RAY_START_SECONDS + -(-len(rest) // w) * per_model
    backend = "ray" if on_ray < here else "serial"
    return backend, (
        f"auto: {backend} (one model took {per_model:.1f} s; {len(rest)} more estimated at "
        f"{here:.1f} s here, {on_ray:.1f} s on Ray with {w} workers including its start)"), rest


def _train_with_ray(
    todo: Todo,
    train_fn: TrainFn,
    finished: Finished,
    *,
    threads: int,
    workers: int | None,
    ray_address: str | None,
    runtime_env: Mapping[str, Any] | None,
) -> int:
    """Train ``todo`` as Ray tasks, at most ``workers`` in flight; returns ``workers``."""
    ray = import_ray("the 'ray' backend")

    if not ray.is_initialized():
        if ray_address is None:
            ray.init(
                num_cpus=workers or os.cpu_count() or 1,
                include_dashboard=False,
                log_to_driver=False,
                logging_level="ERROR",
                ignore_reinit_error=True,
            )
        else:
            ray.init(
                address=ray_address,
                log_to_driver=False,
                logging_level="ERROR",
                ignore_reinit_error=True,
            )
    if workers is None:
        if ray_address is None:
            workers = os.cpu_count() or 1
        else:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
    if not todo:
        return workers

    remote = ray.remote(num_cpus=1)(_train_one)
    if runtime_env is not None:
        remote = remote.options(runtime_env=dict(runtime_env))
    fn_ref = ray.put(train_fn)
    queue = iter(todo)
    pending: dict[Any, str] = {}

    def submit() -> None:
        while len(pending) < workers:
            item = next(queue, None)
            if item is None:
                return
            pending[remote.remote(fn_ref, item[1], threads)] = item[0]

    def collect(refs: list[Any]) -> BaseException | None:
        """Save the results of finished ``refs``; the first task error, if any."""
        error = None
        for ref in refs:
            key = pending.pop(ref)
            try:
                tensors = ray.get(ref)
            except ray.exceptions.RayTaskError as err:
                error = error or err
                continue
            finished(key, tensors)
        return error

    try:
        submit()
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            error = collect(done)
            if error is not None:
                # submit nothing more, but keep the models already running (at most
                # workers - 1, so at most one model's time), then report the failure
                while pending:
                    done, _ = ray.wait(list(pending), num_returns=1)
                    collect(done)
                cause = getattr(error, "cause", None)
                if not isinstance(cause, BaseException):
                    cause = error
                elif isinstance(cause, ray.exceptions.RaySystemError) and (
                    "No module named" in str(cause)
                ):  # the worker could not unpickle train_fn
                    cause.add_note(
                        f"train_fn {getattr(train_fn, '__module__', '?')}."
                        f"{getattr(train_fn, '__qualname__', '?')} must be importable in the "
                        "Ray workers: install its package, or pass ray_runtime_env="
                        "{'env_vars': {'PYTHONPATH': <its folder>}}."
                    )
                raise cause from (None if cause is error else error)
            submit()
    finally:
        for ref in pending:
            try:
                ray.cancel(ref)
            except Exception:  # already finished or gone; nothing left to stop
                pass
    return workers


def shutdown_ray() -> None:
    """Stop the Ray instance started by :func:`train_models` (for tests and benchmarks)."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
