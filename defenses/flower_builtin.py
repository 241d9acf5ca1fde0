"""Flower's own DP strategies and local-DP mod, ready to audit by name from the CLI.

* ``flower-dp-client-clipping``: ``DifferentialPrivacyClientSideFixedClipping(FedAvg)`` with
  ``fixedclipping_mod`` on the clients (``client_mod=False`` leaves the mod out, a common
  misconfiguration the audit reports);
* ``flower-dp-server-clipping``: ``DifferentialPrivacyServerSideFixedClipping(FedAvg)``;
* ``flower-local-dp``: ``FedAvg`` with ``LocalDpMod(clipping_norm, sensitivity, epsilon,
  delta)`` on the clients.

Each is a :class:`defenses.flower_strategy.FlowerDefense` built from Flower's classes as a
Flower user would write them. Choices: the inner FedAvg addresses every client fedaudit
samples (``fraction_train=1``, no federated evaluation); ``num_sampled_clients`` defaults to
the audit's ``clients_per_round``; ``accountant=true`` turns on Flower's ``RdpAccountant``
(population: the audit's clients, no amplification, ``delta``), whose epsilon then is
Flower's claim; ``LocalDpMod``'s parameters are passed as given, with Flower's own checks
only, except those with which it cannot run at all (epsilon 0, delta 0 or delta >= 1: Flower
accepts them and fails or returns inf/NaN weights when a message passes), refused here.
"""

from __future__ import annotations

from typing import Any

from audit.core.defense import FederationSchedule
from audit.core.errors import InvalidParameterError
from audit.fl.flower_runtime import flower_call, import_flwr
from audit.core.validation import (
    check_bool,
    check_interval,
    check_known_keys,
    check_nonnegative,
    check_positive,
)
from defenses.flower_strategy import FlowerDefense

_TRAINING = ("local_steps", "lr", "momentum")


def _fedavg() -> Any:
    from flwr.serverapp.strategy import FedAvg

    with flower_call(None):  # FedAvg logs a warning for fraction_evaluate=0
        return FedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=1,
                      min_available_nodes=1)


def _central(name: str, wrapper: str, **params: Any) -> FlowerDefense:
    keys = ("noise_multiplier", "clipping_norm", "num_sampled_clients", "accountant", "delta",
            *(("client_mod",) if wrapper == "client" else ()), *_TRAINING)
    check_known_keys(params, keys, name)
    import_flwr(f"Defense {name!r}")
    z = check_nonnegative("noise_multiplier", name, params.pop("noise_multiplier", 1.0))
    c = check_positive("clipping_norm", name, params.pop("clipping_norm", 1.0))
    m = params.pop("num_sampled_clients", None)
    if m is not None:
        m = check_interval("num_sampled_clients", name, m, kind=int, low=1)
    accountant = check_bool("accountant", name, params.pop("accountant", False))
    if accountant and z == 0:
        raise InvalidParameterError(
            f"The 'noise_multiplier' parameter of {name} must be positive with accountant=true "
            f"(Flower's own check). Got {z!r} instead.")
    client_mod = check_bool("client_mod", name, params.pop("client_mod", True))
    delta = params.get("delta", 1e-5)

    def build(schedule: FederationSchedule) -> tuple[Any, list[Any]]:
        from flwr.clientapp.mod import fixedclipping_mod
        from flwr.serverapp import PrivacyConfig, RdpAccountant
        from flwr.serverapp.strategy import (
            DifferentialPrivacyClientSideFixedClipping,
            DifferentialPrivacyServerSideFixedClipping,
        )
        from flwr.supercore.privacy_accounting import NeighboringRelation, SamplingMethod

        acct = RdpAccountant(PrivacyConfig(
            target_delta=float(delta), population_size=schedule.num_clients,
            neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
            sampling_method=SamplingMethod.NO_AMPLIFICATION)) if accountant else None
        cls = (DifferentialPrivacyClientSideFixedClipping if wrapper == "client"
               else DifferentialPrivacyServerSideFixedClipping)
        strategy = cls(_fedavg(), z, c, m or schedule.clients_per_round, accountant=acct)
        return strategy, [fixedclipping_mod] if wrapper == "client" and client_mod else []

    shown = {"noise_multiplier": z, "clipping_norm": c, "num_sampled_clients": m,
             "accountant": accountant, **({"client_mod": client_mod} if wrapper == "client" else {})}
    return FlowerDefense(build=build, name=name, params=shown, threat_model="aggregate-observer",
                         **params)


def flower_dp_client_clipping(**params: Any) -> FlowerDefense:
    """Flower's central DP with client-side fixed clipping (wrapper + fixedclipping_mod)."""
    return _central("flower-dp-client-clipping", "client", **params)


def flower_dp_server_clipping(**params: Any) -> FlowerDefense:
    """Flower's central DP with server-side fixed clipping."""
    return _central("flower-dp-server-clipping", "server", **params)


def flower_local_dp(**params: Any) -> FlowerDefense:
    """FedAvg with Flower's LocalDpMod on every client."""
    name = "flower-local-dp"
    check_known_keys(params, ("clipping_norm", "sensitivity", "epsilon", "delta", *_TRAINING), name)
    import_flwr(f"Defense {name!r}")
    from flwr.clientapp.mod import LocalDpMod

    c = check_positive("clipping_norm", name, params.pop("clipping_norm", 1.0))
    s = check_nonnegative("sensitivity", name, params.pop("sensitivity", c))
    eps = params.pop("epsilon", 1.0)
    delta = params.pop("delta", 1e-5)
    # Flower accepts these (its checks: >= 0) but cannot run with them: epsilon 0 divides by
    # zero (inf weights), delta 0 raises ZeroDivisionError at the first message, delta >= 1
    # takes the log of a number <= 1.25 (NaN or a meaningless sigma)
    eps = check_positive("epsilon", name, eps)
    delta = check_interval("delta", name, delta, low=0, high=1, closed="neither")
    mod = LocalDpMod(c, s, eps, delta)
    return FlowerDefense(_fedavg(), [mod], name=name, delta=delta, **params)
