"""What the adversary of a recorded deployment gets: the model rebuilt from the recorded
entry point, loaded with each round's broadcast, and one view per recorded update.

Checked before any attack runs, each an :class:`~audit.core.errors.InvalidParameterError`
naming the file and the first offending tensor: the entry point builds (a registered name
or ``file.py:build``, with the recorded params; a user's model must take the recorded input
shape and give ``num_classes`` outputs); a broadcast holds every parameter of the model,
and only names of its ``state_dict``; an update holds only names of the ``state_dict`` and
at least one trainable parameter; every shape is the model's.

Project choices: buffers in a broadcast file (normalisation constants, BatchNorm running
statistics) are loaded into the model, buffers left out keep the built model's; buffers
in an update file are read and dropped (a buffer is not an update, as in the Flower
recording); tensors are cast to the model's dtypes; without recorded ``channel_mean`` /
``channel_std`` the builder gets 0 and 1 per channel. The threat model is ``hbc-server``,
or ``hbc-server-labels`` when labels are recorded (the auditor may ask for the weaker
``hbc-server`` on a recording with labels).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from audit.core.attack import AttackView, LabelledData, MembershipView
from audit.core.errors import InvalidParameterError
from audit.core.threat_model import Knowledge, ThreatModel, create_threat_model
from audit.core.updates import ModelUpdate
from audit.core.user_code import is_user_spec
from audit.fl.recorded_updates import Recording, RecordedUpdate
from audit.models.registry import create_model
from audit.models.shape_check import check_model_fits

THREAT_MODELS = ("hbc-server", "hbc-server-labels")


def build_model(rec: Recording) -> nn.Module:
    """The recorded model with random weights, checked to fit the recorded data."""
    d = rec.deployment
    c = d.input_shape[0]
    try:
        model = create_model(d.model, input_shape=d.input_shape, num_classes=d.num_classes,
                             channel_mean=d.channel_mean or (0.0,) * c,
                             channel_std=d.channel_std or (1.0,) * c, **dict(d.model_params))
    except InvalidParameterError as exc:
        raise InvalidParameterError(
            f"The 'model' entry of recorded updates {str(rec.directory)!r}: {exc}") from None
    except Exception as exc:  # a user's builder failing with its own error
        first = (str(exc).splitlines() or [""])[0]
        raise InvalidParameterError(
            f"The model entry point {d.model!r} of recorded updates {str(rec.directory)!r} failed to "
            f"build with params {dict(d.model_params)} ({type(exc).__name__}: {first}).") from None
    if not isinstance(model, nn.Module):
        raise InvalidParameterError(
            f"The model entry point {d.model!r} must build a torch.nn.Module. Got "
            f"{type(model).__name__} instead.")
    if is_user_spec(d.model):
        check_model_fits(model, torch.zeros(1, *d.input_shape), num_classes=d.num_classes,
                         task="classification", model_name=d.model,
                         dataset_name=f"recorded updates {str(rec.directory)!r}")
    return model


def _first(names) -> str:
    names = sorted(names)
    return ", ".join(repr(n) for n in names[:3]) + (f" (+{len(names) - 3} more)" if len(names) > 3 else "")


def check_tensors(model: nn.Module, tensors: dict[str, torch.Tensor], file: str, *, broadcast: bool) -> None:
    """Raise unless ``tensors`` (of ``file``) fit ``model`` (see the module docstring)."""
    state = model.state_dict()
    params = {n for n, _ in model.named_parameters()}
    where = f"The {'broadcast' if broadcast else 'update'} file {file!r}"
    unknown = set(tensors) - set(state)
    if unknown:
        raise InvalidParameterError(f"{where} does not fit the model: it has {_first(unknown)}, which "
                                    "the model does not.")
    wrong = [n for n in tensors if tuple(tensors[n].shape) != tuple(state[n].shape)]
    if wrong:
        n = wrong[0]
        raise InvalidParameterError(
            f"{where} does not fit the model: {n!r} has shape {tuple(tensors[n].shape)} in the file "
            f"and {tuple(state[n].shape)} in the model.")
    missing = params - set(tensors)
    if broadcast and missing:
        raise InvalidParameterError(f"{where} does not fit the model: it lacks {_first(missing)}.")
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    if not broadcast and not trained & set(tensors):
        raise InvalidParameterError(f"{where} holds none of the model's trainable parameters.")


def checked_model(rec: Recording) -> nn.Module:
    """The model, after every broadcast and update file of ``rec`` was checked against it."""
    model = build_model(rec)
    for rnd, tensors in rec.broadcast.items():
        check_tensors(model, tensors, rec.files[f"broadcast round {rnd}"], broadcast=True)
    for u in rec.updates:
        check_tensors(model, u.tensors, u.file, broadcast=False)
    return model


def threat_model_of(rec: Recording, name: str | None) -> ThreatModel:
    """``name`` (or the default: with labels when they are recorded), checked."""
    labelled = rec.updates[0].labels is not None
    name = name or ("hbc-server-labels" if labelled else "hbc-server")
    if name not in THREAT_MODELS or (name == "hbc-server-labels" and not labelled):
        allowed = THREAT_MODELS if labelled else THREAT_MODELS[:1]
        raise InvalidParameterError(
            "The 'threat_model' parameter of an audit of recorded updates must be a str among {"
            + ", ".join(repr(t) for t in allowed) + "}" + ("" if labelled else " (no labels are recorded)")
            + f". Got {name!r} instead.")
    return create_threat_model(name)


def round_model(model: nn.Module, rec: Recording, rnd: int) -> nn.Module:
    """A copy of ``model`` loaded with round ``rnd``'s broadcast (buffers included if recorded)."""
    m = copy.deepcopy(model)
    state = m.state_dict()
    with torch.no_grad():
        for n, t in rec.broadcast[rnd].items():
            state[n].copy_(t.to(state[n].dtype))
    return m


def observation(model: nn.Module, u: RecordedUpdate, rec: Recording) -> ModelUpdate:
    """``u`` as a :class:`ModelUpdate` of the trainable parameters, in the model's dtypes."""
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    return ModelUpdate(rec.deployment.local_training.kind,
                       {n: t.to(params[n].dtype) for n, t in u.tensors.items() if n in params},
                       client_id=u.client_id, round=u.round, num_examples=u.num_examples)


def attack_views(rec: Recording, model: nn.Module, tm: ThreatModel) -> list[tuple[RecordedUpdate, AttackView]]:
    """One view per recorded update, in the metadata's order."""
    d = rec.deployment
    models = {rnd: round_model(model, rec, rnd) for rnd in sorted({u.round for u in rec.updates})}
    return [(u, AttackView(
        threat_model=tm, model=models[u.round], target=observation(model, u, rec),
        local_training=d.local_training, batch_size=u.num_examples, input_shape=d.input_shape,
        num_classes=d.num_classes, defense_params=dict((d.defense or {}).get("params", {})),
        labels=torch.tensor(u.labels) if tm.knows_(Knowledge.LABELS) else None))
        for u in rec.updates]


def membership_view(rec: Recording, model: nn.Module, tm: ThreatModel, *, client: int,
                    round: int) -> tuple[RecordedUpdate, MembershipView]:
    """The update of ``client`` in ``round`` and the recorded candidates, as a membership view."""
    if rec.candidates is None:
        raise InvalidParameterError(
            f"The update-based membership attack needs candidates: recorded updates {str(rec.directory)!r} "
            "must name a 'candidates' file. Got none instead.")
    found = [u for u in rec.updates if u.client_id == client and u.round == round]
    if not found:
        recorded = sorted({(u.client_id, u.round) for u in rec.updates})
        raise InvalidParameterError(
            f"The 'client' and 'round' parameters of the membership attack must name a recorded update "
            f"(client, round) among {recorded[:8]}. Got ({client!r}, {round!r}) instead.")
    d = rec.deployment
    view = MembershipView(
        threat_model=tm, model=round_model(model, rec, round),
        candidates=LabelledData(*rec.candidates), input_shape=d.input_shape,
        num_classes=d.num_classes, observation=observation(model, found[0], rec),
        local_training=d.local_training, defense_params=dict((d.defense or {}).get("params", {})))
    return found[0], view
