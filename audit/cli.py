"""The ``fedaudit`` command line (click).

Every bad input — unknown names, out-of-range values, missing or corrupt files, unknown
config keys — ends with exit code 2 and one line ``Error: ...`` naming the bad value;
results are written only at the end, atomically.
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Any

import click

import attacks  # noqa: F401  (registers the attacks)
import defenses  # noqa: F401  (registers the defenses)
from audit.attack import ATTACKS
from audit.config import AuditConfig, load_config_file, parse_pairs
from audit.datasets import DATASETS
from audit.defense import DEFENSES
from audit.device import describe_device, resolve_device, set_threads
from audit.environment import environment_info
from audit.errors import InvalidParameterError
from audit.lpips_metric import LpipsScorer
from audit.models import MODELS
from audit.threat_model import THREAT_MODELS


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """fedaudit: attack federated-learning privacy defenses and report how much they protect."""


@cli.command("list")
def list_cmd() -> None:
    """List defenses, attacks, datasets, models and threat models, one line each."""
    for title, registry in (
        ("defenses", DEFENSES),
        ("attacks", ATTACKS),
        ("datasets", DATASETS),
        ("models", MODELS),
        ("threat models", THREAT_MODELS),
    ):
        click.echo(f"{title}:")
        for entry in registry:
            click.echo(f"  {entry.name:<22} {entry.summary}")


def _lpips(enabled: bool, device) -> tuple[LpipsScorer | None, list[str]]:
    if not enabled:
        return None, ["LPIPS not computed: disabled with --no-lpips."]
    scorer = LpipsScorer(device=device)
    return scorer, ([] if scorer.available else [scorer.reason])


def _progress(flag: bool | None) -> bool:
    return sys.stderr.isatty() if flag is None else flag


def _finish(findings, *, title, command, seed, device, threads, notes, start, out) -> None:
    from audit.report_assembly import assemble_report, write_report

    report = assemble_report(
        findings,
        title=title,
        command=command,
        seed=seed,
        environment=environment_info(device=describe_device(device), threads=threads),
        notes=notes,
        runtime_s=time.perf_counter() - start,
    )
    json_path, html_path = write_report(out, report)
    click.echo(f"wrote {json_path} and {html_path}")


_CONFIG_OPTIONS = {
    "defense": "defense",
    "attack": "attack",
    "dataset": "dataset",
    "model": "model",
    "threat_model": "threat_model",
    "batch_size": "batch_size",
    "num_targets": "num_targets",
    "clients_per_round": "clients_per_round",
    "rounds": "rounds",
    "pretrain_steps": "pretrain_steps",
    "seed": "seed",
    "num_candidates": "num_candidates",
    "num_population": "num_population",
}


@cli.command()
@click.option("--config", "config_file", type=str, default=None, help="TOML or YAML file with these settings.")
@click.option("--defense", default="fedsgd", show_default=True, help="Defense name (see `fedaudit list`).")
@click.option("--defense-param", multiple=True, metavar="K=V", help="Defense parameter, repeatable.")
@click.option("--attack", default="inverting-gradients", show_default=True, help="Attack name.")
@click.option("--attack-param", multiple=True, metavar="K=V", help="Attack parameter, repeatable.")
@click.option("--dataset", default="natural-32", show_default=True, help="Dataset name.")
@click.option("--dataset-param", multiple=True, metavar="K=V", help="Dataset parameter (e.g. path=DIR).")
@click.option("--model", default="convnet", show_default=True, help="Model name.")
@click.option("--model-param", multiple=True, metavar="K=V", help="Model parameter, repeatable.")
@click.option("--threat-model", default=None, help="Threat model (default: the defense's claim's adversary).")
@click.option("--batch-size", type=str, default="1", show_default=True, help="Examples per client batch.")
@click.option("--num-targets", type=str, default="8", show_default=True, help="Clients (targets) to attack.")
@click.option("--clients-per-round", type=str, default=None, help="Clients sampled per round (default all).")
@click.option("--rounds", type=str, default="1", show_default=True, help="Federated rounds simulated.")
@click.option("--pretrain-steps", type=str, default="0", show_default=True, help="Brief training before the audit.")
@click.option("--seed", type=str, default="0", show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda")
@click.option("--threads", type=str, default="1", show_default=True, help="torch CPU threads.")
@click.option("--lpips/--no-lpips", default=True, show_default=True, help="Compute LPIPS if weights are cached.")
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: on a terminal).")
@click.option("--estimator", default=None, help="Also estimate empirical epsilon: cp | one-run | one-shot.")
@click.option("--estimator-param", multiple=True, metavar="K=V", help="Estimator parameter (trials, canaries, dim).")
@click.option("--shadow-models", type=str, default=None, help="Membership: shadow/reference models (lira, rmia).")
@click.option("--num-candidates", type=str, default=None, help="Membership: candidate examples (default 40% of the data, at most 2000).")
@click.option("--num-population", type=str, default=None, help="Membership: adversary's population examples (default 20%, at most 1000).")
@click.option("--backend", "training_backend", default="auto", show_default=True, help="Shadow-model training: auto (Ray when it pays off, from the first model's time) | ray | serial.")
@click.option("--ray-address", default=None, help="Join this Ray cluster instead of starting a local one.")
@click.option("--workers", type=str, default=None, help="Shadow models trained at once (default: CPU count).")
@click.option("--cache-dir", default=None, help="Shadow-model cache (default $XDG_CACHE_HOME/fedaudit/models).")
@click.option("--out", default=None, help="Output directory for report.json and report.html.")
@click.pass_context
def audit(ctx: click.Context, config_file: str | None, **opts: Any) -> None:
    """Audit one defense with one attack and write a report."""
    start = time.perf_counter()
    try:
        settings: dict[str, Any] = load_config_file(config_file) if config_file else {}

        def explicit(name: str) -> bool:
            return ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT

        for opt, key in _CONFIG_OPTIONS.items():
            if explicit(opt) or key not in settings:
                settings[key] = opts[opt]
        for kind in ("defense", "attack", "dataset", "model"):
            pairs = parse_pairs(opts[f"{kind}_param"], f"--{kind}-param")
            settings[f"{kind}_params"] = {**settings.get(f"{kind}_params", {}), **pairs}
        for key in ("device", "threads", "out"):
            if explicit(key) or key not in settings:
                settings[key] = opts[key]
        for key in ("batch_size", "num_targets", "rounds", "pretrain_steps", "seed", "threads"):
            settings[key] = _int(key, settings[key])
        for key in ("clients_per_round", "num_candidates", "num_population"):
            if settings.get(key) is not None:
                settings[key] = _int(key, settings[key])
        if opts["shadow_models"] is not None:
            settings["attack_params"]["shadow_models"] = _int("shadow_models", opts["shadow_models"])

        out = settings.pop("out")
        if not out:
            raise InvalidParameterError("The 'out' parameter of fedaudit audit must be a directory. Got None instead.")
        device = resolve_device(settings.pop("device"))
        threads = set_threads(settings.pop("threads"))
        config = AuditConfig(**settings)
        from audit.harness import run_audit_findings, validate

        estimator = opts["estimator"]
        estimator_params = parse_pairs(opts["estimator_param"], "--estimator-param")
        if estimator is not None:
            from audit.privacy_audit import ESTIMATOR_CHOICES, NOT_A_PROOF

            if estimator not in ESTIMATOR_CHOICES:
                raise InvalidParameterError(
                    "The 'estimator' parameter of fedaudit audit must be a str among {"
                    + ", ".join(repr(e) for e in ESTIMATOR_CHOICES) + f"}}. Got {estimator!r} instead."
                )
        validate(config)
        backend = _training_backend(opts, ATTACKS.create(config.attack, **config.attack_params).family)
        scorer, notes = _lpips(opts["lpips"], device)
        findings = run_audit_findings(
            config, device=device, lpips_scorer=scorer, progress=_progress(opts["progress"]),
            estimator=estimator, estimator_params=estimator_params, training_backend=backend,
        )
        if estimator is not None:
            notes.append(NOT_A_PROOF)
        _finish(
            findings, title=f"fedaudit: {config.attack} against {config.defense}",
            command=canonical_command(config, threads=threads, estimator=estimator,
                                      estimator_params=estimator_params), seed=config.seed,
            device=device, threads=threads, notes=notes, start=start, out=out,
        )
    except InvalidParameterError as exc:
        _fail(str(exc))


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/fedaudit/models`` (``~/.cache`` when unset)."""
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fedaudit" / "models"


def _training_backend(opts: dict[str, Any], family: str):
    """Shadow-model training settings, checked before any computation."""
    from audit.membership_audit import TrainingBackend
    from audit.model_cache import ModelCache
    from audit.validation import check_options

    backend = check_options("backend", "fedaudit audit", opts["training_backend"], ["auto", "ray", "serial"])
    if (backend == "ray" or opts["ray_address"]) and family == "membership-inference":
        from audit.parallel_training import import_ray

        import_ray("--backend ray (or --ray-address)")  # Ray is an optional extra: fail now, clearly
    workers = None
    if opts["workers"] is not None:
        workers = _int("workers", opts["workers"])
        if workers < 1:
            raise InvalidParameterError(
                f"The 'workers' parameter of fedaudit audit must be an int >= 1. Got {workers!r} instead.")
    cache_dir = str(opts["cache_dir"] or default_cache_dir())
    if family == "membership-inference":
        ModelCache(cache_dir)  # fails now, naming the path, if it is not a writable directory
    return TrainingBackend(backend=backend, ray_address=opts["ray_address"], workers=workers,
                           cache_dir=cache_dir)


def _int(name: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(str(value))
    except ValueError:
        raise InvalidParameterError(
            f"The {name!r} parameter of fedaudit must be an int. Got {value!r} instead."
        ) from None


def canonical_command(config: AuditConfig, *, threads: int, estimator: str | None = None,
                      estimator_params: dict[str, Any] | None = None) -> str:
    """The ``fedaudit audit`` command that reproduces ``config`` (deterministic)."""
    parts = ["fedaudit", "audit"]
    for kind in ("defense", "attack", "dataset", "model"):
        parts += [f"--{kind}", getattr(config, kind)]
        for k, v in sorted(getattr(config, f"{kind}_params").items()):
            parts += [f"--{kind}-param", f"{k}={v}"]
    if config.threat_model:
        parts += ["--threat-model", config.threat_model]
    for key in ("batch_size", "num_targets", "clients_per_round", "rounds", "pretrain_steps", "seed",
                "num_candidates", "num_population"):
        value = getattr(config, key)
        if value is not None:
            parts += [f"--{key.replace('_', '-')}", str(value)]
    if estimator:
        parts += ["--estimator", estimator]
        for k, v in sorted((estimator_params or {}).items()):
            parts += ["--estimator-param", f"{k}={v}"]
    parts += ["--threads", str(threads), "--out", "OUT"]
    return shlex.join(parts)


@cli.command()
@click.option("--out", required=True, help="Output directory for report.json and report.html.")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda")
@click.option("--threads", type=str, default="1", show_default=True)
@click.option("--progress/--no-progress", default=None)
def demo(out: str, device: str, threads: str, progress: bool | None) -> None:
    """A fixed small audit on embedded data: undefended FedSGD vs DP-FedAvg at two noise
    levels, attacked by Inverting Gradients and iDLG; FedAvg vs DP-FedAvg (epsilon 1)
    attacked by LOSS and LiRA membership inference."""
    from audit.demo import run_demo

    start = time.perf_counter()
    try:
        dev = resolve_device(device)
        n_threads = set_threads(_int("threads", threads))
        scorer, notes = _lpips(True, dev)
        findings = run_demo(device=dev, lpips_scorer=scorer, progress=_progress(progress))
        _finish(
            findings, title="fedaudit demo: gradient inversion and membership inference against FedSGD/FedAvg and DP-FedAvg",
            command=f"fedaudit demo --threads {n_threads} --out OUT", seed=0, device=dev,
            threads=n_threads, notes=notes, start=start, out=out,
        )
    except InvalidParameterError as exc:
        _fail(str(exc))


@cli.command()
@click.option("--noise-multiplier", required=True, type=str, help="Gaussian noise std / sensitivity (z).")
@click.option("--sample-rate", default="1.0", show_default=True, type=str, help="Poisson sampling rate q.")
@click.option("--steps", default="1", show_default=True, type=str, help="Compositions (steps or rounds).")
@click.option("--delta", default="1e-5", show_default=True, type=str)
@click.option("--neighbouring", default="add-or-remove-one", show_default=True,
              help="add-or-remove-one | replace-one")
def epsilon(noise_multiplier: str, sample_rate: str, steps: str, delta: str, neighbouring: str) -> None:
    """Print epsilon of a (Poisson-subsampled) Gaussian mechanism from every accountant."""
    from audit.accounting import ACCOUNTANTS, GaussianEventSpec, Neighbouring
    from audit.accounting import epsilon as account
    from audit.validation import check_interval, check_options

    try:
        z = check_interval("noise_multiplier", "fedaudit epsilon", noise_multiplier, low=0, closed="neither")
        q = check_interval("sample_rate", "fedaudit epsilon", sample_rate, low=0, high=1, closed="right")
        n = check_interval("steps", "fedaudit epsilon", steps, kind=int, low=1)
        d = check_interval("delta", "fedaudit epsilon", delta, low=0, high=1, closed="neither")
        rel = Neighbouring(check_options("neighbouring", "fedaudit epsilon", neighbouring,
                                         [r.value for r in Neighbouring]))
        spec = GaussianEventSpec(z, n, q, rel)
        click.echo(f"{spec.describe()}, delta={d:g}")
        for entry in ACCOUNTANTS:
            try:
                value = f"{account(spec, delta=d, accountant=entry.name):.6g}"
            except InvalidParameterError:
                value = "n/a (this accountant does not support replace-one)"
            click.echo(f"  {entry.name:<12} epsilon = {value}")
    except InvalidParameterError as exc:
        _fail(str(exc))


def _command_of(ctx: click.Context, name: str) -> str:
    """The command line that reproduces this invocation (every option, defaults included)."""
    words = ["fedaudit", name]
    flags = {p.name: p.opts[0] for p in ctx.command.params}
    for key, value in ctx.params.items():
        flag = flags.get(key, "--" + key.replace("_", "-"))
        for v in (value if isinstance(value, (tuple, list)) else [value]):
            if v is not None:
                words += [flag, str(v)]
    return shlex.join(words)


@cli.command("opacus")
@click.option("--run", "run_spec", default=None, metavar="FILE.py:NAME",
              help="Your own Opacus training (an OpacusRun, or a function returning one); default: a built-in one.")
@click.option("--dataset", default="digits", show_default=True, help="Built-in run: embedded dataset.")
@click.option("--model", default="mlp", show_default=True, help="Built-in run: model.")
@click.option("--model-param", multiple=True, metavar="K=V", help="Built-in run: model parameter.")
@click.option("--noise-multiplier", default="1.0", show_default=True, help="Built-in run: DP-SGD noise multiplier.")
@click.option("--max-grad-norm", default="1.0", show_default=True, help="Built-in run: per-sample clip norm.")
@click.option("--batch-size", default="64", show_default=True, help="Built-in run: expected Poisson batch size.")
@click.option("--epochs", default="1", show_default=True, help="Built-in run: epochs.")
@click.option("--lr", default="0.5", show_default=True, help="Built-in run: SGD learning rate.")
@click.option("--accountant", default="rdp", show_default=True, help="Built-in run: rdp | prv | gdp.")
@click.option("--delta", default="1e-5", show_default=True)
@click.option("--claimed-epsilon", default=None, help="The epsilon you report (default: Opacus's own).")
@click.option("--estimator", "estimators", multiple=True, default=("one-run",), show_default=True,
              help="one-run (white-box gradient canaries) | cp | one-run-input (black-box); repeatable.")
@click.option("--canaries", default=None, help="one-run: gradient canaries.")
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

    from audit.opacus_audit import audit_opacus, builtin_run, load_run, opacus_findings_report
    from audit.validation import check_interval

    start = time.perf_counter()
    try:
        owner = "fedaudit opacus"
        threads_n = set_threads(_int("threads", threads))
        d = check_interval("delta", owner, delta, low=0, high=1, closed="neither")
        if run_spec:
            run = load_run(run_spec)
        else:
            run = builtin_run(
                dataset=dataset, model=model, model_params=parse_pairs(model_param, "--model-param"),
                noise_multiplier=check_interval("noise_multiplier", owner, noise_multiplier, low=0, closed="neither"),
                max_grad_norm=check_interval("max_grad_norm", owner, max_grad_norm, low=0, closed="neither"),
                batch_size=_int("batch_size", batch_size), epochs=_int("epochs", epochs),
                lr=check_interval("lr", owner, lr, low=0, closed="neither"), delta=d, accountant=accountant)
        run = dataclasses.replace(run, delta=d, claimed_epsilon=None if claimed_epsilon is None else
                                  check_interval("claimed_epsilon", owner, claimed_epsilon, low=0, closed="neither"))
        findings = audit_opacus(run, tuple(estimators), seed=_int("seed", seed),
                                canaries=None if canaries is None else _int("canaries", canaries),
                                trials=_int("trials", trials), input_canaries=_int("input_canaries", input_canaries))
        from audit.privacy_audit import NOT_A_PROOF

        report = opacus_findings_report(
            findings, out, command=_command_of(click.get_current_context(), "opacus"), seed=_int("seed", seed),
            notes=[NOT_A_PROOF], device="cpu", threads=threads_n, runtime_s=time.perf_counter() - start)
        for f in report["findings"]:
            pa = f.get("privacy_audit") or {}
            click.echo(f"{f['id']}: {pa.get('verdict')} ({pa.get('reason')})")
        click.echo(f"wrote {Path(out) / 'report.json'} and {Path(out) / 'report.html'}")
    except InvalidParameterError as exc:
        _fail(str(exc))


@cli.command("sweep")
@click.argument("spec")
@click.option("--out", required=True, help="Sweep directory: runs/<id>/, failed/<id>.txt, compliance.{json,html}.")
@click.option("--backend", default="ray", show_default=True, help="ray (local instance or --ray-address) | serial")
@click.option("--ray-address", default=None, help="Join this Ray cluster instead of starting a local one.")
@click.option("--workers", type=str, default=None, help="Runs at once (default: CPU count).")
@click.option("--status", "status_only", is_flag=True, help="List done and pending runs; run nothing.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
def sweep_cmd(spec: str, out: str, backend: str, ray_address: str | None, workers: str | None,
              status_only: bool, progress: bool | None) -> None:
    """Run a grid of audits from SPEC (TOML or YAML), resumably, and write one compliance report."""
    from audit.sweep import load_spec, run_sweep, sweep_status
    from audit.validation import check_options

    try:
        check_options("backend", "fedaudit sweep", backend, ["ray", "serial"])
        parsed = load_spec(spec)
        if status_only:
            st = sweep_status(parsed, out)
            for rid in st.done:
                click.echo(f"done     {rid}")
            for rid in st.pending:
                click.echo(f"{'failed' if rid in st.failed else 'pending':<8} {rid}"
                           + (f"  ({st.failed[rid]})" if rid in st.failed else ""))
            click.echo(f"{len(st.done)} of {st.total} run(s) done")
            return
        result = run_sweep(parsed, out, backend=backend, ray_address=ray_address,
                           workers=None if workers is None else _int("workers", workers),
                           progress=_progress(progress))
    except InvalidParameterError as exc:
        _fail(str(exc))
    click.echo(result.summary())
    for rid, message in result.failed.items():
        click.echo(f"failed: {rid}: {message} (see {out}/failed/{rid}.txt)", err=True)
    sys.exit(1 if result.failed else 0)


REPORT_FORMATS = ("html", "md", "pdf", "json")


def _compliance(run_dirs: tuple[str, ...], policy_file: str | None, command: str) -> dict:
    from audit.policy import load_policy
    from reports.compliance import build_compliance, load_run

    if not run_dirs:
        raise InvalidParameterError("fedaudit needs at least one RUN_DIR (an audit's --out directory). Got none instead.")
    policy = load_policy(policy_file)
    runs = [load_run(d) for d in run_dirs]
    return build_compliance(runs, policy=policy, policy_source=policy_file or "default policy (audit/policies/default.toml)",
                            command=command)


def _images(run_dirs: tuple[str, ...]) -> dict[str, dict]:
    from reports.io import load_report

    out = {}
    for d in run_dirs:
        for f in load_report(Path(d) / "report.json")["findings"]:
            if f.get("images"):
                out[f["id"]] = f["images"]
    return out


def _rerender(report_json: str, fmt: str, output: str | None) -> None:
    """Re-render one audit report.json as HTML or Markdown (beside it by default)."""
    from reports.html import render_html
    from reports.io import load_report, write_text_atomic
    from reports.markdown import render_markdown

    if fmt not in ("html", "md"):
        raise InvalidParameterError(
            f"The 'format' parameter of fedaudit report REPORT_JSON must be a str among {{'html', 'md'}} "
            f"(compliance reports of run directories also take 'pdf' and 'json'). Got {fmt!r} instead.")
    data = load_report(report_json)
    text = render_html(data) if fmt == "html" else render_markdown(data)
    target = Path(output) if output else Path(report_json).with_suffix(f".{fmt}")
    write_text_atomic(target, text)
    click.echo(f"wrote {target}")


@cli.command("report")
@click.argument("run_dirs", nargs=-1)
@click.option("--policy", "policy_file", default=None, help="Policy file (TOML or YAML; default: the shipped policy).")
@click.option("--format", "fmt", default="html", show_default=True, help="html | md | pdf | json")
@click.option("--out", "--output", "out", default=None,
              help="Output file (required for a compliance report; a re-rendered REPORT_JSON goes beside it by default).")
def report_cmd(run_dirs: tuple[str, ...], policy_file: str | None, fmt: str, out: str | None) -> None:
    """Combine audit runs (RUN_DIR: an audit's --out directory) into one compliance report
    judged against a policy; or, given one REPORT_JSON file, re-render that audit report."""
    try:
        if len(run_dirs) == 1 and run_dirs[0].endswith(".json") and policy_file is None:
            _rerender(run_dirs[0], fmt, out)
            return
        if not out:
            raise InvalidParameterError(
                "The 'out' parameter of fedaudit report must be the compliance report's file. Got None instead.")
        if fmt not in REPORT_FORMATS:
            raise InvalidParameterError(
                "The 'format' parameter of fedaudit report must be a str among {"
                + ", ".join(repr(f) for f in REPORT_FORMATS) + f"}}. Got {fmt!r} instead.")
        command = shlex.join(["fedaudit", "report", *run_dirs, *(["--policy", policy_file] if policy_file else []),
                              "--format", fmt, "--out", out])
        report = _compliance(run_dirs, policy_file, command)
        from reports.io import write_json_atomic, write_text_atomic

        if fmt == "json":
            write_json_atomic(out, report)
        elif fmt == "md":
            from reports.compliance_render import compliance_markdown

            write_text_atomic(out, compliance_markdown(report))
        elif fmt == "html":
            from reports.compliance_render import compliance_html

            write_text_atomic(out, compliance_html(report, _images(run_dirs)))
        else:
            from reports.compliance_render import compliance_pdf

            compliance_pdf(report, _images(run_dirs), out)
        click.echo(f"{report['verdict']['status']}: wrote {out}")
    except InvalidParameterError as exc:
        _fail(str(exc))


@cli.command("check")
@click.argument("run_dirs", nargs=-1)
@click.option("--policy", "policy_file", default=None, help="Policy file (TOML or YAML; default: the shipped policy).")
@click.option("--strict/--no-strict", default=False, show_default=True,
              help="Fail on rules the evidence cannot evaluate too.")
def check_cmd(run_dirs: tuple[str, ...], policy_file: str | None, strict: bool) -> None:
    """Gate a deployment: exit 0 when every policy rule passes, 1 when one fails, 2 on bad input."""
    try:
        report = _compliance(run_dirs, policy_file, shlex.join(["fedaudit", "check", *run_dirs]))
    except InvalidParameterError as exc:
        _fail(str(exc))
    rules = report["policy"]["rules"]
    for r in rules:
        click.echo(f"{r['status']:<13} {r['rule']}: {r['why']}")
    failed = [r for r in rules if r["status"] == "FAIL" or (strict and r["status"] == "NOT EVALUATED")]
    click.echo(f"{'FAIL' if failed else 'PASS'}: {len(rules) - len(failed)} of {len(rules)} rule(s) pass"
               + (" (--strict: unevaluated rules fail)" if strict else ""))
    sys.exit(1 if failed else 0)


@cli.command("validate")
@click.argument("path")
def validate_cmd(path: str) -> None:
    """Validate an audit report.json or a compliance report (JSON) against its schema."""
    import json

    try:
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise InvalidParameterError(f"Cannot validate {path!r}: no such file.") from None
        except (json.JSONDecodeError, UnicodeDecodeError, IsADirectoryError) as exc:
            raise InvalidParameterError(f"Cannot validate {path!r}: not a JSON file ({exc}).") from None
        if isinstance(data, dict) and data.get("kind") == "compliance-report":
            from reports.compliance import validate_compliance

            validate_compliance(data)
            kind = f"compliance report, schema {data['schema_version']}"
        else:
            from reports.audit_schema import validate_audit_json_schema
            from reports.io import load_report

            data = load_report(path)  # the full check (unique ids, dates, ...)
            validate_audit_json_schema(data)  # and the published JSON Schema
            kind = f"audit report, schema {data['schema_version']}"
        click.echo(f"valid: {path} ({kind})")
    except InvalidParameterError as exc:
        _fail(str(exc))


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors with exit code 2 for usage errors too."""
    try:
        code = cli.main(args=argv, prog_name="fedaudit", standalone_mode=False)
    except click.exceptions.UsageError as exc:
        _fail(exc.format_message().replace("\n", " "))
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except InvalidParameterError as exc:
        _fail(str(exc))
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
