"""Attacks on a run of Flower's own simulation engine: the recording strategy keeps what
the server observed, and a registered attack reconstructs a client's image from it."""

import pytest
import torch

pytest.importorskip("flwr")

from audit.core.attack import ATTACKS  # noqa: E402
from audit.core.errors import InvalidParameterError  # noqa: E402
from audit.integrations.flower.recording import attack_views, recording_strategy  # noqa: E402
from audit.fl.flower_runtime import isolated_simulation  # noqa: E402
from audit.fl.simulation import Transcript  # noqa: E402
from audit.core.updates import LocalTraining, UpdateKind  # noqa: E402

TRAINING = LocalTraining(steps=1, lr=0.1, kind=UpdateKind.MODEL_DELTA)


def _digits_and_model():
    from audit.data.registry import create_dataset
    from audit.models.registry import create_model

    data = create_dataset("digits")
    torch.manual_seed(0)
    model = create_model("mlp", input_shape=data.input_shape, num_classes=data.num_classes,
                         channel_mean=data.channel_mean, channel_std=data.channel_std)
    return data, model


def test_analytic_attack_recovers_each_clients_image_from_a_flower_simulation():
    from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import ServerApp
    from flwr.serverapp.strategy import FedAvg
    from flwr.simulation import run_simulation

    client_app = ClientApp()

    @client_app.train()
    def train(msg, context):  # an ordinary Flower client: one SGD step on its one image
        from audit.fl.simulation import local_update
        from audit.core.updates import ClientData

        data, model = _digits_and_model()
        model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        pid = int(context.node_config["partition-id"])
        delta = local_update(model, ClientData(data.images[pid:pid + 1], data.labels[pid:pid + 1]),
                             TRAINING, client_id=pid, round=0).tensors
        state = {n: (t - delta[n] if n in delta else t) for n, t in model.state_dict().items()}
        return Message(RecordDict({"arrays": ArrayRecord(state),
                                   "metrics": MetricRecord({"num-examples": 1, "partition-id": pid})}),
                       reply_to=msg)

    recorded = {}
    server_app = ServerApp()

    @server_app.main()
    def main(grid, context):
        strategy = recording_strategy(FedAvg(fraction_evaluate=0.0, min_available_nodes=2))
        _, model = _digits_and_model()
        strategy.start(grid=grid, initial_arrays=ArrayRecord(model.state_dict()), num_rounds=1)
        recorded["strategy"] = strategy

    with isolated_simulation():  # Flower leaves PYTHONPATH, RAY_* and its Ray behind otherwise
        run_simulation(server_app=server_app, client_app=client_app, num_supernodes=2,
                       backend_config={"client_resources": {"num_cpus": 1},
                                       "init_args": {"num_cpus": 2, "include_dashboard": False}})
    strategy = recorded["strategy"]
    data, model = _digits_and_model()
    attack = ATTACKS.create("analytic-fc")
    views = attack_views(strategy.transcript, model=model, threat_model="hbc-server",
                         local_training=TRAINING, batch_size=1, input_shape=data.input_shape,
                         num_classes=data.num_classes)
    assert len(views) == 2
    for node, view in views:
        pid = int(strategy.metrics[0][node]["partition-id"])
        result = attack.run(view, generator=torch.Generator().manual_seed(0), device=torch.device("cpu"))
        error = float((result.images[0] - data.images[pid]).abs().max())
        assert error < 1e-3, (node, error)  # exact up to float error: the reply leaks the image
    (none, aggregate), = attack_views(strategy.transcript, model=model, threat_model="aggregate-observer",
                                      local_training=TRAINING, batch_size=2, input_shape=data.input_shape,
                                      num_classes=data.num_classes)
    assert none is None and aggregate.target.num_examples == 2


def test_views_of_an_unrecorded_round_are_an_error():
    _, model = _digits_and_model()
    with pytest.raises(InvalidParameterError, match="recorded round"):
        attack_views(Transcript(), model=model, threat_model="hbc-server", local_training=TRAINING,
                     batch_size=1, input_shape=(1, 8, 8), num_classes=10)
