"""fedaudit defenses exported to Flower: the same client_side / server_side code runs as a
Flower client mod and strategy, in-process and in Flower's own simulation engine."""

import numpy as np
import pytest
import torch

pytest.importorskip("flwr")

from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict  # noqa: E402
from flwr.client.mod.utils import make_ffn  # noqa: E402

from audit.core.defense import DEFENSES, FederationSchedule  # noqa: E402
from audit.core.errors import InvalidParameterError  # noqa: E402
from audit.integrations.flower.export import defense_mod, defense_strategy  # noqa: E402
from audit.fl.flower_runtime import StubGrid, flower_call, isolated_simulation  # noqa: E402


def _train_message(weights, server_round=1):
    return Message(RecordDict({"arrays": ArrayRecord({"w": Array(np.asarray(weights, dtype=np.float32))}),
                               "config": ConfigRecord({"server-round": server_round})}),
                   dst_node_id=7, message_type="train")


def _client_reply(new_weights, n=4):
    def app(msg, ctx):
        return Message(RecordDict({"arrays": ArrayRecord({"w": Array(np.asarray(new_weights, dtype=np.float32))}),
                                   "metrics": MetricRecord({"num-examples": n})}), reply_to=msg)
    return app


def _ctx(node=7):
    return Context(run_id=0, node_id=node, node_config={}, state=RecordDict(), run_config={})


def test_exported_mod_sends_the_defenses_observation():
    d = DEFENSES.create("dp-fedavg", clip_norm=0.5, noise_multiplier=0.0, mode="local")
    mod = defense_mod(d)
    with flower_call(None):
        reply = make_ffn(_client_reply([1.0, 1.0, 1.0, 1.0]), [mod])(_train_message([4.0, 1.0, 1.0, 1.0]), _ctx())
    sent = reply.content["arrays"]["w"].numpy()
    # update = broadcast - new = (3, 0, 0, 0), clipped to norm 0.5, sent as the observation
    np.testing.assert_allclose(sent, [0.5, 0.0, 0.0, 0.0], rtol=1e-6)
    assert sent.dtype == np.float32


def test_exported_mod_noise_is_seeded_per_node_and_round():
    d = DEFENSES.create("dp-fedavg", clip_norm=1.0, noise_multiplier=1.0, mode="local")
    mod = defense_mod(d, seed=3)

    def send(node, rnd):
        with flower_call(None):
            r = make_ffn(_client_reply([0.0] * 4), [mod])(_train_message([1.0] * 4, rnd), _ctx(node))
        return r.content["arrays"]["w"].numpy()

    np.testing.assert_array_equal(send(1, 1), send(1, 1))
    assert not np.array_equal(send(1, 1), send(2, 1)) and not np.array_equal(send(1, 1), send(1, 2))


def test_exported_strategy_aggregates_with_the_defense():
    d = DEFENSES.create("dp-fedavg", clip_norm=1.0, noise_multiplier=1.0, mode="central")
    with flower_call(None):
        strategy = defense_strategy(d, FederationSchedule(2, 2, 1), fraction_evaluate=0.0,
                                    min_available_nodes=1, min_train_nodes=1)
        broadcast = ArrayRecord({"w": Array(np.full(3, 10.0, dtype=np.float32))})
        messages = list(strategy.configure_train(1, broadcast, ConfigRecord(), StubGrid(2)))
        replies = [Message(RecordDict({"arrays": ArrayRecord({"w": Array(np.asarray(u, dtype=np.float32))}),
                                       "metrics": MetricRecord({"num-examples": 1})}), reply_to=m)
                   for m, u in zip(messages, ([3.0, 0, 0], [0, 4.0, 0]))]
        arrays, _ = strategy.aggregate_train(1, replies)
    new = arrays["w"].numpy()
    # central DP-FedAvg: clip each observation to 1, sum, add N(0, 1), divide by 2
    expected_mean = np.array([0.5, 0.5, 0.0])
    assert np.all(np.abs((10.0 - new) - expected_mean) < 5 * 1.0 / 2)
    assert not np.allclose(10.0 - new, expected_mean)  # noise was added


def test_defenses_needing_more_than_updates_are_refused():
    with pytest.raises(InvalidParameterError, match="fedqsn"):
        defense_mod(DEFENSES.create("fedqsn"))


def test_a_fedaudit_defense_runs_as_a_flower_strategy_in_flowers_simulation():
    """Flower's simulation engine (Ray backend, 2 virtual SuperNodes, 2 rounds): the clients
    train a small torch model, the exported mod clips their updates (DP-FedAvg, C = 0.05, no
    noise), the exported strategy averages them; the server records what it received."""
    from flwr.clientapp import ClientApp
    from flwr.serverapp import ServerApp
    from flwr.simulation import run_simulation

    clip = 0.05
    defense = DEFENSES.create("dp-fedavg", clip_norm=clip, noise_multiplier=0.0, mode="local")
    client_app = ClientApp(mods=[defense_mod(defense, seed=1)])

    def make_model():
        torch.manual_seed(0)
        return torch.nn.Linear(4, 2)

    @client_app.train()
    def train(msg, context):
        model = make_model()
        model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        g = torch.Generator().manual_seed(int(context.node_id) % 1000)
        x, y = torch.randn(8, 4, generator=g), torch.randint(0, 2, (8,), generator=g)
        for _ in range(3):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            grads = torch.autograd.grad(loss, list(model.parameters()))
            with torch.no_grad():
                for p, gr in zip(model.parameters(), grads):
                    p.sub_(0.5 * gr)
        return Message(RecordDict({"arrays": ArrayRecord(model.state_dict()),
                                   "metrics": MetricRecord({"num-examples": 8})}), reply_to=msg)

    seen, out = [], {}
    server_app = ServerApp()

    @server_app.main()
    def main(grid, context):
        strategy = defense_strategy(defense, FederationSchedule(2, 2, 2), fraction_evaluate=0.0,
                                    min_available_nodes=2)
        inner = strategy.defense.server_side

        def recording(observations, *, generator):
            seen.append([float(torch.cat([t.flatten() for t in o.tensors.values()]).norm()) for o in observations])
            return inner(observations, generator=generator)

        strategy.defense.server_side = recording
        init = ArrayRecord(make_model().state_dict())
        out["init"] = init.to_torch_state_dict()
        out["final"] = strategy.start(grid=grid, initial_arrays=init, num_rounds=2).arrays.to_torch_state_dict()

    with isolated_simulation():  # Flower leaves PYTHONPATH, RAY_* and its Ray behind otherwise
        run_simulation(server_app=server_app, client_app=client_app, num_supernodes=2,
                       backend_config={"client_resources": {"num_cpus": 1},
                                       "init_args": {"num_cpus": 2, "include_dashboard": False}})
    assert len(seen) == 2 and all(len(r) == 2 for r in seen)
    assert all(n == pytest.approx(clip, rel=1e-4) for r in seen for n in r), seen  # every update clipped
    moved = torch.cat([(out["final"][k] - out["init"][k]).flatten() for k in out["init"]]).norm()
    assert 0 < float(moved) <= 2 * clip + 1e-6


def test_isolated_simulation_restores_the_environment_flower_changes(monkeypatch):
    import os
    import sys

    before_env, before_path = dict(os.environ), list(sys.path)
    with isolated_simulation():
        os.environ["PYTHONPATH"] = "/somewhere"  # what run_simulation does
        sys.path.insert(0, "/somewhere")
    assert dict(os.environ) == before_env and sys.path == before_path
