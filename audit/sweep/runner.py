"""Audit sweeps: a grid of audits from one spec file, run in parallel on Ray (or in this
process), resumable, with one compliance report over all of them.

:func:`run_sweep` reads the spec (:mod:`audit.sweep.spec`, run ids in
:mod:`audit.sweep.run_ids`), skips the runs already finished in the output directory
(:mod:`audit.sweep.run_store`, which describes its layout), runs the others one after
another in this process or on Ray (:mod:`audit.sweep.ray_backend`), each with
:func:`audit.sweep.worker.run_one`, and writes ``OUT/compliance.{json,html}`` over all
finished runs (with their privacy-utility frontier, ``OUT/frontier.{json,md}`` and
``OUT/frontier_<defense>.png``: :mod:`reports.frontier_render`) and ``OUT/sweep.json``.
:func:`audit.sweep.status.sweep_status` tells which runs are done without running any.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.core.errors import InvalidParameterError, invalid
from audit.core.validation import check_interval, check_options
from audit.sweep.ray_backend import _import_ray, _run_on_ray
from audit.sweep.run_store import (RUNS_DIR, _clear_failure, _finished, _locked, _run_dir,
                                   _write_failure, _write_run)
from audit.sweep.spec import _OWNER, SweepRun, SweepSpec, _as_spec
from audit.sweep.worker import run_one

__all__ = ["RunInfo", "SweepResult", "run_sweep"]


@dataclass(frozen=True)
class RunInfo:
    """How one run of this call went: wall seconds in the worker, torch threads, process."""

    seconds: float
    threads: int
    pid: int


@dataclass(frozen=True)
class SweepResult:
    """What :func:`run_sweep` did."""

    out_dir: Path
    runs: tuple[SweepRun, ...]
    #: finished by this call (grid order)
    done: tuple[str, ...]
    #: skipped: finished by an earlier call
    done_before: tuple[str, ...]
    #: failed in this call: id -> the error's first line (details in OUT/failed/<id>.txt)
    failed: dict[str, str]
    backend: str
    workers: int
    threads_per_worker: int
    seconds: float
    #: seconds ``ray.init`` took (None: no Ray started by this call)
    ray_init_s: float | None
    run_info: dict[str, RunInfo]
    #: compliance.json and compliance.html (None when no run is finished)
    compliance: tuple[Path, Path] | None
    compliance_status: str | None

    @property
    def run_dirs(self) -> list[Path]:
        """The final directories of every finished run, in grid order."""
        finished = set(self.done) | set(self.done_before)
        return [_run_dir(self.out_dir, r.id) for r in self.runs if r.id in finished]

    def summary(self) -> str:
        """One line for the command line."""
        line = (f"{len(self.done)} run(s) done, {len(self.done_before)} done before, "
                f"{len(self.failed)} failed of {len(self.runs)} ({self.backend}, {self.workers} "
                f"worker(s), {self.threads_per_worker} torch thread(s) each, {self.seconds:.1f} s)")
        if self.compliance:
            line += f"; {self.compliance_status}: wrote {self.compliance[0]} and {self.compliance[1]}"
        return line


def run_sweep(
    spec: SweepSpec | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    backend: str = "ray",
    ray_address: str | None = None,
    workers: int | None = None,
    progress: bool = True,
    ray_runtime_env: Mapping[str, Any] | None = None,
) -> SweepResult:
    """Run every unfinished run of ``spec`` and write the combined compliance report.

    Args:
        spec: A :class:`SweepSpec` or the path of a spec file.
        out_dir: The sweep's output directory (created; reused to resume).
        backend: ``"ray"`` (a local Ray, or the cluster at ``ray_address``) or
            ``"serial"`` (one run after another in this process).
        ray_address: Join this Ray cluster instead of starting a local instance.
        workers: Runs in flight at once (Ray); default the CPU count (of the cluster
            with ``ray_address``). A local Ray is started with this many CPUs.
        progress: A progress bar over the runs (stderr).
        ray_runtime_env: Passed to each Ray task (e.g. ``{"env_vars": {"PYTHONPATH": ...}}``).

    Returns:
        A :class:`SweepResult`. A run that fails is recorded in ``OUT/failed/<id>.txt``
        and in ``result.failed``; the others go on. KeyboardInterrupt stops the sweep
        (finished runs stay; a rerun resumes).
    """
    backend = check_options("backend", _OWNER, backend, ("ray", "serial"))
    if workers is not None:
        workers = check_interval("workers", _OWNER, workers, kind=int, low=1)
    if ray_address is not None and (not isinstance(ray_address, str) or not ray_address):
        raise invalid("ray_address", _OWNER, "a Ray address (host:port, ray://..., auto) or None",
                      ray_address)
    if ray_runtime_env is not None and not isinstance(ray_runtime_env, Mapping):
        raise invalid("ray_runtime_env", _OWNER, "a dict or None", ray_runtime_env)
    ray = _import_ray() if backend == "ray" else None
    spec = _as_spec(spec)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise invalid("out_dir", _OWNER, "a directory", str(out))
    out.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    with _locked(out):
        done_before = [r.id for r in spec.runs if _finished(out, r.id)]
        todo = [r for r in spec.runs if r.id not in set(done_before)]
        done: list[str] = []
        failed: dict[str, str] = {}
        info: dict[str, RunInfo] = {}
        settings = dict(spec.settings)

        from tqdm.auto import tqdm

        bar = tqdm(total=len(spec.runs), initial=len(done_before), desc=f"sweep {spec.name}",
                   unit="run", disable=not progress)

        def finished(run: SweepRun, result: Mapping[str, Any], where: str) -> None:
            meta = {"sweep": spec.name, "spec": spec.source, "backend": where,
                    "threads": result["threads"], "seconds": result["seconds"]}
            _write_run(out, run, result, meta)
            _clear_failure(out, run.id)
            done.append(run.id)
            info[run.id] = RunInfo(result["seconds"], result["threads"], result["pid"])
            bar.update(1)

        def failure(run: SweepRun, exc: BaseException, details: str) -> None:
            message = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
            _write_failure(out, run, message, details)
            failed[run.id] = message
            bar.update(1)
            bar.set_postfix(failed=len(failed))

        ray_init_s = None
        try:
            if backend == "ray" and not todo:  # nothing to run: no Ray to start
                used_workers = workers or os.cpu_count() or 1
            elif backend == "serial":
                used_workers = 1
                for run in todo:
                    try:
                        result = run_one(run.payload(), settings)
                    except Exception as exc:  # one run's failure does not stop the sweep
                        failure(run, exc, traceback.format_exc())
                    else:
                        finished(run, result, "serial")
            else:
                used_workers, ray_init_s = _run_on_ray(
                    ray, todo, settings, finished, failure, workers=workers,
                    ray_address=ray_address, runtime_env=ray_runtime_env)
        finally:
            bar.close()

        order = {r.id: i for i, r in enumerate(spec.runs)}  # grid order, whatever finished first
        done.sort(key=order.__getitem__)
        failed = dict(sorted(failed.items(), key=lambda item: order[item[0]]))
        compliance, status = _write_compliance(out, spec, backend)
        result = SweepResult(
            out_dir=out, runs=spec.runs, done=tuple(done), done_before=tuple(done_before),
            failed=failed, backend=backend, workers=used_workers,
            threads_per_worker=int(settings["threads"]), seconds=time.perf_counter() - start,
            ray_init_s=ray_init_s, run_info=info, compliance=compliance, compliance_status=status,
        )
        _write_manifest(out, spec, result)
    return result


def _write_compliance(out: Path, spec: SweepSpec, backend: str) -> tuple[tuple[Path, Path] | None, str | None]:
    """``OUT/compliance.{json,html}`` over the finished runs of ``spec`` (default policy), and
    their privacy-utility frontier (``OUT/frontier.{json,md}``, ``OUT/frontier_<defense>.png``,
    a section of the HTML page)."""
    import shlex

    from audit.compliance.policy import load_policy
    from audit.compliance.compliance_report import build_compliance, load_run
    from reports.compliance_render import compliance_html
    from reports.frontier_render import write_frontier
    from reports.io import write_json_atomic, write_text_atomic

    dirs = [_run_dir(out, r.id) for r in spec.runs if _finished(out, r.id)]
    if not dirs:
        return None, None
    runs = [load_run(d) for d in dirs]
    command = shlex.join(["fedaudit", "sweep", spec.source, "--out", str(out), "--backend", backend])
    report = build_compliance(runs, policy=load_policy(None),
                              policy_source="default policy (audit/compliance/policies/default.toml)",
                              command=command)
    images = {f["id"]: f["images"] for r in runs for f in r["report"]["findings"] if f.get("images")}
    json_path, html_path = out / "compliance.json", out / "compliance.html"
    write_json_atomic(json_path, report)
    frontier = write_frontier(out, [r["report"] for r in runs], runs=[f"{RUNS_DIR}/{d.name}" for d in dirs])
    write_text_atomic(html_path, compliance_html(report, images, frontier))
    return (json_path, html_path), report["verdict"]["status"]


def _write_manifest(out: Path, spec: SweepSpec, result: SweepResult) -> None:
    from reports.io import write_json_atomic

    finished = set(result.done) | set(result.done_before)
    write_json_atomic(out / "sweep.json", {
        "name": spec.name, "spec": spec.source, "settings": spec.settings,
        "runs": [{"id": r.id, "origin": r.origin,
                  "status": "done" if r.id in finished else ("failed" if r.id in result.failed
                                                             else "pending"),
                  "dir": str(Path(RUNS_DIR) / r.id), **r.payload()} for r in spec.runs],
        "last_call": {"backend": result.backend, "workers": result.workers,
                      "threads_per_worker": result.threads_per_worker, "seconds": result.seconds,
                      "done": list(result.done), "done_before": list(result.done_before),
                      "failed": result.failed, "compliance": result.compliance_status},
    })


def main(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - thin wrapper
    """``python -m audit.sweep.runner SPEC OUT [serial|ray]`` (until ``fedaudit sweep`` exists)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (2, 3):
        print("usage: python -m audit.sweep.runner SPEC OUT [ray|serial]", file=sys.stderr)
        sys.exit(2)
    try:
        result = run_sweep(args[0], args[1], backend=args[2] if len(args) == 3 else "ray",
                           progress=sys.stderr.isatty())
    except InvalidParameterError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(result.summary())
    sys.exit(1 if result.failed else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
