"""DR-Encoder in the federated simulation on generated records with a tiny LoRA language
model: stage-1 statistics, stage-2 codes (compressed, clipped, noised), the claim."""

from __future__ import annotations

import pytest
import torch

from audit.data.registry import create_dataset
from audit.core.defense import DEFENSES, FederationSchedule
from audit.core.errors import InvalidParameterError
from audit.models.registry import create_model
from audit.fl.simulation import FederatedSimulation
from audit.core.updates import ClientData


def _setup(k: int = 2):
    ds = create_dataset("records", num_items=24, length=32, clients=k, canaries=0)
    torch.manual_seed(0)
    model = create_model("tiny-lm-lora", input_shape=ds.input_shape, num_classes=ds.num_classes,
                         channel_mean=ds.channel_mean, channel_std=ds.channel_std, layers=1,
                         hidden=32, heads=2, r=4)
    clients = [ClientData(ds.images[ds.groups == c], ds.labels[ds.groups == c]) for c in range(k)]
    return model, clients


def _run(rounds: int = 3, **params):
    model, clients = _setup()
    defense = DEFENSES.create("dr-encoder", block=64, hidden=32, ae_steps=50, ae_samples=64,
                              **params)
    schedule = FederationSchedule(len(clients), len(clients), rounds)
    defense.prepare(schedule)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    transcript = FederatedSimulation(model=model, clients=clients, defense=defense,
                                     schedule=schedule, seed=0).run()
    return defense, model, transcript, schedule, before


def test_stage_one_sends_statistics_and_stage_two_sends_clipped_codes():
    defense, model, transcript, schedule, before = _run(noise_multiplier=1e-6, clip_norm=0.5)
    lora = [n for n, p in model.named_parameters() if p.requires_grad]
    first = transcript.rounds[0]
    assert set(first.observations[0].tensors) == {f"{n}::{s}" for n in lora
                                                  for s in ("mean", "std")}
    assert first.aggregate.tensors == {}  # stage 1 applies no update
    assert torch.equal(first.broadcast[lora[0]], transcript.rounds[1].broadcast[lora[0]])
    size = sum(before[n].numel() for n in lora)
    for record in transcript.rounds[1:]:
        for o in record.observations:
            assert set(o.tensors) == {"code"}
            assert o.tensors["code"].numel() * 16 >= size  # >= 16x smaller, up to padding
            assert float(o.tensors["code"].norm()) <= 0.5 * (1 + 1e-4)
        assert set(record.aggregate.tensors) == set(lora)
    assert defense.autoencoder_info["compression"] >= 15.0
    changed = [n for n in lora if not torch.equal(before[n], dict(model.named_parameters())[n])]
    assert changed  # stage 2 trained the LoRA factors


def test_claim_covers_stage_two_only_and_says_so():
    defense, _, _, schedule, _ = _run(target_epsilon=4.0)
    claim = defense.claim(schedule)
    assert claim.epsilon == pytest.approx(4.0, rel=1e-3) and claim.compositions == 2
    assert "WITHOUT noise" in claim.statement and "not covered" in claim.statement


@pytest.mark.parametrize("params, match", [
    ({"ratio": 1}, "ratio"),
    ({"ratio": 128}, "ratio"),  # no code entry left in a block of 64
    ({"clip_norm": 0}, "clip_norm"),
    ({"stage1_rounds": 0}, "stage1_rounds"),
])
def test_bad_parameters_are_rejected(params, match):
    with pytest.raises(InvalidParameterError, match=match):
        DEFENSES.create("dr-encoder", block=64, **params)


def test_too_few_rounds_is_a_clear_error():
    defense = DEFENSES.create("dr-encoder", stage1_rounds=2)
    with pytest.raises(InvalidParameterError, match="stage1_rounds"):
        defense.prepare(FederationSchedule(2, 2, 2))


def test_a_code_larger_than_the_gradient_is_a_clear_error():
    model, _ = _setup()
    size = sum(p.numel() for p in model.parameters() if p.requires_grad)
    defense = DEFENSES.create("dr-encoder", block=4 * size, ratio=2)
    defense.prepare(FederationSchedule(2, 2, 2))
    with pytest.raises(InvalidParameterError, match="code must be smaller than the gradient"):
        defense.setup_server(model=model, public=None)


def test_noise_multiplier_zero_compresses_without_a_claim():
    defense, _, transcript, schedule, _ = _run(noise_multiplier=0.0, clip_norm=1e6)
    claim = defense.claim(schedule)
    assert not claim.has_dp and "without noise" in claim.statement
    # no noise, no clipping: the code is exactly the encoder's output of the update
    assert transcript.rounds[1].observations[0].info["clipped"] == 0.0


def test_wrapping_defenses_take_momentum_for_fedavg_only():
    d = DEFENSES.create("dp-fedavg", base="fedavg", momentum=0.9, target_epsilon=8.0)
    assert d.local_training.momentum == 0.9
    with pytest.raises(InvalidParameterError, match="momentum"):
        DEFENSES.create("dp-fedavg", momentum=0.9, target_epsilon=8.0)
