"""Typed audit configuration, parsed once at the CLI (no untyped config passed downward).

``--config FILE`` takes TOML (``.toml``) or YAML (``.yaml``/``.yml``) with the keys of
:class:`AuditConfig` plus ``device``, ``threads`` and ``out``; an unknown key is an error
naming it.
"""

from __future__ import annotations

import shlex

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from audit.core.errors import InvalidParameterError, invalid
from audit.core.validation import check_interval, check_options, check_table_keys

RUN_KEYS = ("device", "threads", "out")
CLIENT_SPLITS = ("sequential", "iid", "dirichlet", "column")
#: how the federation is simulated (:func:`audit.fl.vectorised_clients.simulate`)
SIMULATIONS = ("auto", "vectorised", "loop")
#: how a round's clients are drawn (:attr:`audit.core.defense.FederationSchedule.sampling`)
CLIENT_SAMPLINGS = ("fixed", "poisson")


@dataclass(frozen=True)
class AuditConfig:
    """One audit: a defense run on embedded data and one attack on what it lets out."""

    defense: str = "fedsgd"
    defense_params: dict[str, Any] = field(default_factory=dict)
    attack: str = "inverting-gradients"
    attack_params: dict[str, Any] = field(default_factory=dict)
    dataset: str = "natural-32"
    dataset_params: dict[str, Any] = field(default_factory=dict)
    model: str = "convnet"
    model_params: dict[str, Any] = field(default_factory=dict)
    threat_model: str | None = None
    batch_size: int = 1
    num_targets: int = 8
    clients_per_round: int | None = None
    rounds: int = 1
    pretrain_steps: int = 0
    seed: int = 0
    #: membership attacks: candidates and population sizes (None: 40% / 20% of the data)
    num_candidates: int | None = None
    num_population: int | None = None
    #: the broadcast weights of the model, a ``.safetensors`` file (None: random init)
    weights: str | None = None
    #: the clients' local training as they really run it (keys of
    #: :data:`audit.core.updates.LOCAL_TRAINING_KEYS`), over the defense's defaults
    local_training: dict[str, Any] = field(default_factory=dict)
    #: which items each client holds: "sequential" (client k: items k*batch_size ...), "iid",
    #: "dirichlet" (by label, ``client_split_alpha``) or "column" (the data's client column);
    #: each client then holds the first ``batch_size`` items of its part
    client_split: str = "sequential"
    client_split_alpha: float | None = None
    #: "auto" (clients batched with torch.func.vmap when the defense and training allow it,
    #: else one after another), "vectorised" or "loop"; the report says which ran and why
    simulation: str = "auto"
    #: how each round's ``clients_per_round`` are drawn: "fixed" (exactly that many, without
    #: replacement) or "poisson" (each client at rate clients_per_round / clients, as
    #: DP-FedAvg's accountant assumes; vectorised path only)
    client_sampling: str = "fixed"

    def __post_init__(self) -> None:
        owner = "the audit"
        for name in ("defense", "attack", "dataset", "model"):
            if not isinstance(getattr(self, name), str):
                raise invalid(name, owner, "a str", getattr(self, name))
        if self.weights is not None and not isinstance(self.weights, str):
            raise invalid("weights", owner, "a path to a .safetensors file", self.weights)
        for name in ("defense_params", "attack_params", "dataset_params", "model_params", "local_training"):
            if not isinstance(getattr(self, name), dict):
                raise invalid(name, owner, "a table of key = value", getattr(self, name))
        check_interval("batch_size", owner, self.batch_size, kind=int, low=1)
        check_options("client_split", owner, self.client_split, CLIENT_SPLITS)
        check_options("simulation", owner, self.simulation, SIMULATIONS)
        check_options("client_sampling", owner, self.client_sampling, CLIENT_SAMPLINGS)
        if self.client_sampling == "poisson" and self.simulation == "loop":
            raise invalid("client_sampling", owner, "'fixed' with simulation 'loop' (the loop draws "
                          "fixed-size cohorts; Poisson sampling runs vectorised)", self.client_sampling)
        if self.client_split_alpha is not None:
            if self.client_split != "dirichlet":
                raise invalid("client_split_alpha", owner, "None unless client_split is 'dirichlet'",
                              self.client_split_alpha)
            check_interval("client_split_alpha", owner, self.client_split_alpha, low=0, closed="right")
        elif self.client_split == "dirichlet":
            raise invalid("client_split_alpha", owner, "a float > 0 with client_split 'dirichlet'", None)
        check_interval("num_targets", owner, self.num_targets, kind=int, low=1)
        if self.clients_per_round is not None:
            check_interval(
                "clients_per_round", owner, self.clients_per_round, kind=int, low=1,
                high=self.num_targets,
            )
        check_interval("rounds", owner, self.rounds, kind=int, low=1)
        check_interval("pretrain_steps", owner, self.pretrain_steps, kind=int, low=0)
        check_interval("seed", owner, self.seed, kind=int, low=0)
        if self.num_candidates is not None:
            check_interval("num_candidates", owner, self.num_candidates, kind=int, low=4)
        if self.num_population is not None:
            check_interval("num_population", owner, self.num_population, kind=int, low=0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


CONFIG_KEYS = tuple(f.name for f in fields(AuditConfig)) + RUN_KEYS


def parse_value(text: str) -> Any:
    """A ``k=v`` value from the command line: int, float, bool, none, or string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_pairs(pairs: tuple[str, ...] | list[str], option: str) -> dict[str, Any]:
    """``("k=v", ...)`` -> ``{"k": v}``; a pair without ``=`` is an error naming it."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair or not pair.split("=", 1)[0].strip():
            raise InvalidParameterError(
                f"The {option!r} option must be given as key=value. Got {pair!r} instead."
            )
        key, value = pair.split("=", 1)
        out[key.strip()] = parse_value(value.strip())
    return out


def read_table_file(path: str | Path, what: str) -> Any:
    """The parsed contents of a ``.toml``, ``.yaml`` or ``.yml`` file (an empty YAML file is
    ``{}``); ``what`` names it in errors (e.g. "Config file"): missing file, other suffix,
    a file that does not parse."""
    p = Path(path)
    if not p.is_file():
        raise InvalidParameterError(f"{what} {str(p)!r} does not exist or is not a file.")
    suffix = p.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise InvalidParameterError(
            f"{what} {str(p)!r} must end in .toml, .yaml or .yml. Got {p.suffix or 'no suffix'!r} instead.")
    try:
        text = p.read_text(encoding="utf-8")
        data = tomllib.loads(text) if suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidParameterError(f"{what} {str(p)!r} is not valid: {first}") from None
    return {} if data is None else data


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML or YAML config file into a dict of known keys."""
    p = Path(path)
    data = read_table_file(p, "Config file")
    check_table_keys(data, CONFIG_KEYS, f"config file {str(p)!r}")
    return data


def canonical_command(config: AuditConfig, *, threads: int, estimator: str | None = None,
                      estimator_params: dict[str, Any] | None = None) -> str:
    """The ``fedaudit audit`` command that reproduces ``config`` (deterministic)."""
    parts = ["fedaudit", "audit"]
    for kind in ("defense", "attack", "dataset", "model"):
        parts += [f"--{kind}", getattr(config, kind)]
        for k, v in sorted(getattr(config, f"{kind}_params").items()):
            parts += [f"--{kind}-param", f"{k}={v}"]
    if config.threat_model:
        parts += ["--threat-model", config.threat_model]
    if config.weights:
        parts += ["--weights", config.weights]
    for k, v in sorted(config.local_training.items()):
        parts += ["--local-training", f"{k}={v}"]
    if config.client_split != "sequential":
        parts += ["--client-split", config.client_split]
    if config.simulation != "auto":
        parts += ["--simulation", config.simulation]
    if config.client_sampling != "fixed":
        parts += ["--client-sampling", config.client_sampling]
    for key in ("batch_size", "num_targets", "clients_per_round", "rounds", "pretrain_steps", "seed",
                "num_candidates", "num_population", "client_split_alpha"):
        value = getattr(config, key)
        if value is not None:
            parts += [f"--{key.replace('_', '-')}", str(value)]
    if estimator:
        parts += ["--estimator", estimator]
        for k, v in sorted((estimator_params or {}).items()):
            parts += ["--estimator-param", f"{k}={v}"]
    parts += ["--threads", str(threads), "--out", "OUT"]
    return shlex.join(parts)
