"""``mnms``: the M&Ms cardiac MRI volumes, slices segmented into LV, myocardium and RV (DEeR's data).

Source: V. M. Campello et al., "Multi-Centre, Multi-Vendor and Multi-Disease Cardiac
Segmentation: The M&Ms Challenge", IEEE Transactions on Medical Imaging 40(12), 2021;
released at www.ub.edu/mnms (the "OpenDataset"); used by DEeR (arXiv 2410.12926). Short-axis
cine MRI of subjects scanned by four vendors (A Siemens, B Philips, C GE, D Canon) in six
centres. Layout read (``path`` is the ``OpenDataset`` folder)::

    path/Training/Labeled/<code>/<code>_sa.nii.gz      4-D cine volume (x, y, slice, frame)
    path/Training/Labeled/<code>/<code>_sa_gt.nii.gz   its labels, drawn at the ED and ES frames
    path/Training/Unlabeled/<code>/<code>_sa.nii.gz    (no labels: not read)
    path/Validation/<code>/...                         as Training/Labeled
    path/Testing/<code>/...                            as Training/Labeled
    path/<date>_M&Ms_Dataset_information_diagnosis_opendataset.csv

The CSV has a row per subject with (among others) the columns ``External code``, ``Vendor``,
``Centre``, ``ED`` and ``ES`` (the 0-based end-diastolic and end-systolic frames). Labels:
0 background, 1 left-ventricle cavity (LV), 2 myocardium (MYO), 3 right ventricle (RV).

The project's own choices where the release leaves room:

* ``split``: ``train`` (Training/Labeled), ``val`` (Validation), ``test`` (Testing);
  ``info=`` names the CSV (default: the one ``*.csv`` file in ``path``);
* an item is one 2-D short-axis slice at the ED or the ES frame (ED once when both are the
  same frame) holding at least one labelled pixel; the others carry no segmentation target.
  Items go subject by subject (sorted codes), ED then ES, slices in order; ``limit`` keeps
  the first items;
* intensities: each frame volume is scaled to [0, 1] by its minimum and its 99.5th
  percentile (brighter voxels clip to 1); one grey channel;
* slices keep the volume's array orientation (rows = x); each is centre-cropped to a square
  and resized to ``size`` px, bilinearly for the image and nearest-neighbour for the labels;
* each item's client is its subject's vendor (``Vendor``, coded in letter order, the
  letters in ``meta["client_names"]``), for ``--client-split column``; ``meta["items"]``
  names each item's subject, phase and slice;
* reading NIfTI needs ``nibabel``, the optional ``medical`` extra; without it the error says
  how to install it.
"""

from __future__ import annotations

import csv
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from audit.core.errors import InvalidParameterError
from audit.core.validation import check_interval, check_options
from audit.data.loaders.image_folder import _directory
from audit.data.loaders.local_checks import client_ids, local_file
from audit.data.loaders.segmentation_masks import segmentation_dataset, square_labels

_NAME = "mnms"
_OWNER = f"dataset {_NAME!r}"
MEDICAL_EXTRA = "pip install 'fedaudit[medical]'"
SPLITS = {"train": ("Training", "Labeled"), "val": ("Validation",), "test": ("Testing",)}
CLASS_NAMES = ("background", "LV", "MYO", "RV")
_COLUMNS = ("External code", "Vendor", "ED", "ES")


def import_nibabel():
    """``import nibabel``, or a clear error saying how to install the ``medical`` extra."""
    try:
        import nibabel
    except ImportError:
        raise InvalidParameterError(
            f"Dataset {_NAME!r} reads NIfTI volumes with the 'nibabel' package, an optional "
            f"extra: {MEDICAL_EXTRA}. Got no 'nibabel' package instead.") from None
    return nibabel


def _info_file(root: Path, info) -> Path:
    if info is not None:
        return local_file(info, _NAME, (".csv",))
    found = sorted(p for p in root.glob("*.csv") if p.is_file())
    if len(found) != 1:
        raise InvalidParameterError(
            f"The 'path' parameter of {_OWNER} must hold one CSV of subject information (or "
            f"name it with info=). Got {str(root)!r} ({len(found)} *.csv files) instead.")
    return found[0]


def _frames(info: Path) -> dict[str, tuple[str, int, int]]:
    """Subject code -> (vendor, ED frame, ES frame), from the CSV ``info``."""
    try:
        with info.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidParameterError(
            f"Subject information file {str(info)!r} of {_OWNER} is unreadable ({type(exc).__name__}).") from None
    rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items() if isinstance(v, str)}
            for r in rows]
    missing = [c for c in _COLUMNS if not rows or c not in rows[0]]
    if missing:
        raise InvalidParameterError(
            f"Subject information file {str(info)!r} of {_OWNER} has no {missing[0]!r} column "
            f"(it needs {', '.join(repr(c) for c in _COLUMNS)}).")
    out = {}
    for line, r in enumerate(rows, start=2):
        if not r["External code"] or not r["Vendor"]:
            raise InvalidParameterError(
                f"Subject information file {str(info)!r} of {_OWNER} has an empty 'External code' "
                f"or 'Vendor' at line {line}.")
        try:
            out[r["External code"]] = (r["Vendor"], int(r["ED"]), int(r["ES"]))
        except ValueError:
            raise InvalidParameterError(
                f"Subject information file {str(info)!r} of {_OWNER} holds a non-integer ED or ES "
                f"frame at line {line}: {r['ED']!r}, {r['ES']!r}.") from None
    return out


def _volume(nib, path: Path) -> np.ndarray:
    if not path.is_file():
        raise InvalidParameterError(f"The subject folder {str(path.parent)!r} of {_OWNER} has no "
                                    f"volume {path.name!r}: expected {str(path)!r}.")
    try:
        arr = np.asarray(nib.load(str(path)).dataobj)
    except (nib.filebasedimages.ImageFileError, OSError, EOFError, ValueError, zlib.error) as exc:
        raise InvalidParameterError(
            f"NIfTI file {str(path)!r} of {_OWNER} is unreadable or corrupt ({type(exc).__name__}).") from None
    if arr.ndim != 4:
        raise InvalidParameterError(
            f"NIfTI file {str(path)!r} of {_OWNER} must be a 4-D cine volume (x, y, slice, frame). "
            f"Got shape {arr.shape} instead.")
    return arr


def _labels(gt: np.ndarray, path: Path) -> np.ndarray:
    rounded = np.rint(gt)
    bad = (np.abs(gt - rounded) > 1e-3) | (rounded < 0) | (rounded >= len(CLASS_NAMES))
    if bad.any():
        raise InvalidParameterError(
            f"Label volume {str(path)!r} of {_OWNER} must hold the classes 0..3 (background, LV, "
            f"MYO, RV). Got {gt[bad][0].item()!r} instead.")
    return rounded.astype(np.uint8)


def _scaled(frame: np.ndarray) -> np.ndarray:
    frame = frame.astype(np.float64)
    lo, hi = float(frame.min()), float(np.percentile(frame, 99.5))
    if hi <= lo:
        hi = float(frame.max())
    return np.zeros_like(frame) if hi <= lo else np.clip((frame - lo) / (hi - lo), 0.0, 1.0)


def _square_slice(x: np.ndarray, size: int) -> np.ndarray:
    h, w = x.shape
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    im = Image.fromarray(np.ascontiguousarray(x[y0: y0 + s, x0: x0 + s], dtype=np.float32))
    return np.clip(np.asarray(im.resize((size, size), Image.Resampling.BILINEAR)), 0.0, 1.0)


def _subject_items(nib, folder: Path, frames: tuple[str, int, int], size: int):
    """The (image, labels, phase, slice) items of the subject in ``folder``."""
    code = folder.name
    sa_path, gt_path = folder / f"{code}_sa.nii.gz", folder / f"{code}_sa_gt.nii.gz"
    sa, gt = _volume(nib, sa_path), _volume(nib, gt_path)
    if sa.shape != gt.shape:
        raise InvalidParameterError(
            f"Label volume {str(gt_path)!r} of {_OWNER} has shape {gt.shape} but its image volume "
            f"{str(sa_path)!r} has shape {sa.shape}; they must match.")
    labels = _labels(gt, gt_path)
    _, ed, es = frames
    for phase, t in (("ED", ed), ("ES", es)) if ed != es else (("ED", ed),):
        if not 0 <= t < sa.shape[3]:
            raise InvalidParameterError(
                f"NIfTI file {str(sa_path)!r} of {_OWNER} has {sa.shape[3]} frames, but its "
                f"subject information gives the {phase} frame {t}.")
        volume = _scaled(sa[..., t])
        for z in range(sa.shape[2]):
            if labels[:, :, z, t].any():
                yield (_square_slice(volume[:, :, z], size)[..., None],
                       square_labels(labels[:, :, z, t], size), phase, z)


def mnms(*, path=None, split: str = "train", info=None, size: int = 64, limit: int | None = None):
    """M&Ms from its OpenDataset folders: 4-class cardiac segmentation of 2-D slices."""
    root = _directory(path, _NAME)
    split = check_options("split", _OWNER, split, tuple(SPLITS))
    size = check_interval("size", _OWNER, size, kind=int, low=8, high=1024)
    if limit is not None:
        limit = check_interval("limit", _OWNER, limit, kind=int, low=1)
    folder = root.joinpath(*SPLITS[split])
    if not folder.is_dir():
        raise InvalidParameterError(
            f"The 'path' parameter of {_OWNER} must be the M&Ms OpenDataset folder, holding "
            f"{'/'.join(SPLITS[split])}/ for split={split!r}. Got {str(root)!r} ({str(folder)!r} "
            "is missing) instead.")
    info_path = _info_file(root, info)
    frames = _frames(info_path)
    nib = import_nibabel()
    images, labels, vendors, subjects, phases, slices = [], [], [], [], [], []
    for subject in sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")):
        if subject.name not in frames:
            raise InvalidParameterError(
                f"Subject {subject.name!r} ({str(subject)!r}) of {_OWNER} has no row in the subject "
                f"information file {str(info_path)!r}.")
        for image, label, phase, z in _subject_items(nib, subject, frames[subject.name], size):
            images.append(image)
            labels.append(label)
            vendors.append(frames[subject.name][0])
            subjects.append(subject.name)
            phases.append(phase)
            slices.append(z)
        if limit is not None and len(images) >= limit:
            break
    if not images:
        raise InvalidParameterError(
            f"The 'path' parameter of {_OWNER} must hold labelled slices in {str(folder)!r}. "
            f"Got {str(root)!r} (no subject with a labelled ED or ES slice) instead.")
    n = len(images) if limit is None else min(limit, len(images))
    clients, names = client_ids(vendors[:n], "info", _OWNER, "Vendor", lambda i: f"item {i}")
    meta = {"client_names": names, "class_names": CLASS_NAMES,
            "items": {"subject": tuple(subjects[:n]), "phase": tuple(phases[:n]),
                      "slice": tuple(slices[:n])}}
    return segmentation_dataset(_NAME, images[:n], labels[:n], len(CLASS_NAMES),
                                f"M&Ms {split} split, {root}", clients=clients, meta=meta)
