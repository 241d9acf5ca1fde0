"""Audit sweeps: a grid of audits from one spec file, run in parallel on Ray (or in this
process), resumable, with one compliance report over all of them.

A *spec* (TOML ``.toml`` or YAML ``.yaml``/``.yml``) describes the grid::

    name = "dp-vs-fedsgd"          # optional, shown in the reports
    seeds = [0, 1]                  # optional axis, default [0]

    [base]                          # AuditConfig keys shared by every run, plus the
    dataset = "digits"              # execution settings device (default "cpu"), threads
    model = "convnet"               # (torch threads per run, default 1), lpips (default
    model_params = { width = 4 }    # true) and cache_dir (shadow models)
    num_targets = 2

    [[defenses]]                    # axis: each entry is a defense and a params grid
    name = "fedsgd"

    [[defenses]]
    name = "dp-fedavg"
    params = { clip_norm = 1.0, noise_multiplier = [0.1, 1.0] }   # a list is an axis

    [[attacks]]                     # axis: attacks and their params grids
    name = "inverting-gradients"
    params = { iterations = [100, 300] }
    # threat_model = "hbc-server"   # optional, per attack (or in [base])

    [estimator]                     # optional: a table, a name, or a list of them (an axis)
    name = "cp"
    params = { trials = 2000 }

The runs are the cartesian product defenses x their params grids x attacks x their params
grids x estimators x seeds, in that order (grid keys in sorted order). A value that is a
list is an axis; to pass a list as one value, wrap it in another list (``[[1, 2]]``).
Every run is validated when the spec is loaded (names, parameter ranges, AuditConfig
checks); an error names the file, the key and the run. ``defense``, ``attack``,
``*_params`` of the axes and ``seed`` cannot be set in ``[base]``.

Run ids are ``<slug>-<hash>``: a readable, filesystem-safe slug (``[A-Za-z0-9._-]``, at most
80 characters, e.g. ``dp-fedavg_clip_norm-1.0_noise_multiplier-0.1__llg__s0``) and the
first 10 hex digits of the SHA-256 of the run's canonical JSON (its AuditConfig, estimator
and estimator parameters). The same run has the same id whatever the spec's order or
format; the execution settings (device, threads, lpips, cache_dir) are not part of it.

:func:`run_sweep` writes::

    OUT/runs/<id>/report.json, report.html, run.json   one finished run each
    OUT/failed/<id>.txt                                the error of a failed run
    OUT/compliance.json, compliance.html               all finished runs, default policy
    OUT/sweep.json                                     the runs and what this call did

Choices:

* Atomic runs: a worker computes the whole report in memory and returns it; this process
  writes it into ``OUT/runs/.tmp-<id>-<pid>/`` and renames the directory to its final name.
  A crashed or killed run (or sweep) leaves no final directory; leftover ``.tmp-*``
  directories are removed by the next sweep. Because the driver writes, the Ray workers
  need no shared file system (a remote cluster works).
* Resume: a run whose final directory holds a ``report.json`` that loads and validates is
  skipped ("done before"); anything else (never run, failed, killed) runs again. A
  failure is recorded in ``OUT/failed/<id>.txt`` and does not stop the other runs; it is
  removed when a later sweep finishes that run. One sweep at a time per OUT (a lock file,
  ``OUT/.sweep.lock``).
* Ray: a local instance (``ray.init(num_cpus=workers, include_dashboard=False)``, shut down
  at the end) or an existing cluster (``ray_address``; kept); one CPU per run and at most
  ``workers`` runs in flight; torch runs with ``threads`` (default 1) threads in each task,
  so a run's result does not depend on where it ran. Tasks are not retried
  (``max_retries=0``): a crashing run is recorded as failed and retried by the next sweep.
  Ray is imported lazily; without it, ``backend="ray"`` asks to ``pip install
  fedaudit[ray]``. The workers import this module by name: a local Ray started here puts
  the folder holding this process's ``audit`` package first on their ``PYTHONPATH`` (so
  they run the same code, whatever is installed); on a cluster (or a Ray already running)
  fedaudit must be installed on every node, or pass ``ray_runtime_env``.
* Device: ``cpu`` by default, the same in every backend. Ray tasks reserve no GPU (Ray
  hides the GPUs from them), so ``device = "auto"`` means CPU inside Ray workers.
* Shadow models of membership runs are trained serially inside their run (the run is the
  unit of parallelism), cached under ``cache_dir`` (default as ``fedaudit audit``).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import shutil
import sys
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


from audit.config import AuditConfig, read_table_file
from audit.errors import InvalidParameterError, invalid
from audit.validation import check_interval, check_options, check_table_keys

__all__ = [
    "RunInfo",
    "SweepResult",
    "SweepRun",
    "SweepSpec",
    "SweepStatus",
    "load_spec",
    "parse_spec",
    "run_one",
    "run_sweep",
    "sweep_status",
]

_OWNER = "run_sweep"
SPEC_KEYS = ("name", "base", "defenses", "attacks", "seeds", "estimator")
#: set by the axes, not in [base]
AXIS_KEYS = ("defense", "defense_params", "attack", "attack_params", "seed")
#: execution settings allowed in [base] (not part of the run id)
SETTING_KEYS = ("device", "threads", "lpips", "cache_dir")
DEFAULT_SETTINGS: dict[str, Any] = {"device": "cpu", "threads": 1, "lpips": True, "cache_dir": None}
RUNS_DIR, FAILED_DIR = "runs", "failed"
#: the parameters each estimator takes (as audit.privacy_audit.privacy_finding checks them
#: when the run starts; checked here too so that a typo fails before any run)
ESTIMATOR_PARAMS = {"cp": ("trials",), "one-run": ("canaries",), "one-shot": ("canaries", "dim"),
                    "one-run-input": ("canaries", "rounds")}
SLUG_MAX = 80
HASH_LEN = 10


# -- the spec -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepRun:
    """One audit of a sweep."""

    id: str
    slug: str
    config: AuditConfig
    estimator: str | None = None
    estimator_params: dict[str, Any] = field(default_factory=dict)
    #: where it comes from in the spec, e.g. ``defenses[1] x attacks[0] x seeds[2]``
    origin: str = ""

    def payload(self) -> dict[str, Any]:
        """JSON-ready form (what a worker receives and ``run.json`` records)."""
        return {"id": self.id, "slug": self.slug, "config": self.config.to_dict(),
                "estimator": self.estimator, "estimator_params": dict(self.estimator_params)}


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: its runs, in grid order, and the execution settings."""

    source: str
    name: str
    runs: tuple[SweepRun, ...]
    settings: dict[str, Any]

    def __len__(self) -> int:
        return len(self.runs)


def _spec_error(source: str, key: str, constraint: str, value: Any) -> InvalidParameterError:
    return InvalidParameterError(
        f"The {key!r} key of sweep spec {source!r} must be {constraint}. Got {value!r} instead.")


def load_spec(path: str | os.PathLike) -> SweepSpec:
    """Read and validate a sweep spec file (``.toml``, ``.yaml`` or ``.yml``).

    Raises:
        InvalidParameterError: A missing file, another suffix, a file that does not parse,
            an unknown or ill-typed key, or a run that fails validation; the one-line
            message names the file and the key (and the run).
    """
    p = Path(path)
    data = read_table_file(p, "Sweep spec")
    return parse_spec(data, source=str(p))


def _grid(params: Any, source: str, key: str) -> list[dict[str, Any]]:
    """A params table whose list values are axes -> the list of its points (sorted keys)."""
    if params is None:
        return [{}]
    if not isinstance(params, Mapping):
        raise _spec_error(source, key, "a table of name = value (a list of values is an axis)", params)
    names, axes = [], []
    for name in sorted(params):
        if not isinstance(name, str) or not name:
            raise _spec_error(source, key, "a table with non-empty string keys", params)
        value = params[name]
        if isinstance(value, list):
            if not value:
                raise _spec_error(source, f"{key}.{name}", "a value or a non-empty list of values", value)
            values = value
        else:
            values = [value]
        names.append(name)
        axes.append(values)
    return [dict(zip(names, point)) for point in itertools.product(*axes)]


def _entries(data: Mapping, source: str, key: str, *, required: bool,
             extra: tuple[str, ...] = ()) -> list[tuple[str, str, Any, dict]]:
    """An axis of named entries -> ``[(where, name, extra values, params grid point)]``."""
    raw = data.get(key)
    if raw is None:
        if required:
            raise _spec_error(source, key, "a non-empty list of tables with a 'name' (and 'params')",
                              None)
        return []
    if isinstance(raw, (str, Mapping)):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise _spec_error(source, key, "a non-empty list of tables with a 'name' (and 'params')", raw)
    out = []
    allowed = ("name", "params", *extra)
    for i, entry in enumerate(raw):
        where = f"{key}[{i}]"
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, Mapping):
            raise _spec_error(source, where, "a table with a 'name' (and 'params') or a name", entry)
        check_table_keys(entry, allowed, f"sweep spec {source!r}", prefix=f"{where}.")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise _spec_error(source, f"{where}.name", "a non-empty str", name)
        more = {k: entry[k] for k in extra if k in entry}
        for point in _grid(entry.get("params"), source, f"{where}.params"):
            out.append((where, name, more, point))
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text)


def _slug(config: AuditConfig, estimator: str | None, est_params: Mapping[str, Any]) -> str:
    def part(name: str, params: Mapping[str, Any]) -> str:
        return "_".join([name, *(f"{k}-{_fmt(v)}" for k, v in sorted(params.items()))])

    parts = [part(config.defense, config.defense_params), part(config.attack, config.attack_params)]
    if config.threat_model:
        parts.append(config.threat_model)
    if estimator:
        parts.append(part(estimator, est_params))
    tail = f"__s{config.seed}"  # kept whole when the rest is cut to SLUG_MAX
    body = re.sub(r"-{2,}", "-", _safe("__".join(parts))).strip("._-")[:SLUG_MAX - len(tail)]
    return (body.rstrip("._-") or "run") + tail


def run_key(config: AuditConfig, estimator: str | None, est_params: Mapping[str, Any]) -> str:
    """The canonical JSON that a run's id hashes (sorted keys, compact)."""
    return json.dumps({"config": config.to_dict(), "estimator": estimator,
                       "estimator_params": dict(est_params)},
                      sort_keys=True, separators=(",", ":"), default=repr)


def run_id(config: AuditConfig, estimator: str | None = None,
           est_params: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """``(id, slug)`` of a run: ``<slug>-<first 10 hex of sha256(run_key)>``."""
    est_params = est_params or {}
    digest = hashlib.sha256(run_key(config, estimator, est_params).encode()).hexdigest()[:HASH_LEN]
    slug = _slug(config, estimator, est_params)
    return f"{slug}-{digest}", slug


def _settings(base: Mapping[str, Any], source: str) -> dict[str, Any]:
    from audit.device import DEVICE_CHOICES

    s = {**DEFAULT_SETTINGS, **{k: base[k] for k in SETTING_KEYS if k in base}}
    if s["device"] not in DEVICE_CHOICES:
        raise _spec_error(source, "base.device", "one of " + ", ".join(map(repr, DEVICE_CHOICES)),
                          s["device"])
    if isinstance(s["threads"], bool) or not isinstance(s["threads"], int) or s["threads"] < 1:
        raise _spec_error(source, "base.threads", "an int >= 1", s["threads"])
    if not isinstance(s["lpips"], bool):
        raise _spec_error(source, "base.lpips", "true or false", s["lpips"])
    if s["cache_dir"] is not None and (not isinstance(s["cache_dir"], str) or not s["cache_dir"]):
        raise _spec_error(source, "base.cache_dir", "a directory path", s["cache_dir"])
    return s


def parse_spec(data: Any, *, source: str = "<dict>") -> SweepSpec:
    """Validate a spec already read into a dict (see the module docstring) and expand it."""
    from audit.harness import validate
    from audit.privacy_audit import ESTIMATOR_CHOICES

    check_table_keys(data, SPEC_KEYS, f"sweep spec {source!r}")
    name = data.get("name", Path(source).stem if source != "<dict>" else "sweep")
    if not isinstance(name, str) or not name:
        raise _spec_error(source, "name", "a non-empty str", name)
    base = data.get("base", {}) or {}
    if not isinstance(base, Mapping):
        raise _spec_error(source, "base", "a table of AuditConfig settings", base)
    config_keys = tuple(f.name for f in fields(AuditConfig))
    for key in base:
        if key in AXIS_KEYS:
            axis = {"seed": "seeds"}.get(key, "defenses" if key.startswith("defense") else "attacks")
            raise InvalidParameterError(
                f"The {f'base.{key}'!r} key of sweep spec {source!r} is set by the {axis!r} axis; "
                f"move it there.")
        if key not in config_keys and key not in SETTING_KEYS:
            valid = [k for k in config_keys if k not in AXIS_KEYS] + list(SETTING_KEYS)
            raise InvalidParameterError(
                f"Unknown key {f'base.{key}'!r} in sweep spec {source!r}; valid keys are: "
                + ", ".join(valid) + ".")
    settings = _settings(base, source)
    base_config = {k: v for k, v in base.items() if k in config_keys}
    from audit.datasets import DATASETS
    from audit.models import MODELS

    for key, registry in (("dataset", DATASETS), ("model", MODELS)):
        try:
            registry.get(base_config.get(key, getattr(AuditConfig, key)))
        except InvalidParameterError as exc:
            raise InvalidParameterError(
                f"The {f'base.{key}'!r} key of sweep spec {source!r} is not valid: {exc}") from None

    seeds = data.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if (not isinstance(seeds, list) or not seeds
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds)):
        raise _spec_error(source, "seeds", "a non-empty list of ints >= 0", seeds)
    if len(set(seeds)) != len(seeds):
        raise _spec_error(source, "seeds", "a list without repeats", seeds)

    defenses = _entries(data, source, "defenses", required=True)
    attacks = _entries(data, source, "attacks", required=True, extra=("threat_model",))
    estimators = _entries(data, source, "estimator", required=False) or [("", None, {}, {})]
    for where, est, _, eparams in estimators:
        if est is not None and est not in ESTIMATOR_CHOICES:
            raise _spec_error(source, f"{where}.name", "one of " + ", ".join(map(repr, ESTIMATOR_CHOICES)),
                              est)
        known = ESTIMATOR_PARAMS.get(est or "")
        for key, value in eparams.items():
            if known is not None and key not in known:
                raise InvalidParameterError(
                    f"Unknown key {f'{where}.params.{key}'!r} in sweep spec {source!r}; estimator "
                    f"{est!r} takes: " + ", ".join(known) + ".")
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _spec_error(source, f"{where}.params.{key}", "an int >= 1", value)

    runs: list[SweepRun] = []
    seen: dict[str, str] = {}
    for (dw, dname, _, dparams), (aw, aname, aextra, aparams), (ew, est, _, eparams), (si, seed) in (
            itertools.product(defenses, attacks, estimators, enumerate(seeds))):
        origin = " x ".join(w for w in (_at(dw, dparams), _at(aw, aparams), _at(ew, eparams),
                                        f"seeds[{si}]") if w)
        label = f"run {origin} ({dname}, {aname}, seed {seed})"
        settings_ = {**base_config, "defense": dname, "defense_params": dict(dparams),
                     "attack": aname, "attack_params": dict(aparams), "seed": seed}
        if "threat_model" in aextra:
            settings_["threat_model"] = aextra["threat_model"]
        try:
            config = AuditConfig(**settings_)
            validate(config)
        except InvalidParameterError as exc:
            raise InvalidParameterError(f"Sweep spec {source!r}, {label}: {exc}") from None
        except TypeError as exc:  # a config value of a type the constructors cannot take
            raise InvalidParameterError(f"Sweep spec {source!r}, {label}: {exc}") from None
        rid, slug = run_id(config, est, eparams)
        if rid in seen:
            raise InvalidParameterError(
                f"Sweep spec {source!r} gives the same run twice: {seen[rid]} and {origin} "
                f"(id {rid}); remove one.")
        seen[rid] = origin
        runs.append(SweepRun(rid, slug, config, est, dict(eparams), origin))
    return SweepSpec(source=source, name=name, runs=tuple(runs), settings=settings)


def _at(where: str, params: Mapping[str, Any]) -> str:
    """``defenses[1](noise_multiplier=0.1)``: an axis entry and its grid point."""
    if not where or not params:
        return where
    return f"{where}(" + ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(params.items())) + ")"


def _as_spec(spec: SweepSpec | str | os.PathLike) -> SweepSpec:
    if isinstance(spec, SweepSpec):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        return load_spec(spec)
    raise invalid("spec", _OWNER, "a SweepSpec or the path of a spec file", spec)


# -- one run (in a worker) ------------------------------------------------------------------------


def run_one(run: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """Run one audit of a sweep and return ``{"report", "threads", "pid", "seconds"}``.

    ``run`` is :meth:`SweepRun.payload`, ``settings`` the spec's execution settings. Top
    level and JSON in, JSON out, so that Ray workers import it by name. Torch runs with
    ``settings["threads"]`` threads (restored afterwards).
    """
    import torch

    from audit.cli import canonical_command, default_cache_dir
    from audit.device import describe_device, resolve_device
    from audit.environment import environment_info
    from audit.harness import run_audit_findings
    from audit.membership_audit import TrainingBackend
    from audit.report_assembly import assemble_report

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
            from audit.lpips_metric import LpipsScorer

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
            from audit.privacy_audit import NOT_A_PROOF

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


# -- the output directory -------------------------------------------------------------------------


def _run_dir(out: Path, rid: str) -> Path:
    return out / RUNS_DIR / rid


def _finished(out: Path, rid: str) -> bool:
    """Whether the run's final directory holds a report.json that loads and validates."""
    from reports.io import load_report

    path = _run_dir(out, rid) / "report.json"
    if not path.is_file():
        return False
    try:
        load_report(path)
    except InvalidParameterError:
        return False
    return True


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_run(out: Path, run: SweepRun, result: Mapping[str, Any], meta: Mapping[str, Any]) -> Path:
    """Write the run's directory atomically: into a temporary directory, then renamed."""
    from audit.report_assembly import write_report
    from reports.io import write_json_atomic

    final = _run_dir(out, run.id)
    tmp = final.parent / f".tmp-{run.id}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        write_report(tmp, result["report"])
        write_json_atomic(tmp / "run.json", {**run.payload(), "origin": run.origin, **meta})
        _fsync_dir(tmp)
        if final.exists():  # a directory without a valid report: replaced
            stale = final.parent / f".stale-{run.id}-{os.getpid()}"
            os.rename(final, stale)
            os.rename(tmp, final)
            shutil.rmtree(stale, ignore_errors=True)
        else:
            os.rename(tmp, final)
        _fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _write_failure(out: Path, run: SweepRun, message: str, details: str) -> None:
    from reports.io import write_text_atomic

    (out / FAILED_DIR).mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / FAILED_DIR / f"{run.id}.txt",
                      f"{message}\n\nrun {run.id} ({run.origin})\n"
                      f"{json.dumps(run.payload(), sort_keys=True, indent=2, default=repr)}\n\n{details}\n")


def _clear_failure(out: Path, rid: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (out / FAILED_DIR / f"{rid}.txt").unlink()


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold ``OUT/.sweep.lock`` (one sweep per directory) and tidy leftovers of killed runs."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        fcntl = None
    fd = os.open(out / ".sweep.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise InvalidParameterError(
                    f"Another sweep is running in {str(out)!r} (it holds {str(out / '.sweep.lock')!r}): "
                    "wait for it to finish or choose another output directory.") from None
        runs = out / RUNS_DIR
        if runs.is_dir():
            for leftover in runs.iterdir():
                if leftover.name.startswith((".tmp-", ".stale-")):
                    shutil.rmtree(leftover, ignore_errors=True)
        yield
    finally:
        os.close(fd)  # releases the lock


# -- status and result ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepStatus:
    """Which runs of a spec are finished in an output directory."""

    done: tuple[str, ...]
    pending: tuple[str, ...]
    #: the pending runs that failed last time: id -> the first line of the error
    failed: dict[str, str]

    @property
    def total(self) -> int:
        return len(self.done) + len(self.pending)


def _first_line(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").splitlines()[0]
    except (OSError, IndexError, UnicodeDecodeError):
        return "failed"


def sweep_status(spec: SweepSpec | str | os.PathLike, out_dir: str | os.PathLike) -> SweepStatus:
    """Done and pending runs of ``spec`` in ``out_dir`` (in grid order), and the failures."""
    spec = _as_spec(spec)
    out = Path(out_dir)
    done, pending, failed = [], [], {}
    for run in spec.runs:
        if _finished(out, run.id):
            done.append(run.id)
        else:
            pending.append(run.id)
            note = out / FAILED_DIR / f"{run.id}.txt"
            if note.is_file():
                failed[run.id] = _first_line(note)
    return SweepStatus(tuple(done), tuple(pending), failed)


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


# -- the sweep ------------------------------------------------------------------------------------


def _import_ray():
    try:
        import ray
    except ImportError:
        raise InvalidParameterError(
            "The 'backend' parameter of run_sweep is 'ray' but Ray is not installed: "
            "pip install 'fedaudit[ray]' (or use backend 'serial').") from None
    return ray


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


def _run_on_ray(ray, todo: Sequence[SweepRun], settings: Mapping[str, Any], finished, failure, *,
                workers: int | None, ray_address: str | None,
                runtime_env: Mapping[str, Any] | None) -> tuple[int, float | None]:
    """Run ``todo`` as Ray tasks, at most ``workers`` in flight; ``(workers, ray.init seconds)``."""
    started_here = False
    init_s = None
    if not ray.is_initialized():
        t = time.perf_counter()
        if ray_address is None:
            # the workers import this module by name: from the same checkout as this process
            root = str(Path(__file__).resolve().parent.parent)
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


def _write_compliance(out: Path, spec: SweepSpec, backend: str) -> tuple[tuple[Path, Path] | None, str | None]:
    """``OUT/compliance.{json,html}`` over the finished runs of ``spec`` (default policy)."""
    import shlex

    from audit.policy import load_policy
    from reports.compliance import build_compliance, load_run
    from reports.compliance_render import compliance_html
    from reports.io import write_json_atomic, write_text_atomic

    dirs = [_run_dir(out, r.id) for r in spec.runs if _finished(out, r.id)]
    if not dirs:
        return None, None
    runs = [load_run(d) for d in dirs]
    command = shlex.join(["fedaudit", "sweep", spec.source, "--out", str(out), "--backend", backend])
    report = build_compliance(runs, policy=load_policy(None),
                              policy_source="default policy (audit/policies/default.toml)",
                              command=command)
    images = {f["id"]: f["images"] for r in runs for f in r["report"]["findings"] if f.get("images")}
    json_path, html_path = out / "compliance.json", out / "compliance.html"
    write_json_atomic(json_path, report)
    write_text_atomic(html_path, compliance_html(report, images))
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
    """``python -m audit.sweep SPEC OUT [serial|ray]`` (until ``fedaudit sweep`` exists)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (2, 3):
        print("usage: python -m audit.sweep SPEC OUT [ray|serial]", file=sys.stderr)
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
