"""The accounting lint of a real Opacus training, as the audit reports it: every finding of
``audit_opacus`` carries ``privacy_audit.lint`` and the ledger shows it with its severity."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils.data import DataLoader

from audit.integrations.opacus.opacus_audit import audit_opacus
from audit.integrations.opacus.run import OpacusRun
from audit.integrations.opacus.run_sources import builtin_run
from reports.ledger import ledger_rows


def _shuffled_run(base: OpacusRun) -> OpacusRun:
    """The same training with ``make_private(poisson_sampling=False)``: shuffled fixed-size
    batches while Opacus's accountant assumes Poisson sampling."""
    from opacus import PrivacyEngine

    def make(data, seed):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.ReLU(),
                                  torch.nn.Linear(16, 10))
        opt = torch.optim.SGD(net.parameters(), lr=0.5)
        engine = PrivacyEngine(accountant="rdp")
        net, opt, loader = engine.make_private(
            module=net, optimizer=opt, data_loader=DataLoader(data, batch_size=50, shuffle=True),
            noise_multiplier=1.0, max_grad_norm=1.0, poisson_sampling=False)
        return net, opt, loader, engine

    return dataclasses.replace(base, make=make)


@pytest.fixture(scope="module")
def base():
    return builtin_run(limit=300, batch_size=50)


def _lint(finding):
    return {(x["id"], x["severity"]) for x in finding["privacy_audit"]["lint"]}


def test_the_builtin_poisson_run_has_no_lint_error(base):
    (f,) = audit_opacus(base, ("gaussian-aggregate",), canaries=200)
    assert not {i for i, s in _lint(f) if s == "error"}
    assert ("secure-rng", "warning") in _lint(f)  # Opacus's default generator
    (row,) = ledger_rows([f], run="builtin")
    assert row["claim"]["unit_level"] == "record" and row["claim"]["adjacency"] == "add-remove"
    assert row["lint_summary"]["error"] == 0 and row["lint_summary"]["warning"] == 1


def test_shuffled_batches_under_poisson_accounting_are_a_sampling_error_in_the_ledger(base):
    run = _shuffled_run(base)
    findings = audit_opacus(run, ("gaussian-aggregate", "one-run-input"), canaries=200, input_canaries=40)
    for f in findings:  # white-box and black-box paths both lint the run they trained
        assert ("sampling", "error") in _lint(f)
        msg = next(x["message"] for x in f["privacy_audit"]["lint"] if x["id"] == "sampling")
        assert "poisson" in msg and "shuffle" in msg
    rows = ledger_rows(findings, run="shuffled")
    assert rows and all(r["lint_summary"]["error"] >= 1 for r in rows)


def test_the_black_box_path_measures_the_noise_it_adds(base):
    (f,) = audit_opacus(base, ("one-run-input",), input_canaries=40)
    skipped = {x["id"] for x in f["privacy_audit"]["lint"] if x["message"].startswith("not evaluated")}
    assert "noise-scale" not in skipped and "steps" not in skipped
