"""Prior-guided inversion (GIAS-style): a planted in-prior image is recovered, the prior needs
population data, and the audit picks the adversary that holds it."""

import pytest
import torch

from attacks.prior_inversion import PriorGuidedInversion, train_prior
from audit.core.attack import ATTACKS, AttackView, LabelledData
from audit.core.config import AuditConfig
from audit.core.errors import InvalidParameterError
from audit.core.threat_model import create_threat_model
from audit.core.updates import LocalTraining, ModelUpdate, UpdateKind
from audit.data.registry import create_dataset
from audit.harness import prepare, run_audit, targets
from audit.metrics.image import psnr
from audit.models.registry import create_model

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def faces():
    return create_dataset("lfw")


def test_a_planted_image_on_the_prior_is_recovered(faces):
    public = LabelledData(faces.images[8:], faces.labels[8:])
    decoder, mu, sd = train_prior(public.inputs, latent_dim=8, steps=150, seed=0, device=CPU)
    with torch.no_grad():  # the target lies on the prior: a decoded latent
        target = decoder(mu[None] + 0.5 * sd[None] * torch.randn(1, 8, generator=torch.Generator().manual_seed(3)))
    model = create_model("convnet", input_shape=faces.input_shape, num_classes=2,
                         channel_mean=faces.channel_mean, channel_std=faces.channel_std, width=4)
    label = torch.tensor([1])
    loss = torch.nn.functional.cross_entropy(model(target), label)
    names = [n for n, _ in model.named_parameters()]
    grads = torch.autograd.grad(loss, list(model.parameters()))
    view = AttackView(create_threat_model("hbc-server-population"), model,
                      ModelUpdate(UpdateKind.GRADIENT, dict(zip(names, grads)), 0, 0, 1),
                      LocalTraining(steps=1, lr=0.1), 1, faces.input_shape, 2, public=public)
    attack = PriorGuidedInversion(latent_dim=8, prior_steps=150, iterations=300, restarts=2, weight_iterations=0, lr=0.3)
    out = attack.run(view, generator=torch.Generator().manual_seed(0), device=CPU)
    gained = float(psnr(out.images, target)[0])
    mean_image = float(psnr(public.inputs.mean(0, keepdim=True), target)[0])
    assert gained > 30 and gained > mean_image + 10, (gained, mean_image)


def test_the_prior_needs_population_data(faces):
    cfg = AuditConfig(attack="gias", threat_model="hbc-server", dataset="lfw", num_targets=1)
    view = targets(prepare(cfg, device=CPU))[0].view
    assert view.public is None
    with pytest.raises(InvalidParameterError, match="population data"):
        ATTACKS.create("gias", prior_steps=1, iterations=1).run(view, generator=torch.Generator(), device=CPU)


def test_population_data_only_for_an_adversary_that_holds_it(faces):
    model = torch.nn.Linear(1, 1)
    update = ModelUpdate(UpdateKind.GRADIENT, {"weight": torch.zeros(1, 1)}, 0, 0, 1)
    with pytest.raises(ValueError, match="population data"):
        AttackView(create_threat_model("hbc-server"), model, update, LocalTraining(steps=1, lr=0.1), 1,
                   (1, 1, 1), 2, public=LabelledData(torch.zeros(2, 1, 1, 1), torch.zeros(2, dtype=torch.long)))


def test_the_audit_runs_gias_as_the_population_holding_server():
    cfg = AuditConfig(attack="gias", dataset="lfw", model="convnet", model_params={"width": 4}, num_targets=2,
                      attack_params={"prior_steps": 20, "iterations": 5, "weight_iterations": 3})
    finding = run_audit(cfg, device=CPU, lpips_scorer=None)
    assert finding["threat_model"]["name"] == "hbc-server-population"
    assert len(next(m for m in finding["metrics"] if m["name"] == "psnr")["per_item"]) == 2
    again = run_audit(cfg, device=CPU, lpips_scorer=None)
    assert again["metrics"] == finding["metrics"]


@pytest.mark.parametrize("params,match", [({"latent_dim": 0}, "latent_dim"), ({"lr": -1}, "lr"),
                                          ({"weight_iterations": -1}, "weight_iterations"), ({"depth": 1}, "depth")])
def test_bad_parameters_name_themselves(params, match):
    with pytest.raises(InvalidParameterError, match=match):
        ATTACKS.create("gias", **params)
