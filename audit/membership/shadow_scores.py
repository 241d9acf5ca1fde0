"""The membership audit of the user's own trained target, with shadow models trained by the
user's own training function (``fedaudit mia --target-weights W --model B --dataset D
--members FILE --train T``): the middle way between fedaudit's simulated target
(:mod:`audit.membership.membership_audit`) and recorded scores alone
(:mod:`audit.membership.score_audit`).

LiRA online (Carlini et al. 2022, "Membership inference attacks from first principles",
Sec. IV): every item of the dataset is a candidate; shadow model m is built with the
user's builder ``B`` (a fresh initialisation), trained by the user's function ``T`` on a
random half of the candidates (``ref_in[m]``), and queried on all of them; the target,
loaded from ``W``, is queried on all of them too. The logits become a
:class:`~audit.membership.score_file.RecordedScores` (``logits`` and ``label``,
``ref_logits``, ``ref_in``, ``member`` from the members file) and are scored by
:func:`~audit.membership.score_audit.audit_scores`, the maths of ``fedaudit mia --scores``:
LOSS (Yeom et al. 2018), LiRA online and offline. The scores are also written as
``scores.npz`` beside the report, so ``fedaudit mia --scores DIR/scores.npz`` gives the same
figures without training anything.

Project choices:

* everything is checked before any training: the model fits the data and the weights
  fit the model, the members file gives one 0/1 value per item with at least
  :data:`~audit.membership.score_file.MIN_PER_SIDE` on each side, the training function's
  signature (:mod:`audit.membership.user_training`), the attacks, ``shadow_models`` in
  [2, 4096] (so every candidate has IN and OUT shadow models);
* the halves are :func:`attacks.membership_signals.balanced_masks` drawn from
  ``numpy.random.default_rng(seed)``: each candidate is in exactly ``M // 2`` shadow models;
  shadow model m is built after ``torch.manual_seed(s)`` and trained with ``seed=s``, where
  ``s = shadow_seed(seed, m)`` (:func:`audit.membership.game.shadow_seed`), so a run is
  determined by ``seed``, the user's code and the thread count;
* one query per candidate (the identity, no shift augmentations), as a scores file holds;
  models run on the CPU, one after the other, and only their logits are kept;
* RMIA is not offered: it needs population samples outside every model's training, and
  here every item is a candidate.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from attacks.membership_signals import balanced_masks, logits_of
from audit.core.errors import InvalidParameterError
from audit.core.validation import check_interval
from audit.data.dataset import ImageDataset
from audit.data.registry import create_dataset
from audit.membership.game import shadow_seed
from audit.membership.member_file import read_members
from audit.membership.score_audit import audit_scores, choose_attacks
from audit.membership.score_file import RecordedScores, validate_arrays, write_scores
from audit.membership.user_training import UserTraining, load_training
from audit.models.registry import create_model
from audit.models.shape_check import check_model_fits
from audit.models.weights import load_weights

OWNER = "fedaudit mia"
DEFAULT_SHADOW_MODELS = 8
SCORES_NAME = "scores.npz"
#: the attacks these scores feed (no population: no RMIA)
ATTACKS = ("loss", "lira", "lira-offline")


@dataclass(frozen=True, eq=False)
class TargetAudit:
    """A checked membership audit of the user's target, ready to train its shadow models."""

    weights: str
    model: str
    model_params: dict[str, Any]
    dataset_name: str
    dataset_params: dict[str, Any]
    dataset: ImageDataset
    target: nn.Module
    members_file: str
    member: np.ndarray  # (N,) bool, the target's training items
    training: UserTraining
    ref_in: np.ndarray  # (M, N) bool, each shadow model's training items
    attacks: list[str]
    seed: int

    @property
    def shadow_models(self) -> int:
        """M, the shadow models."""
        return len(self.ref_in)

    def build(self, seed: int) -> nn.Module:
        """A freshly initialised model of the user's architecture (``torch.manual_seed(seed)``)."""
        torch.manual_seed(seed)
        ds = self.dataset
        return create_model(self.model, input_shape=ds.input_shape, num_classes=ds.num_classes,
                            channel_mean=ds.channel_mean, channel_std=ds.channel_std,
                            **self.model_params)


def _attacks(member: np.ndarray, ref_in: np.ndarray, attacks, source: str) -> list[str]:
    """The attacks to run, checked against what the computed scores will allow."""
    for name in attacks or ():
        if name == "rmia":
            raise InvalidParameterError(
                f"The 'attack' parameter of {OWNER} --target-weights cannot be 'rmia': RMIA needs "
                "population samples outside every model's training, and here every dataset item is "
                "a candidate (fedaudit mia --scores takes population rows).")
        if name not in ATTACKS:
            raise InvalidParameterError(
                f"The 'attack' parameter of {OWNER} --target-weights must be a str among "
                "{" + ", ".join(map(repr, ATTACKS)) + f"}}. Got {name!r} instead.")
    planned = RecordedScores(source, "loss", member, np.zeros(len(member)),
                             ref=np.zeros(ref_in.shape), ref_in=ref_in)
    return choose_attacks(planned, attacks)


def prepare_target_audit(*, weights: str, model: str, dataset: str, members: str, train: str,
                         model_params: dict[str, Any] | None = None,
                         dataset_params: dict[str, Any] | None = None,
                         shadow_models: int = DEFAULT_SHADOW_MODELS, attacks=None, seed: int = 0,
                         out: str | Path | None = None) -> TargetAudit:
    """Check every input of the audit (nothing trained, nothing written).

    Args:
        weights: The target's ``.safetensors`` file (exactly the model's ``state_dict``).
        model: The builder, ``file.py:build`` / ``module:build`` or a registered model name.
        dataset: A registered dataset name (``npz``, ``table``, ...); its items are the candidates.
        members: The members file (:mod:`audit.membership.member_file`).
        train: The training function, ``file.py:train`` / ``module:train``.
        model_params, dataset_params: Keyword arguments of the builder and the dataset.
        shadow_models: M, in [2, 4096].
        attacks: Names among ``loss``, ``lira``, ``lira-offline``; ``None``: all three.
        seed: Seed of the halves, the shadow models and the AUC's bootstrap interval.
        out: The output directory (must not be a file), when one will be written.

    Raises:
        InvalidParameterError: the first bad input, named.
    """
    seed = check_interval("seed", OWNER, seed, kind=int, low=0)
    shadow_models = check_interval("shadow_models", OWNER, shadow_models, kind=int, low=2, high=4096)
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise InvalidParameterError(
            f"The 'out' parameter of {OWNER} must be a directory. Got {str(out)!r} (a file) instead.")
    model_params, dataset_params = dict(model_params or {}), dict(dataset_params or {})
    data = create_dataset(dataset, **dataset_params)
    if data.task != "classification":
        raise InvalidParameterError(
            f"The 'dataset' parameter of {OWNER} --target-weights must be a classification dataset "
            f"(LiRA scores the true class). Got {dataset!r} ({data.task}) instead.")
    torch.manual_seed(seed)
    target = create_model(model, input_shape=data.input_shape, num_classes=data.num_classes,
                          channel_mean=data.channel_mean, channel_std=data.channel_std, **model_params)
    load_weights(target, weights, what=f"model {model!r}")
    check_model_fits(target, data.images[:1], num_classes=data.num_classes, task=data.task,
                     model_name=model, dataset_name=dataset)
    member = read_members(members, len(data), dataset)
    training = load_training(train, owner=OWNER)
    ref_in = balanced_masks(shadow_models, len(data), np.random.default_rng(seed))
    chosen = _attacks(member, ref_in, attacks, f"the scores of {weights}")
    return TargetAudit(str(weights), model, model_params, dataset, dataset_params, data, target.eval(),
                       str(members), member, training, ref_in, chosen, seed)


def shadow_scores(audit: TargetAudit, *, source: str, progress: bool = False) -> RecordedScores:
    """Train the shadow models with the user's function and query them and the target.

    Returns the scores (``source`` names them in the findings: the ``scores.npz`` path).
    """
    ds = audit.dataset
    images, labels = ds.images, ds.labels.long()
    refs = []
    for m in tqdm(range(audit.shadow_models), desc="shadow models", disable=not progress):
        s = shadow_seed(audit.seed, m)
        idx = torch.from_numpy(np.flatnonzero(audit.ref_in[m]))
        trained = audit.training(audit.build(s), images[idx], labels[idx], seed=s, index=m,
                                 num_classes=ds.num_classes, task=ds.task, dataset=audit.dataset_name)
        refs.append(logits_of(trained, images).double().numpy())
    arrays = {"member": audit.member, "label": labels.numpy(),
              "logits": logits_of(audit.target, images).double().numpy(),
              "ref_logits": np.stack(refs), "ref_in": audit.ref_in}
    return validate_arrays(source, arrays, lambda name, idx: f"the array {name!r}" + (
        "" if idx is None else f" at index {list(idx)}"))


def _describe(finding: dict[str, Any], audit: TargetAudit, seconds: float) -> dict[str, Any]:
    """A score-level finding worded for what it is: the user's target and shadow models."""
    name = finding["id"].split(":", 1)[1]
    m, n, spec = audit.shadow_models, len(audit.member), audit.training.spec
    finding["id"] = f"target:{name}"
    finding["title"] = (f"{name} membership inference on your target ({Path(audit.weights).name}), "
                        f"{m} shadow models trained by {spec}")
    finding["defense"] = {"name": "your training", "params": {"train": spec}}
    finding["setting"].update(dataset=audit.dataset_name, model=audit.model,
                              model_params=dict(audit.model_params), num_targets=n)
    mem = finding["membership"]
    mem["game"].update(seed=audit.seed, member_rule=f"as given in the members file {audit.members_file}")
    mem["observes"] = (f"the target's logits on the {n} candidates (weights {audit.weights}), and "
                       f"those of {m} shadow models trained by {spec} on random halves")
    mem["shadow_training"] = [{"loaded": 0, "trained": m, "backend": "serial", "workers": 1,
                               "threads_per_worker": torch.get_num_threads(), "seconds": seconds,
                               "reason": f"the user's training function {spec}, in-process"}]
    finding["runtime_s"] += seconds
    return finding


def command_line(audit: TargetAudit, *, threads: int, out: str | Path | None) -> str:
    """The ``fedaudit mia --target-weights`` line that reproduces ``audit`` (defaults spelt out)."""
    words = ["fedaudit", "mia", "--target-weights", audit.weights, "--model", audit.model]
    words += [w for k, v in audit.model_params.items() for w in ("--model-param", f"{k}={v}")]
    words += ["--dataset", audit.dataset_name]
    words += [w for k, v in audit.dataset_params.items() for w in ("--dataset-param", f"{k}={v}")]
    words += ["--members", audit.members_file, "--train", audit.training.spec,
              "--shadow-models", str(audit.shadow_models)]
    words += [w for a in audit.attacks for w in ("--attack", a)]
    words += ["--seed", str(audit.seed), "--threads", str(threads)]
    return shlex.join(words + ([] if out is None else ["--out", str(out)]))


def report_title(audit: TargetAudit) -> str:
    """The report's title."""
    return f"fedaudit: membership audit of your target {Path(audit.weights).name}"


def notes_of(audit: TargetAudit, scores_path: str | None) -> list[str]:
    """The report's notes on how the scores were made (and where they were written)."""
    note = (f"Membership audit of your target: loaded from {audit.weights}; "
            f"{audit.shadow_models} shadow models built by {audit.model} and trained by "
            f"{audit.training.spec} on random halves of the {len(audit.member)} candidates "
            "(LiRA online, Carlini et al. 2022); scored with the score-level audit's maths.")
    if scores_path is None:
        return [note]
    return [note, f"The scores are in {scores_path}: `fedaudit mia --scores {scores_path}` "
                  "re-runs this audit without training."]


def run_target_audit(audit: TargetAudit, *, out: str | Path | None = None, progress: bool = False,
                     bootstrap: int = 200) -> tuple[list[dict[str, Any]], list[str]]:
    """Train, query and score; with ``out``, write ``out/scores.npz`` (the report is the
    caller's). Returns ``(findings, notes)``."""
    start = time.perf_counter()
    path = None if out is None else Path(out) / SCORES_NAME
    source = str(path) if path is not None else f"<the scores of {audit.weights}>"
    scores = shadow_scores(audit, source=source, progress=progress)
    seconds = time.perf_counter() - start
    findings = audit_scores(scores, attacks=audit.attacks, seed=audit.seed, bootstrap=bootstrap)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_scores(path, scores)
    return [_describe(f, audit, seconds) for f in findings], notes_of(audit, source if path else None)
