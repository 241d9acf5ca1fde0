"""Run ids of a sweep: ``<slug>-<hash>``.

The slug is readable and filesystem-safe (``[A-Za-z0-9._-]``, at most 80 characters, e.g.
``dp-fedavg_clip_norm-1.0_noise_multiplier-0.1__llg__s0``); the hash is the first 10 hex
digits of the SHA-256 of the run's canonical JSON (its AuditConfig, estimator and estimator
parameters). The same run has the same id whatever the spec's order or format; the
execution settings (device, threads, lpips, cache_dir) are not part of it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from audit.core.config import AuditConfig

__all__ = ["run_id", "run_key"]

SLUG_MAX = 80
HASH_LEN = 10


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


#: AuditConfig fields added after sweeps were first written, with the value every earlier
#: run had: left out of the key at that value, so an earlier sweep's ids still match
_LATER_FIELDS = {"simulation": "auto", "client_sampling": "fixed"}


def _keyed_config(config: AuditConfig) -> dict[str, Any]:
    return {k: v for k, v in config.to_dict().items() if _LATER_FIELDS.get(k, object()) != v}


def run_key(config: AuditConfig, estimator: str | None, est_params: Mapping[str, Any]) -> str:
    """The canonical JSON that a run's id hashes (sorted keys, compact)."""
    return json.dumps({"config": _keyed_config(config), "estimator": estimator,
                       "estimator_params": dict(est_params)},
                      sort_keys=True, separators=(",", ":"), default=repr)


def run_id(config: AuditConfig, estimator: str | None = None,
           est_params: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """``(id, slug)`` of a run: ``<slug>-<first 10 hex of sha256(run_key)>``."""
    est_params = est_params or {}
    digest = hashlib.sha256(run_key(config, estimator, est_params).encode()).hexdigest()[:HASH_LEN]
    slug = _slug(config, estimator, est_params)
    return f"{slug}-{digest}", slug
