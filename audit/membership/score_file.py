"""The scores file of a score-level membership audit: what a deployment recorded about a
target model (and, optionally, reference models) on candidate examples, with the truth.

The attacks it feeds are LOSS (Yeom et al. 2018), LiRA (Carlini et al. 2022) and RMIA
(Zarifzadeh et al. 2024); see :mod:`audit.membership.score_audit`. This module defines the
one format, reads it (CSV with the standard ``csv`` module, NumPy ``.npz``, Parquet when
``pyarrow`` is installed), validates it and writes it.

**Tabular form** (``.csv``, ``.parquet``): one row per example, one header row.

=====================  ======================================================================
column                 meaning
=====================  ======================================================================
``member``             required: 1 if the example was in the target's training data, else 0
``logit_0`` ..         the target's logits (C >= 2 columns, numbered from 0), with
``logit_{C-1}``        ``label``, the true class (an integer in [0, C)); **or**
``loss``               the target's cross-entropy loss on the true label (>= 0); **or**
``confidence``         the target's probability of the true label (in (0, 1])
``ref{m}_...``         optional, reference (shadow) model m = 0 .. M-1: the same values as the
                       target's (``ref{m}_logit_{c}``, ``ref{m}_loss`` or
                       ``ref{m}_confidence``), with
``ref{m}_in``          1 if the example was in reference model m's training data, else 0
``population``         optional: 1 marks a population row (RMIA's samples ``z``, in no
                       model's training data: ``member`` and every ``ref{m}_in`` are 0 there),
                       0 a candidate
``id``                 optional, ignored (the row's name for the user)
``record_id``          optional: the record's name in the exposure analysis (unique, non-empty)
``group``              optional: the user's name for the record's group (non-empty)
=====================  ======================================================================

**Array form** (``.npz``): ``member`` (N,); ``logits`` (N, C) with ``label`` (N,), or ``loss``
(N,), or ``confidence`` (N,); optionally ``ref_logits`` (M, N, C) / ``ref_loss`` (M, N) /
``ref_confidence`` (M, N) with ``ref_in`` (M, N) bool; optionally population samples
``pop_logits`` (P, C) with ``pop_label`` (P,) / ``pop_loss`` (P,) / ``pop_confidence`` (P,),
and the reference models' ``ref_pop_logits`` (M, P, C) / ``ref_pop_loss`` (M, P) /
``ref_pop_confidence`` (M, P); optionally ``record_id`` (N,) and ``group`` (N,) of str
(:mod:`audit.membership.record_groups`, for :mod:`audit.membership.exposure`).

Project choices: every value must be finite; 0/1 columns may be written ``0``, ``1``,
``0.0``, ``1.0`` (or bool in ``.npz``); unknown columns or arrays are refused, naming them
(a misspelt reference column would otherwise be dropped silently); each side (members,
non-members) needs at least :data:`MIN_PER_SIDE` candidates. A bad file raises
:class:`~audit.core.errors.InvalidParameterError` naming the file, the column (or array)
and the line (or index) of the first bad value. Floats are written with Python's
shortest round-trip ``repr``, so a CSV written and read back holds the same doubles.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audit.membership.record_groups import TEXT_ARRAYS, check_text
from audit.membership.score_table import file_error, read_table, role, table_bytes
from reports.io import write_bytes_atomic

#: fewest members (and non-members) a scores file must hold
MIN_PER_SIDE = 10
KINDS = ("logits", "loss", "confidence")
SUFFIXES = (".csv", ".npz", ".parquet")
#: the leading axes of each role's arrays (``member`` and the labels as their role's values)
_AXES = {"": "N", "ref_": "MN", "pop_": "P", "ref_pop_": "MP"}


@dataclass(frozen=True, eq=False)
class RecordedScores:
    """A validated scores file in memory (arrays as in the ``.npz`` form).

    ``target`` is (N, C) logits or (N,) losses / confidences by ``kind``; ``ref`` (M, N, ...)
    and ``ref_in`` (M, N) the reference models'; ``pop`` (P, ...) and ``ref_pop`` (M, P, ...)
    the population samples'. ``labels`` / ``pop_labels`` are the true classes (logits only).
    ``record_ids`` / ``groups`` (N,) str are the candidates' ids and user-named groups.
    """

    source: str
    kind: str
    member: np.ndarray
    target: np.ndarray
    labels: np.ndarray | None = None
    ref: np.ndarray | None = None
    ref_in: np.ndarray | None = None
    pop: np.ndarray | None = None
    pop_labels: np.ndarray | None = None
    ref_pop: np.ndarray | None = None
    record_ids: np.ndarray | None = None
    groups: np.ndarray | None = None

    @property
    def num_refs(self) -> int:
        """M, the reference models (0 without)."""
        return 0 if self.ref is None else len(self.ref)

    @property
    def num_population(self) -> int:
        """P, the population samples (0 without)."""
        return 0 if self.pop is None else len(self.pop)

    def arrays(self) -> dict[str, np.ndarray]:
        """The ``.npz`` arrays of this file."""
        key = self.kind
        named = {"member": self.member, key: self.target, "label": self.labels,
                 f"ref_{key}": self.ref, "ref_in": self.ref_in, f"pop_{key}": self.pop,
                 "pop_label": self.pop_labels, f"ref_pop_{key}": self.ref_pop,
                 "record_id": self.record_ids, "group": self.groups}
        return {k: v for k, v in named.items() if v is not None}


def _first_bad(source: str, name: str, values: np.ndarray, ok: np.ndarray, rule: str,
               locate: Callable) -> None:
    bad = np.argwhere(~ok)
    if len(bad):
        idx = tuple(int(i) for i in bad[0])
        raise file_error(source, f"{locate(name, idx)} must be {rule}. Got {values[idx]!r} instead.")


def _check_names(source: str, arrays: dict, locate: Callable) -> str:
    """The kind of target values, after checking that the right arrays are there."""
    kinds = [k for k in KINDS if k in arrays]
    if len(kinds) != 1:
        raise file_error(source, "must hold exactly one kind of target values: logits "
                         "(logit_0 .. logit_{C-1} with label), loss or confidence. Got "
                         + (" and ".join(kinds) or "none") + " instead.")
    key = kinds[0]
    expected = {"member", key, f"ref_{key}", "ref_in", f"pop_{key}", f"ref_pop_{key}",
                *TEXT_ARRAYS}
    if key == "logits":
        expected |= {"label", "pop_label"}
    unknown = sorted(set(arrays) - expected)
    if unknown:
        raise file_error(source, f"{', '.join(locate(u, None) for u in unknown)}: unknown beside "
                         f"the target's {key} (expected {', '.join(sorted(expected))}).")
    pairs = [(key, "member"), (f"ref_{key}", "ref_in"), ("ref_in", f"ref_{key}"),
             (f"ref_pop_{key}", f"pop_{key}"), (f"ref_pop_{key}", f"ref_{key}")]
    if f"ref_{key}" in arrays:
        pairs.append((f"pop_{key}", f"ref_pop_{key}"))
    if key == "logits":
        pairs += [(key, "label"), (f"pop_{key}", "pop_label")]
    for have, must in pairs:
        if have in arrays and must not in arrays:
            raise file_error(source, f"{locate(must, None)} is missing (it must come with "
                             f"{locate(have, None)}).")
    return key


def _check_shapes(source: str, arrays: dict, kind: str, locate: Callable) -> int | None:
    """Check every array's shape against the format; returns C (logits) or None."""
    def length(name):
        return len(arrays[name]) if name in arrays and np.ndim(arrays[name]) else None

    size = {"N": len(np.atleast_1d(arrays["member"])), "M": length(f"ref_{kind}"),
            "P": length(f"pop_{kind}"), "C": None}
    if kind == "logits" and np.ndim(arrays[kind]) == 2:
        size["C"] = np.shape(arrays[kind])[1]
    for name, values in arrays.items():
        r, base = role(name)
        axes = _AXES[r] + ("C" if base == "logits" else "")
        want = tuple(size[a] for a in axes)
        if np.shape(values) != want:
            raise file_error(source, f"{locate(name, None)} must have shape ({', '.join(axes)}) = "
                             f"({', '.join('?' if w is None else str(w) for w in want)}) (N "
                             "candidates, M "
                             "reference models, P population samples, C classes). Got "
                             f"{np.shape(values)} instead.")
    if kind == "logits" and size["C"] < 2:
        raise file_error(source, f"{locate(kind, None)} must hold at least 2 classes. Got "
                         f"{size['C']} instead.")
    return size["C"]


def validate_arrays(source: str, arrays: dict[str, np.ndarray], locate: Callable) -> RecordedScores:
    """Check ``arrays`` (the ``.npz`` form's names) and build the scores.

    ``locate(name, index)`` words where a value of array ``name`` sits in the file (a
    column and line for tabular files); ``index`` is ``None`` for the whole array.
    """
    kind = _check_names(source, arrays, locate)
    c = _check_shapes(source, arrays, kind, locate)
    out = {}
    for name, values in arrays.items():
        if name in TEXT_ARRAYS:
            out[name] = check_text(source, name, values, locate)
            continue
        values = np.asarray(values)
        if values.dtype.kind not in "biuf":
            raise file_error(source, f"{locate(name, None)} must hold numbers. Got dtype "
                             f"{values.dtype} instead.")
        v = values.astype(np.float64)
        _first_bad(source, name, v, np.isfinite(v), "a finite number", locate)
        base = role(name)[1]
        if base in ("member", "in"):
            _first_bad(source, name, v, (v == 0) | (v == 1), "0 or 1", locate)
            v = v.astype(bool)
        elif base == "label":
            _first_bad(source, name, v, (v == np.round(v)) & (v >= 0) & (v < c),
                       f"a class in 0 .. {c - 1}", locate)
            v = v.astype(np.int64)
        elif kind == "loss":
            _first_bad(source, name, v, v >= 0, "a loss >= 0", locate)
        elif kind == "confidence":
            _first_bad(source, name, v, (v > 0) & (v <= 1), "a probability in (0, 1]", locate)
        out[name] = v
    members, n = int(out["member"].sum()), len(out["member"])
    if min(members, n - members) < MIN_PER_SIDE:
        raise file_error(source, f"{locate('member', None)} must mark at least {MIN_PER_SIDE} "
                         f"members and {MIN_PER_SIDE} non-members. Got {members} members and "
                         f"{n - members} non-members instead.")
    return RecordedScores(source, kind, out["member"], out[kind], out.get("label"),
                          out.get(f"ref_{kind}"), out.get("ref_in"), out.get(f"pop_{kind}"),
                          out.get("pop_label"), out.get(f"ref_pop_{kind}"),
                          out.get("record_id"), out.get("group"))


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise file_error(str(path), f"the file name must end in {', '.join(SUFFIXES)}. Got "
                         f"{suffix or 'no suffix'!r} instead.")
    return suffix


def read_scores(path: str | Path) -> RecordedScores:
    """Read and validate the scores file ``path`` (``.csv``, ``.npz`` or ``.parquet``)."""
    path = Path(path)
    source, suffix = str(path), _suffix(Path(path))
    if not path.is_file():
        raise file_error(source, "no such file.")
    if suffix != ".npz":
        return validate_arrays(source, *read_table(path, source, suffix))
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise file_error(source, f"not a readable .npz archive ({exc}).") from None
    return validate_arrays(source, arrays, lambda name, idx: f"the array {name!r}" + (
        "" if idx is None else f" at index {list(idx)}"))


def write_scores(path: str | Path, scores: RecordedScores) -> Path:
    """Write ``scores`` to ``path`` (``.csv``, ``.npz`` or ``.parquet``), atomically."""
    path = Path(path)
    suffix = _suffix(path)
    if suffix == ".npz":
        buf = io.BytesIO()
        np.savez(buf, **scores.arrays())
        data = buf.getvalue()
    else:
        data = table_bytes(scores.arrays(), suffix, str(path))
    write_bytes_atomic(path, data)
    return path
