"""Atomic file writes and loading of ``report.json``.

A write goes to a temporary file in the target's directory, is flushed and fsynced,
then moved over the target with :func:`os.replace`. On any failure the temporary file
is removed and an existing target is left untouched, so a reader never sees a partial
file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from audit.core.errors import InvalidParameterError, invalid
from reports.schema import validate_report

_NEW_FILE_MODE = 0o644


def _target(path: str | os.PathLike, owner: str) -> Path:
    if not isinstance(path, (str, os.PathLike)) or str(path) == "":
        raise invalid("path", owner, "a non-empty str or path-like", path)
    target = Path(path)
    if target.is_dir():
        raise invalid("path", owner, "a file path, not a directory", str(target))
    if not target.parent.is_dir():
        raise invalid("path", owner, "a path in an existing directory", str(target))
    return target


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically.

    Args:
        path: Target file; its directory must exist. An existing file is replaced and
            keeps its permission bits; a new file gets mode 0644.
        data: The bytes to write.

    Raises:
        InvalidParameterError: If ``path`` is a directory or its directory does not
            exist, or ``data`` is not bytes.
        OSError: If writing fails (the target is then unchanged).
    """
    target = _target(path, "write_bytes_atomic")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise invalid("data", "write_bytes_atomic", "bytes", type(data).__name__)
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = _NEW_FILE_MODE
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(target.parent)


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself (best effort: not every platform can open a dir)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically, UTF-8 encoded, newlines as given.

    Args:
        path: Target file (see :func:`write_bytes_atomic`).
        text: The text to write.

    Raises:
        InvalidParameterError: If ``text`` is not a str, or ``path`` is not acceptable.
        OSError: If writing fails (the target is then unchanged).
    """
    if not isinstance(text, str):
        raise invalid("text", "write_text_atomic", "a str", type(text).__name__)
    write_bytes_atomic(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    # numpy scalars (np.float32, np.int64, np.bool_) are not JSON-serializable as such.
    item = getattr(obj, "item", None)
    if callable(item) and getattr(obj, "shape", None) == ():
        return item()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Serialize ``obj`` as JSON and write it to ``path`` atomically.

    The text is ``json.dumps(obj, indent=2, sort_keys=True, allow_nan=False)`` plus a
    final newline, so equal objects give byte-identical files. Serialization happens
    before anything touches the disk: if it fails, an existing file is left as it was.

    Args:
        path: Target file (see :func:`write_bytes_atomic`).
        obj: A JSON-serializable object; numpy scalars are converted to Python numbers.

    Raises:
        InvalidParameterError: If ``obj`` holds NaN or infinity, or a value JSON cannot
            represent, or ``path`` is not acceptable.
        OSError: If writing fails (the target is then unchanged).
    """
    try:
        text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False,
                          ensure_ascii=False, default=_json_default)
    except (ValueError, TypeError) as exc:
        raise InvalidParameterError(
            f"Cannot write JSON to {str(path)!r}: {str(exc).rstrip('.')}."
        ) from exc
    write_text_atomic(path, text + "\n")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def load_report(path: str | os.PathLike) -> dict:
    """Read and validate a ``report.json``.

    Args:
        path: The report file.

    Returns:
        The decoded report, checked with :func:`~reports.schema.validate_report`.

    Raises:
        InvalidParameterError: If the file is missing or unreadable, is not valid
            UTF-8 JSON (NaN and Infinity included), or is not a valid report; the
            one-line message names the path and the problem.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise invalid("path", "load_report", "a str or path-like", path)
    where = f"Cannot load report {str(path)!r}"
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise InvalidParameterError(f"{where}: no such file.") from None
    except IsADirectoryError:
        raise InvalidParameterError(f"{where}: it is a directory, not a file.") from None
    except OSError as exc:
        raise InvalidParameterError(f"{where}: {exc.strerror or exc}.") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidParameterError(
            f"{where}: not UTF-8 text (bad byte at offset {exc.start})."
        ) from None
    try:
        report = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InvalidParameterError(
            f"{where}: invalid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})."
        ) from None
    except ValueError as exc:
        raise InvalidParameterError(f"{where}: invalid JSON ({exc}).") from None
    try:
        return validate_report(report)
    except InvalidParameterError as exc:
        raise InvalidParameterError(f"{where}: {exc}") from None
