"""The optional ground truth of a recorded-updates directory, ``DIR/truth/``: what the
clients really held (an auditor has it in a red-team exercise, or when it records its own
simulation). Attacks never see it; only scoring reads it.

    truth/<update file's stem>.safetensors or .npz   "images" (N, C, H, W); optional "labels" (N,)
    truth/baseline.safetensors or .npz               optional "mean_image" (C, H, W)
    truth/candidates.safetensors or .npz             optional "member" (one per candidate)

Project choices:

* A truth folder holds the data behind every update of the directory or behind none (it
  may hold the membership only): one missing file is an error naming it, since partial
  truth would score a subset of the targets silently.
* Images are floats in [0, 1], or uint8 (divided by 255); labels are class indices.
* ``mean_image`` is the trivial baseline every image metric stands beside (the in-simulation
  audit uses the dataset's mean image); without it, the mean of the truth images is used.
* ``member`` is 1 for a member of the attacked client's data, 0 otherwise.
* ``.npz`` files are read with ``allow_pickle=False`` and safetensors hold tensors only, so
  reading the truth runs nothing of the files'.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from audit.core.errors import InvalidParameterError

TRUTH_DIR = "truth"
SUFFIXES = (".safetensors", ".npz")


@dataclass(frozen=True)
class GroundTruth:
    """The clients' real data by update file (``images`` in [0, 1], ``labels`` or None), the
    baseline image and the candidates' membership, as far as the auditor knows them."""

    data: Mapping[str, tuple[torch.Tensor, torch.Tensor | None]]
    baseline_image: torch.Tensor | None
    members: torch.Tensor | None = None


def load_arrays(path: Path, what: str) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` or ``.npz`` file, or an error naming it."""
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        with np.load(path, allow_pickle=False) as npz:
            return {k: torch.from_numpy(np.array(npz[k])) for k in npz.files}
    except (SafetensorError, OSError, ValueError, zipfile.BadZipFile) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        kind = "a safetensors file" if path.suffix == ".safetensors" else "an .npz file of plain arrays"
        raise InvalidParameterError(f"The {what} {str(path)!r} must be {kind}. Got a file that is not "
                                    f"({first}) instead.") from None


def _find(folder: Path, stem: str) -> Path | None:
    return next((folder / (stem + s) for s in SUFFIXES if (folder / (stem + s)).is_file()), None)


def _images(arrays: dict, path: Path, shape: tuple[int, ...]) -> torch.Tensor:
    x = arrays.get("images")
    if x is None or tuple(x.shape) != shape:
        raise InvalidParameterError(
            f"The truth file {str(path)!r} must hold 'images' of shape {shape}. Got "
            f"{None if x is None else tuple(x.shape)} instead.")
    if x.dtype == torch.uint8:
        return x.float() / 255.0
    if not x.dtype.is_floating_point or not bool(((x >= 0) & (x <= 1)).all()):
        raise InvalidParameterError(
            f"The truth file {str(path)!r} must hold 'images' as floats in [0, 1] or uint8. Got "
            f"{x.dtype} values in [{float(x.min()):.3g}, {float(x.max()):.3g}] instead.")
    return x.float()


def _vector(arrays: dict, key: str, path: Path, n: int) -> torch.Tensor | None:
    v = arrays.get(key)
    if v is None:
        return None
    if tuple(v.shape) != (n,) or v.dtype.is_floating_point:
        raise InvalidParameterError(
            f"The truth file {str(path)!r} must hold {key!r} as {n} integers. Got shape "
            f"{tuple(v.shape)} of {v.dtype} instead.")
    return v.long()


def read_truth(folder: Path, updates: Sequence[tuple[str, int]], input_shape: tuple[int, int, int],
               num_candidates: int | None) -> GroundTruth:
    """The truth in ``folder`` for ``updates`` ((update file, number of examples) each): the
    data behind every update or behind none (a folder with the membership only)."""
    found = {file: _find(folder, Path(file).stem) for file, _ in updates}
    missing = [file for file, path in found.items() if path is None]
    if missing and len(missing) < len(found):
        raise InvalidParameterError(
            f"The truth folder {str(folder)!r} must hold the data behind every update or none. Got "
            f"no {Path(missing[0]).stem}.safetensors or .npz (for {missing[0]!r}) instead.")
    data = {}
    for file, n in updates:
        if found[file] is not None:
            arrays = load_arrays(found[file], "truth file")
            data[file] = (_images(arrays, found[file], (n, *input_shape)),
                          _vector(arrays, "labels", found[file], n))
    baseline = torch.cat([images for images, _ in data.values()]).mean(0) if data else None
    path = _find(folder, "baseline")
    if path is not None:
        mean = load_arrays(path, "truth file").get("mean_image")
        if mean is None:
            raise InvalidParameterError(
                f"The truth file {str(path)!r} must hold 'mean_image' of shape {input_shape}. "
                "Got none instead.")
        baseline = _images({"images": mean[None]}, path, (1, *input_shape))[0]
    members = None
    path = _find(folder, "candidates")
    if path is not None:
        if num_candidates is None:
            raise InvalidParameterError(
                f"The truth file {str(path)!r} gives the candidates' membership, but the metadata "
                "names no 'candidates' file. Got a membership without candidates instead.")
        members = _vector(load_arrays(path, "truth file"), "member", path, num_candidates)
        if members is None or not bool(((members == 0) | (members == 1)).all()):
            raise InvalidParameterError(
                f"The truth file {str(path)!r} must hold 'member' as {num_candidates} values 0 or 1.")
        members = members.bool()
    return GroundTruth(data, baseline, members)


def write_truth(folder: Path, data: Mapping[str, tuple[torch.Tensor, torch.Tensor | None]], *,
                baseline_image: torch.Tensor | None = None, members=None) -> None:
    """Write ``data`` (update file -> (images, labels)) and the optional baseline and
    membership into ``folder`` (created), in the layout :func:`read_truth` reads."""
    folder.mkdir(parents=True, exist_ok=True)
    for file, (images, labels) in data.items():
        arrays = {"images": images.detach().float().cpu().contiguous()}
        if labels is not None:
            arrays["labels"] = labels.detach().long().cpu().contiguous()
        save_file(arrays, str(folder / (Path(file).stem + ".safetensors")))
    if baseline_image is not None:
        save_file({"mean_image": torch.as_tensor(baseline_image).float().cpu().contiguous()},
                  str(folder / "baseline.safetensors"))
    if members is not None:
        save_file({"member": torch.as_tensor(np.asarray(members)).to(torch.uint8).contiguous()},
                  str(folder / "candidates.safetensors"))
