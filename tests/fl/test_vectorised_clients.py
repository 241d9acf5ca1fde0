"""The vectorised many-clients path (audit.fl.vectorised_clients) against the loop path:
same updates and aggregates, DP-FedAvg's clip and noise, Poisson sampling, and the
fallback to the loop with its reason.

Statistical tests are seeded (deterministic); each states the false-positive rate it would
have over fresh seeds."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from audit.core.claims import PrivacyClaim
from audit.core.defense import DEFENSES, Defense, FederationSchedule
from audit.core.errors import InvalidParameterError
from audit.core.updates import ClientData, LocalTraining, ModelUpdate, UpdateKind, average
from audit.fl.simulation import FederatedSimulation, local_update
from audit.fl.batched_defenses import batched_client_side, clip_l2_batched
from audit.fl.vectorised_clients import (
    batched_updates,
    run_vectorised,
    sample_clients,
    simulate,
    stack_clients,
    vectorisable,
)
from audit.models.registry import create_model

torch.set_num_threads(1)
#: |z| of a normal approximation above which a test fails: two-sided false-positive rate 1e-5
Z_CRIT = 4.42


def _model(hidden: int = 8) -> nn.Module:
    torch.manual_seed(0)
    return create_model("mlp", input_shape=(1, 4, 4), num_classes=5, channel_mean=(0.5,), channel_std=(0.3,),
                        hidden=hidden)


def _clients(sizes, seed: int = 1) -> list[ClientData]:
    g = torch.Generator().manual_seed(seed)
    return [ClientData(torch.rand(n, 1, 4, 4, generator=g), torch.randint(0, 5, (n,), generator=g)) for n in sizes]


SIZES = (1, 4, 7, 2, 5, 3)


def _assert_close(a, b, atol=1e-6):
    assert set(a) == set(b)
    for n in a:
        torch.testing.assert_close(a[n], b[n], atol=atol, rtol=1e-5)


@pytest.mark.parametrize("training", [
    LocalTraining(),  # FedSGD: one gradient
    LocalTraining(steps=3, kind=UpdateKind.MODEL_DELTA, momentum=0.9, weight_decay=0.01),
    LocalTraining(steps=2, kind=UpdateKind.MODEL_DELTA, optimizer="adam", lr=0.01,
                  class_weights=(1.0, 2.0, 0.5, 1.0, 3.0)),
], ids=["fedsgd", "fedavg-momentum", "fedavg-adam-weighted"])
def test_batched_updates_equal_the_loops_local_update_for_unequal_client_sizes(training):
    model, clients = _model(), _clients(SIZES)
    before = copy.deepcopy(model.state_dict())
    images, labels, lengths = stack_clients(clients)
    assert images.shape[:2] == (len(SIZES), max(SIZES)) and lengths.tolist() == list(SIZES)
    stacked = batched_updates(model, images, labels, lengths, training)
    chunked = batched_updates(model, images, labels, lengths, training, chunk_size=4)
    for k, c in enumerate(clients):
        loop = local_update(model, c, training, client_id=k, round=0).tensors
        _assert_close({n: t[k] for n, t in stacked.items()}, dict(loop))
        _assert_close({n: t[k] for n, t in chunked.items()}, dict(loop))
    _assert_close(model.state_dict(), before, atol=0)  # the broadcast model is left unchanged


@pytest.mark.parametrize("name,params", [
    ("fedavg", {}), ("fedsgd", {}),
    ("dp-fedavg", {"mode": "local", "noise_multiplier": 0.0, "clip_norm": 1.0}),  # some clipped, some not
    ("dp-fedavg", {"mode": "central", "noise_multiplier": 0.0, "clip_norm": 0.05, "base": "fedavg"}),
    # central noise is drawn once per round, in the loop's order: equal even with noise
    ("dp-fedavg", {"mode": "central", "noise_multiplier": 1.0, "clip_norm": 0.05}),
])
def test_a_run_equals_the_loop(name, params):
    defense = DEFENSES.create(name, **params)
    schedule = FederationSchedule(num_clients=len(SIZES), clients_per_round=4, rounds=3)
    defense.prepare(schedule)
    model, clients = _model(), _clients(SIZES)
    vec_model, loop_model = copy.deepcopy(model), copy.deepcopy(model)
    result = simulate(model=vec_model, clients=clients, defense=defense, schedule=schedule, seed=3,
                      keep_observations=True)
    assert result.path == "vectorised" and result.describe()["path"] == "vectorised"
    loop = FederatedSimulation(model=loop_model, clients=clients, defense=defense, schedule=schedule, seed=3).run()
    for v, r in zip(result.transcript.rounds, loop.rounds, strict=True):
        assert v.sampled == r.sampled
        assert v.aggregate.kind == r.aggregate.kind and v.aggregate.num_examples == r.aggregate.num_examples
        _assert_close(dict(v.aggregate.tensors), dict(r.aggregate.tensors))
        _assert_close(v.broadcast, r.broadcast)
        for vo, ro in zip(v.observations, r.observations, strict=True):
            assert (vo.client_id, vo.num_examples) == (ro.client_id, ro.num_examples)
            _assert_close(dict(vo.tensors), dict(ro.tensors))
            assert vo.info.keys() == ro.info.keys()
            for key in vo.info:
                assert vo.info[key] == pytest.approx(ro.info[key], rel=1e-5)
    _assert_close(dict(vec_model.named_parameters()), dict(loop_model.named_parameters()))


def test_observations_are_not_kept_by_default():
    defense = DEFENSES.create("fedavg")
    schedule = FederationSchedule(num_clients=6, clients_per_round=6, rounds=1)
    result = run_vectorised(model=_model(), clients=_clients(SIZES), defense=defense, schedule=schedule)
    (record,) = result.transcript.rounds
    assert record.observations == [] and record.sampled == list(range(6)) and not result.observations_kept


def _stacked(k: int = 40, scale: float = 1.0, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"w": scale * torch.randn(k, 30, 20, generator=g), "b": scale * torch.randn(k, 20, generator=g)}


def _flat(tensors, k):
    return torch.cat([t.reshape(k, -1) for t in tensors.values()], 1)


def test_dp_clipping_bounds_every_clients_norm_and_keeps_small_updates():
    defense = DEFENSES.create("dp-fedavg", mode="local", noise_multiplier=0.0, clip_norm=3.0)
    scale = torch.linspace(0.01, 1.0, 40) ** 2  # norms from ~0 to ~25
    stacked = {n: t * scale.view(40, *[1] * (t.dim() - 1)) for n, t in _stacked().items()}
    obs, info = batched_client_side(defense, stacked, generator=torch.Generator().manual_seed(0))
    norms_after = torch.linalg.vector_norm(_flat(obs, 40), dim=1)
    norms_before = info["norm_before_clipping"]
    assert bool((norms_after <= 3.0 * (1 + 1e-6)).all())
    assert (norms_before > 3).any() and (norms_before < 3).any()
    small = norms_before < 3
    torch.testing.assert_close(_flat(obs, 40)[small], _flat(stacked, 40)[small])
    torch.testing.assert_close(norms_before.float(), torch.linalg.vector_norm(_flat(stacked, 40), dim=1))


def _z_of_variance(samples: torch.Tensor, std: float) -> float:
    """(s^2 / sigma^2 - 1) / sqrt(2 / (n - 1)): approximately N(0, 1) for n i.i.d. N(0, sigma^2)."""
    n = samples.numel()
    return (float(samples.double().square().mean()) / std ** 2 - 1) / math.sqrt(2 / (n - 1))


def test_dp_local_noise_has_std_z_times_c_on_each_client():
    # 40 clients x 620 coordinates: |z| > 4.42 fails a correct mechanism with probability 1e-5
    defense = DEFENSES.create("dp-fedavg", mode="local", noise_multiplier=0.7, clip_norm=2.0)
    stacked = _stacked(scale=5.0)
    obs, _ = batched_client_side(defense, stacked, generator=torch.Generator().manual_seed(0))
    clipped, _ = clip_l2_batched(stacked, 2.0)
    noise = _flat(obs, 40) - _flat(clipped, 40)
    assert abs(_z_of_variance(noise, 0.7 * 2.0)) < Z_CRIT
    assert abs(float(noise.mean())) / (1.4 / math.sqrt(noise.numel())) < Z_CRIT
    # each client's noise is its own: different clients, different draws
    assert not torch.allclose(noise[0], noise[1])


def test_dp_central_aggregate_noise_has_std_z_times_c_over_the_expected_clients():
    # 10 rounds x the MLP's 189 coordinates; FPR of the |z| test 1e-5
    defense = DEFENSES.create("dp-fedavg", mode="central", noise_multiplier=1.5, clip_norm=0.1)
    schedule = FederationSchedule(num_clients=6, clients_per_round=3, rounds=10)
    defense.prepare(schedule)
    result = run_vectorised(model=_model(), clients=_clients(SIZES), defense=defense, schedule=schedule,
                            keep_observations=True)
    noise = []
    for record in result.transcript.rounds:
        total = {n: sum(o.tensors[n] for o in record.observations) for n in record.aggregate.tensors}
        noise.append(torch.cat([(record.aggregate.tensors[n] * 3 - total[n]).reshape(-1) for n in total]))
        assert all(o.l2_norm() <= 0.1 * (1 + 1e-5) for o in record.observations)
    assert abs(_z_of_variance(torch.cat(noise), 1.5 * 0.1)) < Z_CRIT


def test_poisson_sampling_draws_the_expected_number_on_average():
    # 400 rounds of Binomial(200, 0.1): mean 20, std of the average 0.212; |z| < 4.42 (FPR 1e-5)
    schedule = FederationSchedule(num_clients=200, clients_per_round=20, rounds=1)
    g = torch.Generator().manual_seed(0)
    counts = torch.tensor([len(sample_clients(schedule, "poisson", g)) for _ in range(400)], dtype=torch.float64)
    assert abs(float(counts.mean()) - 20) / math.sqrt(200 * 0.1 * 0.9 / 400) < Z_CRIT
    assert float(counts.std()) > 0  # not a fixed size
    fixed = sample_clients(schedule, "fixed", g)
    assert len(fixed) == 20 and fixed == sorted(set(fixed))


def test_poisson_run_records_varying_rounds_and_an_empty_round_aggregates_to_zero():
    schedule = FederationSchedule(num_clients=6, clients_per_round=1, rounds=12)  # rate 1/6: some rounds empty
    model = _model()
    result = run_vectorised(model=model, clients=_clients(SIZES), defense=DEFENSES.create("fedavg"),
                            schedule=schedule, sampling="poisson", seed=0)
    sizes = [len(r.sampled) for r in result.transcript.rounds]
    assert result.sampling == "poisson" and 0 in sizes and max(sizes) >= 1
    empty = next(r for r in result.transcript.rounds if not r.sampled)
    assert all(float(t.abs().max()) == 0 for t in empty.aggregate.tensors.values())


class _PlainMean(Defense):
    """A defense the vectorised path does not know: identity client side, plain mean."""

    name = "plain-mean"

    @property
    def local_training(self) -> LocalTraining:
        return LocalTraining()

    def params(self):
        return {}

    def client_side(self, update, *, generator):
        return update

    def server_side(self, observations, *, generator):
        return ModelUpdate(kind=observations[0].kind, tensors=average(observations), round=observations[0].round)

    def claim(self, schedule):
        return PrivacyClaim.none("no claim")


class _BatchedPlainMean(_PlainMean):
    """The same defense, opted in with the batched sides."""

    name = "batched-plain-mean"

    def batched_client_side(self, stacked, *, generator):
        return stacked, {}

    def batched_server_side(self, stacked, num_examples, *, expected_clients, generator):
        return {n: t.mean(0) for n, t in stacked.items()}


def test_an_unknown_defense_falls_back_to_the_loop_and_says_why():
    schedule = FederationSchedule(num_clients=6, clients_per_round=2, rounds=1)
    result = simulate(model=_model(), clients=_clients(SIZES), defense=_PlainMean(), schedule=schedule)
    assert result.path == "loop" and "plain-mean" in result.reason and "batched client side" in result.reason
    assert len(result.transcript.rounds[0].observations) == 2  # the loop keeps every observation
    ok, reason = vectorisable(DEFENSES.create("fedqsn"))
    assert not ok and "fedqsn" in reason


def test_an_opted_in_defense_runs_vectorised_and_equals_the_loop():
    schedule = FederationSchedule(num_clients=6, clients_per_round=3, rounds=2)
    model = _model()
    vec = simulate(model=copy.deepcopy(model), clients=_clients(SIZES), defense=_BatchedPlainMean(),
                   schedule=schedule)
    loop = FederatedSimulation(model=copy.deepcopy(model), clients=_clients(SIZES), defense=_BatchedPlainMean(),
                               schedule=schedule).run()
    assert vec.path == "vectorised"
    for v, r in zip(vec.transcript.rounds, loop.rounds, strict=True):
        _assert_close(dict(v.aggregate.tensors), dict(r.aggregate.tensors))


def test_training_and_models_the_path_cannot_batch_are_named():
    fedavg = DEFENSES.create("fedavg")
    minibatch = LocalTraining(kind=UpdateKind.MODEL_DELTA, batch_size=2)
    assert "batch_size=2" in vectorisable(fedavg, minibatch)[1]
    assert "my:loss" in vectorisable(fedavg, LocalTraining(loss="my:loss"))[1]
    bn = nn.Sequential(nn.Flatten(), nn.Linear(16, 4), nn.BatchNorm1d(4))
    assert "BatchNorm1d" in vectorisable(fedavg, model=bn)[1]
    drop = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(16, 4))
    assert "Dropout" in vectorisable(fedavg, model=drop)[1]
    assert vectorisable(fedavg, LocalTraining(kind=UpdateKind.MODEL_DELTA, model_mode="eval"), drop)[0]
    subclass = type("MyFedAvg", (type(fedavg),), {})()
    assert not vectorisable(subclass)[0]  # a subclass may change the behaviour: the loop
    schedule = FederationSchedule(num_clients=6, clients_per_round=2, rounds=1)
    result = simulate(model=_model(), clients=_clients(SIZES), defense=fedavg, schedule=schedule,
                      training=minibatch)
    assert result.path == "loop" and "minibatches" in result.reason


def test_bad_options_are_named_in_the_error():
    schedule = FederationSchedule(num_clients=6, clients_per_round=2, rounds=1)
    kw = dict(model=_model(), clients=_clients(SIZES), schedule=schedule)
    with pytest.raises(InvalidParameterError, match="'sampling'.*'uniform'"):
        simulate(defense=DEFENSES.create("fedavg"), sampling="uniform", **kw)
    with pytest.raises(InvalidParameterError, match="'path'.*'gpu'"):
        simulate(defense=DEFENSES.create("fedavg"), path="gpu", **kw)
    with pytest.raises(InvalidParameterError, match="'sampling'.*loop path.*'poisson'"):
        simulate(defense=_PlainMean(), sampling="poisson", **kw)
    with pytest.raises(InvalidParameterError, match="plain-mean.*cannot run vectorised"):
        run_vectorised(defense=_PlainMean(), **kw)
    with pytest.raises(InvalidParameterError, match="'chunk_size'.*0"):
        run_vectorised(defense=DEFENSES.create("fedavg"), chunk_size=0, **kw)
    with pytest.raises(InvalidParameterError, match="must be finite"):
        clip_l2_batched({"w": torch.tensor([[1.0, float("nan")]])}, 1.0)
