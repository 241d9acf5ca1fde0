"""The score-level membership audit: membership inference from what a deployment recorded
(a scores file, :mod:`audit.membership.score_file`), with no model and no training.

* ``loss``: LOSS (Yeom et al. 2018, "Privacy risk in machine learning"), score = -loss.
* ``lira`` / ``lira-offline``: LiRA (Carlini et al. 2022, "Membership inference attacks
  from first principles"), per-candidate Gaussians of the logit-scaled confidence of the
  reference models that trained on the candidate (IN) and did not (OUT); offline uses
  the OUT values only.
* ``rmia``: RMIA offline (Zarifzadeh et al. 2024, "Low-cost high-power membership
  inference attacks"), the target's likelihood ratio against population samples,
  ``P_IN ~ a P_OUT + (1 - a)`` with ``a`` chosen on the reference models as in the paper.

Each attack's findings carry ROC AUC with a bootstrap interval, TPR at 0.1% and 1% FPR,
balanced accuracy and the one-run empirical epsilon (Steinke, Nasr, Jagielski 2023) of
the scores, in the shape the built-in audit writes (:mod:`audit.membership.score_evidence`).

The maths is the attacks' own: the recorded values become the attacks' signals through
:mod:`attacks.membership_signals` and are scored by ``LossThreshold.score``,
``LiRA.score`` and ``RMIA.score``, the functions the built-in audit's attacks score with,
so the same values give the same scores (``tests/membership/test_score_audit.py`` checks
that LiRA's AUC and TPR match the built-in audit's to 1e-9).

Project choices: the attacks run by default are those the file allows (LOSS always; LiRA
online with IN and OUT reference values, offline with OUT values; RMIA with at least 3
reference models, as the built-in RMIA's choice of ``a``, and population rows); LiRA
pools one variance per side below 64 reference models, as the built-in default; the
recorded values are one query per example (no augmentations); the empirical epsilon uses
delta = 1e-5 and no claim is compared (a scores file states none); the threat model is
``model-analyst`` (the adversary of LiRA and RMIA, here holding their recorded outputs).

Each finding also says who is exposed (``finding["exposure"]``,
:func:`audit.membership.score_evidence.exposure_evidence`): per group (the file's
``group`` column, a groups file, else the class of logits files) and the top-k most
exposed member ids (the ``record_id`` column, else the candidates' positions).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attacks.lira import LiRA
from attacks.loss_threshold import LossThreshold
from attacks.membership_signals import signal_of_logits, signal_of_loss
from attacks.rmia import RMIA
from audit.core.claims import PrivacyClaim
from audit.core.errors import InvalidParameterError
from audit.core.threat_model import create_threat_model
from audit.core.validation import check_interval
from audit.membership.exposure import DEFAULT_TOP_K
from audit.membership.record_groups import resolve_groups
from audit.membership.score_evidence import (DEFAULT_DELTA, exposure_evidence, one_run_evidence,
                                             roc_image, score_evidence, score_meaning)
from audit.membership.score_file import RecordedScores, read_scores

ATTACK_NAMES = ("loss", "lira", "lira-offline", "rmia")
#: the report's note on what a score-level audit is
NOTE = ("Score-level audit: no model was queried or trained; every figure comes from the values "
        "recorded in the scores file, and is only as true as they are.")
#: reference models RMIA needs (``a`` is chosen with one of them as the target)
RMIA_MIN_REFS = 3


def unavailable(scores: RecordedScores) -> dict[str, str]:
    """Attack name -> why ``scores`` cannot feed it (absent: it can)."""
    why = {}
    ref_in = scores.ref_in
    refs = "reference models' values (ref{m}_... columns with ref{m}_in, or ref_* arrays)"
    if ref_in is None:
        why["lira"] = why["lira-offline"] = f"needs {refs}"
    else:
        if not ref_in.any():
            why["lira"] = "needs reference models that trained on candidates (no ref{m}_in is 1)"
        if ref_in.all():
            why["lira-offline"] = "needs reference models that did not train on candidates " \
                                  "(every ref{m}_in is 1)"
    if scores.num_refs < RMIA_MIN_REFS:
        why["rmia"] = f"needs at least {RMIA_MIN_REFS} reference models (its a is chosen on " \
                      f"them). Got {scores.num_refs}"
    elif scores.num_population == 0:
        why["rmia"] = "needs population rows (population = 1) with the reference models' values"
    return why


def _unknown(name) -> InvalidParameterError:
    return InvalidParameterError(
        "The 'attack' parameter of the score-level audit must be a str among {"
        + ", ".join(repr(a) for a in ATTACK_NAMES) + f"}}. Got {name!r} instead.")


def choose_attacks(scores: RecordedScores, attacks=None) -> list[str]:
    """The attacks to run: ``attacks`` (checked against the file) or all the file allows."""
    why = unavailable(scores)
    if not attacks:
        return [a for a in ATTACK_NAMES if a not in why]
    chosen = list(dict.fromkeys(attacks))
    for name in chosen:
        if name not in ATTACK_NAMES:
            raise _unknown(name)
        if name in why:
            raise InvalidParameterError(f"Scores file {scores.source!r}: attack {name!r} "
                                        f"{why[name]}.")
    return chosen


def _signal(values: np.ndarray, labels: np.ndarray | None, kind: str, signal: str) -> torch.Tensor:
    """One model's ``signal`` (N,) from its recorded values (logits (N, C) or (N,))."""
    v = torch.from_numpy(values)
    if kind == "logits":
        return signal_of_logits(v, torch.from_numpy(labels), signal)
    return signal_of_loss(v if kind == "loss" else -torch.log(v), signal)


def signals(scores: RecordedScores, signal: str):
    """``(target (N,), refs (M, N), population (P,), refs on population (M, P))`` of
    ``signal``; the last three are ``None`` where the file has no such values."""
    kind = scores.kind

    def of(target, labels, refs):
        t = None if target is None else _signal(target, labels, kind, signal)
        r = None if refs is None else torch.stack([_signal(v, labels, kind, signal) for v in refs])
        return t, r

    target, refs = of(scores.target, scores.labels, scores.ref)
    pop, ref_pop = of(scores.pop, scores.pop_labels, scores.ref_pop)
    return target, refs, pop, ref_pop


def attack_scores(scores: RecordedScores, name: str):
    """``(scores (N,) float64, attack, stats)`` of attack ``name`` on recorded ``scores``."""
    masks = None if scores.ref_in is None else torch.from_numpy(scores.ref_in)
    stats: dict[str, float] = {}
    if name == "loss":
        attack = LossThreshold()
        s = attack.score(signals(scores, "loss")[0])
    elif name in ("lira", "lira-offline"):
        attack = LiRA(shadow_models=scores.num_refs, variant="offline" if name.endswith("offline")
                      else "online")
        target, refs, _, _ = signals(scores, "logit")
        s = attack.score(target[:, None], refs[..., None], masks)
        stats["augmentations"] = 1.0
    elif name == "rmia":
        attack = RMIA(shadow_models=scores.num_refs, variant="offline")
        p_x, ref_x, p_z, ref_z = signals(scores, "probability")
        s, a = attack.score(p_x, p_z, ref_x, ref_z, masks)
        stats["a"] = float(a)
    else:
        raise _unknown(name)
    return s.detach().double().cpu().numpy(), attack, stats


def records_of(scores: RecordedScores, groups=None) -> tuple:
    """``(ids, groups, group_source, ids_from)`` of the candidates of ``scores``; ``groups``
    is a groups file or a mapping record id -> group (:mod:`audit.membership.record_groups`)."""
    return resolve_groups(len(scores.member), record_ids=scores.record_ids,
                          file_groups=scores.groups, labels=scores.labels, given=groups)


def score_finding(scores: RecordedScores, name: str, *, seed: int = 0, bootstrap: int = 200,
                  delta: float = DEFAULT_DELTA, curves: dict | None = None,
                  records: tuple | None = None, top_k: int = DEFAULT_TOP_K) -> dict[str, Any]:
    """The report finding of attack ``name`` on recorded ``scores`` (the built-in's shape).

    ``curves`` (label -> (fpr, tpr)), shared by successive calls, draws each ROC plot with
    the curves of the attacks before it. ``records`` is :func:`records_of`'s result
    (default: from ``scores`` alone); ``top_k`` how many exposed members to name.
    """
    start = time.perf_counter()
    s, attack, stats = attack_scores(scores, name)
    truth = scores.member
    eps = one_run_evidence(s, truth, delta=delta, epsilon_claim=None,
                           comparison="no DP claim: the empirical epsilon stands alone")
    mm, metrics = score_evidence(s, truth, seed=seed, bootstrap=bootstrap, eps=eps)
    file = Path(scores.source).name
    images = roc_image({} if curves is None else curves, name, mm, name=name,
                       title=f"{name} on recorded scores ({file})")
    ids, groups, source, ids_from = records_of(scores) if records is None else records
    exposed = exposure_evidence(s, truth, record_ids=ids, groups=groups, group_source=source,
                                ids_from=ids_from, score=score_meaning(name), top_k=top_k,
                                title=f"{name}: who is exposed ({file})")
    game = {"seed": None, "candidates": int(len(truth)), "members": int(truth.sum()),
            "non_members": int((~truth).sum()), "population": scores.num_population,
            "control": False, "member_rule": "as recorded in the scores file"}
    return {
        "id": f"scores:{name}",
        "title": f"{name} membership inference on recorded scores ({file})",
        "defense": {"name": "recorded deployment", "params": {}},
        "claim": PrivacyClaim.none("a scores file states no DP claim").to_dict(),
        "threat_model": create_threat_model("model-analyst").to_dict(),
        "attack": {"name": attack.name, "family": attack.family, "params": attack.params()},
        "setting": {
            "dataset": f"scores file {file}", "model": "recorded (unknown)", "model_params": {},
            "batch_size": 0, "num_targets": int(len(truth)), "local_steps": 0, "rounds": 0,
            "clients": 0,
        },
        "metrics": metrics,
        "images": images,
        "membership": {
            "game": game, "metrics": mm.to_dict(), "target_utility": None,
            "observes": f"the target's recorded {scores.kind} on the candidates"
                        + (f", and {scores.num_refs} reference models'" if scores.num_refs else ""),
            "shadow_training": None, "empirical_epsilon": eps, "attack_stats": stats,
            "scores_file": {"path": scores.source, "kind": scores.kind,
                            "reference_models": scores.num_refs,
                            "population": scores.num_population},
        },
        "exposure": exposed,
        "runtime_s": time.perf_counter() - start,
    }


def audit_scores(source: str | Path | RecordedScores, *, attacks=None, seed: int = 0,
                 bootstrap: int = 200, delta: float = DEFAULT_DELTA, groups=None,
                 top_k: int = DEFAULT_TOP_K) -> list[dict[str, Any]]:
    """The findings of the score-level audit of ``source`` (a scores file or its contents).

    Args:
        source: Path of a ``.csv`` / ``.npz`` / ``.parquet`` scores file, or
            :class:`RecordedScores`.
        attacks: Names among :data:`ATTACK_NAMES`; ``None`` runs all the file allows.
        seed: Seed of the AUC's bootstrap interval.
        bootstrap: Bootstrap replicates (0: no interval).
        delta: Delta of the one-run empirical epsilon.
        groups: User-named groups for the exposure analysis where the file has no
            ``group`` column: a groups file (``.csv`` with ``record_id,group``, or
            ``.json``) or a mapping record id -> group; ``None``: the file's groups, else
            the classes.
        top_k: How many of the most exposed members each finding names (by id).

    Raises:
        InvalidParameterError: a bad file, groups file or ``top_k``, or an attack the file
            cannot feed, named.
    """
    owner = "the score-level audit"
    seed = check_interval("seed", owner, seed, kind=int, low=0)
    bootstrap = check_interval("bootstrap", owner, bootstrap, kind=int, low=0)
    delta = check_interval("delta", owner, delta, low=0, high=1, closed="left")
    top_k = check_interval("top_k", owner, top_k, kind=int, low=1)
    scores = source if isinstance(source, RecordedScores) else read_scores(source)
    records = records_of(scores, groups)
    curves: dict = {}
    return [score_finding(scores, name, seed=seed, bootstrap=bootstrap, delta=delta, curves=curves,
                          records=records, top_k=top_k)
            for name in choose_attacks(scores, attacks)]
