"""``fedaudit opacus``: audit a model trained with Opacus, its epsilon beside epsilon_emp."""

from __future__ import annotations

import time
from pathlib import Path

import click

from audit.cli.common import _command_of, _fail, _int
from audit.core.config import parse_pairs
from audit.core.device import set_threads
from audit.core.errors import InvalidParameterError


@click.command("opacus")
@click.option("--run", "run_spec", default=None, metavar="FILE.py:NAME",
              help="Your own Opacus training (an OpacusRun, or a function returning one); default: a built-in one.")
@click.option("--dataset", default="digits", show_default=True, help="Built-in run: embedded dataset.")
@click.option("--model", default="mlp", show_default=True, help="Built-in run: model.")
@click.option("--model-param", multiple=True, metavar="K=V",
              help="Built-in run: model parameter (default for mlp: hidden=128).")
@click.option("--noise-multiplier", default="5.0", show_default=True, help="Built-in run: DP-SGD noise multiplier.")
@click.option("--max-grad-norm", default="1.0", show_default=True, help="Built-in run: per-sample clip norm.")
@click.option("--batch-size", default="900", show_default=True, help="Built-in run: expected Poisson batch size.")
@click.option("--epochs", default="10", show_default=True, help="Built-in run: epochs.")
@click.option("--lr", default="0.5", show_default=True, help="Built-in run: SGD learning rate.")
@click.option("--accountant", default="rdp", show_default=True, help="Built-in run: rdp | prv | gdp.")
@click.option("--delta", default="1e-5", show_default=True)
@click.option("--claimed-epsilon", default=None, help="The epsilon you report (default: Opacus's own).")
@click.option("--estimator", "estimators", multiple=True, default=("gaussian-aggregate", "fdp-one-run"),
              show_default=True,
              help="White-box gradient canaries in one run: gaussian-aggregate | fdp-one-run | one-run; "
                   "cp (many runs); one-run-input (black-box); repeatable.")
@click.option("--canaries", default=None,
              help="Gradient canaries of the one-run estimators (default: 4000 for the built-in run, "
                   "else 1000; at most half the model's parameters).")
@click.option("--trials", default="500", show_default=True, help="cp: training runs per side.")
@click.option("--input-canaries", default="200", show_default=True, help="one-run-input: mislabelled canaries.")
@click.option("--seed", default="0", show_default=True)
@click.option("--threads", default="1", show_default=True)
@click.option("--out", required=True, help="Output directory for report.json and report.html.")
def opacus_cmd(run_spec, dataset, model, model_param, noise_multiplier, max_grad_norm, batch_size, epochs, lr,
               accountant, delta, claimed_epsilon, estimators, canaries, trials, input_canaries, seed, threads,
               out) -> None:
    """Audit a model trained with Opacus (sample-level DP-SGD): Opacus's epsilon beside epsilon_emp."""
    import dataclasses

    from audit.integrations.opacus.opacus_audit import audit_opacus, opacus_findings_report
    from audit.integrations.opacus.run_sources import BUILTIN_CANARIES, builtin_run, load_run
    from audit.core.validation import check_interval

    start = time.perf_counter()
    try:
        owner = "fedaudit opacus"
        threads_n = set_threads(_int("threads", threads))
        d = check_interval("delta", owner, delta, low=0, high=1, closed="neither")
        if run_spec:
            run = load_run(run_spec)
        else:
            params = parse_pairs(model_param, "--model-param") or ({"hidden": 128} if model == "mlp" else {})
            if canaries is None:
                canaries = str(BUILTIN_CANARIES)
            run = builtin_run(
                dataset=dataset, model=model, model_params=params,
                noise_multiplier=check_interval("noise_multiplier", owner, noise_multiplier, low=0, closed="neither"),
                max_grad_norm=check_interval("max_grad_norm", owner, max_grad_norm, low=0, closed="neither"),
                batch_size=_int("batch_size", batch_size), epochs=_int("epochs", epochs),
                lr=check_interval("lr", owner, lr, low=0, closed="neither"), delta=d, accountant=accountant)
        run = dataclasses.replace(run, delta=d, claimed_epsilon=None if claimed_epsilon is None else
                                  check_interval("claimed_epsilon", owner, claimed_epsilon, low=0, closed="neither"))
        findings = audit_opacus(run, tuple(estimators), seed=_int("seed", seed),
                                canaries=None if canaries is None else _int("canaries", canaries),
                                trials=_int("trials", trials), input_canaries=_int("input_canaries", input_canaries))
        from audit.privacy.auditing.verdicts import NOT_A_PROOF

        report = opacus_findings_report(
            findings, out, command=_command_of(click.get_current_context(), "opacus"), seed=_int("seed", seed),
            notes=[NOT_A_PROOF], device="cpu", threads=threads_n, runtime_s=time.perf_counter() - start)
        for f in report["findings"]:
            pa = f.get("privacy_audit") or {}
            click.echo(f"{f['id']}: {pa.get('verdict')} ({pa.get('reason')})")
        lint = [x for x in (report["findings"][0].get("privacy_audit") or {}).get("lint") or []
                if x["severity"] != "info"] if report["findings"] else []
        for x in lint:  # the run's accounting lint (every finding shares it)
            click.echo(f"accounting lint [{x['severity']}] {x['id']}: {x['message']}")
        click.echo(f"wrote {Path(out) / 'report.json'} and {Path(out) / 'report.html'}")
    except InvalidParameterError as exc:
        _fail(str(exc))
