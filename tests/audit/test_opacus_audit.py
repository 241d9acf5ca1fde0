"""Auditing a user's Opacus training (audit/integrations/opacus/): white-box gradient canaries
(one-run and Clopper-Pearson), black-box input canaries, the claim from Opacus's own
accountant, and the report.

False-positive rate: every estimator here is a 95% lower bound, so a correct claim is
flagged VIOLATION with probability at most 5% per finding; the runs are seeded, so each
test is deterministic. ``test_false_positive_rate_over_seeds`` runs the correct setting
under 20 seeds: 0 flagged (eps_emp at most 0.374, mean 0.143, against the claim 2.071).

Measured (1 torch thread, digits, MLP hidden 32 = 2410 parameters, SGD lr 0.5, Poisson
batches of expected size 61, 29 steps, RDP accountant, delta 1e-5, 1000 gradient
canaries, ~0.15 s per audit):

* correct, sigma 1: eps_claim 2.071; eps_emp 0.000 / 0.000 / 0.184 (seeds 0-2): PASS
* reported epsilon for sigma 4 (0.184), trained at sigma 0.5 (Opacus: 11.24): eps_emp
  1.16-1.23: VIOLATION of the reported claim, PASS against Opacus's own
* noise overwritten smaller (Opacus told sigma 4, claim 0.184; the noise divided by the
  batch size once more, measured noise multiplier 0.0656): eps_emp 3.98: VIOLATION
"""

from __future__ import annotations

import json
import time
import types

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from audit.core.errors import InvalidParameterError
from audit.integrations.opacus.claim import UNIT, opacus_epsilon
from audit.integrations.opacus.gradient_canaries import GradientCanaryTap
from audit.integrations.opacus.opacus_audit import audit_opacus, opacus_findings_report
from audit.integrations.opacus.run import OpacusRun
from audit.integrations.opacus.run_sources import builtin_run
from reports.schema import validate_report

DELTA = 1e-5


def _noise_divided_by_batch_size(base_make):
    """A realistic bug: the script replaces Opacus's add_noise by one that already divides
    the noise by the batch size (scale_grad then divides again). The accountant still sees
    the optimizer's noise_multiplier."""
    from opacus.optimizers.optimizer import _check_processed_flag, _generate_noise, _mark_as_processed

    def add_noise(self):
        for p in self.params:
            _check_processed_flag(p.summed_grad)
            noise = _generate_noise(std=self.noise_multiplier * self.max_grad_norm / self.expected_batch_size,
                                    reference=p.summed_grad, generator=self.generator,
                                    secure_mode=self.secure_mode)
            p.grad = (p.summed_grad + noise).view_as(p)
            _mark_as_processed(p.summed_grad)

    def make(data, seed):
        model, opt, loader, engine = base_make(data, seed)
        opt.add_noise = types.MethodType(add_noise, opt)
        return model, opt, loader, engine

    return make


def _audit(run, estimators=("one-run",), **kw):
    findings = audit_opacus(run, estimators, **kw)
    for f in findings:
        pa = f["privacy_audit"]
        print(f"{f['id']}: eps_emp={pa['estimate']['epsilon']:.3f} eps_claim={pa['epsilon_claim']:.3f} "
              f"{pa['verdict']} ({f['runtime_s']:.2f} s)")
    return findings


def test_correct_opacus_run_passes_with_opacus_claim():
    run = builtin_run(noise_multiplier=1.0, accountant="rdp")
    (f,) = _audit(run, seed=0)
    pa = f["privacy_audit"]
    claim = f["claim"]
    assert pa["verdict"] == "PASS"
    assert pa["estimate"]["epsilon"] <= pa["epsilon_claim"]
    assert pa["estimate"]["nature"] == "lower-bound" and pa["estimate"]["confidence"] == 0.95
    # the claim is Opacus's own accountant for what ran
    steps, q = f["setting"]["local_steps"], f["setting"]["sample_rate"]
    assert steps == 29 and q == pytest.approx(1 / 29)
    assert claim["epsilon"] == pytest.approx(opacus_epsilon(1.0, q, steps, DELTA, "rdp"), rel=1e-9)
    assert claim["accountant"] == "opacus-rdp" and claim["unit"] == UNIT == (
        "one training example (sample-level, add-or-remove)")
    assert claim["trust_model"] == "central" and claim["compositions"] == 29
    assert f["defense"]["name"] == "opacus-dp-sgd"
    assert f["defense"]["params"]["noise_multiplier"] == 1.0
    # the adversary's measured noise equals the noise Opacus was told to add
    measured = [m for m in f["metrics"] if m["name"] == "noise multiplier (measured)"][0]
    assert measured["mean"] == pytest.approx(1.0, abs=0.01)


def test_reported_epsilon_for_sigma_4_while_training_at_half_is_a_violation():
    q, steps = 1 / 29, 29
    reported = opacus_epsilon(4.0, q, steps, DELTA, "rdp")
    run = builtin_run(noise_multiplier=0.5, accountant="rdp", claimed_epsilon=reported)
    (f,) = _audit(run, seed=0)
    pa = f["privacy_audit"]
    assert pa["epsilon_claim"] == pytest.approx(reported) and reported < 0.2
    assert pa["verdict"] == "VIOLATION"
    assert pa["estimate"]["epsilon"] > 5 * reported
    # Opacus's own accounting of the run (sigma 0.5) is kept as an alternative; it is above
    # what 1000 one-run canaries could ever certify, so the audit cannot judge it
    (alt,) = pa["alternatives"]
    assert alt["label"] == "Opacus accountant, as run" and alt["verdict"] == "INCONCLUSIVE"
    assert alt["epsilon_claim"] > pa["power_ceiling"] > pa["estimate"]["epsilon"]
    assert alt["epsilon_claim"] == pytest.approx(opacus_epsilon(0.5, q, steps, DELTA, "rdp"))
    assert f["claim"]["accountant"] == "user-reported"


def test_noise_overwritten_smaller_is_a_violation():
    run = builtin_run(noise_multiplier=4.0, accountant="rdp")
    run.make = _noise_divided_by_batch_size(run.make)
    (f,) = _audit(run, seed=0)
    pa = f["privacy_audit"]
    assert pa["verdict"] == "VIOLATION"
    assert pa["epsilon_claim"] == pytest.approx(opacus_epsilon(4.0, 1 / 29, 29, DELTA, "rdp"))
    assert pa["estimate"]["epsilon"] > 3.0 > 10 * pa["epsilon_claim"]
    measured = [m for m in f["metrics"] if m["name"] == "noise multiplier (measured)"][0]
    assert measured["mean"] == pytest.approx(4.0 / 61, rel=0.02)  # expected batch 61
    assert measured["baseline"]["mean"] == 4.0


def test_false_positive_rate_over_seeds():
    """A correct claim under 20 seeds: at most 5% flagged in expectation (95% bounds)."""
    start = time.perf_counter()
    bounds, claims = [], []
    for seed in range(20):
        run = builtin_run(noise_multiplier=1.0, accountant="rdp")
        (f,) = audit_opacus(run, ("one-run",), seed=seed)
        bounds.append(f["privacy_audit"]["estimate"]["epsilon"])
        claims.append(f["privacy_audit"]["epsilon_claim"])
    flagged = sum(b > c for b, c in zip(bounds, claims))
    print(f"20 seeds: eps_emp max {max(bounds):.3f} mean {np.mean(bounds):.3f}, claim {claims[0]:.3f}, "
          f"flagged {flagged}, {time.perf_counter() - start:.1f} s")
    assert flagged == 0


def test_white_box_clopper_pearson_catches_the_noise_bug_and_passes_correct():
    bugged = builtin_run(noise_multiplier=4.0, accountant="rdp", limit=256, batch_size=32, epochs=2)
    bugged.make = _noise_divided_by_batch_size(bugged.make)
    (bad,) = _audit(bugged, ("cp",), trials=60, seed=0)
    assert bad["privacy_audit"]["verdict"] == "VIOLATION"
    assert bad["privacy_audit"]["estimate"]["estimator"] == "clopper-pearson"
    assert bad["privacy_audit"]["estimate"]["details"]["training_runs"] == 120
    correct = builtin_run(noise_multiplier=1.0, accountant="rdp", limit=256, batch_size=32, epochs=2)
    (good,) = _audit(correct, ("cp",), trials=40, seed=0)
    # 40 runs per side (20 held out) can certify at most ~1.6: a claim of ~2 is out of reach
    pa = good["privacy_audit"]
    assert pa["verdict"] == "INCONCLUSIVE" and pa["estimate"]["epsilon"] <= pa["epsilon_claim"]
    assert pa["power_ceiling"] == pytest.approx(1.6, abs=0.1) and pa["power_ceiling"] < pa["epsilon_claim"]


def test_black_box_input_canaries_and_report(tmp_path):
    run = builtin_run(noise_multiplier=1.0, accountant="rdp")
    findings = _audit(run, ("one-run", "one-run-input"), seed=0, input_canaries=100)
    white, black = findings
    assert black["id"] == "opacus-dp-sgd:epsilon-one-run-input"
    assert black["privacy_audit"]["verdict"] == "PASS"
    assert black["privacy_audit"]["estimate"]["epsilon"] <= black["privacy_audit"]["epsilon_claim"]
    assert black["threat_model"]["name"] == "model-analyst"
    assert white["threat_model"]["name"] == "dp-sgd-gradient-observer"
    # the black-box run trains on fewer examples (canaries held out), so its own claim
    assert black["setting"]["dataset_size"] < white["setting"]["dataset_size"] == 1797
    report = opacus_findings_report(findings, tmp_path, seed=0, command="pytest")
    loaded = json.loads((tmp_path / "report.json").read_text())
    validate_report(loaded)
    assert loaded["findings"][0]["privacy_audit"]["verdict"] == report["findings"][0]["privacy_audit"]["verdict"]
    html = (tmp_path / "report.html").read_text()
    assert "opacus-dp-sgd" in html and "not a proof" in html.lower()


def _user_data():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(600, 20, generator=gen)
    y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()
    return TensorDataset(x, y)


def test_user_script_with_custom_loop_batch_memory_manager_and_per_layer_clipping():
    """A user's own script: its own model, a training loop with virtual steps (Opacus's
    BatchMemoryManager: clipping accumulates over physical batches, noise once per logical
    step), per-layer clipping, the PRV accountant (Opacus 1.6's default)."""
    from opacus import PrivacyEngine
    from opacus.utils.batch_memory_manager import BatchMemoryManager

    def make(train_data, seed):
        torch.manual_seed(seed)
        model = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4))
        opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
        loader = DataLoader(train_data, batch_size=60)
        engine = PrivacyEngine()
        model, opt, loader = engine.make_private(module=model, optimizer=opt, data_loader=loader,
                                                 noise_multiplier=1.0, max_grad_norm=[0.5, 0.5, 0.5, 0.5],
                                                 clipping="per_layer")
        return model, opt, loader, engine

    def train(model, optimizer, loader):
        for _ in range(2):
            with BatchMemoryManager(data_loader=loader, max_physical_batch_size=16, optimizer=optimizer) as mem:
                for x, y in mem:
                    optimizer.zero_grad()
                    torch.nn.functional.cross_entropy(model(x), y).backward()
                    optimizer.step()

    run = OpacusRun(make=make, train_data=_user_data(), delta=DELTA, train=train, model_name="user-mlp")
    (f,) = _audit(run, seed=0, canaries=500)
    assert f["privacy_audit"]["verdict"] == "PASS"
    assert f["claim"]["accountant"] == "opacus-prv"
    assert f["defense"]["params"]["clipping"] == "per_layer"
    assert f["defense"]["params"]["optimizer_steps_observed"] == f["setting"]["local_steps"] == 20
    measured = [m for m in f["metrics"] if m["name"] == "noise multiplier (measured)"][0]
    assert measured["mean"] == pytest.approx(1.0, abs=0.03)
    assert f["setting"]["model"] == "user-mlp"


def test_bad_inputs_are_named():
    data = _user_data()

    def no_dp(train_data, seed):
        model = torch.nn.Linear(20, 4)
        return model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(train_data), None

    with pytest.raises(InvalidParameterError, match="'make'"):
        audit_opacus(OpacusRun(make=no_dp, train_data=data, delta=DELTA))
    run = builtin_run(noise_multiplier=1.0)
    with pytest.raises(InvalidParameterError, match="'estimators'"):
        audit_opacus(run, ("one-shot",))
    with pytest.raises(InvalidParameterError, match="'canaries'"):
        audit_opacus(run, ("one-run",), canaries=5000)  # the MLP has 2410 coordinates
    with pytest.raises(InvalidParameterError, match="'delta'"):
        OpacusRun(make=no_dp, train_data=data, delta=0)
    with pytest.raises(InvalidParameterError, match="'accountant'"):
        OpacusRun(make=no_dp, train_data=data, delta=DELTA, accountant="pld")


@pytest.mark.filterwarnings("ignore:Secure RNG turned off")
def test_tap_restores_the_optimizer_and_refuses_ghost_clipping():
    run = builtin_run(noise_multiplier=1.0, limit=64, batch_size=16)
    _, opt, _, _ = run.make(run.train_data, 0)
    tap = GradientCanaryTap(opt, np.array([0, 5]), np.array([True, False]), 0.5, torch.Generator())
    assert opt.pre_step == tap._pre_step
    tap.detach()
    assert "pre_step" not in opt.__dict__ and "clip_and_accumulate" not in opt.__dict__

    class DPOptimizerFastGradientClipping:  # stands for Opacus's ghost-clipping optimizer
        params = []

    with pytest.raises(InvalidParameterError, match="per-sample gradients"):
        GradientCanaryTap(DPOptimizerFastGradientClipping(), np.array([0]), np.array([True]), 0.5,
                          torch.Generator())


def test_module_docstring_example_runs(tmp_path, monkeypatch):
    """The ~20-line example of the module docstring, as a user would paste it."""
    import audit.integrations.opacus.opacus_audit as mod

    lines = mod.__doc__.split("Example (")[1].split("::\n", 1)[1].split("\nWhat is audited")[0]
    code = "\n".join(line[4:] for line in lines.splitlines())
    assert 15 <= len([c for c in code.splitlines() if c.strip()]) <= 30
    monkeypatch.chdir(tmp_path)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(400, 8, 8, generator=gen)
    y = torch.randint(0, 10, (400,), generator=gen)
    env = {"x": x, "y": y}
    exec(compile(code, "opacus_audit_example", "exec"), env)  # noqa: S102
    findings = env["findings"]
    assert [f["id"] for f in findings] == ["opacus-dp-sgd:epsilon-one-run", "opacus-dp-sgd:epsilon-one-run-input"]
    validate_report(json.loads((tmp_path / "audit-out" / "report.json").read_text()))
    assert (tmp_path / "audit-out" / "report.html").is_file()


def test_load_run_from_a_user_file(tmp_path):
    from audit.integrations.opacus.run_sources import load_run

    script = tmp_path / "my_audit.py"
    script.write_text("from audit.integrations.opacus.run_sources import builtin_run\n"
                      "def run():\n    return builtin_run(noise_multiplier=2.0, limit=128, batch_size=32)\n")
    loaded = load_run(f"{script}:run")
    assert isinstance(loaded, OpacusRun) and loaded.training_params["noise_multiplier"] == 2.0
    with pytest.raises(InvalidParameterError, match="'run'"):
        load_run(f"{script}:missing")
    with pytest.raises(InvalidParameterError, match="'run'"):
        load_run(str(tmp_path / "nope.py") + ":run")
