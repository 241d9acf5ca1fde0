"""``fedaudit audit``: one defense attacked by one attack, settings from options and an
optional config file, checked before any computation, then a report."""

from __future__ import annotations

import time
from typing import Any

import click

from audit.cli.common import _fail, _finish, _float, _int, _lpips, _progress
from audit.core.attack import ATTACKS
from audit.core.config import AuditConfig, canonical_command, load_config_file, parse_pairs
from audit.core.device import resolve_device, set_threads
from audit.core.errors import InvalidParameterError
from audit.models.cache import default_cache_dir


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
    "weights": "weights",
    "client_split": "client_split",
    "client_split_alpha": "client_split_alpha",
    "simulation": "simulation",
    "client_sampling": "client_sampling",
}


@click.command()
@click.option("--config", "config_file", type=str, default=None, help="TOML or YAML file with these settings.")
@click.option("--defense", default="fedsgd", show_default=True, help="Defense name (see `fedaudit list`).")
@click.option("--defense-param", multiple=True, metavar="K=V", help="Defense parameter, repeatable.")
@click.option("--attack", default="inverting-gradients", show_default=True, help="Attack name.")
@click.option("--attack-param", multiple=True, metavar="K=V", help="Attack parameter, repeatable.")
@click.option("--dataset", default="natural-32", show_default=True, help="Dataset name.")
@click.option("--dataset-param", multiple=True, metavar="K=V", help="Dataset parameter (e.g. path=DIR).")
@click.option("--model", default="convnet", show_default=True, help="Model name.")
@click.option("--model-param", multiple=True, metavar="K=V", help="Model parameter, repeatable.")
@click.option("--weights", default=None, metavar="FILE.safetensors", help="Broadcast weights of the model (default: random init).")
@click.option("--local-training", multiple=True, metavar="K=V",
              help="The clients' local training as they run it (epochs, batch_size, optimizer, model_mode, ...), repeatable.")
@click.option("--threat-model", default=None, help="Threat model (default: the defense's claim's adversary).")
@click.option("--batch-size", type=str, default="1", show_default=True, help="Examples per client batch.")
@click.option("--num-targets", type=str, default="8", show_default=True, help="Clients (targets) to attack.")
@click.option("--client-split", default="sequential", show_default=True,
              help="Which items each client holds: sequential | iid | dirichlet | column (the data's client column).")
@click.option("--client-split-alpha", default=None, help="Dirichlet concentration (with --client-split dirichlet).")
@click.option("--clients-per-round", type=str, default=None, help="Clients sampled per round (default all).")
@click.option("--client-sampling", default="fixed", show_default=True,
              help="How a round's clients are drawn: fixed (exactly --clients-per-round) | poisson (each at that rate).")
@click.option("--simulation", default="auto", show_default=True,
              help="auto (clients batched with vmap when the defense allows) | vectorised | loop.")
@click.option("--rounds", type=str, default="1", show_default=True, help="Federated rounds simulated.")
@click.option("--pretrain-steps", type=str, default="0", show_default=True, help="Brief training before the audit.")
@click.option("--seed", type=str, default="0", show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda")
@click.option("--threads", type=str, default="1", show_default=True, help="torch CPU threads.")
@click.option("--lpips/--no-lpips", default=True, show_default=True, help="Compute LPIPS if weights are cached.")
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: on a terminal).")
@click.option("--estimator", default=None, help="Also estimate empirical epsilon: cp | one-run | fdp-one-run | gaussian-aggregate | one-shot | one-run-input.")
@click.option("--estimator-param", multiple=True, metavar="K=V", help="Estimator parameter (trials, canaries, dim).")
@click.option("--shadow-models", type=str, default=None, help="Membership: shadow/reference models (lira, rmia).")
@click.option("--num-candidates", type=str, default=None, help="Membership: candidate examples (default 40% of the data, at most 2000).")
@click.option("--num-population", type=str, default=None, help="Membership: adversary's population examples (default 20%, at most 1000).")
@click.option("--backend", "training_backend", default="auto", show_default=True, help="Shadow-model training: auto (Ray when it pays off, from the first model's time) | ray | serial.")
@click.option("--ray-address", default=None, help="Join this Ray cluster instead of starting a local one.")
@click.option("--workers", type=str, default=None, help="Shadow models trained at once (default: CPU count).")
@click.option("--cache-dir", default=None, help="Shadow-model cache (default $XDG_CACHE_HOME/fedaudit/models).")
@click.option("--out", default=None, help="Output directory for report.json and report.html.")
@click.option("--observed", default=None, metavar="DIR", help="Audit the recorded updates in DIR, no simulation (docs/recorded-updates.md).")
@click.pass_context
def audit(ctx: click.Context, config_file: str | None, **opts: Any) -> None:
    """Audit one defense with one attack and write a report."""
    start = time.perf_counter()
    if opts["observed"] is not None:  # recorded updates, no simulation: audit.cli.observed_command
        from audit.cli.observed_command import observed_audit

        return observed_audit(ctx, config_file, opts, start)
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
        pairs = parse_pairs(opts["local_training"], "--local-training")
        settings["local_training"] = {**settings.get("local_training", {}), **pairs}
        for key in ("device", "threads", "out"):
            if explicit(key) or key not in settings:
                settings[key] = opts[key]
        for key in ("batch_size", "num_targets", "rounds", "pretrain_steps", "seed", "threads"):
            settings[key] = _int(key, settings[key])
        for key in ("clients_per_round", "num_candidates", "num_population"):
            if settings.get(key) is not None:
                settings[key] = _int(key, settings[key])
        if settings.get("client_split_alpha") is not None:
            settings["client_split_alpha"] = _float("client_split_alpha", settings["client_split_alpha"])
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
            from audit.privacy.auditing.defense_audit import ESTIMATOR_CHOICES
            from audit.privacy.auditing.verdicts import NOT_A_PROOF

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


def _training_backend(opts: dict[str, Any], family: str):
    """Shadow-model training settings, checked before any computation."""
    from audit.membership.membership_audit import TrainingBackend
    from audit.models.cache import ModelCache
    from audit.core.validation import check_options

    backend = check_options("backend", "fedaudit audit", opts["training_backend"], ["auto", "ray", "serial"])
    if (backend == "ray" or opts["ray_address"]) and family == "membership-inference":
        from audit.fl.parallel_training import import_ray

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
