"""The Flower recording strategy's transcript, written in the recorded-updates format by
:func:`audit.integrations.flower.export.write_recording`, is audited offline: analytic-fc
recovers each node's image from what the server received (Flower's strategy run in-process,
its replies built as an ordinary ClientApp builds them)."""

import pytest
import torch

pytest.importorskip("flwr")

from audit.api import audit_observed  # noqa: E402
from audit.core.errors import InvalidParameterError  # noqa: E402
from audit.core.updates import ClientData, LocalTraining, UpdateKind  # noqa: E402
from audit.data.registry import create_dataset  # noqa: E402
from audit.fl.flower_runtime import StubGrid, flower_call  # noqa: E402
from audit.fl.recorded_updates import Deployment, read_recording  # noqa: E402
from audit.fl.simulation import local_update  # noqa: E402
from audit.integrations.flower.export import write_recording  # noqa: E402
from audit.integrations.flower.recording import recording_strategy  # noqa: E402
from audit.models.registry import create_model  # noqa: E402

TRAINING = LocalTraining(steps=1, lr=0.1, kind=UpdateKind.MODEL_DELTA)


def _flower_round(data, model):
    """One round of Flower's FedAvg, recorded: two nodes, one image each."""
    from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
    from flwr.serverapp.strategy import FedAvg

    strategy = recording_strategy(FedAvg(fraction_evaluate=0.0, min_available_nodes=2, min_train_nodes=2))
    with flower_call(torch.Generator().manual_seed(0)):
        messages = list(strategy.configure_train(1, ArrayRecord(model.state_dict()), ConfigRecord(), StubGrid(2)))
        replies, images = [], {}
        for msg in messages:
            node = int(msg.metadata.dst_node_id)
            client = ClientData(data.images[node:node + 1], data.labels[node:node + 1])
            images[node] = (client.images, client.labels)
            delta = local_update(model, client, TRAINING, client_id=node, round=0).tensors
            state = {n: (t - delta[n] if n in delta else t) for n, t in model.state_dict().items()}
            replies.append(Message(RecordDict({"arrays": ArrayRecord(state),
                                               "metrics": MetricRecord({"num-examples": 1})}), reply_to=msg))
        strategy.aggregate_train(1, replies)
    return strategy, images


def test_a_flower_recording_is_audited_offline(tmp_path):
    data = create_dataset("digits")
    torch.manual_seed(0)
    model = create_model("mlp", input_shape=data.input_shape, num_classes=data.num_classes,
                         channel_mean=data.channel_mean, channel_std=data.channel_std)
    strategy, truth = _flower_round(data, model)
    deployment = Deployment("mlp", data.input_shape, data.num_classes, TRAINING,
                            channel_mean=data.channel_mean, channel_std=data.channel_std,
                            defense={"name": "flower FedAvg", "params": {}})
    out = write_recording(strategy, tmp_path / "flower", deployment, truth=truth)
    rec = read_recording(out)
    assert sorted(u.client_id for u in rec.updates) == sorted(truth)  # Flower's node ids
    assert "standardize.mean" in rec.broadcast[0]  # the broadcast state_dict, buffers included
    finding = audit_observed(out, attack="analytic-fc", lpips=False)["findings"][0]
    psnr = {m["name"]: m for m in finding["metrics"]}["psnr"]
    assert min(psnr["per_item"]) > 60  # exact up to float error: the reply leaks the image
    assert finding["defense"]["name"] == "flower FedAvg"


def test_a_flower_recording_is_of_model_deltas(tmp_path):
    data = create_dataset("digits")
    gradient = Deployment("mlp", data.input_shape, data.num_classes, LocalTraining())
    with pytest.raises(InvalidParameterError, match="model-delta"):
        write_recording(object(), tmp_path / "x", gradient)
    assert not (tmp_path / "x").exists()
