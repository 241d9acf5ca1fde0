"""The output directory of a sweep: finished runs, failures and the lock.

A sweep writes::

    OUT/runs/<id>/report.json, report.html, run.json   one finished run each
    OUT/failed/<id>.txt                                the error of a failed run
    OUT/compliance.json, compliance.html               all finished runs, default policy
    OUT/sweep.json                                     the runs and what this call did

(the last two by :mod:`audit.sweep.runner`).

* Atomic runs: a worker computes the whole report in memory and returns it; this process
  writes it into ``OUT/runs/.tmp-<id>-<pid>/`` and renames the directory to its final name.
  A crashed or killed run (or sweep) leaves no final directory; leftover ``.tmp-*``
  directories are removed by the next sweep. Because the driver writes, the Ray workers
  need no shared file system (a remote cluster works).
* Resume: a run whose final directory holds a ``report.json`` that loads and validates is
  skipped ("done before"); anything else (never run, failed, killed) runs again. A
  failure is recorded in ``OUT/failed/<id>.txt`` and does not stop the other runs; it is
  removed when a later sweep finishes that run. One sweep at a time per OUT (a lock file,
  ``OUT/.sweep.lock``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from audit.core.errors import InvalidParameterError
from audit.sweep.spec import SweepRun

RUNS_DIR, FAILED_DIR = "runs", "failed"


def _run_dir(out: Path, rid: str) -> Path:
    return out / RUNS_DIR / rid


def _finished(out: Path, rid: str) -> bool:
    """Whether the run's final directory holds a report.json that loads and validates."""
    from reports.io import load_report

    path = _run_dir(out, rid) / "report.json"
    if not path.is_file():
        return False
    try:
        load_report(path)
    except InvalidParameterError:
        return False
    return True


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_run(out: Path, run: SweepRun, result: Mapping[str, Any], meta: Mapping[str, Any]) -> Path:
    """Write the run's directory atomically: into a temporary directory, then renamed."""
    from reports.assembly import write_report
    from reports.io import write_json_atomic

    final = _run_dir(out, run.id)
    tmp = final.parent / f".tmp-{run.id}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        write_report(tmp, result["report"])
        write_json_atomic(tmp / "run.json", {**run.payload(), "origin": run.origin, **meta})
        _fsync_dir(tmp)
        if final.exists():  # a directory without a valid report: replaced
            stale = final.parent / f".stale-{run.id}-{os.getpid()}"
            os.rename(final, stale)
            os.rename(tmp, final)
            shutil.rmtree(stale, ignore_errors=True)
        else:
            os.rename(tmp, final)
        _fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _write_failure(out: Path, run: SweepRun, message: str, details: str) -> None:
    from reports.io import write_text_atomic

    (out / FAILED_DIR).mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / FAILED_DIR / f"{run.id}.txt",
                      f"{message}\n\nrun {run.id} ({run.origin})\n"
                      f"{json.dumps(run.payload(), sort_keys=True, indent=2, default=repr)}\n\n{details}\n")


def _clear_failure(out: Path, rid: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (out / FAILED_DIR / f"{rid}.txt").unlink()


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold ``OUT/.sweep.lock`` (one sweep per directory) and tidy leftovers of killed runs."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        fcntl = None
    fd = os.open(out / ".sweep.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise InvalidParameterError(
                    f"Another sweep is running in {str(out)!r} (it holds {str(out / '.sweep.lock')!r}): "
                    "wait for it to finish or choose another output directory.") from None
        runs = out / RUNS_DIR
        if runs.is_dir():
            for leftover in runs.iterdir():
                if leftover.name.startswith((".tmp-", ".stale-")):
                    shutil.rmtree(leftover, ignore_errors=True)
        yield
    finally:
        os.close(fd)  # releases the lock
