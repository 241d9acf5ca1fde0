"""The accounting lint's facts of a Flower configuration: its strategy, client mods, accountant.

:func:`flower_facts` reads Flower's (``flwr`` 1.42) own objects into a
:class:`~audit.privacy.lint.facts.RunFacts`:

* the DP wrapper found along the ``.strategy`` chain (``DifferentialPrivacy{Server,Client}Side
  {Fixed,Adaptive}Clipping`` of ``flwr.serverapp.strategy``, or the legacy
  ``flwr.server.strategy`` ones): noise multiplier z, clipping norm C, ``num_sampled_clients``
  m; unit client; adjacency add/remove (Flower's wrappers implement DP-FedAvg with the
  sensitivity C of the sum; their accountant's ``neighboring_relation`` when it has one);
  noise from ``np.random`` (no secure RNG);
* the accountant (the wrapper's ``accountant``, or the one you pass, e.g. your own
  ``RdpAccountant`` for a claim Flower's wrapper would not make): sampling assumed from its
  ``sampling_method`` (``no-amplification`` -> ``none``) at rate ``m / population_size``,
  steps accounted ``num_releases``, delta ``target_delta`` when you give none;
* the innermost strategy with FedAvg's sampling (``fraction_train``, ``min_train_nodes``):
  cohort ``k = max(int(N fraction_train), min_train_nodes)`` of the N = ``num_clients``
  nodes, drawn by ``random.sample`` (``without-replacement``; ``all`` when k >= N);
* the noise on the released mean: ``z C / m`` on a FedAvg mean over k clients of equal
  weight has sensitivity ``C / k``, so the effective multiplier is ``z k / m``; with the
  per-round client weights observed (``round_weights``, e.g. the recorded replies'
  ``num-examples``) it is ``z / share`` in the worst round, ``share = m max(w) / sum(w)``
  (:func:`defenses.flower_claims.worst_weight_share`), and the realised cohort sizes are the
  divisors used; adaptive clipping wrappers are not evaluated (their clip norm moves);
* the order of operations on a client's reply: Flower's ``make_ffn`` makes the first mod of
  the list the outermost, so the reply passes the **last** mod first; ``fixedclipping_mod``
  and ``adaptiveclipping_mod`` clip, ``LocalDpMod`` clips then noises, ``secagg_mod`` /
  ``secaggplus_mod`` mask, the size mods do nothing to the arrays; a mod of yours is named
  by ``mod_operations`` (mod -> operations, e.g. ``{my_noise_mod: ("noise",)}``) or is
  ignored. Then the server: the server-side wrapper clips, aggregates and noises, the
  client-side one aggregates and noises.

``LocalDpMod`` alone gives unit client, adjacency replace-one (its sensitivity is a
replace-one bound: see :mod:`defenses.flower_claims`) and its own ``delta``. Without any
Flower DP piece the released unit is ``client_training_unit`` (e.g. ``record`` for Opacus's
DP-SGD inside each client), else ``none``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from audit.core.errors import invalid
from audit.core.validation import check_interval, check_options
from audit.fl.flower_runtime import import_flwr
from audit.privacy.lint.facts import ADJACENCIES, SAMPLING_ASSUMED, UNITS, RunFacts
from defenses.flower_claims import worst_weight_share

OWNER = "flower_facts"
_WRAPPERS = {
    "DifferentialPrivacyServerSideFixedClipping": ("clip", "aggregate", "noise"),
    "DifferentialPrivacyClientSideFixedClipping": ("aggregate", "noise"),
    "DifferentialPrivacyServerSideAdaptiveClipping": ("clip", "aggregate", "noise"),
    "DifferentialPrivacyClientSideAdaptiveClipping": ("aggregate", "noise"),
}
_MODS = {"fixedclipping_mod": ("clip",), "adaptiveclipping_mod": ("clip",), "LocalDpMod": ("clip", "noise"),
         "secagg_mod": ("secagg",), "secaggplus_mod": ("secagg",), "arrays_size_mod": (),
         "message_size_mod": ()}
_SAMPLING = {"poisson": "poisson", "without-replacement": "without-replacement", "no-amplification": "none"}
_RELATION = {"add-or-remove-one": "add-remove", "replace-one": "replace-one"}


def _chain(strategy: Any) -> list[Any]:
    chain = [strategy]
    while getattr(chain[-1], "strategy", None) is not None and len(chain) < 16:
        chain.append(chain[-1].strategy)
    return chain


def _flower_name(obj: Any) -> str | None:
    """The Flower name of a strategy wrapper or mod (a function or an instance), if it is Flower's."""
    target = obj if callable(obj) and hasattr(obj, "__name__") else type(obj)
    if not getattr(target, "__module__", "").startswith("flwr."):
        return None
    return target.__name__


def mod_operations(mods: Sequence[Any], extra: Mapping[Any, Sequence[str]] | None = None) -> tuple[str, ...]:
    """The operations the ``mods`` apply to a client's reply, in the order applied (the
    last mod of the list first); ``extra`` names those of your own mods."""
    ops: list[str] = []
    for mod in reversed(list(mods)):
        if extra and mod in extra:
            ops += list(extra[mod])
        elif _flower_name(mod) in _MODS:
            ops += list(_MODS[_flower_name(mod)])
    return tuple(ops)


def flower_facts(strategy: Any, *, client_mods: Sequence[Any] = (), num_clients: int,
                 delta: float | None = None, claimed_unit: str = "client",
                 claimed_adjacency: str = "add-remove", accountant: Any = None,
                 rounds_run: int | None = None, round_weights: Sequence[Sequence[float]] | None = None,
                 client_training_unit: str | None = None, sampling_assumed: str | None = None,
                 mod_operations_of: Mapping[Any, Sequence[str]] | None = None) -> RunFacts:
    """The lint's facts of a Flower ``strategy`` (any wrapping of Flower's DP wrappers) with
    its ``client_mods`` over ``num_clients`` nodes. ``accountant`` replaces the wrapper's;
    ``rounds_run`` is the rounds that released a model; ``round_weights`` the clients' FedAvg
    weights per round as observed; ``sampling_assumed`` the sampling a claim made outside
    Flower's accountant assumes (e.g. ``poisson`` for DP-FedAvg accounting)."""
    import_flwr(OWNER)
    n = check_interval("num_clients", OWNER, num_clients, kind=int, low=1)
    claimed_unit = check_options("claimed_unit", OWNER, claimed_unit, UNITS)
    claimed_adjacency = check_options("claimed_adjacency", OWNER, claimed_adjacency, ADJACENCIES)
    if client_training_unit is not None:
        check_options("client_training_unit", OWNER, client_training_unit, UNITS)
    if sampling_assumed is not None:
        check_options("sampling_assumed", OWNER, sampling_assumed, SAMPLING_ASSUMED)
    if delta is not None:
        delta = check_interval("delta", OWNER, delta, low=0, high=1, closed="neither")
    if rounds_run is not None:
        rounds_run = check_interval("rounds_run", OWNER, rounds_run, kind=int, low=0)
    if isinstance(client_mods, (str, bytes)) or not isinstance(client_mods, Sequence):
        raise invalid("client_mods", OWNER, "a sequence of Flower mods", client_mods)
    chain = _chain(strategy)
    wrapper = next((s for s in chain if _flower_name(s) in _WRAPPERS), None)
    inner = next((s for s in reversed(chain) if hasattr(s, "fraction_train") and hasattr(s, "min_train_nodes")), None)
    local = next((m for m in client_mods if _flower_name(m) == "LocalDpMod"), None)
    if accountant is None and wrapper is not None:
        accountant = getattr(wrapper, "accountant", None)
    if accountant is not None and not hasattr(accountant, "config"):
        raise invalid("accountant", OWNER, "a Flower PrivacyAccountant (with .config)", type(accountant).__name__)

    k = used = rate_used = None
    if inner is not None:
        k = min(max(int(n * float(inner.fraction_train)), int(inner.min_train_nodes)), n)
        used, rate_used = ("all" if k >= n else "without-replacement"), k / n
    m = getattr(wrapper, "num_sampled_clients", None)
    rate_assumed = None
    if accountant is not None:
        config = accountant.config
        sampling_assumed = _SAMPLING[config.sampling_method.value]
        rate_assumed = min(1.0, m / config.population_size) if m else None
        if delta is None:
            delta = float(config.target_delta)

    z = eff = source = divisors = None
    fixed = wrapper is not None and "Fixed" in _flower_name(wrapper)
    if fixed and float(wrapper.noise_multiplier) > 0:
        z = float(wrapper.noise_multiplier)
        if round_weights:
            share, where = worst_weight_share(round_weights, m)
            eff, source = z / share, f"noise z*C/{m} on the worst round's weighted mean, {where}"
            divisors = tuple(float(len(ws)) for ws in round_weights if len(ws))
        elif k is not None:
            eff, source = z * k / m, f"noise z*C/{m} on a mean over a cohort of {k} equal-weight clients"

    if wrapper is not None:
        unit = "client"
        relation = (_RELATION[accountant.config.neighboring_relation.value] if accountant is not None
                    else "add-remove")
    elif local is not None:
        unit, relation = "client", "replace-one"
        delta = float(local.delta) if delta is None else delta
    else:
        unit, relation = client_training_unit or "none", None
    has_noise = local is not None or (wrapper is not None and float(wrapper.noise_multiplier) > 0)
    ops = mod_operations(client_mods, mod_operations_of)
    if wrapper is not None:
        ops += _WRAPPERS[_flower_name(wrapper)]
    return RunFacts(
        framework="flower",
        accountant=(f"flower-{type(accountant).__name__.lower().removesuffix('accountant')}"
                    if accountant is not None
                    else _flower_name(wrapper) if wrapper is not None else None),
        sampling_assumed=sampling_assumed, sample_rate_assumed=rate_assumed,
        sampling_used=used, sample_rate_used=rate_used,
        steps_accounted=int(accountant.num_releases) if accountant is not None else None,
        steps_run=rounds_run, delta=delta, n_clients=n,
        unit_claimed=claimed_unit, unit_released=unit,
        adjacency_claimed=claimed_adjacency, adjacency_accounted=relation,
        noise_multiplier=z, effective_noise_multiplier=eff, noise_source=source,
        mean_divisor_expected=float(m) if m and divisors else None, mean_divisors_used=divisors,
        secure_rng=False if has_noise else None,
        operations=ops if (wrapper is not None or local is not None or "noise" in ops) else None)


__all__ = ["flower_facts", "mod_operations"]
