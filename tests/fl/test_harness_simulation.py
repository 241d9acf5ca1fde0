"""The audit harness simulates on the vectorised path when it can and says so: the report's
``setting.simulation`` names the path, the reason and the client sampling; Poisson sampling
reaches DP-FedAvg's accounting lint; the loop refuses a Poisson schedule; sweep run ids of
runs at the default simulation settings are those of earlier versions."""

import pytest
import torch

from audit.core.config import AuditConfig
from audit.core.defense import DEFENSES, FederationSchedule
from audit.core.errors import InvalidParameterError
from audit.harness import prepare, run_audit
from audit.privacy.auditing.defense_lint import defense_lint
from audit.sweep.run_ids import run_key
from reports.schema import validate_report

CPU = torch.device("cpu")
FAST = dict(dataset="digits", model="mlp", model_params={"hidden": 8}, attack="llg", num_targets=4)


def test_fedsgd_runs_vectorised_and_the_report_says_so():
    f = run_audit(AuditConfig(defense="fedsgd", **FAST), device=CPU, lpips_scorer=None)
    sim = f["setting"]["simulation"]
    assert sim["path"] == "vectorised" and "vmap" in sim["reason"] and sim["sampling"] == "fixed"
    assert sim["observations_kept"] is True
    loop = run_audit(AuditConfig(defense="fedsgd", simulation="loop", **FAST), device=CPU, lpips_scorer=None)
    assert loop["setting"]["simulation"]["path"] == "loop"
    # the same attack outcome on both paths (labels from the same gradients, up to rounding)
    acc = [next(m for m in x["metrics"] if m["name"] == "label_accuracy")["per_item"] for x in (f, loop)]
    assert acc[0] == acc[1]


def test_a_defense_that_cannot_batch_runs_on_the_loop_with_the_reason():
    run = prepare(AuditConfig(defense="uniform-ldp", defense_params={"target_epsilon": 8.0}, **FAST), device=CPU)
    assert run.simulation["path"] == "loop"
    assert "uniform-ldp" in run.simulation["reason"]


def test_forcing_the_vectorised_path_on_such_a_defense_names_it():
    with pytest.raises(InvalidParameterError, match="uniform-ldp.*cannot run vectorised"):
        prepare(AuditConfig(defense="uniform-ldp", defense_params={"target_epsilon": 8.0}, simulation="vectorised", **FAST), device=CPU)


def test_poisson_sampling_on_the_loop_is_refused_before_any_work():
    with pytest.raises(InvalidParameterError, match="'client_sampling'.*'fixed' with simulation 'loop'"):
        AuditConfig(defense="fedsgd", simulation="loop", client_sampling="poisson", **FAST)
    with pytest.raises(InvalidParameterError, match="'simulation'.*'batched'"):
        AuditConfig(defense="fedsgd", simulation="batched", **FAST)


def test_the_loop_simulation_refuses_a_poisson_schedule():
    from audit.fl.simulation import FederatedSimulation
    from audit.core.updates import ClientData

    sched = FederationSchedule(num_clients=2, clients_per_round=1, rounds=1, sampling="poisson")
    clients = [ClientData(torch.zeros(1, 1, 8, 8), torch.zeros(1, dtype=torch.long))] * 2
    with pytest.raises(InvalidParameterError, match="'sampling'.*'poisson'"):
        FederatedSimulation(model=torch.nn.Linear(1, 1), clients=clients, defense=DEFENSES.create("fedsgd"),
                            schedule=sched)
    with pytest.raises(InvalidParameterError, match="'sampling'.*'uniform'"):
        FederationSchedule(num_clients=2, clients_per_round=1, rounds=1, sampling="uniform")


def test_poisson_cohorts_satisfy_dp_fedavg_central_accounting_and_fixed_ones_do_not():
    dp = {"noise_multiplier": 1.0, "mode": "central"}
    config = dict(FAST, num_targets=8, clients_per_round=2, rounds=2)
    poisson = prepare(AuditConfig(defense="dp-fedavg", defense_params=dp, client_sampling="poisson", **config),
                      device=CPU)
    assert poisson.simulation == {"path": "vectorised", "reason": poisson.simulation["reason"],
                                  "sampling": "poisson", "observations_kept": True}
    lint = defense_lint(poisson.defense, poisson.schedule, poisson.claim, rounds_run=2)
    assert not [x for x in lint if x["id"] == "sampling"]
    fixed = prepare(AuditConfig(defense="dp-fedavg", defense_params=dp, **config), device=CPU)
    lint = defense_lint(fixed.defense, fixed.schedule, fixed.claim, rounds_run=2)
    assert [x["severity"] for x in lint if x["id"] == "sampling"] == ["error"]


def test_the_schema_checks_the_simulation_entry():
    from reports.assembly import assemble_report

    f = run_audit(AuditConfig(defense="fedsgd", **FAST), device=CPU, lpips_scorer=None)
    report = assemble_report([f], title="t", command="c", seed=0, notes=[], runtime_s=1.0,
                             environment={"fedaudit": "0", "python": "3", "platform": "p",
                                          "device": "cpu", "threads": 1, "packages": {}})
    validate_report(report)
    report["findings"][0]["setting"]["simulation"]["path"] = "batched"
    with pytest.raises(InvalidParameterError, match="simulation.path"):
        validate_report(report)


def test_run_keys_at_the_default_simulation_settings_are_unchanged():
    config = AuditConfig(defense="fedsgd", **FAST)
    assert '"simulation"' not in run_key(config, None, {})
    assert '"client_sampling"' not in run_key(config, None, {})
    other = AuditConfig(defense="fedsgd", simulation="loop", **FAST)
    assert '"simulation":"loop"' in run_key(other, None, {})


def test_every_finding_carries_the_final_models_held_out_utility():
    from audit.fl.held_out_utility import held_out_utility

    trained = prepare(AuditConfig(defense="fedavg", defense_params={"local_steps": 5, "lr": 0.5},
                                  **dict(FAST, rounds=10, batch_size=50, num_targets=10)), device=CPU)
    held = trained.utility["test_accuracy"]
    assert held > 0.6  # 500 digits, 10 rounds: far above chance (0.1)
    # the score is on the items no client holds: recomputed by hand here
    idx = torch.as_tensor(trained.unused[:2000])
    with torch.no_grad():
        pred = trained.model(trained.dataset.images[idx]).argmax(-1)
    assert held == pytest.approx(float((pred == trained.dataset.labels[idx]).float().mean()))
    untrained = prepare(AuditConfig(defense="fedsgd", **FAST), device=CPU)
    assert untrained.utility["test_accuracy"] < held
    assert held_out_utility(trained.model, trained.dataset, []) == {}
    f = run_audit(AuditConfig(defense="fedsgd", **FAST), device=CPU, lpips_scorer=None)
    assert set(f["utility"]) == {"test_accuracy"}


def test_a_segmentation_task_reports_pooled_iou_and_f1():
    run = prepare(AuditConfig(defense="fedavg", dataset="documents", dataset_params={"size": 32, "num_items": 12},
                              model="unet", attack="llg", num_targets=2), device=CPU)
    assert set(run.utility) == {"test_iou", "test_f1"}
    assert 0.0 <= run.utility["test_iou"] <= run.utility["test_f1"] <= 1.0
