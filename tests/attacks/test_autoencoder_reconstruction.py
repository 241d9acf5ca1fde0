"""Autoencoder reconstruction against DR-Encoder: what the server (with the decoder) and an
eavesdropper (with a shadow autoencoder from the stage-1 statistics) recover of a client's
LoRA update."""

from __future__ import annotations

import copy

import pytest
import torch

from attacks.autoencoder_reconstruction import (
    gradient_recovery_metrics,
    server_reconstruction,
    shadow_autoencoder,
    shadow_reconstruction,
)
from audit.data.registry import create_dataset
from audit.core.defense import DEFENSES, FederationSchedule
from audit.models.registry import create_model
from audit.fl.simulation import FederatedSimulation, local_update
from audit.core.updates import ClientData


def test_metrics_closed_forms():
    x = {"a": torch.tensor([1.0, 2.0]), "b": torch.tensor([[3.0]])}
    assert gradient_recovery_metrics(x, x) == pytest.approx({"cosine": 1.0, "relative_error": 0.0})
    twice = {n: 2 * t for n, t in x.items()}
    assert gradient_recovery_metrics(twice, x) == pytest.approx({"cosine": 1.0,
                                                                 "relative_error": 1.0})
    neg = {n: -t for n, t in x.items()}
    assert gradient_recovery_metrics(neg, x)["cosine"] == pytest.approx(-1.0)


def _setup():
    ds = create_dataset("records", num_items=32, length=32, clients=2, canaries=0)
    torch.manual_seed(0)
    model = create_model("tiny-lm-lora", input_shape=ds.input_shape, num_classes=ds.num_classes,
                         channel_mean=ds.channel_mean, channel_std=ds.channel_std, layers=1,
                         hidden=32, heads=2, r=4)
    clients = [ClientData(ds.images[ds.groups == c], ds.labels[ds.groups == c]) for c in range(2)]
    return model, clients


def _attack(**noise):
    model, clients = _setup()
    defense = DEFENSES.create("dr-encoder", block=64, hidden=64, ae_steps=300, ae_samples=256,
                              clip_norm=1e6, **noise)
    schedule = FederationSchedule(2, 2, 2)
    defense.prepare(schedule)
    transcript = FederatedSimulation(model=model, clients=clients, defense=defense,
                                     schedule=schedule, seed=0).run()
    record = transcript.rounds[1]
    broadcast = copy.deepcopy(model)
    with torch.no_grad():
        for n, p in broadcast.named_parameters():
            p.copy_(record.broadcast[n])
    truth = local_update(broadcast, clients[0], defense.local_training, client_id=0,
                         round=1).tensors
    code = record.observations[0].tensors["code"]
    server = gradient_recovery_metrics(server_reconstruction(defense, code), truth)
    ae, layout = shadow_autoencoder(defense.shapes, defense.statistics, ratio=defense.ratio,
                                    block=defense.block, hidden=defense.hidden, steps=300,
                                    samples=256, seed=1)
    shadow = gradient_recovery_metrics(shadow_reconstruction(ae, layout, code), truth)
    return server, shadow


def test_server_recovers_a_sixteenth_and_the_shadow_almost_nothing():
    """Without noise the server's decoder keeps about 1/ratio of the update's energy in a
    subspace learnt from i.i.d. data: cosine about sqrt(1/16) = 0.25, relative error near 1.
    A shadow decoder trained on the same statistics uses another code basis."""
    server, shadow = _attack(noise_multiplier=0.0)
    assert 0.1 < server["cosine"] < 0.6
    assert server["relative_error"] > 0.7
    assert abs(shadow["cosine"]) < server["cosine"]


def test_stage_one_statistics_give_the_update_norms_exactly():
    from attacks.statistics_leakage import update_norms

    model, clients = _setup()
    defense = DEFENSES.create("dr-encoder", block=64, hidden=16, ae_steps=5, ae_samples=16,
                              noise_multiplier=1.0)
    schedule = FederationSchedule(2, 2, 2)
    defense.prepare(schedule)
    transcript = FederatedSimulation(model=model, clients=clients, defense=defense,
                                     schedule=schedule, seed=0).run()
    broadcast = copy.deepcopy(model)
    with torch.no_grad():
        for n, p in broadcast.named_parameters():
            p.copy_(transcript.rounds[0].broadcast[n])
    for k, client in enumerate(clients):
        truth = local_update(broadcast, client, defense.local_training, client_id=k,
                             round=0).tensors
        norms = update_norms(defense.statistics[k], defense.shapes)
        for n, t in truth.items():
            assert norms[n] == pytest.approx(float(t.norm()), rel=1e-4)
