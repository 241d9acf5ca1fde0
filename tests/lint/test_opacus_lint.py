"""The accounting lint on real Opacus runs: a tiny linear model (16 -> 8, 136 parameters)
made private by ``PrivacyEngine.make_private`` (RDP accountant, noise multiplier 1, clip 1,
64 records, batches of 16), trained a few steps; each rule tripped by a configuration or a
script bug that Opacus itself accepts, and not tripped by the correct one."""

import sys
import types
import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

pytest.importorskip("opacus")

from opacus import PrivacyEngine  # noqa: E402

from audit.core.errors import InvalidParameterError  # noqa: E402
from audit.integrations.opacus.lint_facts import OpacusStepTap, opacus_facts  # noqa: E402
from audit.privacy.lint import run_lint  # noqa: E402

N, BATCH, DELTA = 64, 16, 1e-5


def _private(*, poisson=True, secure=False):
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(N, 16), torch.randint(0, 4, (N,)))
    model = nn.Linear(16, 8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(data, batch_size=BATCH, shuffle=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine = PrivacyEngine(accountant="rdp", secure_mode=secure)
        model, optimizer, loader = engine.make_private(
            module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=1.0,
            max_grad_norm=1.0, poisson_sampling=poisson)
    return engine, model, optimizer, loader


def _train(model, optimizer, loader, steps):
    done = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Opacus's backward hooks on an input without grad
        while done < steps:
            for x, y in loader:
                optimizer.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()
                done += 1
                if done == steps:
                    break


def _run(steps=4, tap=True, **kw):
    engine, model, optimizer, loader = _private(**kw)
    t = OpacusStepTap(optimizer) if tap else None
    _train(model, optimizer, loader, steps)
    return engine, model, optimizer, loader, t


def _rule(findings, rule):
    return [(f.severity, f.message) for f in findings if f.id == rule]


@pytest.fixture(scope="module")
def correct():
    """make_private with Poisson sampling, trained 4 steps, observed by the tap."""
    engine, _, optimizer, loader, tap = _run()
    return engine, optimizer, loader, tap


def test_correct_run_trips_only_the_secure_rng_warning(correct):
    engine, optimizer, loader, tap = correct
    facts = opacus_facts(engine, optimizer, loader, delta=DELTA, tap=tap)
    assert facts.sampling_used == "poisson" and facts.steps_accounted == facts.steps_run == 4
    assert facts.operations == ("clip", "aggregate", "noise")
    assert facts.mean_divisors_used == (16.0,) * 4 and abs(facts.effective_noise_multiplier - 1) < 0.1
    assert [(f.id, f.severity) for f in run_lint(facts)] == [("secure-rng", "warning")]


# -- sampling -------------------------------------------------------------------------------
def test_sampling_trips_on_make_private_without_poisson_sampling():
    engine, _, optimizer, loader, tap = _run(poisson=False)
    found = _rule(run_lint(opacus_facts(engine, optimizer, loader, delta=DELTA, tap=tap)), "sampling")
    assert [s for s, _ in found] == ["error"] and "shuffle" in found[0][1]


def test_sampling_trips_on_the_original_sequential_loader(correct):
    engine, optimizer, _, _ = correct
    plain = DataLoader(TensorDataset(torch.randn(N, 16), torch.zeros(N, dtype=torch.long)), batch_size=BATCH)
    found = _rule(run_lint(opacus_facts(engine, optimizer, plain, delta=DELTA)), "sampling")
    assert [s for s, _ in found] == ["error"] and "sequential" in found[0][1]


def test_sampling_passes_with_poisson(correct):
    engine, optimizer, loader, tap = correct
    assert _rule(run_lint(opacus_facts(engine, optimizer, loader, delta=DELTA, tap=tap)), "sampling") == []


# -- steps ----------------------------------------------------------------------------------
def test_steps_trips_on_a_step_through_the_base_optimizer():
    engine, model, optimizer, loader, tap = _run(steps=3)
    x, y = next(iter(loader))
    optimizer.zero_grad()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nn.functional.cross_entropy(model(x), y).backward()
    optimizer.original_optimizer.step()  # a non-private "warm-up" step around the DPOptimizer
    found = _rule(run_lint(opacus_facts(engine, optimizer, loader, delta=DELTA, tap=tap)), "steps")
    assert [s for s, _ in found] == ["error"] and "4 steps ran" in found[0][1] and "composed 3" in found[0][1]


def test_steps_passes_when_every_step_is_private(correct):
    engine, optimizer, loader, tap = correct
    assert _rule(run_lint(opacus_facts(engine, optimizer, loader, delta=DELTA, tap=tap)), "steps") == []
    assert _rule(run_lint(opacus_facts(engine, optimizer, loader, delta=DELTA, steps_run=4)), "steps") == []


# -- delta, unit, adjacency -----------------------------------------------------------------
def test_delta_trips_at_delta_above_one_over_n(correct):
    engine, optimizer, loader, _ = correct
    found = _rule(run_lint(opacus_facts(engine, optimizer, loader, delta=0.05)), "delta")
    assert [s for s, _ in found] == ["error"] and "n = 64 records" in found[0][1]
    assert _rule(run_lint(opacus_facts(engine, optimizer, loader, delta=DELTA)), "delta") == []


def test_unit_trips_on_a_client_level_claim_of_dp_sgd(correct):
    """Opacus DP-SGD inside each Flower client, reported as client-level DP."""
    engine, optimizer, loader, _ = correct
    found = _rule(run_lint(opacus_facts(engine, optimizer, loader, delta=DELTA, claimed_unit="client",
                                        num_clients=10)), "unit")
    assert [s for s, _ in found] == ["error"]
    assert _rule(run_lint(opacus_facts(engine, optimizer, loader, delta=DELTA)), "unit") == []


def test_adjacency_trips_on_a_replace_one_claim(correct):
    engine, optimizer, loader, _ = correct
    found = _rule(run_lint(opacus_facts(engine, optimizer, loader, delta=DELTA,
                                        claimed_adjacency="replace-one")), "adjacency")
    assert [s for s, _ in found] == ["error"] and "opacus-rdp accounted add-remove" in found[0][1]
    assert _rule(run_lint(opacus_facts(engine, optimizer, loader, delta=DELTA)), "adjacency") == []


# -- noise-scale ----------------------------------------------------------------------------
def test_noise_scale_trips_on_noise_divided_by_the_batch_size_twice():
    """The script's add_noise already divides by the batch size; scale_grad divides again."""
    from opacus.optimizers.optimizer import _check_processed_flag, _generate_noise, _mark_as_processed

    engine, model, optimizer, loader = _private()

    def add_noise(self):
        for p in self.params:
            _check_processed_flag(p.summed_grad)
            noise = _generate_noise(std=self.noise_multiplier * self.max_grad_norm / self.expected_batch_size,
                                    reference=p.summed_grad, generator=self.generator)
            p.grad = (p.summed_grad + noise).view_as(p)
            _mark_as_processed(p.summed_grad)

    optimizer.add_noise = types.MethodType(add_noise, optimizer)
    tap = OpacusStepTap(optimizer)  # attached last, around the script's override
    _train(model, optimizer, loader, 4)
    facts = opacus_facts(engine, optimizer, loader, delta=DELTA, tap=tap)
    found = _rule(run_lint(facts), "noise-scale")
    assert [s for s, _ in found] == ["error"] and facts.effective_noise_multiplier < 0.1
    assert facts.operations == ("clip", "aggregate", "noise")


def test_noise_scale_trips_on_a_mean_over_the_realised_batch():
    """The script "fixes" scale_grad to divide by the batch actually drawn."""
    engine, model, optimizer, loader = _private()

    def scale_grad():
        for p in optimizer.params:
            p.grad /= max(len(p.grad_sample), 1)

    optimizer.scale_grad = scale_grad
    tap = OpacusStepTap(optimizer)
    _train(model, optimizer, loader, 4)
    facts = opacus_facts(engine, optimizer, loader, delta=DELTA, tap=tap)
    assert len(set(facts.mean_divisors_used)) > 1  # Poisson batch sizes vary
    found = _rule(run_lint(facts), "noise-scale")
    assert [s for s, _ in found] == ["error"] and "data-dependent" in found[0][1]
    assert facts.operations is not None  # observed, though scale_grad is overridden


def test_noise_scale_passes_on_opacus_own_noise(correct):
    engine, optimizer, loader, tap = correct
    assert _rule(run_lint(opacus_facts(engine, optimizer, loader, delta=DELTA, tap=tap)), "noise-scale") == []


# -- secure-rng, clip-order -----------------------------------------------------------------
def test_secure_rng_trips_with_secure_mode_off(correct):
    engine, optimizer, loader, _ = correct
    found = _rule(run_lint(opacus_facts(engine, optimizer, loader, delta=DELTA)), "secure-rng")
    assert [s for s, _ in found] == ["warning"]


def test_secure_rng_passes_with_secure_mode_on(monkeypatch):
    """secure_mode=True needs torchcsprng, not installed here: a stand-in module hands Opacus
    a torch generator, so Opacus runs its own secure-mode code path."""
    stub = types.ModuleType("torchcsprng")
    stub.create_random_device_generator = lambda path: torch.Generator().manual_seed(1)
    monkeypatch.setitem(sys.modules, "torchcsprng", stub)
    engine, _, optimizer, loader, tap = _run(steps=2, secure=True)
    facts = opacus_facts(engine, optimizer, loader, delta=DELTA, tap=tap)
    assert facts.secure_rng is True and [f.id for f in run_lint(facts)] == []


def test_clip_order_passes_on_the_dp_optimizer(correct):
    """Opacus's pre_step clips, sums, then noises: observed by the tap, or read from the
    code path of an optimizer whose methods are Opacus's own."""
    engine, optimizer, loader, tap = correct
    untapped = _run(steps=2, tap=False)
    for facts in (opacus_facts(engine, optimizer, loader, delta=DELTA, tap=tap),
                  opacus_facts(untapped[0], untapped[2], untapped[3], delta=DELTA)):
        assert facts.operations == ("clip", "aggregate", "noise")
        assert _rule(run_lint(facts), "clip-order") == []


def test_clip_order_unknown_when_the_step_is_overridden_and_not_observed():
    engine, _, optimizer, loader, _ = _run(steps=1, tap=False)
    optimizer.pre_step = lambda closure=None: True
    facts = opacus_facts(engine, optimizer, loader, delta=DELTA)
    assert facts.operations is None
    assert "unknown operations" in _rule(run_lint(facts, report_skipped=True), "clip-order")[0][1]


def test_opacus_facts_validates_its_inputs(correct):
    engine, optimizer, loader, _ = correct
    with pytest.raises(InvalidParameterError, match="'optimizer'.*DPOptimizer.*'SGD'"):
        opacus_facts(engine, optimizer.original_optimizer, loader, delta=DELTA)
    with pytest.raises(InvalidParameterError, match="'claimed_unit'.*'user'"):
        opacus_facts(engine, optimizer, loader, delta=DELTA, claimed_unit="user")
    with pytest.raises(InvalidParameterError, match="'delta'.*0"):
        opacus_facts(engine, optimizer, loader, delta=0)
