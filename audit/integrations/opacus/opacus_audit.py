"""Audit your own Opacus training: empirical epsilon beside the epsilon Opacus claims.

You hand over how your script builds its private training (a ``make`` function that calls
``PrivacyEngine.make_private`` as your script does) and, optionally, how it trains
(:class:`audit.integrations.opacus.run.OpacusRun`); :func:`audit_opacus` runs it with
canaries, measures an empirical epsilon, and sets it beside
``privacy_engine.get_epsilon(delta)`` with a verdict (PASS / VIOLATION) in the project's
report format (:func:`opacus_findings_report`).

Example (the body of ``make`` is your script, unchanged; ~20 lines)::

    import torch
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset
    from audit.integrations.opacus import OpacusRun, audit_opacus, opacus_findings_report

    def make(train_data, seed):               # your script's setup, on the data given
        torch.manual_seed(seed)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        loader = DataLoader(train_data, batch_size=64)
        engine = PrivacyEngine(accountant="rdp")
        model, optimizer, loader = engine.make_private(
            module=model, optimizer=optimizer, data_loader=loader,
            noise_multiplier=1.0, max_grad_norm=1.0)
        return model, optimizer, loader, engine

    run = OpacusRun(make=make, train_data=TensorDataset(x, y), delta=1e-5, epochs=2)
    # optional: train=my_train(model, optimizer, loader) if your loop is not the plain
    # "zero_grad, loss_fn(model(x), y).backward(), step" one; claimed_epsilon=... if you
    # publish a number other than the engine's own
    findings = audit_opacus(run, estimators=("one-run", "one-run-input"), seed=0)
    print(findings[0]["privacy_audit"]["verdict"], findings[0]["privacy_audit"]["reason"])
    opacus_findings_report(findings, "audit-out")  # report.json + report.html

What is audited (estimators):

* ``one-run`` (white-box, the strongest; the default): Dirac gradient canaries appended
  to Opacus's per-sample gradients in one training run, read from each privatized
  gradient (:func:`audit.integrations.opacus.white_box.white_box_one_run`).
* ``cp`` (white-box, tighter with enough runs, costly): the same canary on one coordinate
  in 2 x ``trials`` training runs, Clopper-Pearson bound
  (:func:`audit.integrations.opacus.white_box.white_box_cp`).
* ``one-run-input`` (black-box, the realistic and much weaker variant): mislabelled
  examples, read from the final model's loss
  (:func:`audit.integrations.opacus.black_box.black_box_input_one_run`).

The claim is Opacus's own accountant, or the epsilon you publish
(:func:`audit.integrations.opacus.claim.opacus_claim`).

Verdict (:func:`audit.privacy.auditing.defense_audit.verdict`): VIOLATION when the lower bound exceeds the
claim. Every estimator here is a 95% lower bound, so a correct claim is flagged with
probability at most 5% per finding (whatever the seed; the seed only makes a run
reproducible). PASS is no proof of privacy (:data:`audit.privacy.auditing.verdicts.NOT_A_PROOF`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from audit.core.claims import PrivacyClaim
from audit.core.errors import invalid
from audit.core.validation import check_interval, check_options
from audit.integrations.opacus.black_box import black_box_input_one_run
from audit.integrations.opacus.run import AUDIT_OWNER, OpacusRun
from audit.integrations.opacus.white_box import ONE_RUN_ESTIMATORS, white_box_cp, white_box_one_run_estimates
from audit.privacy.auditing.verdicts import NOT_A_PROOF, alternative_entry, audit_entry, epsilon_note, verdict
from audit.privacy.estimators import EmpiricalEpsilon

DEFENSE_NAME = "opacus-dp-sgd"
ESTIMATORS = ("gaussian-aggregate", "fdp-one-run", "one-run", "cp", "one-run-input")


WHITE_BOX_THREAT = {
    "name": "dp-sgd-gradient-observer",
    "adversary": "anyone who sees every privatized gradient (each intermediate model)",
    "observes": "each step's privatized gradient, as the DPOptimizer hands it to the base optimizer",
    "knows": ["model architecture", "the DP-SGD parameters (clip norm, noise multiplier, sample rate)",
              "the other training examples and which of them each step sampled",
              "can insert a gradient canary (an example with a chosen per-sample gradient)"],
    "description": ("The adversary of Nasr et al. 2021/2023's white-box audits of DP-SGD: it inserts "
                    "gradient canaries and reads each privatized gradient. DP-SGD's claim holds "
                    "against it (every step is a released Gaussian mechanism)."),
}
BLACK_BOX_THREAT = {
    "name": "model-analyst",
    "adversary": "analyst of the released model",
    "observes": "the final model (its loss on chosen inputs)",
    "knows": ["model architecture", "the training procedure", "the canary examples and their labels"],
    "description": ("Anyone holding the final model: it inserts mislabelled examples into the training "
                    "data and later reads their loss (black-box, final model only)."),
}


def _finding(run: OpacusRun, estimator: str, est: EmpiricalEpsilon, claim: PrivacyClaim, info: dict,
             params: dict, seed: int, runtime: float) -> dict:
    result = verdict(claim, est)
    alternatives = [alternative_entry(alt, est, "central") for alt in claim.alternatives]
    white = estimator != "one-run-input"
    note = epsilon_note(result)
    defense_params = {k: v for k, v in info.items() if k not in ("model_class", "dataset_size", "parameters")
                      and isinstance(v, (str, bool, int, float)) and not (isinstance(v, float) and not math.isfinite(v))}
    defense_params["accountant"] = claim.accountant
    metrics = [{
        "name": "epsilon_emp", "unit": "", "direction": "higher-leaks-more",
        "mean": est.epsilon, "worst": est.epsilon, "per_item": [est.epsilon],
        "baseline": {"description": f"claimed epsilon ({claim.accountant})",
                     "mean": claim.epsilon, "worst": claim.epsilon},
        "note": note,
    }]
    measured = info.get("noise_multiplier_measured")
    if measured is not None and math.isfinite(measured):
        metrics.append({
            "name": "noise multiplier (measured)", "unit": "", "direction": "lower-leaks-more",
            "mean": measured, "worst": measured, "per_item": [measured],
            "baseline": {"description": "the optimizer's noise_multiplier (what Opacus accounts)",
                         "mean": info["noise_multiplier"], "worst": info["noise_multiplier"]},
            "note": ("std of the privatized gradient minus the other examples' clipped sum, on the "
                     "coordinates without canaries, over max_grad_norm, averaged over steps"),
        })
    return {
        "id": f"{DEFENSE_NAME}:epsilon-{estimator}",
        "title": f"empirical epsilon ({estimator}) against Opacus DP-SGD: {result.verdict}",
        "defense": {"name": DEFENSE_NAME, "params": defense_params},
        "claim": claim.to_dict(),
        "threat_model": WHITE_BOX_THREAT if white else BLACK_BOX_THREAT,
        "attack": {"name": f"epsilon-{estimator}", "family": "dp-audit", "params": {**params, "seed": seed}},
        "setting": {
            "dataset": run.dataset_name, "model": run.model_name or info["model_class"],
            "model_params": dict(run.model_params), "training": dict(run.training_params),
            "batch_size": int(round(info["expected_batch_size"])),
            "num_targets": int(est.trials if estimator != "cp" else 1),
            "local_steps": int(info["steps"]), "rounds": 1, "clients": 1,
            "epochs": run.epochs, "sample_rate": info["sample_rate"],
            "dataset_size": info["dataset_size"], "parameters": info["parameters"],
        },
        "metrics": metrics,
        "images": None,
        "privacy_audit": audit_entry(result, alternatives, info.get("lint")),
        "runtime_s": runtime,
    }


def audit_opacus(run: OpacusRun, estimators: Sequence[str] = ("one-run",), *, seed: int = 0,
                 canaries: int | None = None, trials: int = 500, input_canaries: int = 200) -> list[dict]:
    """Empirical epsilon of ``run`` beside its claim, one report finding per estimator.

    Args:
        run: Your Opacus training (:class:`OpacusRun`).
        estimators: Among "one-run" (white-box gradient canaries, one training run),
            "cp" (white-box, 2 x ``trials`` training runs), "one-run-input" (black-box
            input canaries, one training run).
        seed: Seed of the canaries and of the runs (``make`` gets it).
        canaries: Gradient canaries of "one-run" (>= 20, at most half the parameter
            coordinates; default 1000 or half the coordinates, whichever is smaller).
        trials: Runs per side of "cp" (>= 10).
        input_canaries: Mislabelled examples of "one-run-input" (>= 20, at most half the data).

    Returns:
        Findings in the report format (``reports.schema``), each with ``privacy_audit``
        (verdict, epsilon_claim, estimate) and the metric ``epsilon_emp`` beside the claim.
    """
    if not isinstance(run, OpacusRun):
        raise invalid("run", AUDIT_OWNER, "an OpacusRun", type(run).__name__)
    if isinstance(estimators, str):
        estimators = (estimators,)
    if not estimators:
        raise invalid("estimators", AUDIT_OWNER, "a non-empty list of estimator names", list(estimators))
    for e in estimators:
        check_options("estimators", AUDIT_OWNER, e, ESTIMATORS)
    seed = check_interval("seed", AUDIT_OWNER, seed, kind=int, low=0)
    findings = []
    one_run = [e for e in dict.fromkeys(estimators) if e in ONE_RUN_ESTIMATORS]
    if one_run:  # one training run read by every one-run estimator asked for
        start = time.perf_counter()
        ests, claim, info = white_box_one_run_estimates(run, one_run, canaries=canaries, seed=seed)
        runtime = (time.perf_counter() - start) / len(ests)
        for name, est in zip(one_run, ests):
            findings.append(_finding(run, name, est, claim, info, {"canaries": est.trials}, seed, runtime))
    for name in dict.fromkeys(estimators):
        start = time.perf_counter()
        if name in ONE_RUN_ESTIMATORS:
            continue
        if name == "cp":
            est, claim, info = white_box_cp(run, trials=trials, seed=seed)
            params = {"trials": trials}
        else:
            est, claim, info = black_box_input_one_run(run, canaries=input_canaries, seed=seed)
            params = {"canaries": input_canaries}
        findings.append(_finding(run, name, est, claim, info, params, seed, time.perf_counter() - start))
    return findings


def opacus_findings_report(findings: list[dict], out_dir: str | Path | None = None, *,
                           title: str = "Opacus DP-SGD audit: empirical epsilon beside the claim",
                           command: str = "audit.integrations.opacus.opacus_audit.audit_opacus", seed: int = 0,
                           notes: Sequence[str] = (), device: str = "cpu", threads: int | None = None,
                           runtime_s: float | None = None) -> dict:
    """The validated report dict of ``findings`` (:func:`reports.assembly.assemble_report`),
    written as ``report.json`` + ``report.html`` into ``out_dir`` when given."""
    from audit.core.environment import environment_info
    from reports.assembly import assemble_report, write_report

    report = assemble_report(
        list(findings), title=title, command=command, seed=int(seed),
        environment=environment_info(device=device, threads=int(threads or torch.get_num_threads())),
        notes=[NOT_A_PROOF, *notes],
        runtime_s=float(runtime_s if runtime_s is not None else sum(f["runtime_s"] for f in findings)))
    if out_dir is not None:
        write_report(out_dir, report)
    return report


__all__ = [
    "BLACK_BOX_THREAT", "DEFENSE_NAME", "ESTIMATORS", "WHITE_BOX_THREAT", "audit_opacus",
    "opacus_findings_report"
]
