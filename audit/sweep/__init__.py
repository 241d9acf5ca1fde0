"""Audit sweeps: a grid of audits from one spec file, run on Ray or in this process,
resumable, with one compliance report over all of them (see :mod:`audit.sweep.runner`).

The modules: :mod:`~audit.sweep.spec` (the spec file and its grid),
:mod:`~audit.sweep.run_ids` (run ids), :mod:`~audit.sweep.run_store` (the output
directory), :mod:`~audit.sweep.status` (done and pending runs), :mod:`~audit.sweep.worker`
(one run), :mod:`~audit.sweep.ray_backend` (the Ray backend) and
:mod:`~audit.sweep.runner` (the sweep). Nothing here imports the command line.

The public names below are imported from their modules on first use, so that importing
one module (or ``python -m audit.sweep.runner``) does not import the others.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module that defines it
_EXPORTS = {
    "RunInfo": "runner",
    "SweepResult": "runner",
    "run_sweep": "runner",
    "SweepRun": "spec",
    "SweepSpec": "spec",
    "load_spec": "spec",
    "parse_spec": "spec",
    "SweepStatus": "status",
    "sweep_status": "status",
    "run_id": "run_ids",
    "run_key": "run_ids",
    "run_one": "worker",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
