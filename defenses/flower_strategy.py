"""Any Flower server strategy and client mods, run as a fedaudit defense.

:class:`FlowerDefense` wraps a Flower (``flwr`` >= 1.42, Message API) ``Strategy`` and a list
of client mods so that fedaudit's simulation, attacks and DP estimators run them exactly as
Flower would: each round the strategy's own ``configure_train`` builds the TRAIN messages
(from the broadcast weights, on a :class:`audit.fl.flower_runtime.StubGrid` listing the sampled
clients), each client's reply (broadcast weights minus its raw update) passes through the
mods in Flower's own chaining (``make_ffn``), and the strategy's own ``aggregate_train``
turns the replies into the new weights. What an attack observes is Flower's output: a
client's reply after its mods (``hbc-server``), or the aggregate (``aggregate-observer``).

The claims come from :mod:`defenses.flower_claims`: Flower's statement for its central DP
wrappers and ``LocalDpMod``, and the mechanism as run beside it. A strategy the adapter does
not recognise makes no claim unless the user passes ``claim`` (a function of the schedule).

Project choices, where Flower leaves it to its runtime:

* Client sampling is fedaudit's (``clients_per_round``); the stub grid lists as many nodes
  as the audit samples (at least the strategy's ``min_available_nodes``), so a strategy
  with ``fraction_train < 1`` addresses fewer clients than the audit sampled: an error.
* The i-th client updating in a round receives the i-th message (by node id); clients keep
  fedaudit's local training (``local_steps`` SGD steps at ``lr``), Flower's message config
  is not read by them.
* Arrays cross the adapter in float64 (see :mod:`audit.fl.flower_runtime`).
* Flower's randomness (``np.random``, ``random``) is seeded from the simulation's generator
  at every call, so an audit is deterministic under its seed.
* The DP estimators' canaries go through deep copies of the same mods and strategy (the
  run's own accountant is not charged for them); central canaries are padded to ``m`` replies with zero updates, the canary taking the largest weight of the
  run's worst round (:meth:`canary_server_side`), which is what the as-run claim states.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from audit.core.claims import PrivacyClaim
from audit.core.defense import Defense, FederationSchedule
from audit.core.errors import InvalidParameterError
from audit.fl.flower_runtime import (
    StubGrid,
    flower_call,
    from_arrays,
    import_flwr,
    single_arrays,
    to_arrays,
)
from audit.core.updates import ClientData, LocalTraining, ModelUpdate, UpdateKind
from audit.core.validation import check_interval, check_positive
from defenses.flower_claims import central_claims, local_dp_claims

Build = Callable[[FederationSchedule], tuple[Any, Sequence[Any]]]


@dataclass
class _Round:
    """One configured Flower round: its broadcast, the strategy's messages, who got which."""

    round: int
    server_round: int
    broadcast: dict[str, torch.Tensor]
    messages: list[Any]
    handed: int = 0


def _inner_strategies(strategy: Any) -> list[Any]:
    """``strategy`` and the strategies it wraps (``.strategy`` chains, as Flower's DP wrappers)."""
    chain = [strategy]
    while getattr(chain[-1], "strategy", None) is not None and len(chain) < 16:
        chain.append(chain[-1].strategy)
    return chain


#: Flower's fixed clipping (``compute_clip_model_update``, used by ``fixedclipping_mod``,
#: ``LocalDpMod`` and the server-side wrapper) divides the clipping norm by the update's
#: norm: a client whose update is exactly zero makes the round fail with ZeroDivisionError
ZERO_UPDATE_NOTE = ("Flower's fixed clipping divides by the update's norm: an exactly zero "
                    "update raises ZeroDivisionError")


def _nonzero(update: ModelUpdate) -> ModelUpdate:
    """``update``, or one of norm 1e-12 on its first coordinate when it is exactly zero."""
    if any(bool(t.ne(0).any()) for t in update.tensors.values()):
        return update
    tensors = {n: t.clone() for n, t in update.tensors.items()}
    first = next(iter(tensors))
    tensors[first].view(-1)[0] = 1e-12
    return update.with_tensors(tensors)


def _name(obj: Any) -> str:
    return getattr(obj, "__name__", None) or type(obj).__name__


class FlowerDefense(Defense):
    """A Flower strategy and its client mods as a fedaudit :class:`Defense`."""

    name = "flower"

    def __init__(self, strategy: Any = None, mods: Sequence[Any] = (), *, build: Build | None = None,
                 local_steps: int = 2, lr: float = 0.1, momentum: float = 0.0, delta: float = 1e-5,
                 claim: Callable[[FederationSchedule], PrivacyClaim] | None = None,
                 name: str = "flower", params: dict[str, Any] | None = None,
                 threat_model: str | None = None) -> None:
        import_flwr(f"Defense {name!r}")
        if (strategy is None) == (build is None):
            raise InvalidParameterError(
                f"Exactly one of 'strategy' and 'build' must be given to {name}. Got "
                f"strategy={strategy!r}, build={build!r} instead.")
        self.name = name
        self.strategy, self.mods = strategy, list(mods)
        self._build = build
        self._training = LocalTraining(
            steps=check_interval("local_steps", name, local_steps, kind=int, low=1),
            lr=check_positive("lr", name, lr), kind=UpdateKind.MODEL_DELTA,
            momentum=check_interval("momentum", name, momentum, low=0, high=1, closed="left"))
        self.delta = check_interval("delta", name, delta, low=0, high=1, closed="neither")
        self._claim_fn = claim
        self._threat_model = threat_model
        self._user_params = dict(params or {})
        self._model: nn.Module | None = None
        self._pending: _Round | None = None
        self._twin: FlowerDefense | None = None
        self._server_round = 0
        self._expected = 1
        self.round_weights: list[list[float]] = []  # the run's FedAvg weights, per round
        if strategy is not None:
            self._check_strategy()

    # -- what Flower pieces are there --------------------------------------------------------
    def _check_strategy(self) -> None:
        for method in ("configure_train", "aggregate_train"):
            if not callable(getattr(self.strategy, method, None)):
                raise InvalidParameterError(
                    f"The 'strategy' parameter of {self.name} must be a Flower Message-API "
                    f"strategy (flwr.serverapp.strategy.Strategy, with {method}). Got "
                    f"{type(self.strategy).__name__} instead.")

    def _dp_wrapper(self) -> Any | None:
        from flwr.serverapp.strategy.dp_fixed_clipping import DifferentialPrivacyFixedClippingBase

        return next((s for s in _inner_strategies(self.strategy)
                     if isinstance(s, DifferentialPrivacyFixedClippingBase)), None)

    def _local_dp_mod(self) -> Any | None:
        from flwr.clientapp.mod import LocalDpMod

        return next((m for m in self.mods if isinstance(m, LocalDpMod)), None)

    def _clips_on_client(self) -> bool:
        from flwr.clientapp.mod import fixedclipping_mod

        return any(m is fixedclipping_mod for m in self.mods)

    @property
    def clip_norm(self) -> float | None:
        """The clipping norm of the recognised DP mechanism (the DP estimators' sensitivity)."""
        mod = self._local_dp_mod()
        if mod is not None:
            return float(mod.clipping_norm)
        wrapper = self.strategy is not None and self._dp_wrapper()
        return float(wrapper.clipping_norm) if wrapper else None

    # -- Defense interface -----------------------------------------------------------------
    @property
    def local_training(self) -> LocalTraining:
        return self._training

    @property
    def default_threat_model(self) -> str:  # type: ignore[override]
        """The adversary of the claim: the server for local DP or no recognised DP, observers
        of the aggregate for Flower's central wrappers (``threat_model`` overrides it; a
        ``build`` defense is only known after :meth:`prepare`)."""
        if self._threat_model is not None:
            return self._threat_model
        return "aggregate-observer" if self._central_dp_only() else "hbc-server"

    def _central_dp_only(self) -> bool:
        """A central DP wrapper and no local DP mod (known once the strategy is built)."""
        return bool(self.strategy is not None and self._local_dp_mod() is None and self._dp_wrapper())

    def audit_estimators(self) -> tuple[str, ...]:
        """Estimators whose canaries fit this mechanism: a central wrapper averages over the
        replies it gets, so only the distinguishing test (one canary among ``m`` replies)
        matches its calibration."""
        if self._central_dp_only():
            return ("cp",)
        return ("cp", "one-run", "fdp-one-run", "gaussian-aggregate", "one-shot", "one-run-input")

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"local_steps": self._training.steps, "lr": self._training.lr}
        if self.strategy is not None:
            out["strategy"] = " > ".join(_name(s) for s in _inner_strategies(self.strategy))
            wrapper = self._dp_wrapper()
            if wrapper is not None:
                out.update(noise_multiplier=float(wrapper.noise_multiplier),
                           clipping_norm=float(wrapper.clipping_norm),
                           num_sampled_clients=int(wrapper.num_sampled_clients),
                           flower_accountant=wrapper.accountant is not None)
        out["mods"] = ", ".join(_name(m) for m in self.mods) or "none"
        mod = self._local_dp_mod() if self.mods else None
        if mod is not None:
            out.update({f"local_dp_{k}": float(getattr(mod, k))
                        for k in ("clipping_norm", "sensitivity", "epsilon", "delta")})
        return {**self._user_params, **out}

    def prepare(self, schedule: FederationSchedule) -> None:
        self._expected = schedule.clients_per_round
        if self._build is not None and self.strategy is None:
            with flower_call(None):
                self.strategy, mods = self._build(schedule)
            self.mods = list(mods)
            self._check_strategy()

    def setup_server(self, *, model: nn.Module, public: ClientData | None,
                     training: LocalTraining | None = None) -> None:
        self._model = model
        self.round_weights = []

    def _require_strategy(self) -> Any:
        if self.strategy is None:
            raise RuntimeError(f"call prepare(schedule) before running {self.name!r}")
        return self.strategy

    def _nodes(self) -> int:
        mins = [getattr(s, "min_available_nodes", 0) or 0 for s in _inner_strategies(self.strategy)]
        mins += [getattr(s, "min_train_nodes", 0) or 0 for s in _inner_strategies(self.strategy)]
        return max([self._expected, *mins])

    def _configure(self, round: int, like: dict[str, torch.Tensor]) -> _Round:
        """Ask the strategy for round ``round``'s TRAIN messages (broadcast: the live model's
        weights for names it has, zeros for canary coordinates)."""
        from flwr.app import ConfigRecord

        strategy = self._require_strategy()
        live = dict(self._model.named_parameters()) if self._model is not None else {}
        broadcast = {n: (live[n].detach().double().cpu() if n in live and live[n].shape == t.shape
                         else torch.zeros(t.shape, dtype=torch.float64)) for n, t in like.items()}
        self._server_round += 1
        messages = list(strategy.configure_train(self._server_round, to_arrays(broadcast),
                                                 ConfigRecord(), StubGrid(self._nodes())))
        if not messages:
            raise InvalidParameterError(
                f"Flower strategy {_name(strategy)} configured no training in round {round}: "
                "it must address the clients fedaudit samples (fraction_train=1.0). Got no "
                "message instead.")
        messages.sort(key=lambda m: m.metadata.dst_node_id)
        self._pending = _Round(round, self._server_round, broadcast, messages)
        return self._pending

    def _round_for(self, update: ModelUpdate) -> _Round:
        p = self._pending
        if p is None or p.round != update.round or set(p.broadcast) != set(update.tensors):
            p = self._configure(update.round, update.tensors)
        return p

    def client_side(self, update: ModelUpdate, *, generator: torch.Generator) -> ModelUpdate:
        from flwr.app import Context, Message, MetricRecord, RecordDict
        from flwr.client.mod.utils import make_ffn

        with flower_call(generator):
            rnd = self._round_for(update)
            message = rnd.messages[rnd.handed % len(rnd.messages)]
            rnd.handed += 1
            sent = {n: rnd.broadcast[n] - t.detach().double().cpu() for n, t in update.tensors.items()}
            key = self._array_key()

            def client_app(msg: Any, context: Any) -> Any:
                return Message(RecordDict({key: to_arrays(sent), "metrics": MetricRecord(
                    {self._weight_key(): int(update.num_examples)})}), reply_to=msg)

            node = int(message.metadata.dst_node_id)
            context = Context(run_id=0, node_id=node, node_config={}, state=RecordDict(), run_config={})
            reply = make_ffn(client_app, self.mods)(message, context)
            _, record = single_arrays(reply, f"The client mods {[_name(m) for m in self.mods]}")
        out = from_arrays(record)
        observed = {n: (rnd.broadcast[n] - out[n]).to(dtype=t.dtype, device=t.device)
                    for n, t in update.tensors.items()}
        return update.with_tensors(observed)

    def _weights_holder(self) -> Any:
        return next((s for s in _inner_strategies(self.strategy) if hasattr(s, "weighted_by_key")),
                    None)

    def _array_key(self) -> str:
        return getattr(self._weights_holder(), "arrayrecord_key", "arrays")

    def _weight_key(self) -> str:
        return getattr(self._weights_holder(), "weighted_by_key", "num-examples")

    def server_side(self, observations: Sequence[ModelUpdate], *,
                    generator: torch.Generator) -> ModelUpdate:
        self.round_weights.append([float(o.num_examples) for o in observations])
        return self._aggregate(observations, [o.num_examples for o in observations], generator)

    def canary_client_side(self, update: ModelUpdate, *, generator: torch.Generator) -> ModelUpdate:
        """The client side as the DP estimators' canaries go through it: an exactly zero
        update (an absent canary) becomes one of norm 1e-12, because Flower's clipping
        divides by the update's norm and fails on zero (see :data:`ZERO_UPDATE_NOTE`)."""
        return self._canary_twin().client_side(_nonzero(update), generator=generator)

    def canary_server_side(self, observations: Sequence[ModelUpdate], *,
                           generator: torch.Generator) -> ModelUpdate:
        """The server side as the DP estimators' canaries go through it: padded to ``m``
        replies with zero updates; the first observation (the canary) takes the largest
        weight of the run's worst round, the padding the others (all 1 before a run)."""
        m = self._expected
        wrapper = self._dp_wrapper()
        if wrapper is not None:
            m = int(wrapper.num_sampled_clients)
        obs = [_nonzero(o) for o in observations]
        zero = {n: torch.zeros_like(t) for n, t in obs[0].tensors.items()}
        obs += [_nonzero(ModelUpdate(obs[0].kind, dict(zero), client_id=-3, round=obs[0].round,
                                     num_examples=1)) for _ in range(max(0, m - len(obs)))]
        weights = [1] * len(obs)
        worst = max(self.round_weights, key=lambda ws: max(ws) / max(sum(ws), 1e-12), default=None)
        if worst and len(worst) == len(obs):
            weights = sorted((max(int(w), 1) for w in worst), reverse=True)
        return self._canary_twin()._aggregate(obs, weights, generator)

    def _canary_twin(self) -> "FlowerDefense":
        """A copy whose strategy and mods are deep copies: canaries never touch the run's
        own strategy (its accountant, its budget limit, its round counter)."""
        if self._twin is None:
            twin = copy.copy(self)
            memo: dict[int, Any] = {}
            for inner in _inner_strategies(self.strategy):
                acct = getattr(inner, "accountant", None)
                if acct is not None:  # Flower's accountants hold modules: rebuilt from their state
                    fresh = type(acct)(acct.config)
                    fresh.load_state_dict(acct.state_dict())
                    memo[id(acct)] = fresh
            twin.strategy = copy.deepcopy(self.strategy, memo)
            twin.mods = copy.deepcopy(self.mods)
            twin._pending, twin._twin = None, None
            self._twin = twin
        return self._twin

    def _aggregate(self, observations: Sequence[ModelUpdate], weights: Sequence[int],
                   generator: torch.Generator) -> ModelUpdate:
        from flwr.app import Message, MetricRecord, RecordDict

        strategy = self._require_strategy()
        first = observations[0]
        with flower_call(generator):
            rnd = self._round_for(first)
            key = self._array_key()
            replies = [Message(RecordDict({
                key: to_arrays({n: rnd.broadcast[n] - t.detach().double().cpu()
                                for n, t in o.tensors.items()}),
                "metrics": MetricRecord({self._weight_key(): int(w)})}),
                reply_to=rnd.messages[i % len(rnd.messages)])
                for i, (o, w) in enumerate(zip(observations, weights))]
            arrays, _ = strategy.aggregate_train(rnd.server_round, replies)
            self._pending = None
        if arrays is None:
            raise InvalidParameterError(
                f"Flower strategy {_name(strategy)} returned no aggregate in round {first.round} "
                f"(Flower skips a round whose replies it rejects). Got {len(observations)} "
                "replies instead.")
        new = from_arrays(arrays)
        return ModelUpdate(
            kind=first.kind,
            tensors={n: (rnd.broadcast[n] - new[n]).to(dtype=t.dtype, device=t.device)
                     for n, t in first.tensors.items()},
            round=first.round,
            num_examples=sum(o.num_examples for o in observations),
        )

    def claim(self, schedule: FederationSchedule) -> PrivacyClaim:
        if self._claim_fn is not None:
            return self._claim_fn(schedule)
        self._require_strategy()
        mod, wrapper = self._local_dp_mod(), self._dp_wrapper()
        if mod is not None:
            return local_dp_claims(clipping_norm=float(mod.clipping_norm),
                                   sensitivity=float(mod.sensitivity), epsilon_=float(mod.epsilon),
                                   delta=float(mod.delta), schedule=schedule)
        if wrapper is not None:
            from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping

            client_side = isinstance(wrapper, DifferentialPrivacyClientSideFixedClipping)
            spent = wrapper.privacy_spent() if wrapper.accountant is not None else None
            if spent is not None and spent.num_releases == 0:
                spent = None
            return central_claims(
                noise_multiplier=float(wrapper.noise_multiplier),
                clipping_norm=float(wrapper.clipping_norm),
                num_sampled_clients=int(wrapper.num_sampled_clients), schedule=schedule,
                delta=self.delta, flower_spent=spent, round_weights=self.round_weights,
                clips_updates=self._clips_on_client() or not client_side,
                wrapper=_name(wrapper))
        return PrivacyClaim.none(
            f"Flower strategy {' > '.join(_name(s) for s in _inner_strategies(self.strategy))} with "
            f"mods {[_name(m) for m in self.mods]}: no DP mechanism recognised, no claim.")
