"""Record a fedaudit run, audit the recording offline: the same attack result as the
in-simulation audit of the same run (same seed), for closed-form attacks exactly and for
Inverting Gradients to float precision, for gradients and model deltas, with and without
labels."""

import pytest

from audit.api import audit_observed, record_observed, run_audit

SCORED = ("mse", "psnr", "ssim", "label_accuracy")


def _both(tmp_path, *, attack, attack_params=None, labels=False, **settings):
    """(in-simulation finding, offline finding) of ``attack`` on the same run."""
    settings = dict(dataset="digits", num_targets=2, seed=3, **settings)
    threat = {"threat_model": "hbc-server-labels"} if labels else {}
    live = run_audit(attack=attack, attack_params=dict(attack_params or {}), lpips=False,
                     **threat, **settings)["findings"][0]
    directory = record_observed(out=tmp_path / "rec", labels=labels, **settings)
    offline = audit_observed(directory, attack=attack, attack_params=attack_params, seed=3,
                             lpips=False, out=tmp_path / "report")["findings"][0]
    assert (tmp_path / "report" / "report.json").is_file()
    return live, offline


def _metrics(finding):
    return {m["name"]: m for m in finding["metrics"] if m["name"] in SCORED}


def test_analytic_fc_offline_equals_the_in_simulation_audit_exactly(tmp_path):
    live, offline = _both(tmp_path, attack="analytic-fc", defense="fedsgd", model="mlp")
    assert _metrics(offline) == _metrics(live)
    assert set(_metrics(live)) == {"mse", "psnr", "ssim"}
    assert offline["metrics"][0]["mean"] < 1e-6  # the update leaks each image exactly
    assert offline["observed"]["ground_truth"] is True
    assert offline["threat_model"]["name"] == live["threat_model"]["name"] == "hbc-server"


def test_llg_labels_offline_equal_the_in_simulation_audit(tmp_path):
    live, offline = _both(tmp_path, attack="llg", defense="fedsgd", model="mlp", batch_size=4)
    assert _metrics(offline) == _metrics(live) and "label_accuracy" in _metrics(live)
    assert [len(t["labels"]) for t in offline["observed"]["targets"]] == [4, 4]


def test_inverting_gradients_psnr_offline_matches_on_a_model_delta(tmp_path):
    live, offline = _both(tmp_path, attack="inverting-gradients", attack_params={"iterations": 30},
                          defense="fedavg", model="convnet", batch_size=2,
                          local_training={"epochs": 2, "batch_size": 1, "optimizer": "adam", "lr": 0.01})
    assert offline["setting"]["local_training"] == live["setting"]["local_training"]
    for name, metric in _metrics(live).items():
        assert _metrics(offline)[name]["mean"] == pytest.approx(metric["mean"], abs=1e-6), name
        assert _metrics(offline)[name]["baseline"] == metric["baseline"], name
    distance = {m["name"]: m for m in offline["metrics"]}["gradient_distance"]
    assert distance["mean"] < distance["baseline"]["mean"]  # it explains the update better than noise


def test_recorded_labels_give_the_labelled_threat_model(tmp_path):
    live, offline = _both(tmp_path, attack="inverting-gradients", attack_params={"iterations": 20},
                          labels=True, defense="fedsgd", model="convnet")
    assert offline["threat_model"]["name"] == "hbc-server-labels"
    assert offline["threat_model"] == live["threat_model"]
    assert _metrics(offline)["psnr"]["mean"] == pytest.approx(_metrics(live)["psnr"]["mean"], abs=1e-6)
    assert _metrics(offline)["label_accuracy"]["mean"] == 1.0


def test_without_truth_the_finding_reports_reconstructions_and_says_so(mlp_recording, tmp_path):
    import shutil

    directory = shutil.copytree(mlp_recording, tmp_path / "rec", ignore=shutil.ignore_patterns("truth"))
    report = audit_observed(directory, attack="analytic-fc", lpips=False)
    finding = report["findings"][0]
    assert [m["name"] for m in finding["metrics"]] == ["gradient_distance"]
    assert "No ground truth was given" in finding["metrics"][0]["note"]
    assert "No ground truth was given" in finding["images"]["caption"]
    assert any("No ground truth was given" in n for n in report["notes"])
    assert finding["observed"]["ground_truth"] is False
    assert finding["metrics"][0]["mean"] < 1e-3  # exact reconstructions explain the update
    assert finding["metrics"][0]["baseline"]["mean"] > 0.1


def test_every_recorded_round_is_attacked_from_its_own_broadcast(tmp_path):
    settings = dict(defense="fedsgd", model="mlp", dataset="digits", num_targets=2, rounds=2)
    live = run_audit(attack="analytic-fc", lpips=False, **settings)["findings"][0]
    directory = record_observed(out=tmp_path / "rec", **settings)
    offline = audit_observed(directory, attack="analytic-fc", lpips=False)["findings"][0]
    assert [(t["round"], t["client_id"]) for t in offline["observed"]["targets"]] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    psnr = {m["name"]: m for m in offline["metrics"]}["psnr"]["per_item"]
    assert psnr[:2] == {m["name"]: m for m in live["metrics"]}["psnr"]["per_item"]  # round 0, as in simulation
    assert min(psnr[2:]) > 60  # round 1's updates leak too, against round 1's broadcast
