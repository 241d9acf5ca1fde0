"""The compression baselines as defenses (top-k sparsification, gradient pruning, QSGD,
signSGD): closed forms and planted cases, QSGD's unbiasedness as a seeded statistical test,
hypothesis properties, parameter errors, no DP claim, ``fedaudit list`` and the export to
Flower."""

import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.cli.main import cli
from audit.core.config import AuditConfig
from audit.core.defense import DEFENSES, FederationSchedule
from audit.core.errors import InvalidParameterError
from audit.core.updates import ModelUpdate, UpdateKind
from audit.harness import prepare
from audit.integrations.flower.export import check_exportable
from defenses.gradient_pruning import pruned_count
from defenses.qsgd import quantize
from defenses.top_k import keep_largest, sparsify, top_k_count

NAMES = ("top-k-sparsification", "gradient-pruning", "qsgd", "signsgd")


def _update(tensors, kind=UpdateKind.GRADIENT, client_id=0, n=1):
    return ModelUpdate(kind, {k: torch.as_tensor(v, dtype=torch.float32) for k, v in tensors.items()},
                       client_id=client_id, num_examples=n)


def _send(defense, tensors, seed=0):
    return defense.client_side(_update(tensors), generator=torch.Generator().manual_seed(seed)).tensors


def _planted(n, seed):
    """n entries of distinct magnitudes 1..n, shuffled, random signs."""
    g = torch.Generator().manual_seed(seed)
    mags = torch.randperm(n, generator=g).float() + 1
    return mags * (torch.randint(0, 2, (n,), generator=g).float() * 2 - 1)


# --- top-k and gradient pruning ---------------------------------------------------------

def test_top_k_keeps_exactly_the_k_largest_entries_unchanged():
    v = _planted(40, 0).view(4, 10)
    d = DEFENSES.create("top-k-sparsification", fraction=0.1)
    sent = _send(d, {"w": v})["w"]
    kept = sent != 0
    assert int(kept.sum()) == 4  # ceil(0.1 * 40)
    assert torch.equal(sent[kept], v[kept])  # values sent exactly
    assert set(v.abs()[kept].tolist()) == {37.0, 38.0, 39.0, 40.0}


def test_top_k_per_tensor_and_over_the_whole_update():
    big, small = _planted(20, 1) * 10, _planted(5, 2)  # every entry of `big` beats `small`
    tensor = _send(DEFENSES.create("top-k-sparsification", fraction=0.2), {"a": big, "b": small})
    update = _send(DEFENSES.create("top-k-sparsification", fraction=0.2, scope="update"),
                   {"a": big, "b": small})
    assert [int((tensor[n] != 0).sum()) for n in "ab"] == [4, 1]  # ceil(0.2 n) per tensor
    assert [int((update[n] != 0).sum()) for n in "ab"] == [5, 0]  # ceil(0.2 * 25) overall, all in `a`
    assert set(update["a"][update["a"] != 0].abs().tolist()) == {160.0, 170.0, 180.0, 190.0, 200.0}


def test_top_k_counts_and_ties():
    assert [top_k_count(f, 10) for f in (0.01, 0.1, 0.25, 0.3, 1.0)] == [1, 1, 3, 3, 10]
    assert top_k_count(0.7, 10) == 7 and top_k_count(1 - 0.7, 10) == 3  # no float creep
    tied = keep_largest(torch.ones(10), 3)
    assert int((tied != 0).sum()) == 3  # exactly k even when every magnitude ties


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=50),
       fraction=st.floats(0.001, 1.0))
def test_top_k_property_kept_entries_dominate_dropped_ones(values, fraction):
    v = torch.tensor(values, dtype=torch.float64)
    k = top_k_count(fraction, len(values))
    out = sparsify({"w": v}, lambda n: top_k_count(fraction, n))["w"]
    # every entry is sent unchanged or zeroed, at most k survive, and they are the k largest
    assert torch.all((out == 0) | (out == v))
    assert int((out != 0).sum()) <= k
    assert sorted(out.abs().tolist(), reverse=True)[:k] == sorted(v.abs().tolist(), reverse=True)[:k]


def test_gradient_pruning_zeroes_the_smallest_share():
    v = _planted(10, 3)
    sent = _send(DEFENSES.create("gradient-pruning", prune_ratio=0.3), {"w": v})["w"]
    assert set(v.abs()[sent == 0].tolist()) == {1.0, 2.0, 3.0}  # floor(0.3 * 10) smallest pruned
    assert torch.equal(sent[sent != 0], v[sent != 0])
    assert torch.equal(_send(DEFENSES.create("gradient-pruning", prune_ratio=0.0), {"w": v})["w"], v)
    assert pruned_count(0.99, 1) == 0 and pruned_count(0.999, 10) == 9  # a tensor keeps >= 1 entry


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
def test_gradient_pruning_is_top_k_with_one_minus_the_ratio(ratio):
    tensors = {"a": _planted(10, 4), "b": _planted(37, 5).view(37, 1), "c": _planted(3, 6)}
    for scope in ("tensor", "update"):
        pruned = _send(DEFENSES.create("gradient-pruning", prune_ratio=ratio, scope=scope), tensors)
        top = _send(DEFENSES.create("top-k-sparsification", fraction=1 - ratio, scope=scope), tensors)
        assert all(torch.equal(pruned[n], top[n]) for n in tensors)


# --- QSGD ---------------------------------------------------------------------------------

def _grid_levels(q, v, s, bucket):
    """q / (bucket norm / s): the level of each entry (must be integers in [-s, s])."""
    norms = torch.linalg.vector_norm(v.double().view(-1, bucket), dim=1, keepdim=True)
    return (q.double().view(-1, bucket) * s / norms), norms


def test_qsgd_is_unbiased_seeded_statistical_test():
    """E[Q(v)] = v per entry. N = 20000 independent quantisations of a planted v (24 entries,
    buckets of 8, bits 2: s = 3); the mean's z-score uses the closed-form variance
    norm^2 p (1 - p) / s^2 (p: the fractional part of s |v_i| / norm). Rejecting when any of
    the 24 |z| exceeds 4.06 (two-sided 4.9e-5 each) has false-positive rate <= 24 * 4.9e-5
    = 1.2e-3 (Bonferroni, normal approximation) for an unbiased quantiser; the seed is fixed,
    so the test is deterministic. The same test rejects round-to-nearest (biased)."""
    s, bucket, n_draws = 3, 8, 20_000
    v = torch.tensor([0.3, -1.2, 0.05, 2.0, -0.7, 0.0, 0.9, -0.15] * 3) * torch.arange(1, 25) / 10
    q = quantize(v.repeat(n_draws), s, bucket_size=bucket, generator=torch.Generator().manual_seed(7))
    draws = q.view(n_draws, -1).double()
    norms = torch.linalg.vector_norm(v.double().view(-1, bucket), dim=1).repeat_interleave(bucket)
    r = s * v.double().abs() / norms
    var = norms ** 2 * (r - r.floor()) * (1 - (r - r.floor())) / s ** 2
    err = draws.mean(0) - v.double()
    on_grid = var == 0
    assert float(err[on_grid].abs().max()) < 1e-6
    z = err[~on_grid] / (var[~on_grid] / n_draws).sqrt()
    assert float(z.abs().max()) < 4.06, z
    nearest = torch.sign(v.double()) * norms * torch.round(r) / s
    z_biased = (nearest - v.double())[~on_grid] / (var[~on_grid] / n_draws).sqrt()
    assert float(z_biased.abs().max()) > 4.06  # the test has power against a biased rounding


@settings(max_examples=80, deadline=None)
@given(values=st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=1, max_size=40),
       bits=st.integers(1, 16), bucket=st.sampled_from([1, 2, 3, 8]), seed=st.integers(0, 2**16))
def test_qsgd_property_values_lie_on_the_grid_next_to_the_input(values, bits, bucket, seed):
    s = 2 ** bits - 1
    n = -(-len(values) // bucket) * bucket
    v = torch.zeros(n)
    v[:len(values)] = torch.tensor(values)
    q = quantize(v, s, bucket_size=bucket, generator=torch.Generator().manual_seed(seed))
    levels, norms = _grid_levels(q, v, s, bucket)
    levels = torch.nan_to_num(levels, nan=0.0)  # a zero bucket is sent as zeros
    assert torch.all(q[norms.repeat_interleave(bucket) == 0] == 0)
    assert torch.allclose(levels, levels.round(), atol=1e-3 * max(1, s / 1e3))  # on the grid
    assert float(levels.abs().max()) <= s + 1e-3
    assert torch.all((q == 0) | (torch.sign(q) == torch.sign(v)))  # the sign is kept
    step = (norms / s).repeat_interleave(bucket, dim=1).reshape(-1)
    assert torch.all((q.double() - v.double()).abs() <= step * (1 + 1e-4) + 1e-6)  # adjacent level


def test_qsgd_defense_buckets_each_tensor_and_one_bit_is_ternary():
    v = torch.tensor([3.0, -4.0, 0.0, 1.0, 1.0, 1.0, -1.0, 1.0])
    d = DEFENSES.create("qsgd", bits=1, bucket_size=4)
    sent = _send(d, {"w": v, "b": torch.zeros(3)}, seed=1)
    assert set(sent["w"][:4].abs().tolist()) <= {0.0, np.float32(math.sqrt(26)).item()}  # s = 1: {0, ||bucket||}
    assert set(sent["w"][4:].abs().tolist()) <= {0.0, 2.0}
    assert torch.all(sent["b"] == 0)
    exact = DEFENSES.create("qsgd", bits=8, bucket_size=0)  # |v_i| / ||v|| s integral: no noise
    assert torch.equal(_send(exact, {"w": torch.tensor([3.0, -4.0])})["w"], torch.tensor([3.0, -4.0]))
    a, b = _send(d, {"w": v}, seed=1)["w"], _send(d, {"w": v}, seed=2)["w"]
    assert torch.equal(a, _send(d, {"w": v}, seed=1)["w"]) and not torch.equal(a, b)  # seeded


# --- signSGD ------------------------------------------------------------------------------

def test_signsgd_majority_vote_planted_case():
    d = DEFENSES.create("signsgd", scale=0.5)
    clients = [[2.0, 0.1, -3.0, 0.0, 1.0], [5.0, -0.2, -1.0, 0.0, -1.0],
               [0.3, -7.0, 4.0, 0.0, 0.0]]
    obs = [d.client_side(_update({"w": c}, client_id=k, n=10 * k + 1),
                         generator=torch.Generator().manual_seed(0)) for k, c in enumerate(clients)]
    assert obs[0].tensors["w"].tolist() == [1.0, 1.0, -1.0, 0.0, 1.0]  # sign(0) = 0
    agg = d.server_side(obs, generator=torch.Generator().manual_seed(0))
    # votes: 3 up; 1 up 2 down; 1 up 2 down; none; 1 up 1 down (tie) -> one vote per client,
    # whatever its number of examples
    assert agg.tensors["w"].tolist() == [0.5, -0.5, -0.5, 0.0, 0.0]
    assert agg.kind is UpdateKind.GRADIENT


def test_signsgd_moves_every_coordinate_by_lr_times_scale_in_the_simulation():
    cfg = AuditConfig(defense="signsgd", defense_params={"scale": 0.2, "lr": 0.5}, dataset="digits",
                      model="mlp", model_params={"hidden": 8}, batch_size=2, num_targets=3, rounds=2)
    run = prepare(cfg, device=torch.device("cpu"))
    first, second = run.transcript.rounds
    for name, t in first.aggregate.tensors.items():
        vote = torch.sign(sum(o.tensors[name] for o in first.observations))
        assert torch.allclose(first.broadcast[name] - second.broadcast[name], 0.5 * 0.2 * vote, atol=1e-6)
    assert all(set(torch.unique(o.tensors[n]).tolist()) <= {-1.0, 0.0, 1.0}
               for o in first.observations for n in o.tensors)


def test_signsgd_around_fedavg_signs_the_model_delta():
    d = DEFENSES.create("signsgd", base="fedavg", local_steps=3)
    assert d.local_training.steps == 3 and d.local_training.kind is UpdateKind.MODEL_DELTA
    out = d.client_side(_update({"w": [0.5, -2.0]}, kind=UpdateKind.MODEL_DELTA),
                        generator=torch.Generator())
    assert out.tensors["w"].tolist() == [1.0, -1.0] and out.kind is UpdateKind.MODEL_DELTA


# --- parameters, claims, registry, export --------------------------------------------------

@pytest.mark.parametrize("name, params, match", [
    ("top-k-sparsification", {"fraction": 0}, r"'fraction'.*\(0, 1\]. Got 0"),
    ("top-k-sparsification", {"fraction": 1.5}, r"'fraction'.*Got 1.5"),
    ("top-k-sparsification", {"fraction": float("nan")}, r"'fraction'.*Got nan"),
    ("top-k-sparsification", {"scope": "layer"}, r"'scope'.*'tensor', 'update'.*Got 'layer'"),
    ("top-k-sparsification", {"k": 3}, r"Unknown parameter 'k'"),
    ("gradient-pruning", {"prune_ratio": 1.0}, r"'prune_ratio'.*\[0, 1\). Got 1.0"),
    ("gradient-pruning", {"prune_ratio": -0.1}, r"'prune_ratio'.*Got -0.1"),
    ("qsgd", {"bits": 0}, r"'bits'.*\[1, 16\]. Got 0"),
    ("qsgd", {"bits": 17}, r"'bits'.*Got 17"),
    ("qsgd", {"bits": 2.5}, r"'bits'.*an int. Got 2.5"),
    ("qsgd", {"bucket_size": -1}, r"'bucket_size'.*Got -1"),
    ("signsgd", {"scale": 0}, r"'scale'.*Got 0"),
    ("signsgd", {"local_steps": 2}, r"'local_steps'.*needs base='fedavg'"),
    ("qsgd", {"base": "sgd"}, r"'base'.*Got 'sgd'"),
])
def test_bad_parameters_are_named_with_their_value(name, params, match):
    with pytest.raises(InvalidParameterError, match=match):
        DEFENSES.create(name, **params)


@pytest.mark.parametrize("name", NAMES)
def test_no_dp_claim_and_params_rebuild_the_defense(name):
    d = DEFENSES.create(name, base="fedavg", local_steps=2, lr=0.05)
    claim = d.claim(FederationSchedule(4, 2, 3))
    assert claim.has_dp is False and claim.epsilon is None
    assert f"{name} makes no differential-privacy claim" in claim.statement
    assert DEFENSES.create(name, **d.params()).params() == d.params()
    assert d.params()["base"] == "fedavg" and d.local_training.lr == 0.05


def test_fedaudit_list_shows_each_compression_defense():
    result = CliRunner().invoke(cli, ["list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for name in NAMES:
        line = next(line for line in lines if line.split()[:1] == [name])
        assert "no DP claim" in line


@pytest.mark.parametrize("name", NAMES)
def test_each_defense_acts_on_updates_alone_so_it_exports_to_flower(name):
    assert check_exportable(DEFENSES.create(name)).name == name


FLOWER_CASES = {  # update (3, 1, 0, 0) = broadcast (4, 2, 1, 1) - the client's new weights (1, 1, 1, 1)
    "top-k-sparsification": ({"fraction": 0.25}, [3.0, 0.0, 0.0, 0.0]),
    "gradient-pruning": ({"prune_ratio": 0.75}, [3.0, 0.0, 0.0, 0.0]),
    "qsgd": ({"bits": 1, "bucket_size": 1}, [3.0, 1.0, 0.0, 0.0]),  # one-entry buckets: exact
    "signsgd": ({}, [1.0, 1.0, 0.0, 0.0]),
}


@pytest.mark.parametrize("name", NAMES)
def test_exported_flower_mod_and_strategy_run_the_defense(name):
    pytest.importorskip("flwr")
    from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
    from flwr.client.mod.utils import make_ffn

    from audit.fl.flower_runtime import StubGrid, flower_call
    from audit.integrations.flower.export import defense_mod, defense_strategy

    params, expected = FLOWER_CASES[name]
    d = DEFENSES.create(name, **params)

    def arrays(w):
        return ArrayRecord({"w": Array(np.asarray(w, dtype=np.float32))})

    def app(msg, ctx):
        return Message(RecordDict({"arrays": arrays([1.0] * 4), "metrics": MetricRecord({"num-examples": 4})}),
                       reply_to=msg)

    ctx = Context(run_id=0, node_id=7, node_config={}, state=RecordDict(), run_config={})
    with flower_call(None):
        train = Message(RecordDict({"arrays": arrays([4.0, 2.0, 1.0, 1.0]),
                                    "config": ConfigRecord({"server-round": 1})}),
                        dst_node_id=7, message_type="train")
        reply = make_ffn(app, [defense_mod(d)])(train, ctx)
        sent = reply.content["arrays"]["w"].numpy()
        np.testing.assert_allclose(sent, expected, rtol=1e-6)
        strategy = defense_strategy(d, FederationSchedule(2, 2, 1), fraction_evaluate=0.0,
                                    min_available_nodes=1, min_train_nodes=1)
        messages = list(strategy.configure_train(1, arrays([10.0] * 4), ConfigRecord(), StubGrid(2)))
        replies = [Message(RecordDict({"arrays": arrays(sent), "metrics": MetricRecord({"num-examples": 1})}),
                           reply_to=m) for m in messages]
        new, _ = strategy.aggregate_train(1, replies)
    aggregate = d.server_side([_update({"w": sent}, kind=UpdateKind.MODEL_DELTA)] * 2,
                              generator=torch.Generator())
    np.testing.assert_allclose(10.0 - new["w"].numpy(), aggregate.tensors["w"].numpy(), atol=1e-6)  # float32


@pytest.mark.parametrize("name", NAMES)
def test_each_defense_runs_an_audit_end_to_end(name):
    from audit.harness import run_audit

    finding = run_audit(AuditConfig(defense=name, attack="llg", dataset="digits", model="mlp",
                                    model_params={"hidden": 8}, num_targets=2, rounds=2),
                        device=torch.device("cpu"), lpips_scorer=None)
    assert finding["defense"]["name"] == name and finding["claim"]["has_dp"] is False
    assert 0.0 <= finding["utility"]["test_accuracy"] <= 1.0
