"""Compare two fedaudit report.json files apart from timings and provenance.

    python3 scripts/compare_reports.py BEFORE/report.json AFTER/report.json

Drops, at every level, the volatile keys of :data:`reports.schema.VOLATILE_KEYS`
(``created_utc``, ``runtime_s``) and the other timings a report records
(:data:`TIMING_KEYS`: an estimator's ``compute_s``, shadow-model training ``seconds``),
and ``environment.git_revision`` (the commit that ran), then prints a unified diff of the two canonical JSON texts. Exit code 0 when they are
identical, 1 when they differ, 2 on bad input.
"""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path

from reports.schema import strip_volatile

#: wall-clock figures recorded inside findings, beyond reports.schema.VOLATILE_KEYS
TIMING_KEYS = ("compute_s", "seconds")


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def canonical(path: Path) -> list[str]:
    report = _without_timings(strip_volatile(json.loads(path.read_text())))
    report.get("environment", {}).pop("git_revision", None)
    return json.dumps(report, indent=1, sort_keys=True).splitlines(keepends=True)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: compare_reports.py BEFORE.json AFTER.json", file=sys.stderr)
        return 2
    before, after = (Path(a) for a in argv)
    for path in (before, after):
        if not path.is_file():
            print(f"Error: no such report: {path}", file=sys.stderr)
            return 2
    diff = list(difflib.unified_diff(canonical(before), canonical(after), str(before), str(after)))
    sys.stdout.writelines(diff)
    print(f"{len(diff)} diff lines")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
