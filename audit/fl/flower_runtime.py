"""Calling Flower (``flwr`` >= 1.42, its Message API) in-process, without a SuperLink, a
simulation engine or a network: what the Flower adapter and the export share.

* :func:`import_flwr` imports Flower or says how to install the optional extra.
* :func:`flower_call` is the context every call into Flower's strategies and mods runs in:
  Flower's process identity (``TaskIdentity``, which every ``Message`` reads) set when no
  Flower runtime has set it, Flower's noise made deterministic (its DP helpers draw from
  the global ``np.random`` and its node sampling from ``random``: both are seeded from the
  fedaudit generator and restored afterwards), and Flower's per-call INFO logging muted.
* :class:`StubGrid` answers the one question a strategy's ``configure_train`` asks of the
  grid: which nodes are connected.
* :func:`to_arrays` / :func:`from_arrays` convert between fedaudit tensors and Flower's
  ``ArrayRecord`` in float64 (the adapter's own choice: the round trip
  ``broadcast - (broadcast - delta)`` is then exact to 1e-16, so an attack sees the
  observation Flower produced, not float32 rounding of it).
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from audit.core.errors import InvalidParameterError

FLOWER_EXTRA = "pip install 'fedaudit[flower]'"


def import_flwr(what: str):
    """``import flwr`` (version checked), or a clear error saying how to install it."""
    try:
        import flwr
    except ImportError:
        raise InvalidParameterError(
            f"{what} needs Flower, an optional extra: {FLOWER_EXTRA}. Got no 'flwr' package "
            "instead.") from None
    major, minor = (int(x) for x in flwr.__version__.split(".")[:2])
    if (major, minor) < (1, 42):
        raise InvalidParameterError(
            f"{what} needs Flower >= 1.42 (its Message API): {FLOWER_EXTRA}. Got flwr "
            f"{flwr.__version__} instead.")
    return flwr


def flower_available() -> bool:
    """Whether Flower can be imported (without importing it twice)."""
    try:
        import_flwr("this check")
    except InvalidParameterError:
        return False
    return True


class StubGrid:
    """The grid a strategy's ``configure_train`` sees: ``nodes`` connected node ids."""

    def __init__(self, nodes: int) -> None:
        self.nodes = list(range(1, nodes + 1))

    def get_node_ids(self) -> list[int]:
        return list(self.nodes)


@contextlib.contextmanager
def flower_call(generator: torch.Generator | None) -> Iterator[None]:
    """Run Flower code deterministically under ``generator``, quietly, with its process
    identity set when no Flower runtime set it (restored afterwards)."""
    from flwr.supercore.task_identity import TaskIdentity

    saved_ids = {k: getattr(TaskIdentity, f"_{k}") for k in ("task_id", "run_id", "node_id")}
    for key, value in saved_ids.items():
        if value is None:
            setattr(TaskIdentity, key, 0)
    np_state, py_state = np.random.get_state(), random.getstate()
    if generator is not None:
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        np.random.seed(seed)
        random.seed(seed)
    logger = logging.getLogger("flwr")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
        np.random.set_state(np_state)
        random.setstate(py_state)
        for key, value in saved_ids.items():
            setattr(TaskIdentity, f"_{key}", value)


@contextlib.contextmanager
def isolated_simulation() -> Iterator[None]:
    """Run Flower's simulation engine without side effects on this process: Flower's
    ``run_simulation`` (1.42) leaves ``PYTHONPATH`` (set to the driver's whole
    ``sys.path``), ``RAY_*`` variables and ``PYTHONBREAKPOINT`` in ``os.environ`` and its
    Ray instance running, so a later Ray session's workers would import what they should
    not. The environment and ``sys.path`` are restored afterwards, and a Ray instance the
    simulation started is shut down."""
    import os
    import sys

    env, path = dict(os.environ), list(sys.path)
    ray = sys.modules.get("ray")
    ray_was_up = ray is not None and ray.is_initialized()
    try:
        yield
    finally:
        ray = sys.modules.get("ray")
        if ray is not None and ray.is_initialized() and not ray_was_up:
            ray.shutdown()
        os.environ.clear()
        os.environ.update(env)
        sys.path[:] = path


def to_arrays(tensors: Mapping[str, torch.Tensor], *, double: bool = True) -> Any:
    """A Flower ``ArrayRecord`` of ``tensors`` (same keys; float64 numpy arrays unless
    ``double`` is false, then in the tensors' own dtypes)."""
    from flwr.app import Array, ArrayRecord

    def numpy(t: torch.Tensor) -> np.ndarray:
        t = t.detach().cpu()
        return np.ascontiguousarray((t.double() if double else t).numpy())

    return ArrayRecord({n: Array(numpy(t)) for n, t in tensors.items()})


def from_arrays(record: Any, like: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Tensors of a Flower ``ArrayRecord``; with ``like``, in its dtypes and devices."""
    out = {n: torch.from_numpy(np.array(a.numpy(), copy=True)) for n, a in record.items()}
    if like is not None:
        out = {n: t.to(dtype=like[n].dtype, device=like[n].device) if n in like else t
               for n, t in out.items()}
    return out


def single_arrays(message: Any, where: str) -> tuple[str, Any]:
    """The one ``ArrayRecord`` of a Flower message (key, record), or an error naming
    ``where`` (a reply with an error or with several array records)."""
    if message.has_error():
        raise InvalidParameterError(
            f"{where} returned an error message: {message.error.reason}. Got error code "
            f"{message.error.code} instead of a reply with arrays.")
    records = message.content.array_records
    if len(records) != 1:
        raise InvalidParameterError(
            f"{where} must carry exactly one ArrayRecord. Got {sorted(records)} instead.")
    return next(iter(records.items()))
