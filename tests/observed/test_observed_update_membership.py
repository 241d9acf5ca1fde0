"""The update-based membership attack on a recorded update: candidates recorded beside the
updates, the membership in truth/; scored like the built-in audit with it, listed without."""

import torch

from audit.api import audit_observed
from audit.core.config import AuditConfig
from audit.fl.recorded_updates import Deployment, write_recording
from audit.harness import prepare


def _recording(tmp_path, *, members: bool):
    run = prepare(AuditConfig(defense="fedsgd", dataset="digits", model="mlp", num_targets=2,
                              batch_size=4), device=torch.device("cpu"))
    data, client = run.dataset, run.clients[1]
    inputs = torch.cat([client.images, data.images[8:12]])
    labels = torch.cat([client.labels, data.labels[8:12]])
    deployment = Deployment("mlp", data.input_shape, data.num_classes, run.training,
                            channel_mean=data.channel_mean, channel_std=data.channel_std)
    return write_recording(tmp_path / "rec", run.transcript, deployment, candidates=(inputs, labels),
                           members=[True] * 4 + [False] * 4 if members else None)


def test_update_membership_with_the_membership_is_scored(tmp_path):
    directory = _recording(tmp_path, members=True)
    finding = audit_observed(directory, attack="update-mia", attack_params={"client": 1},
                             lpips=False, out=tmp_path / "report")["findings"][0]
    auc = {m["name"]: m for m in finding["metrics"]}["ROC AUC"]
    assert auc["mean"] > 0.9  # a member's gradient is a summand of the observed update
    assert finding["membership"]["ground_truth"] is True and finding["images"] is not None
    assert finding["membership"]["observes"].startswith("client 1's recorded update in round 0")
    assert finding["threat_model"]["name"] == "hbc-server"


def test_update_membership_without_the_membership_lists_the_scores(tmp_path):
    directory = _recording(tmp_path, members=False)
    report = audit_observed(directory, attack="update-mia", lpips=False)
    finding = report["findings"][0]
    assert finding["metrics"] == [] and finding["images"] is None
    assert len(finding["membership"]["scores"]) == 8
    assert any("No ground truth was given" in n for n in report["notes"])
