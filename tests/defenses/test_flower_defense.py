"""FlowerDefense: a Flower strategy and its mods run in fedaudit's simulation exactly as
Flower runs them, and each threat model sees what Flower produces."""

import pytest
import torch

pytest.importorskip("flwr")

from flwr.clientapp.mod import fixedclipping_mod  # noqa: E402
from flwr.serverapp.strategy import (  # noqa: E402
    DifferentialPrivacyClientSideFixedClipping,
    FedAvg,
    FedMedian,
)

from audit.core.defense import DEFENSES, FederationSchedule  # noqa: E402
from audit.core.errors import InvalidParameterError  # noqa: E402
from audit.fl.simulation import ClientData, FederatedSimulation  # noqa: E402
from audit.core.updates import ModelUpdate, UpdateKind  # noqa: E402
from defenses.fedavg import FedAvg as FedauditFedAvg  # noqa: E402
from defenses.flower_strategy import FlowerDefense  # noqa: E402


def _fedavg(**kw):
    return FedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=1, min_available_nodes=1, **kw)


def _clients(sizes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [ClientData(torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)) for n in sizes]


def _simulate(defense, sizes=(4, 4, 4), rounds=2, seed=0):
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 3)
    schedule = FederationSchedule(len(sizes), len(sizes), rounds)
    defense.prepare(schedule)
    sim = FederatedSimulation(model=model, clients=_clients(sizes), defense=defense, schedule=schedule, seed=seed)
    return sim.run(), model


def test_flower_fedavg_matches_fedaudit_fedavg_bit_for_bit_in_float64_tolerance():
    flower, m1 = _simulate(FlowerDefense(_fedavg(), local_steps=2, lr=0.1), sizes=(3, 5, 9))
    ours, m2 = _simulate(FedauditFedAvg(local_steps=2, lr=0.1), sizes=(3, 5, 9))
    for a, b in zip(flower.rounds, ours.rounds):
        for oa, ob in zip(a.observations, b.observations):
            for n in oa.tensors:  # the observation is the raw update (Flower adds nothing)
                torch.testing.assert_close(oa.tensors[n], ob.tensors[n], rtol=0, atol=1e-6)
        for n in a.aggregate.tensors:  # example-weighted mean, as Flower's FedAvg computes it
            torch.testing.assert_close(a.aggregate.tensors[n], b.aggregate.tensors[n], rtol=0, atol=1e-6)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(p1, p2, rtol=0, atol=1e-6)


def test_a_users_own_strategy_aggregates_with_its_own_rule():
    transcript, _ = _simulate(FlowerDefense(FedMedian(fraction_train=1.0, fraction_evaluate=0.0,
                                                      min_train_nodes=1, min_available_nodes=1)))
    record = transcript.rounds[0]
    for n, agg in record.aggregate.tensors.items():
        median = torch.stack([o.tensors[n] for o in record.observations]).median(0).values
        torch.testing.assert_close(agg, median, rtol=0, atol=1e-6)


def test_client_side_clipping_wrapper_server_sees_clipped_updates_aggregate_is_noised():
    strategy = DifferentialPrivacyClientSideFixedClipping(_fedavg(), 1.0, 0.05, 3)
    transcript, _ = _simulate(FlowerDefense(strategy, [fixedclipping_mod], lr=1.0))
    record = transcript.rounds[0]
    norms = [float(torch.cat([t.flatten() for t in o.tensors.values()]).norm()) for o in record.observations]
    assert all(n == pytest.approx(0.05, rel=1e-5) for n in norms), norms  # clipped, no noise
    mean = {n: sum(o.tensors[n] for o in record.observations) / 3 for n in record.aggregate.tensors}
    noise = torch.cat([(record.aggregate.tensors[n] - mean[n]).flatten() for n in mean])
    # noise std z C / m = 1 * 0.05 / 3 per coordinate (21 coordinates)
    assert float(noise.std()) == pytest.approx(0.05 / 3, rel=0.5)


def test_runs_are_deterministic_under_the_seed_and_differ_across_seeds():
    def run(seed):
        strategy = DifferentialPrivacyClientSideFixedClipping(_fedavg(), 1.0, 0.05, 3)
        t, _ = _simulate(FlowerDefense(strategy, [fixedclipping_mod]), seed=seed)
        return torch.cat([t_.flatten() for t_ in t.rounds[-1].aggregate.tensors.values()])

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))


def test_flower_global_random_state_is_left_as_it_was():
    import random

    import numpy as np

    np.random.seed(123)
    random.seed(123)
    expected = (np.random.rand(), random.random())
    np.random.seed(123)
    random.seed(123)
    strategy = DifferentialPrivacyClientSideFixedClipping(_fedavg(), 1.0, 0.05, 3)
    _simulate(FlowerDefense(strategy, [fixedclipping_mod]))
    assert (np.random.rand(), random.random()) == expected


def test_a_strategy_addressing_fewer_clients_than_sampled_is_an_error():
    strategy = FedAvg(fraction_train=0.0, fraction_evaluate=0.0)
    with pytest.raises(InvalidParameterError, match="fraction_train=1.0"):
        _simulate(FlowerDefense(strategy))


def test_not_a_message_api_strategy_is_refused():
    with pytest.raises(InvalidParameterError, match="Message-API strategy"):
        FlowerDefense(object())


def test_builtin_defenses_build_flowers_classes_at_prepare():
    d = DEFENSES.create("flower-dp-server-clipping", noise_multiplier=0.5, clipping_norm=2.0)
    d.prepare(FederationSchedule(5, 3, 1))
    assert d.params()["strategy"] == "DifferentialPrivacyServerSideFixedClipping > FedAvg"
    assert d.params()["num_sampled_clients"] == 3 and d.clip_norm == 2.0
    assert d.default_threat_model == "aggregate-observer" and d.audit_estimators() == ("cp",)
    local = DEFENSES.create("flower-local-dp", epsilon=0.5)
    assert local.default_threat_model == "hbc-server" and "one-run" in local.audit_estimators()


@pytest.mark.parametrize("params, bad", [({"epsilon": 0}, "epsilon"), ({"delta": 0}, "delta"),
                                         ({"delta": 2}, "delta"), ({"sensitivity": -1}, "sensitivity"),
                                         ({"nonsense": 1}, "nonsense")])
def test_local_dp_values_flower_cannot_honour_are_refused_naming_them(params, bad):
    with pytest.raises(InvalidParameterError, match=bad):
        DEFENSES.create("flower-local-dp", **params)


def test_canary_path_goes_through_flowers_mod():
    d = DEFENSES.create("flower-local-dp", clipping_norm=1.0, sensitivity=0.0, epsilon=1.0)
    d.prepare(FederationSchedule(2, 2, 1))
    out = d.canary_client_side(ModelUpdate(UpdateKind.MODEL_DELTA, {"w": torch.tensor([3000.0, 0.0])},
                                           client_id=0, round=0, num_examples=1),
                               generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.tensors["w"], torch.tensor([1.0, 0.0]))  # clipped, no noise
