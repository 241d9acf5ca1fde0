"""``fedaudit mia --target-weights W``: the membership audit of the user's own trained target,
with shadow models trained by the user's own training function
(:mod:`audit.membership.shadow_scores`). The ``mia`` command dispatches here when
``--target-weights`` is given; ``--scores`` (recorded scores, no training) and
``--target-weights`` exclude each other, and the options of one way may not be set with
the other (an error naming the option)."""

from __future__ import annotations

from typing import Any

import click

from audit.cli.common import _fail, _finish, _int, _progress
from audit.core.config import parse_pairs
from audit.core.device import set_threads
from audit.core.errors import InvalidParameterError

#: the options that only the ``--target-weights`` way takes: flag -> click settings
TARGET_OPTIONS: dict[str, dict[str, Any]] = {
    "--model": {"metavar": "SPEC", "help": "the model builder (file.py:build or a model name)."},
    "--model-param": {"multiple": True, "metavar": "K=V", "help": "model parameter, repeatable."},
    "--dataset": {"metavar": "NAME", "help": "the dataset; every item is a candidate."},
    "--dataset-param": {"multiple": True, "metavar": "K=V", "help": "dataset parameter (e.g. path=FILE)."},
    "--members": {"metavar": "FILE", "help": ".npz array or .csv column 'member', one 0/1 per dataset item."},
    "--train": {"metavar": "SPEC", "help": "your train(model, images, labels, *, seed) (file.py:train)."},
    "--shadow-models": {"metavar": "N", "help": "shadow models trained (default 8)."},
    "--threads": {"metavar": "N", "help": "torch CPU threads (default 1)."},
    "--progress/--no-progress": {"help": "progress bar (default: on a terminal)."},
}
_NAMES = tuple(f.split("/")[0][2:].replace("-", "_") for f in TARGET_OPTIONS)
REQUIRED = ("model", "dataset", "members", "train")


def target_options(command):
    """``command`` with the options of :data:`TARGET_OPTIONS` (in that order, default ``None``)."""
    for flag, settings in reversed(TARGET_OPTIONS.items()):
        settings = {"default": None, **settings, "help": "With --target-weights: " + settings["help"]}
        command = click.option(flag, **settings)(command)
    return command


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def wants_target(opts: dict[str, Any]) -> bool:
    """Whether ``opts`` ask for the ``--target-weights`` way (checking that they ask for one)."""
    scores, weights = opts["scores_file"], opts["target_weights"]
    if scores is not None and weights is not None:
        raise InvalidParameterError(
            "fedaudit mia takes --scores FILE (recorded scores) or --target-weights FILE (your "
            f"target, trained shadow models), not both. Got --scores {scores!r} and "
            f"--target-weights {weights!r} instead.")
    if scores is None and weights is None:
        raise InvalidParameterError(
            "fedaudit mia needs --scores FILE (recorded scores) or --target-weights FILE (your "
            "target, with --model, --dataset, --members and --train). Got neither instead.")
    if weights is None:
        given = [n for n in _NAMES if opts[n] not in (None, ())]
        if given:
            raise InvalidParameterError(
                f"The '{_flag(given[0])}' option of fedaudit mia goes with --target-weights; "
                f"--scores audits recorded values and trains nothing. Got {_flag(given[0])} set instead.")
        return False
    missing = [n for n in REQUIRED if opts[n] is None]
    if missing:
        raise InvalidParameterError(
            f"fedaudit mia --target-weights needs {', '.join(map(_flag, REQUIRED))}. Got no "
            f"{_flag(missing[0])} instead.")
    return True


def target_mia(opts: dict[str, Any], start: float) -> None:
    """Audit the target ``opts["target_weights"]`` and write the report and ``scores.npz``."""
    try:
        from audit.membership.shadow_scores import (DEFAULT_SHADOW_MODELS, command_line,
                                                    prepare_target_audit, report_title,
                                                    run_target_audit)

        seed = _int("seed", opts["seed"])
        threads = set_threads(_int("threads", opts["threads"] or 1))
        shadow_models = DEFAULT_SHADOW_MODELS if opts["shadow_models"] is None else \
            _int("shadow_models", opts["shadow_models"])
        audit = prepare_target_audit(
            weights=opts["target_weights"], model=opts["model"],
            model_params=parse_pairs(opts["model_param"], "--model-param"), dataset=opts["dataset"],
            dataset_params=parse_pairs(opts["dataset_param"], "--dataset-param"),
            members=opts["members"], train=opts["train"], shadow_models=shadow_models,
            attacks=list(opts["attacks"]) or None, seed=seed, out=opts["out"])
        findings, notes = run_target_audit(audit, out=opts["out"], progress=_progress(opts["progress"]))
        import torch

        _finish(findings, title=report_title(audit),
                command=command_line(audit, threads=threads, out=opts["out"]), seed=seed,
                device=torch.device("cpu"), threads=threads, notes=notes, start=start, out=opts["out"])
    except InvalidParameterError as exc:
        _fail(str(exc))

