"""The privacy-utility frontier (:mod:`reports.frontier`), rendered and written: display
strings for the HTML section (``templates/frontier.html.j2``, included by the sweep's
compliance page, autoescaped), Markdown (every user string through
:func:`reports.formatting.md_escape`, tables by :func:`reports.formatting.md_table`), plain
text for a terminal, and :func:`write_frontier`, which writes a sweep's
``OUT/frontier.json`` (validated first), ``OUT/frontier.md`` and one
``OUT/frontier_<defense>.png`` per defense.

Project choices: a cell is ``mean [low, high]`` (3 significant digits), ``mean (1 seed)``
without an interval, ``n/a`` without a value; the table has one row per claimed-epsilon
point (∞ for a configuration without a DP claim), then the undefended baseline's row; the
seeds column gives the number of runs at the point; a defense name becomes a file name by
replacing every character outside ``[A-Za-z0-9._-]`` with ``_`` (two names that differ only
there share the file: the later defense's figure is the one written).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reports.formatting import NA, format_number, md_escape, md_table

TITLE = "Privacy\u2013utility frontier"
EXPLANATION = (
    "Per defense configuration, utility (accuracy / IoU) and attack success (PSNR, TPR at 1% FPR, "
    "\u03b5_emp) against the claimed \u03b5: at each \u03b5 point the mean over seeds and its 95% "
    "Student-t interval; \u221e is the configuration without a DP claim and the undefended baseline. "
    "A claim holds only when every interval supports it, fails when an interval excludes it, and is "
    "not judgeable otherwise (too few \u03b5 points or seeds, an undefended model below the claim's "
    "utility floor, or overlapping intervals).")
EMPTY_TEXT = "No defended configuration among the runs: no frontier."
INFINITY = "\u221e"


def figure_name(defense: str) -> str:
    """``frontier_<defense>.png``, the defense's name made a safe file name."""
    return "frontier_" + (re.sub(r"[^A-Za-z0-9._-]", "_", defense).strip(".") or "defense") + ".png"


def cell(stat: Mapping | None) -> str:
    """``0.512 [0.48, 0.54]``, ``0.512 (1 seed)`` or ``n/a``."""
    if not stat or stat.get("mean") is None:
        return NA
    if stat.get("interval") is None:
        return f"{format_number(stat['mean'])} (1 seed)"
    lo, hi = stat["interval"]
    return f"{format_number(stat['mean'])} [{format_number(lo)}, {format_number(hi)}]"


def epsilon_text(epsilon: float | None) -> str:
    return INFINITY if epsilon is None else format_number(epsilon)


def curve_table(curve: Mapping) -> tuple[list[str], list[list[str]]]:
    """The header and rows (display strings) of one curve's table."""
    names = [m["name"] for m in curve["metrics"]]
    header = ["\u03b5", "seeds"] + [f"{m['name']} ({m['kind']})" for m in curve["metrics"]]
    rows = [[epsilon_text(p["epsilon"]), str(p["n_seeds"])] + [cell(p["metrics"].get(n)) for n in names]
            for p in curve["points"]]
    base = curve.get("baseline")
    if base:
        rows.append([f"{INFINITY} (undefended: {base['defense']})", str(base["n_seeds"])]
                    + [cell(base["metrics"].get(n)) for n in names])
    return header, rows


def by_defense(frontier: Mapping) -> dict[str, list[Mapping]]:
    out: dict[str, list[Mapping]] = {}
    for c in frontier["curves"]:
        out.setdefault(c["defense"], []).append(c)
    return out


def _verdict_line(v: Mapping) -> str:
    return f"{v['claim']} ({v['source']}): \u201c{v['statement']}\u201d \u2014 {v['verdict']}"


def frontier_view(frontier: Mapping, figures: Mapping[str, bytes] | None = None) -> dict[str, Any]:
    """Display strings of the HTML section; ``figures``: defense -> PNG bytes."""
    verdicts: dict[str, list[Mapping]] = {}
    for v in frontier["verdicts"]:
        verdicts.setdefault(v["curve"], []).append(v)
    defenses = []
    for name, curves in by_defense(frontier).items():
        png = (figures or {}).get(name)
        entries = []
        for c in curves:
            header, rows = curve_table(c)
            entries.append({"label": c["label"], "header": header, "rows": rows,
                            "verdicts": [{"claim": v["claim"], "source": v["source"],
                                          "statement": v["statement"], "verdict": v["verdict"],
                                          "status": v["status"].replace(" ", "-"), "note": v["note"]}
                                         for v in verdicts.get(c["id"], [])]})
        defenses.append({"name": name, "curves": entries, "figure_name": figure_name(name),
                         "png_base64": None if png is None else base64.b64encode(png).decode("ascii")})
    return {"title": TITLE, "explanation": EXPLANATION, "empty": EMPTY_TEXT, "defenses": defenses}


def frontier_markdown(frontier: Mapping, *, level: int = 1, figures: bool = False) -> str:
    """The frontier as Markdown, its heading at ``level``; ``figures`` links each defense's
    ``frontier_<defense>.png`` (beside the Markdown file)."""
    e = md_escape
    h = "#" * level
    out = [f"{h} {TITLE}", "", e(EXPLANATION).replace("\u03b5\\_emp", "\u03b5_emp"), ""]
    groups = by_defense(frontier)
    if not groups:
        return "\n".join(out + [EMPTY_TEXT, ""])
    verdicts: dict[str, list[Mapping]] = {}
    for v in frontier["verdicts"]:
        verdicts.setdefault(v["curve"], []).append(v)
    for name, curves in groups.items():
        out += [f"{h}# {e(name)}", ""]
        if figures:
            out += [f"![{e(name)} frontier]({figure_name(name)})", ""]
        for c in curves:
            header, rows = curve_table(c)
            out += [f"{e(c['label'])}:", ""]
            out += md_table([e(x) for x in header], [[e(x) for x in r] for r in rows],
                            right=set(range(1, len(header))))
            for v in verdicts.get(c["id"], []):
                out.append(f"- **{e(v['verdict'])}** \u2014 {e(v['claim'])} ({e(v['source'])}): "
                           f"{e(v['statement'])}")
            if verdicts.get(c["id"]):
                out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def frontier_text(frontier: Mapping) -> str:
    """The frontier as plain text: per curve an aligned table, then its verdicts."""
    groups = by_defense(frontier)
    if not groups:
        return EMPTY_TEXT + "\n"
    verdicts: dict[str, list[Mapping]] = {}
    for v in frontier["verdicts"]:
        verdicts.setdefault(v["curve"], []).append(v)
    out = [TITLE, ""]
    for curves in groups.values():
        for c in curves:
            header, rows = curve_table(c)
            widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
            out += [c["label"]] + ["  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip()
                                   for r in [header, ["-" * w for w in widths]] + rows]
            out += [f"  {_verdict_line(v)}" for v in verdicts.get(c["id"], [])]
            out.append("")
    return "\n".join(out)


def write_frontier(out_dir: str | Path, reports: Sequence[Mapping], *,
                   runs: Sequence[str] | None = None) -> dict[str, Any]:
    """Write ``frontier.json`` (validated), ``frontier.md`` and ``frontier_<defense>.png``
    into ``out_dir`` for ``reports``; returns the HTML view (:func:`frontier_view`)."""
    from reports.frontier import build_frontier
    from reports.frontier_plot import frontier_png
    from reports.frontier_schema import validate_frontier
    from reports.io import write_bytes_atomic, write_json_atomic, write_text_atomic

    out = Path(out_dir)
    frontier = validate_frontier(build_frontier(reports, runs=runs))
    figures = {name: frontier_png(curves, title=f"{name}: privacy\u2013utility frontier")
               for name, curves in by_defense(frontier).items()}
    write_json_atomic(out / "frontier.json", frontier)
    write_text_atomic(out / "frontier.md", frontier_markdown(frontier, figures=True))
    for name, png in figures.items():
        write_bytes_atomic(out / figure_name(name), png)
    return frontier_view(frontier, figures)


__all__ = ["EMPTY_TEXT", "EXPLANATION", "TITLE", "cell", "curve_table", "epsilon_text", "figure_name",
           "frontier_markdown", "frontier_text", "frontier_view", "write_frontier"]
