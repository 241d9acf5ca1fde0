"""Compliance policies: thresholds a user sets in a file, judged against audit reports.

A policy is a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file of flat ``key = value``
rules, every one optional; a policy lists the ones it wants (``../shared/specs/auditing.md``,
"Reports and compliance"). :func:`load_policy` reads and validates it (an unknown key, a
value of the wrong type or out of range is an :class:`~audit.core.errors.InvalidParameterError`
naming the key, the value and the file); ``load_policy(None)`` gives the default policy
shipped at ``audit/compliance/policies/default.toml``. :func:`audit.compliance.rules.evaluate`
judges reports against it (:mod:`audit.compliance.results`: PASS, FAIL or NOT EVALUATED per rule).

Rules, in the order they are evaluated (the questions of NIST SP 800-226, "Guidelines for
Evaluating Differential Privacy Guarantees", 2025, that they answer are given in
brackets):

``require_dp_claim`` (bool)
    every audited defense makes a differential-privacy claim; one without (FedAvg,
    FedQSN, ...) FAILs it [SP 800-226: is there a DP guarantee at all].
``max_epsilon_claim`` (number >= 0)
    every claimed epsilon is at most this [the privacy parameters epsilon and delta].
``unit_of_privacy`` (``"client"`` or ``"example"``; aliases in :mod:`audit.compliance.units`)
    every claim protects at least this unit [the unit of privacy: whose data the
    guarantee protects]. See "Unit matching" in :mod:`audit.compliance.units`.
``epsilon_emp_within_claim`` (bool)
    every empirical-epsilon verdict in the reports is PASS; a VIOLATION (a lower bound
    above the claim at 95% confidence, or an estimate more than 10% above it) FAILs,
    naming the finding, the estimator, epsilon_emp and epsilon_claim [whether the
    implementation keeps the promise: SP 800-226's implementation hazards].
``max_psnr`` (dB), ``max_ssim`` (number in [-1, 1]), ``min_lpips`` (number >= 0)
    reconstruction attacks: the worst case (the most-leaking image, the metric's
    ``worst``) over every finding carrying the metric ``psnr`` / ``ssim`` / ``lpips`` is at
    most / at most / at least this.
``max_tpr_at_1pct_fpr`` (number in [0, 1])
    membership attacks: the true-positive rate at 1% false-positive rate of every
    finding carrying one (``TPR @ 1.0% FPR``, or a name such as
    ``stage1_membership_tpr_at_1pct_fpr``) is at most this (random guessing: 0.01).
``max_extraction_gap_closed`` (number in [0, 1])
    model extraction (FedQSN's proxies): the ``gap_closed`` of every finding carrying it
    (the share of the proxy-to-global quality gap the adversary closes; 0: no better than
    its proxy, 1: the global model's quality) is at most this. A ``gap_closed`` of null
    (the proxy is no worse than the global model: nothing to close) is NOT EVALUATED.
``required_threat_models``, ``required_attacks`` (non-empty lists of names)
    every listed threat model / attack appears in some finding of the reports (attack
    names as in the findings: ``inverting-gradients``, ``lira``, ``epsilon-cp``...) [the
    trust model: which adversaries the evidence covers].

Plus two optional free-text keys, ``name`` and ``description``, and ``frameworks``: the
framework mappings whose clauses the compliance report judges (:mod:`audit.compliance.framework_file`),
a list of built-in ids (``"nist-sp-800-226"``, ``"owasp-ml-top-10"``...) and paths of the
user's own framework files; a path is relative to the policy file's directory (to the
current directory for a policy built in memory); absent: every built-in one; ``[]``: none.
It selects report sections, not rules. A rule set to ``false``
(the two booleans) is not evaluated. Numbers are strict (a quoted ``"20"`` is an error),
except that in YAML files a threshold written in exponent notation without a dot
(``5e-2``, which PyYAML reads as a string) is taken as the number it spells.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from audit.compliance.units import UNIT_ALIASES
from audit.core.config import read_table_file
from audit.core.errors import InvalidParameterError, invalid
from audit.core.validation import check_table_keys

#: the default policy, shipped as package data (``[tool.setuptools.package-data] audit``)
DEFAULT_POLICY_PATH = Path(__file__).parent / "policies" / "default.toml"
# PyYAML (YAML 1.1) reads 5e-2 (no dot) as a string: accepted as a number in YAML files only
_YAML_SCI = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
_NUMBER_KEYS = ("max_epsilon_claim", "max_psnr", "max_ssim", "min_lpips", "max_tpr_at_1pct_fpr",
                "max_extraction_gap_closed")
_FRAMEWORK_SUFFIXES = (".toml", ".yaml", ".yml")


def framework_is_path(entry: str) -> bool:
    """Whether an entry of ``frameworks`` is a file path (it ends in ``.toml``, ``.yaml`` or
    ``.yml``, or holds a ``/``) rather than a built-in framework id."""
    return entry.lower().endswith(_FRAMEWORK_SUFFIXES) or "/" in entry or "\\" in entry


@dataclass(frozen=True)
class Policy:
    """A validated compliance policy; ``None`` / ``False`` / ``()`` means "rule not used".

    ``source`` says where it came from (a path, or ``default (...)``); it is not a policy
    key. Constructing one validates every value (errors name the key and the source).
    """

    name: str | None = None
    description: str | None = None
    frameworks: tuple[str, ...] | None = None
    require_dp_claim: bool = False
    max_epsilon_claim: float | None = None
    unit_of_privacy: str | None = None
    epsilon_emp_within_claim: bool = False
    max_psnr: float | None = None
    max_ssim: float | None = None
    min_lpips: float | None = None
    max_tpr_at_1pct_fpr: float | None = None
    max_extraction_gap_closed: float | None = None
    required_threat_models: tuple[str, ...] = ()
    required_attacks: tuple[str, ...] = ()
    source: str = field(default="<in memory>", compare=False)

    def __post_init__(self) -> None:
        owner = f"policy {self.source}"
        for key in ("name", "description"):
            value = getattr(self, key)
            if value is not None and not isinstance(value, str):
                raise invalid(key, owner, "a str", value)
        for key in ("require_dp_claim", "epsilon_emp_within_claim"):
            if not isinstance(getattr(self, key), bool):
                raise invalid(key, owner, "a bool (true or false)", getattr(self, key))
        ranges = {"max_epsilon_claim": (0.0, None), "max_psnr": (None, None),
                  "max_ssim": (-1.0, 1.0), "min_lpips": (0.0, None),
                  "max_tpr_at_1pct_fpr": (0.0, 1.0), "max_extraction_gap_closed": (0.0, 1.0)}
        for key, (low, high) in ranges.items():
            value = getattr(self, key)
            if value is not None:
                object.__setattr__(self, key, _number(key, owner, value, low, high))
        if self.unit_of_privacy is not None:
            unit = self.unit_of_privacy
            if not isinstance(unit, str) or unit.strip().lower() not in UNIT_ALIASES:
                raise invalid("unit_of_privacy", owner,
                              "a str among {" + ", ".join(repr(u) for u in UNIT_ALIASES) + "}", unit)
            object.__setattr__(self, "unit_of_privacy", UNIT_ALIASES[unit.strip().lower()])
        for key in ("required_threat_models", "required_attacks"):
            object.__setattr__(self, key, _names(key, owner, getattr(self, key)))
        if self.frameworks is not None:
            value = self.frameworks
            if (not isinstance(value, (list, tuple)) or len(set(map(str, value))) != len(value)
                    or any(not isinstance(v, str) or not v.strip() for v in value)):
                raise invalid("frameworks", owner, "a list of distinct built-in framework ids or paths of "
                              "framework files (.toml, .yaml, .yml)", value)
            object.__setattr__(self, "frameworks", tuple(value))
        if not self.rules:
            raise InvalidParameterError(
                f"The {owner} sets no rule: give at least one of "
                + ", ".join(RULE_KEYS) + ".")

    @property
    def rules(self) -> tuple[str, ...]:
        """The rules this policy uses, in evaluation order."""
        return tuple(k for k in RULE_KEYS if getattr(self, k) not in (None, False, ()))

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<in memory>") -> "Policy":
        """A policy from the keys of a policy file; an unknown key is an error naming it."""
        check_table_keys(data, POLICY_KEYS, f"policy {source}")
        return cls(**data, source=source)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the rules used (with ``name``/``description``/``frameworks``
        when set) and the ``source``."""
        out: dict[str, Any] = {k: getattr(self, k) for k in ("name", "description")
                               if getattr(self, k) is not None}
        if self.frameworks is not None:
            out["frameworks"] = list(self.frameworks)
        for key in self.rules:
            value = getattr(self, key)
            out[key] = list(value) if isinstance(value, tuple) else value
        out["source"] = self.source
        return out


POLICY_KEYS = tuple(f.name for f in fields(Policy) if f.name != "source")
RULE_KEYS = tuple(k for k in POLICY_KEYS if k not in ("name", "description", "frameworks"))


def _number(key: str, owner: str, value: Any, low: float | None, high: float | None) -> float:
    desc = "a finite number"
    if low is not None and high is not None:
        desc = f"a number in the range [{low:g}, {high:g}]"
    elif low is not None:
        desc = f"a number >= {low:g}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(key, owner, desc, value)
    v = float(value)
    if not math.isfinite(v) or (low is not None and v < low) or (high is not None and v > high):
        raise invalid(key, owner, desc, value)
    return v


def _names(key: str, owner: str, value: Any) -> tuple[str, ...]:
    if value == ():
        return ()
    desc = "a non-empty list of distinct non-empty str names"
    if not isinstance(value, (list, tuple)) or not value:
        raise invalid(key, owner, desc, value)
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise invalid(key, owner, desc, value)
    if len(set(value)) != len(value):
        raise invalid(key, owner, desc, value)
    return tuple(value)


def load_policy(path: str | Path | None = None) -> Policy:
    """Read and validate a policy file (TOML or YAML), or the default policy.

    Args:
        path: A ``.toml``, ``.yaml`` or ``.yml`` file; None for the default policy
            shipped at ``audit/compliance/policies/default.toml``.

    Returns:
        The :class:`Policy`, its ``source`` the path (or ``default (<path>)``).

    Raises:
        InvalidParameterError: A missing file, another suffix, a file that does not parse,
            a file that is not a table, an unknown key, a value of the wrong type or out
            of range, or a policy that sets no rule; the one-line message names the file
            and the key.
    """
    if path is None:
        p, source = DEFAULT_POLICY_PATH, f"default ({DEFAULT_POLICY_PATH})"
    else:
        if not isinstance(path, (str, Path)):
            raise invalid("path", "load_policy", "a str, a path or None", path)
        p = Path(path)
        source = f"file {str(p)!r}"
    data = read_table_file(p, "Policy file")
    suffix = p.suffix.lower()
    if suffix != ".toml" and isinstance(data, dict):
        data = {k: float(v) if k in _NUMBER_KEYS and isinstance(v, str) and _YAML_SCI.fullmatch(v.strip())
                else v for k, v in data.items()}
    if isinstance(data, dict) and isinstance(data.get("frameworks"), list):
        # a framework file's path is relative to the policy file's directory
        data = {**data, "frameworks": [str(p.parent / f) if isinstance(f, str) and framework_is_path(f)
                                       and not Path(f).is_absolute() else f for f in data["frameworks"]]}
    return Policy.from_dict(data, source=source)
