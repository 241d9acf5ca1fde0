"""The recorded-updates directory: what a deployment's server saw, on disk. It is what
``fedaudit audit --observed DIR`` audits, and what ``fedaudit record`` and the Flower
recording (:func:`audit.integrations.flower.export.write_recording`) write
(docs/recorded-updates.md)::

    DIR/observed.json                               the metadata (JSON)
    DIR/broadcast/round-<r>.safetensors             the weights broadcast in round r
    DIR/updates/round-<r>-client-<c>.safetensors    client c's update as the server received it
    DIR/candidates.safetensors                      optional: membership candidates
    DIR/truth/                                      optional: ground truth (:mod:`audit.fl.recorded_truth`)

:func:`write_recording` writes a :class:`~audit.fl.simulation.Transcript` (fedaudit's
simulation's, or the Flower recording strategy's) with the :class:`Deployment` that
produced it; :func:`read_recording` reads a directory back into a :class:`Recording`,
checking everything that needs no model (names and shapes against the model are checked
where the model is built, :mod:`audit.observed.views`).

Project choices:

* Format version 1. Every metadata key is checked: a missing or unknown key is an
  :class:`~audit.core.errors.InvalidParameterError` naming it and the file.
* ``local_training`` holds :class:`~audit.core.updates.LocalTraining`'s fields except
  ``kind`` (that is ``update_kind``); ``lr`` is required, any other field left out takes
  LocalTraining's default.
* File paths are relative to DIR and stay inside it; tensors are safetensors and the
  metadata JSON, so reading a directory unpickles and runs nothing.
* ``labels`` (the threat model then grants them) are recorded for every update or none.
* A write goes to a temporary directory beside DIR, renamed to DIR at the end; DIR must
  not exist or be empty, so a failed write leaves nothing behind.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from audit.core.errors import InvalidParameterError
from audit.core.updates import LocalTraining, UpdateKind
from audit.fl.local_steps import check_loss
from audit.fl.recorded_truth import TRUTH_DIR, load_arrays, write_truth
from audit.fl.simulation import Transcript

FORMAT = "fedaudit-observed"
VERSION = 1
METADATA = "observed.json"
#: (required keys, optional keys) of each table of the metadata
TABLES = {
    "": (("format", "version", "model", "data", "update_kind", "local_training", "rounds", "updates"),
         ("defense", "candidates")),
    "model": (("entry_point",), ("params",)),
    "data": (("input_shape", "num_classes"), ("channel_mean", "channel_std")),
    "defense": (("name",), ("params",)),
    "rounds[]": (("round", "broadcast"), ()),
    "updates[]": (("file", "client_id", "round", "num_examples"), ("labels",)),
    "candidates": (("file",), ()),
    "local_training": (("lr",), tuple(f.name for f in fields(LocalTraining) if f.name not in ("kind", "lr"))),
}


@dataclass(frozen=True)
class Deployment:
    """What ran: the model (a registered name or ``file.py:build``, with its parameters), the
    data's shape and classes, the clients' local training and, if known, the defense
    (``{"name": ..., "params": {...}}``, reported and given to attacks as its public
    parameters)."""

    model: str
    input_shape: tuple[int, int, int]
    num_classes: int
    local_training: LocalTraining
    model_params: Mapping[str, Any] = field(default_factory=dict)
    channel_mean: tuple[float, ...] | None = None
    channel_std: tuple[float, ...] | None = None
    defense: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class RecordedUpdate:
    """One client's update as the server received it."""

    file: str
    client_id: int
    round: int
    num_examples: int
    labels: tuple[int, ...] | None
    tensors: dict[str, torch.Tensor]


@dataclass(frozen=True)
class Recording:
    """A recorded-updates directory, read and checked (model-independent checks)."""

    directory: Path
    deployment: Deployment
    broadcast: dict[int, dict[str, torch.Tensor]]
    updates: list[RecordedUpdate]
    #: membership candidates (inputs (N, C, H, W), labels (N,)), if recorded
    candidates: tuple[torch.Tensor, torch.Tensor] | None = None
    files: dict[str, str] = field(default_factory=dict)  # "broadcast round r" / "candidates" -> file


def broadcast_file(round: int) -> str:
    """Where :func:`write_recording` puts round ``round``'s broadcast (relative to DIR)."""
    return f"broadcast/round-{round}.safetensors"


def update_file(round: int, client_id: int) -> str:
    """Where :func:`write_recording` puts a client's update (relative to DIR)."""
    return f"updates/round-{round}-client-{client_id}.safetensors"


class _Reader:
    """Checks the metadata of one directory; every error names the key path and the file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.source = f"recorded updates {str(directory / METADATA)!r}"

    def bad(self, where: str, constraint: str, value: Any) -> InvalidParameterError:
        return InvalidParameterError(
            f"The {where!r} entry of {self.source} must be {constraint}. Got {value!r} instead.")

    def table(self, value: Any, where: str, kind: str) -> dict:
        required, optional = TABLES[kind]
        if not isinstance(value, dict):
            raise self.bad(where or "metadata", "a JSON object", type(value).__name__)
        prefix = f"{where}." if where else ""
        for key in required:
            if key not in value:
                raise InvalidParameterError(
                    f"The {prefix + key!r} entry of {self.source} is missing; required: "
                    f"{', '.join(required)}.")
        for key in value:
            if key not in required + optional:
                raise InvalidParameterError(
                    f"Unknown key {prefix + key!r} in {self.source}; valid keys are: "
                    f"{', '.join(required + optional)}.")
        return value

    def integer(self, value: Any, where: str, low: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.bad(where, f"an int >= {low}", value)
        return value

    def path(self, value: Any, where: str, suffix: str = ".safetensors") -> Path:
        if not isinstance(value, str) or not value.endswith(suffix) or Path(value).is_absolute():
            raise self.bad(where, f"a relative path to a {suffix} file inside the directory", value)
        path = (self.directory / value).resolve()
        if not path.is_relative_to(self.directory.resolve()):
            raise self.bad(where, "a path inside the directory", value)
        if not path.is_file():
            raise self.bad(where, "an existing file", f"{value} (no such file)")
        return path

    def tensors(self, value: Any, where: str) -> dict[str, torch.Tensor]:
        tensors = load_arrays(self.path(value, where), f"{where!r} file")
        odd = [n for n, t in tensors.items() if not t.dtype.is_floating_point]
        if not tensors or odd:
            raise self.bad(where, "a file of floating-point tensors",
                           f"{value} ({'no tensors' if not tensors else f'{odd[0]!r} is {tensors[odd[0]].dtype}'})")
        return tensors

    def numbers(self, value: Any, where: str, n: int, positive: bool = False) -> tuple[float, ...]:
        ok = isinstance(value, list) and len(value) == n and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and (v > 0 or not positive) for v in value)
        if not ok:
            raise self.bad(where, f"a list of {n} {'positive ' if positive else ''}numbers", value)
        return tuple(float(v) for v in value)

    def deployment(self, meta: dict) -> Deployment:
        model = self.table(meta["model"], "model", "model")
        data = self.table(meta["data"], "data", "data")
        shape = data["input_shape"]
        if not (isinstance(shape, list) and len(shape) == 3
                and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)):
            raise self.bad("data.input_shape", "a list of 3 positive ints [C, H, W]", shape)
        stats = {k: self.numbers(data[k], f"data.{k}", shape[0], positive=k == "channel_std")
                 for k in ("channel_mean", "channel_std") if data.get(k) is not None}
        if not isinstance(model["entry_point"], str) or not model["entry_point"]:
            raise self.bad("model.entry_point", "a registered model name or 'file.py:build'",
                           model["entry_point"])
        params = model.get("params", {})
        if not isinstance(params, dict):
            raise self.bad("model.params", "a JSON object", params)
        kinds = [k.value for k in UpdateKind]
        if meta["update_kind"] not in kinds:
            raise self.bad("update_kind", "one of " + ", ".join(repr(k) for k in kinds), meta["update_kind"])
        defense = None
        if meta.get("defense") is not None:
            defense = dict(self.table(meta["defense"], "defense", "defense"))
            if not isinstance(defense["name"], str) or not isinstance(defense.get("params", {}), dict) or any(
                    isinstance(v, (dict, list)) for v in defense.get("params", {}).values()):
                raise self.bad("defense", "{'name': str, 'params': {key: JSON scalar}}", defense)
            defense.setdefault("params", {})
        return Deployment(model["entry_point"], tuple(shape), self.integer(data["num_classes"], "data.num_classes", 1),
                          self.training(meta), dict(params), stats.get("channel_mean"),
                          stats.get("channel_std"), defense)

    def training(self, meta: dict) -> LocalTraining:
        values = dict(self.table(meta["local_training"], "local_training", "local_training"))
        for key in ("betas", "class_weights"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        try:
            training = LocalTraining(kind=UpdateKind(meta["update_kind"]), **values)
            check_loss(training)  # a user's loss ('file.py:fn') is loaded now, before any work
        except InvalidParameterError as exc:
            raise InvalidParameterError(f"The 'local_training' entry of {self.source}: {exc}") from None
        return training

    def update(self, entry: Any, i: int, d: Deployment, rounds: dict) -> RecordedUpdate:
        where = f"updates[{i}]"
        entry = self.table(entry, where, "updates[]")
        rnd = self.integer(entry["round"], f"{where}.round", 0)
        if rnd not in rounds:
            raise self.bad(f"{where}.round", f"a round listed in 'rounds' ({sorted(rounds)})", rnd)
        n = self.integer(entry["num_examples"], f"{where}.num_examples", 1)
        labels = entry.get("labels")
        if labels is not None:
            if not (isinstance(labels, list) and len(labels) == n and all(
                    isinstance(v, int) and not isinstance(v, bool) and 0 <= v < d.num_classes for v in labels)):
                raise self.bad(f"{where}.labels", f"a list of {n} class indices in [0, {d.num_classes})", labels)
            labels = tuple(labels)
        return RecordedUpdate(entry["file"], self.integer(entry["client_id"], f"{where}.client_id", 0), rnd, n,
                              labels, self.tensors(entry["file"], f"{where}.file"))

    def candidates(self, meta: dict, d: Deployment) -> tuple[torch.Tensor, torch.Tensor] | None:
        if meta.get("candidates") is None:
            return None
        file = self.table(meta["candidates"], "candidates", "candidates")["file"]
        arrays = load_arrays(self.path(file, "candidates.file"), "candidates file")
        x, y = arrays.get("inputs"), arrays.get("labels")
        if (x is None or y is None or tuple(x.shape[1:]) != d.input_shape or not x.dtype.is_floating_point
                or tuple(y.shape) != (len(x),)
                or y.dtype.is_floating_point or not bool(((y >= 0) & (y < d.num_classes)).all())):
            raise self.bad("candidates.file", f"a file of float 'inputs' (N, {', '.join(map(str, d.input_shape))}) "
                           f"and integer 'labels' (N,) in [0, {d.num_classes})", file)
        return x.float(), y.long()


def read_recording(directory: str | Path) -> Recording:
    """The recorded-updates directory ``directory``, checked (see the module docstring)."""
    root = Path(directory).expanduser()
    if not root.is_dir():
        raise InvalidParameterError(
            f"The 'observed' parameter must be a recorded-updates directory. Got {str(directory)!r} "
            f"({'not a directory' if root.exists() else 'no such directory'}) instead.")
    reader = _Reader(root)
    meta_path = root / METADATA
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidParameterError(
            f"The 'observed' directory {str(root)!r} must hold its metadata {METADATA}. Got no such "
            "file instead.") from None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise InvalidParameterError(f"The metadata {str(meta_path)!r} must be JSON. Got a file that "
                                    f"does not parse ({(str(exc).splitlines() or [''])[0]}) instead.") from None
    reader.table(meta, "", "")
    if meta["format"] != FORMAT:
        raise reader.bad("format", repr(FORMAT), meta["format"])
    if meta["version"] != VERSION or isinstance(meta["version"], bool):
        raise reader.bad("version", f"{VERSION} (the format version this fedaudit reads)", meta["version"])
    deployment = reader.deployment(meta)
    if not isinstance(meta["rounds"], list) or not meta["rounds"]:
        raise reader.bad("rounds", "a non-empty list of {round, broadcast}", meta["rounds"])
    broadcast, files = {}, {}
    for i, entry in enumerate(meta["rounds"]):
        entry = reader.table(entry, f"rounds[{i}]", "rounds[]")
        rnd = reader.integer(entry["round"], f"rounds[{i}].round", 0)
        if rnd in broadcast:
            raise reader.bad(f"rounds[{i}].round", "a round listed once", rnd)
        broadcast[rnd] = reader.tensors(entry["broadcast"], f"rounds[{i}].broadcast")
        files[f"broadcast round {rnd}"] = entry["broadcast"]
    if not isinstance(meta["updates"], list) or not meta["updates"]:
        raise reader.bad("updates", "a non-empty list of {file, client_id, round, num_examples}", meta["updates"])
    updates = [reader.update(e, i, deployment, broadcast) for i, e in enumerate(meta["updates"])]
    seen = set()
    for i, u in enumerate(updates):
        if (u.round, u.client_id) in seen:
            raise reader.bad(f"updates[{i}]", "the only update of its client in its round",
                             {"client_id": u.client_id, "round": u.round})
        seen.add((u.round, u.client_id))
    if len({u.labels is None for u in updates}) > 1:
        raise reader.bad("updates", "updates that all record 'labels' or none do",
                         f"updates {[i for i, u in enumerate(updates) if u.labels is None]} without labels")
    candidates = reader.candidates(meta, deployment)
    if candidates is not None:
        files["candidates"] = meta["candidates"]["file"]
    return Recording(root, deployment, broadcast, updates, candidates, files)


def _metadata(transcript: Transcript, d: Deployment, labels, candidates: bool) -> dict[str, Any]:
    training = {f.name: getattr(d.local_training, f.name) for f in fields(LocalTraining)
                if f.name != "kind" and getattr(d.local_training, f.name) is not None}
    meta: dict[str, Any] = {
        "format": FORMAT, "version": VERSION,
        "model": {"entry_point": d.model, "params": dict(d.model_params)},
        "data": {"input_shape": list(d.input_shape), "num_classes": int(d.num_classes),
                 **{k: list(map(float, v)) for k, v in (("channel_mean", d.channel_mean),
                                                       ("channel_std", d.channel_std)) if v is not None}},
        "update_kind": d.local_training.kind.value,
        "local_training": {k: list(v) if isinstance(v, tuple) else v for k, v in training.items()},
        "rounds": [{"round": r.round, "broadcast": broadcast_file(r.round)} for r in transcript.rounds],
        "updates": [{"file": update_file(r.round, o.client_id), "client_id": int(o.client_id),
                     "round": r.round, "num_examples": int(o.num_examples),
                     **({} if labels is None else {"labels": [int(v) for v in labels[o.client_id]]})}
                    for r in transcript.rounds for o in r.observations],
    }
    if d.defense is not None:
        meta["defense"] = {"name": d.defense["name"], "params": dict(d.defense.get("params", {}))}
    if candidates:
        meta["candidates"] = {"file": "candidates.safetensors"}
    return meta


def _save(tensors: Mapping[str, torch.Tensor], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({n: t.detach().cpu().contiguous() for n, t in tensors.items()}, str(path))


def write_recording(out: str | Path, transcript: Transcript, deployment: Deployment, *,
                    buffers: Mapping[str, torch.Tensor] | None = None,
                    labels: Mapping[int, torch.Tensor] | None = None,
                    candidates: tuple[torch.Tensor, torch.Tensor] | None = None,
                    truth: Mapping[int, tuple[torch.Tensor, torch.Tensor | None]] | None = None,
                    baseline_image: torch.Tensor | None = None, members=None) -> Path:
    """Write ``transcript`` (every round: broadcast and client observations) as the
    recorded-updates directory ``out`` and return it.

    ``buffers`` (e.g. normalisation constants) are written beside each round's broadcast;
    ``labels`` (client id -> labels) are recorded for the threat model that grants them;
    ``candidates`` (inputs, labels) for update-based membership. The ground truth goes to
    ``truth/``: ``truth`` (client id -> (images, labels), a client's data being the same
    each round), ``baseline_image`` and ``members`` (one bool per candidate).
    """
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidParameterError(
            f"The 'out' parameter of the recording must be a new or empty directory. Got "
            f"{str(out)!r} ({'a file' if not out.is_dir() else 'not empty'}) instead.")
    if not transcript.rounds or not any(r.observations for r in transcript.rounds):
        raise InvalidParameterError("The transcript to record must hold client updates. Got none instead.")
    clients = {o.client_id for r in transcript.rounds for o in r.observations}
    for name, given in (("labels", labels), ("truth", truth)):
        if given is not None and not clients <= set(given):
            raise InvalidParameterError(
                f"The {name!r} parameter of the recording must cover every client that sent an update. "
                f"Got none for clients {sorted(clients - set(given))[:5]} instead.")
    if members is not None and (candidates is None or len(members) != len(candidates[1])):
        raise InvalidParameterError(
            "The 'members' parameter of the recording must give one value per candidate. Got "
            f"{len(members)} for {None if candidates is None else len(candidates[1])} candidates instead.")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        meta = _metadata(transcript, deployment, labels, candidates is not None)
        for r in transcript.rounds:
            _save({**dict(buffers or {}), **r.broadcast}, tmp / broadcast_file(r.round))
            for o in r.observations:
                _save(o.tensors, tmp / update_file(r.round, o.client_id))
        if candidates is not None:
            _save({"inputs": candidates[0].float(), "labels": candidates[1].long()}, tmp / "candidates.safetensors")
        if truth is not None or members is not None:
            data = {u["file"]: truth[u["client_id"]] for u in meta["updates"]} if truth is not None else {}
            write_truth(tmp / TRUTH_DIR, data, baseline_image=baseline_image, members=members)
        (tmp / METADATA).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
