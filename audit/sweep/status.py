"""Which runs of a sweep spec are finished in an output directory, and which failed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from audit.sweep.run_store import FAILED_DIR, _finished
from audit.sweep.spec import SweepSpec, _as_spec

__all__ = ["SweepStatus", "sweep_status"]


@dataclass(frozen=True)
class SweepStatus:
    """Which runs of a spec are finished in an output directory."""

    done: tuple[str, ...]
    pending: tuple[str, ...]
    #: the pending runs that failed last time: id -> the first line of the error
    failed: dict[str, str]

    @property
    def total(self) -> int:
        return len(self.done) + len(self.pending)


def _first_line(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").splitlines()[0]
    except (OSError, IndexError, UnicodeDecodeError):
        return "failed"


def sweep_status(spec: SweepSpec | str | os.PathLike, out_dir: str | os.PathLike) -> SweepStatus:
    """Done and pending runs of ``spec`` in ``out_dir`` (in grid order), and the failures."""
    spec = _as_spec(spec)
    out = Path(out_dir)
    done, pending, failed = [], [], {}
    for run in spec.runs:
        if _finished(out, run.id):
            done.append(run.id)
        else:
            pending.append(run.id)
            note = out / FAILED_DIR / f"{run.id}.txt"
            if note.is_file():
                failed[run.id] = _first_line(note)
    return SweepStatus(tuple(done), tuple(pending), failed)
