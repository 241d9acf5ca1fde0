"""On-disk cache of trained models, one safetensors file per training configuration.

A model is keyed by its *spec*, the JSON-ready mapping that fully describes how it was
trained (architecture, data slice, seed, epochs, ...). The file name is a hash of the
canonical JSON of the spec, and the canonical JSON itself is stored in the file's metadata,
so a hash collision or a hand-edited file is detected instead of silently reused.

Choices: files are read and written only with safetensors (never pickle or ``torch.load``),
so opening a cache directory from someone else cannot run code; writes go to a temporary
file in the same directory and are moved into place with :func:`os.replace`, so a killed
process never leaves a half-written file under a final name; a corrupt entry is reported
with a :class:`RuntimeWarning`, deleted, and treated as missing so that it is retrained.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import tempfile
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from audit.core.errors import InvalidParameterError

__all__ = ["ModelCache", "canonical_spec", "prepared_tensors"]

_SPEC_KEY = "fedaudit_spec"
_FORMAT_KEY = "fedaudit_cache_format"
_FORMAT = "1"
_SUFFIX = ".safetensors"


def canonical_spec(spec: Mapping[str, Any]) -> str:
    """The canonical JSON text of ``spec`` (sorted keys, no spaces)."""
    if not isinstance(spec, Mapping):
        raise InvalidParameterError(
            f"The 'spec' parameter of ModelCache must be a mapping. Got {spec!r} instead."
        )
    try:
        return json.dumps(dict(spec), sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as err:
        raise InvalidParameterError(
            "The 'spec' parameter of ModelCache must be JSON-ready (str, int, float, bool, "
            f"None, lists and dicts with str keys). Got {spec!r} instead ({err})."
        ) from None


def prepared_tensors(
    tensors: Mapping[str, torch.Tensor], what: str = "The 'tensors' parameter of ModelCache.save"
) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU copies that share no memory (as safetensors requires).

    ``what`` starts the error message raised when ``tensors`` is not a str -> Tensor mapping.
    """
    if not isinstance(tensors, Mapping):
        raise InvalidParameterError(
            f"{what} must be a mapping of str to torch.Tensor. "
            f"Got {type(tensors).__name__} instead."
        )
    out: dict[str, torch.Tensor] = {}
    for name, tensor in tensors.items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise InvalidParameterError(
                f"{what} must be a mapping of str to torch.Tensor. "
                f"Got entry {name!r}: {type(tensor).__name__} instead."
            )
        tensor = tensor.detach()
        if tensor.device.type == "cpu":
            out[name] = tensor.clone(memory_format=torch.contiguous_format)
        else:
            out[name] = tensor.to("cpu").contiguous()
    return out


class ModelCache:
    """A directory of ``<key>.safetensors`` files, one per model spec."""

    def __init__(self, directory: str | os.PathLike) -> None:
        path = pathlib.Path(directory).expanduser()

        def bad(reason: str) -> InvalidParameterError:
            return InvalidParameterError(
                "The 'cache_dir' parameter must be a writable directory. "
                f"Got {str(path)!r} instead ({reason})."
            )

        if path.exists() and not path.is_dir():
            raise bad("not a directory")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise bad("not a directory") from None
        except OSError as err:
            raise bad(f"cannot be created: {err.strerror or err}") from None
        if not os.access(path, os.W_OK | os.X_OK):
            raise bad("not writable")
        self.directory = path

    def __repr__(self) -> str:
        return f"ModelCache({str(self.directory)!r})"

    @staticmethod
    def key(spec: Mapping[str, Any]) -> str:
        """First 32 hex digits of the sha256 of the canonical JSON of ``spec``."""
        return hashlib.sha256(canonical_spec(spec).encode("utf-8")).hexdigest()[:32]

    def path(self, spec: Mapping[str, Any]) -> pathlib.Path:
        """Where the model for ``spec`` is (or would be) stored."""
        return self.directory / f"{self.key(spec)}{_SUFFIX}"

    def __contains__(self, spec: Mapping[str, Any]) -> bool:
        """Whether a file exists for ``spec`` (cheap: the file is not validated)."""
        return self.path(spec).is_file()

    def load(self, spec: Mapping[str, Any]) -> dict[str, torch.Tensor] | None:
        """The cached tensors for ``spec``, or None when absent or corrupt (then deleted)."""
        expected = canonical_spec(spec)
        path = self.path(spec)
        if not path.exists():
            return None
        if not os.access(path, os.R_OK):
            raise self._unreadable(path, "permission denied")
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                metadata = f.metadata() or {}
                reason = _metadata_problem(metadata, expected)
                # get_tensor returns views of a memory map of the file; copy them so that
                # the result does not change if the file is later modified in place
                tensors = None if reason else {n: f.get_tensor(n).clone() for n in f.keys()}
        except FileNotFoundError:
            return None
        except PermissionError as err:
            raise self._unreadable(path, err.strerror or "permission denied") from None
        except Exception as err:  # safetensors raises its own error type, or OSError
            reason = f"not a readable safetensors file: {err}".replace("\n", " ")
            tensors = None
        if reason:
            warnings.warn(
                f"Model cache entry {path} is corrupt ({reason}); it will be retrained",
                RuntimeWarning,
                stacklevel=2,
            )
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass  # the next save replaces it anyway
            return None
        return tensors

    def save(self, spec: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> pathlib.Path:
        """Store ``tensors`` for ``spec`` atomically; returns the file's path."""
        return self._save_prepared(spec, prepared_tensors(tensors))

    def _save_prepared(
        self, spec: Mapping[str, Any], data: dict[str, torch.Tensor]
    ) -> pathlib.Path:
        """:meth:`save` for tensors already passed through :func:`prepared_tensors`."""
        text = canonical_spec(spec)
        path = self.path(spec)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=self.directory)
        os.close(fd)
        try:
            save_file(data, tmp, metadata={_SPEC_KEY: text, _FORMAT_KEY: _FORMAT})
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return path

    @staticmethod
    def _unreadable(path: pathlib.Path, reason: str) -> InvalidParameterError:
        return InvalidParameterError(
            f"The model cache file {str(path)!r} must be readable. Got an unreadable file "
            f"instead ({reason})."
        )


def _metadata_problem(metadata: Mapping[str, str], expected: str) -> str | None:
    """Why the file's metadata does not belong to ``expected``, or None when it does."""
    if _SPEC_KEY not in metadata or _FORMAT_KEY not in metadata:
        return "fedaudit metadata missing"
    if metadata[_FORMAT_KEY] != _FORMAT:
        return f"unknown cache format {metadata[_FORMAT_KEY]!r}"
    if metadata[_SPEC_KEY] != expected:
        return "stored spec differs from the requested one"
    return None


def default_cache_dir() -> pathlib.Path:
    """``$XDG_CACHE_HOME/fedaudit/models`` (``~/.cache`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(pathlib.Path.home() / ".cache")
    return pathlib.Path(base) / "fedaudit" / "models"
