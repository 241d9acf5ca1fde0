"""Sweep specs: the grid of audits a sweep runs, read from one file and validated.

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
``*_params`` of the axes and ``seed`` cannot be set in ``[base]``. Each run gets an id
(:mod:`audit.sweep.run_ids`).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from audit.core.config import AuditConfig, read_table_file
from audit.core.errors import InvalidParameterError, invalid
from audit.core.validation import check_table_keys
from audit.sweep.run_ids import _fmt, run_id

__all__ = ["SweepRun", "SweepSpec", "load_spec", "parse_spec"]

#: the function named in errors about its parameters
_OWNER = "run_sweep"
SPEC_KEYS = ("name", "base", "defenses", "attacks", "seeds", "estimator")
#: set by the axes, not in [base]
AXIS_KEYS = ("defense", "defense_params", "attack", "attack_params", "seed")
#: execution settings allowed in [base] (not part of the run id)
SETTING_KEYS = ("device", "threads", "lpips", "cache_dir")
DEFAULT_SETTINGS: dict[str, Any] = {"device": "cpu", "threads": 1, "lpips": True, "cache_dir": None}
#: the parameters each estimator takes (as audit.privacy.auditing.defense_audit.privacy_finding checks them
#: when the run starts; checked here too so that a typo fails before any run)
ESTIMATOR_PARAMS = {"cp": ("trials",), "one-run": ("canaries",), "one-shot": ("canaries", "dim"),
                    "one-run-input": ("canaries", "rounds")}


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


def _settings(base: Mapping[str, Any], source: str) -> dict[str, Any]:
    from audit.core.device import DEVICE_CHOICES

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
    from audit.privacy.auditing.defense_audit import ESTIMATOR_CHOICES

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
    from audit.data.registry import DATASETS
    from audit.models.registry import MODELS

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
