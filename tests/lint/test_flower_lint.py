"""The accounting lint on real Flower (``flwr`` 1.42, Message API) configurations: Flower's
DP strategy wrappers around FedAvg, its client mods, its RdpAccountant; rounds run for real
(``configure_train`` on a stub grid of 10 nodes, each reply through the mods by Flower's
``make_ffn``, ``aggregate_train``), recorded by fedaudit's recording strategy. Each rule
tripped by a configuration Flower accepts, and not tripped by the correct one."""

import numpy as np
import pytest
import torch

pytest.importorskip("flwr")

from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict  # noqa: E402
from flwr.client.mod import secaggplus_mod  # noqa: E402
from flwr.client.mod.utils import make_ffn  # noqa: E402
from flwr.clientapp.mod import LocalDpMod, fixedclipping_mod  # noqa: E402
from flwr.serverapp import PrivacyConfig, RdpAccountant  # noqa: E402
from flwr.serverapp.strategy import (  # noqa: E402
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideFixedClipping,
    FedAvg,
)
from flwr.supercore.privacy_accounting import (  # noqa: E402
    GaussianPrivacyEvent,
    NeighboringRelation,
    SamplingMethod,
)

from audit.core.errors import InvalidParameterError  # noqa: E402
from audit.fl.flower_runtime import StubGrid, flower_call  # noqa: E402
from audit.integrations.flower.lint_facts import flower_facts, mod_operations  # noqa: E402
from audit.integrations.flower.recording import recording_strategy  # noqa: E402
from audit.privacy.lint import run_lint  # noqa: E402

N = 10
ADD = NeighboringRelation.ADD_OR_REMOVE_ONE


def _accountant(sampling=SamplingMethod.NO_AMPLIFICATION, relation=ADD, delta=1e-3, population=N):
    return RdpAccountant(PrivacyConfig(target_delta=delta, population_size=population,
                                       neighboring_relation=relation, sampling_method=sampling))


def _client_dp(fraction=1.0, m=N, accountant=None, z=1.0):
    return DifferentialPrivacyClientSideFixedClipping(FedAvg(fraction_train=fraction), z, 1.0, m,
                                                      accountant=accountant)


def _rounds(strategy, mods, rounds, weights=None):
    """Run ``rounds`` real Flower rounds: each sampled node returns broadcast + 0.1 through ``mods``."""
    gen = torch.Generator().manual_seed(0)
    ctx = Context(run_id=0, node_id=1, node_config={}, state=RecordDict(), run_config={})
    arrays = ArrayRecord({"w": Array(np.zeros(4))})
    with flower_call(gen):
        for r in range(1, rounds + 1):
            msgs = list(strategy.configure_train(r, arrays, ConfigRecord(), StubGrid(N)))
            replies = []
            for i, msg in enumerate(msgs):
                w = 1 if weights is None else weights[i % len(weights)]

                def app(m, c, w=w):
                    return Message(RecordDict({"arrays": ArrayRecord({"w": Array(np.full(4, 0.1))}),
                                               "metrics": MetricRecord({"num-examples": w})}), reply_to=m)

                replies.append(make_ffn(app, list(mods))(msg, ctx))
            arrays, _ = strategy.aggregate_train(r, replies)


def _rule(facts, rule):
    return [(f.severity, f.message) for f in run_lint(facts) if f.id == rule]


# -- sampling -------------------------------------------------------------------------------
def test_sampling_trips_on_poisson_accounting_of_fedavg_cohorts():
    """Amplification by Poisson sampling claimed with a user's RdpAccountant; FedAvg draws
    a fixed cohort with random.sample."""
    facts = flower_facts(_client_dp(fraction=0.5, m=5), client_mods=[fixedclipping_mod], num_clients=N,
                         accountant=_accountant(SamplingMethod.POISSON))
    found = _rule(facts, "sampling")
    assert [s for s, _ in found] == ["error"] and "without-replacement" in found[0][1]


def test_sampling_trips_on_a_population_other_than_the_nodes():
    acc = _accountant(SamplingMethod.WITHOUT_REPLACEMENT, NeighboringRelation.REPLACE_ONE, population=100)
    found = _rule(flower_facts(_client_dp(fraction=0.5, m=5), client_mods=[fixedclipping_mod], num_clients=N,
                               accountant=acc), "sampling")
    assert [s for s, _ in found] == ["error"] and "0.05" in found[0][1] and "0.5" in found[0][1]


def test_sampling_passes_on_matching_accounting():
    acc = _accountant(SamplingMethod.WITHOUT_REPLACEMENT, NeighboringRelation.REPLACE_ONE)
    assert _rule(flower_facts(_client_dp(fraction=0.5, m=5), client_mods=[fixedclipping_mod], num_clients=N,
                              accountant=acc), "sampling") == []
    own = _client_dp(accountant=_accountant())  # Flower's own: no amplification
    assert _rule(flower_facts(own, client_mods=[fixedclipping_mod], num_clients=N), "sampling") == []


# -- steps ----------------------------------------------------------------------------------
def test_steps_pass_on_the_wrappers_own_accountant_over_real_rounds():
    dp = _client_dp(accountant=_accountant())
    rec = recording_strategy(dp)
    _rounds(rec, [fixedclipping_mod], 2)
    facts = flower_facts(rec, client_mods=[fixedclipping_mod], num_clients=N, rounds_run=len(rec.metrics))
    assert facts.steps_accounted == facts.steps_run == 2
    assert [(f.id, f.severity) for f in run_lint(facts)] == [("secure-rng", "warning")]


def test_steps_trip_on_a_claim_accounted_for_fewer_rounds():
    planned = _accountant()
    planned.compose(GaussianPrivacyEvent(noise_multiplier=1.0, sample_size=N, population_size=N), count=2)
    dp = _client_dp()
    rec = recording_strategy(dp)
    _rounds(rec, [fixedclipping_mod], 3)
    found = _rule(flower_facts(rec, client_mods=[fixedclipping_mod], num_clients=N, accountant=planned,
                               rounds_run=len(rec.metrics)), "steps")
    assert [s for s, _ in found] == ["error"] and "3 steps ran" in found[0][1]


# -- delta, unit, adjacency -----------------------------------------------------------------
def test_delta_trips_on_the_accountants_target_delta():
    found = _rule(flower_facts(_client_dp(accountant=_accountant(delta=0.2)), client_mods=[fixedclipping_mod],
                               num_clients=N), "delta")
    assert [s for s, _ in found] == ["error"] and "n = 10 clients" in found[0][1]
    assert _rule(flower_facts(_client_dp(accountant=_accountant(delta=1e-3)), client_mods=[fixedclipping_mod],
                              num_clients=N), "delta") == []


def test_unit_trips_on_client_level_claim_without_client_level_dp():
    """Plain FedAvg whose clients run Opacus DP-SGD, reported as client-level."""
    found = _rule(flower_facts(FedAvg(), num_clients=N, delta=1e-3, client_training_unit="record"), "unit")
    assert [s for s, _ in found] == ["error"] and "client-level" in found[0][1]
    nothing = _rule(flower_facts(FedAvg(), num_clients=N, delta=1e-3), "unit")
    assert [s for s, _ in nothing] == ["error"] and "no DP mechanism" in nothing[0][1]


def test_unit_passes_on_the_dp_wrapper():
    assert _rule(flower_facts(_client_dp(), client_mods=[fixedclipping_mod], num_clients=N), "unit") == []


def test_adjacency_trips_on_a_replace_one_claim_of_add_remove_accounting():
    found = _rule(flower_facts(_client_dp(accountant=_accountant()), client_mods=[fixedclipping_mod],
                               num_clients=N, claimed_adjacency="replace-one"), "adjacency")
    assert [s for s, _ in found] == ["error"] and "flower-rdp accounted add-remove" in found[0][1]
    local = LocalDpMod(clipping_norm=1.0, sensitivity=2.0, epsilon=0.5, delta=1e-3)
    assert [s for s, _ in _rule(flower_facts(FedAvg(), client_mods=[local], num_clients=N), "adjacency")] == [
        "error"]


def test_adjacency_passes_when_claimed_as_accounted():
    assert _rule(flower_facts(_client_dp(accountant=_accountant()), client_mods=[fixedclipping_mod],
                              num_clients=N), "adjacency") == []
    local = LocalDpMod(clipping_norm=1.0, sensitivity=2.0, epsilon=0.5, delta=1e-3)
    assert _rule(flower_facts(FedAvg(), client_mods=[local], num_clients=N, claimed_adjacency="replace-one"),
                 "adjacency") == []


# -- noise-scale ----------------------------------------------------------------------------
def test_noise_scale_trips_when_num_sampled_clients_exceeds_the_cohort():
    """z*C/10 on a FedAvg mean over the 5 clients fraction_train=0.5 samples: z_eff = z/2."""
    facts = flower_facts(_client_dp(fraction=0.5, m=N), client_mods=[fixedclipping_mod], num_clients=N)
    found = _rule(facts, "noise-scale")
    assert facts.effective_noise_multiplier == pytest.approx(0.5)
    assert [s for s, _ in found] == ["error"] and "cohort of 5" in found[0][1]


def test_noise_scale_trips_on_example_weighted_rounds_observed():
    rec = recording_strategy(_client_dp())
    _rounds(rec, [fixedclipping_mod], 1, weights=[1, 1, 1, 1, 1, 1, 1, 1, 1, 11])
    weights = [[m["num-examples"] for m in r.values()] for r in rec.metrics]
    facts = flower_facts(rec, client_mods=[fixedclipping_mod], num_clients=N, round_weights=weights)
    assert facts.effective_noise_multiplier == pytest.approx(20 / (10 * 11))
    assert [s for s, _ in _rule(facts, "noise-scale")] == ["error"]


def test_noise_scale_passes_on_equal_weights_and_full_cohorts():
    rec = recording_strategy(_client_dp())
    _rounds(rec, [fixedclipping_mod], 2)
    weights = [[m["num-examples"] for m in r.values()] for r in rec.metrics]
    facts = flower_facts(rec, client_mods=[fixedclipping_mod], num_clients=N, round_weights=weights)
    assert facts.mean_divisors_used == (10.0, 10.0) and facts.effective_noise_multiplier == pytest.approx(1.0)
    assert _rule(facts, "noise-scale") == []


# -- secure-rng -----------------------------------------------------------------------------
def test_secure_rng_trips_on_flowers_numpy_noise():
    found = _rule(flower_facts(_client_dp(), client_mods=[fixedclipping_mod], num_clients=N), "secure-rng")
    assert [s for s, _ in found] == ["warning"]


def test_secure_rng_not_raised_without_noise():
    assert _rule(flower_facts(FedAvg(), num_clients=N), "secure-rng") == []


# -- clip-order -----------------------------------------------------------------------------
def _noise_mod(msg, ctx, call_next):
    """A user's mod adding Gaussian noise (std 10) to the reply's arrays."""
    out = call_next(msg, ctx)
    key, rec = next(iter(out.content.array_records.items()))
    out.content[key] = ArrayRecord({k: Array(v.numpy() + np.random.normal(0, 10, v.numpy().shape))
                                    for k, v in rec.items()})
    return out


def test_mod_order_follows_flowers_chaining():
    """make_ffn makes mods[0] the outermost: the reply passes the last mod first."""
    seen = []

    def tag(name):
        def mod(msg, ctx, call_next):
            out = call_next(msg, ctx)
            seen.append(name)
            return out
        return mod

    a, b = tag("a"), tag("b")
    ctx = Context(run_id=0, node_id=1, node_config={}, state=RecordDict(), run_config={})
    with flower_call(None):
        msg = Message(RecordDict({"arrays": ArrayRecord({"w": Array(np.zeros(2))})}), dst_node_id=1,
                      message_type="train")
        make_ffn(lambda m, c: Message(RecordDict(), reply_to=m), [a, b])(msg, ctx)
    assert seen == ["b", "a"]
    assert mod_operations([a, b], {a: ("clip",), b: ("noise",)}) == ("noise", "clip")


def test_clip_order_trips_on_a_noise_mod_inside_the_clipping_mod():
    """mods=[fixedclipping_mod, noise]: the noised reply is clipped to C (shown), so the
    noise was calibrated to nothing."""
    rec = recording_strategy(_client_dp())
    _rounds(rec, [fixedclipping_mod, _noise_mod], 1)
    delta_norm = float(rec.transcript.rounds[0].observations[0].tensors["w"].norm())
    assert delta_norm == pytest.approx(1.0)  # clipped after the noise of std 10
    found = _rule(flower_facts(rec, client_mods=[fixedclipping_mod, _noise_mod], num_clients=N,
                               mod_operations_of={_noise_mod: ("noise",)}), "clip-order")
    assert [s for s, _ in found] == ["error"] and "before clipping" in found[0][1]


@pytest.mark.parametrize("mods,needle", [([], "nothing clips"), ([fixedclipping_mod, secaggplus_mod], "masking")])
def test_clip_order_trips_without_client_clipping_or_clipping_after_masking(mods, needle):
    found = _rule(flower_facts(_client_dp(), client_mods=mods, num_clients=N), "clip-order")
    assert [s for s, _ in found] == ["error"] and needle in found[0][1]


@pytest.mark.parametrize("strategy,mods", [
    (_client_dp(), [fixedclipping_mod]),
    (_client_dp(), [secaggplus_mod, fixedclipping_mod]),
    (_client_dp(), [_noise_mod, fixedclipping_mod]),
    (DifferentialPrivacyServerSideFixedClipping(FedAvg(), 1.0, 1.0, N), []),
    (FedAvg(), [LocalDpMod(clipping_norm=1.0, sensitivity=2.0, epsilon=0.5, delta=1e-3)]),
])
def test_clip_order_passes(strategy, mods):
    assert _rule(flower_facts(strategy, client_mods=mods, num_clients=N,
                              mod_operations_of={_noise_mod: ("noise",)}), "clip-order") == []


def test_flower_facts_validates_its_inputs():
    with pytest.raises(InvalidParameterError, match="'num_clients'.*0"):
        flower_facts(FedAvg(), num_clients=0)
    with pytest.raises(InvalidParameterError, match="'client_mods'"):
        flower_facts(FedAvg(), num_clients=N, client_mods=fixedclipping_mod)
    with pytest.raises(InvalidParameterError, match="'claimed_unit'.*'user'"):
        flower_facts(FedAvg(), num_clients=N, claimed_unit="user")
