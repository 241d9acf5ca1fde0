"""The claimed-vs-empirical ledger, rendered: display strings of the rows of
:func:`reports.ledger.ledger_rows` for the HTML pages (``templates/ledger.html.j2``, included
by ``report.html.j2`` and by the compliance page, autoescaped as the rest of the page), the
Markdown lines (every user string through :func:`reports.formatting.md_escape`) and a
plain-text table for a terminal (``fedaudit ledger RUN_DIRS...``).

Project choices: a row shows the claim's unit level when known, else the unit's text; a
lower bound is written ``≥ x at c%`` (the one-sided interval ``[x, inf)``), an estimate
``x (point estimate, no interval)``; VIOLATION and INCONCLUSIVE are emphasised; the lint
findings are listed once per run (a run's rows share its lint; the same finding of several
findings of one run names them all), errors first, then warnings, then info; "clean" means
no error and no warning (info findings, e.g. skipped rules, are counted beside it). The
text table keeps the tail of a long run directory (``…/runs/clean``: the distinguishing
part), wraps other long cells within their column, and puts the claim's and the evidence's
details (defense, adjacency, accountant, trust model, estimator, assumptions) on wrapped
lines under each row, so that it fits a terminal of about :data:`TEXT_WIDTH` columns; no
colours.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from reports.formatting import NA, PRIMARY_LABEL, format_number, md_escape, md_table
from reports.ledger import LINT_SEVERITIES, ledger_rows

TITLE = "Claimed vs empirical ledger"
EMPTY_TEXT = "No empirical-epsilon findings: the ledger is empty."
EMPHASISED = ("VIOLATION", "INCONCLUSIVE")
EXPLANATION = (
    "Each row sets a claim (its label, \u03b5, \u03b4, unit of privacy, adjacency, accountant, trust "
    "model and what its accounting assumes) beside the empirical evidence (the estimator, "
    "\u03b5_emp with its interval, the audit's power ceiling and its trials or canaries), the "
    "verdict and the run's accounting lint. VIOLATION: the evidence contradicts the claim. "
    "INCONCLUSIVE: the claim is above the power ceiling, the audit was too weak to say.")
#: the width the text table aims at (its widest columns shrink to their floor to fit it)
TEXT_WIDTH = 120
#: (key, header, floor, widest) of the text table's columns
_TEXT_COLUMNS = (("run", "Run", 12, 28), ("finding", "Finding", 12, 28), ("label", "Claim", 10, 20),
                 ("epsilon", "\u03b5", 6, 9), ("delta", "\u03b4", 6, 9), ("unit", "Unit", 6, 12),
                 ("epsilon_emp", "\u03b5_emp", 13, 20), ("power_ceiling", "Ceiling", 7, 9),
                 ("trials", "Trials", 6, 8), ("verdict", "Verdict", 12, 12), ("lint", "Lint", 17, 28))
_MD_HEADER = ["Finding", "Defense", "Claim", "\u03b5", "\u03b4", "Unit", "Adjacency", "Accountant",
              "Trust model", "Assumptions", "Estimator", "\u03b5_emp", "Power ceiling",
              "Trials / canaries", "Verdict", "Lint"]
_MD_KEYS = ("finding", "defense", "label", "epsilon", "delta", "unit", "adjacency", "accountant",
            "trust_model", "assumptions", "estimator", "epsilon_emp", "power_ceiling", "trials",
            "verdict", "lint")


def epsilon_emp_text(evidence: dict) -> str:
    """``≥ 1.65 at 95%`` for a lower bound, ``1.65 (point estimate, no interval)`` for an
    estimate, the number alone when the nature is unknown, ``n/a`` without one."""
    eps = evidence.get("epsilon_emp")
    if eps is None:
        return NA
    nature, confidence = evidence.get("nature"), evidence.get("confidence")
    if nature == "lower-bound":
        low = (evidence.get("interval") or [eps])[0]
        at = "" if confidence is None else f" at {format_number(100 * float(confidence))}%"
        return f"\u2265 {format_number(low)}{at}"
    if nature == "estimate":
        return f"{format_number(eps)} (point estimate, no interval)"
    return format_number(eps)


def lint_text(summary: dict) -> str:
    """``2 errors, 1 warning`` (and ``, 3 info``), or ``clean`` (with ``(3 info)``)."""
    def count(n: int, noun: str) -> str:
        return f"{n} {noun}{'s' if n != 1 else ''}"

    parts = [count(summary[s], s) for s in ("error", "warning") if summary.get(s)]
    info = summary.get("info") or 0
    if not parts:
        return "clean" + (f" ({info} info)" if info else "")
    return ", ".join(parts) + (f", {info} info" if info else "")


def _row(row: dict) -> dict:
    c, ev = row["claim"], row["evidence"]
    trials = ev.get("trials")
    return {
        "run": row.get("run") or "", "finding": row["finding"], "defense": row["defense"],
        "label": c.get("label") or PRIMARY_LABEL,
        "epsilon": format_number(c.get("epsilon")), "delta": format_number(c.get("delta")),
        "unit": c.get("unit_level") or c.get("unit") or NA,
        "adjacency": c.get("adjacency") or NA, "accountant": c.get("accountant") or NA,
        "trust_model": c.get("trust_model") or NA,
        "assumptions": "; ".join(c.get("assumptions") or ()) or NA,
        "estimator": ev.get("estimator") or NA, "epsilon_emp": epsilon_emp_text(ev),
        "power_ceiling": format_number(ev.get("power_ceiling")),
        "trials": NA if trials is None else str(trials),
        "verdict": row["verdict"], "emphasis": row["verdict"] in EMPHASISED,
        "verdict_class": row["verdict"].lower(), "reason": row.get("reason") or "",
        "lint": lint_text(row["lint_summary"]),
    }


def _lint_list(rows: Sequence[dict]) -> list[dict]:
    """The lint findings once per run (each naming the findings that carry it), errors first."""
    seen: dict[tuple, dict] = {}
    for row in rows:
        for item in row["lint"]:
            key = (row.get("run"), item["severity"], item["id"], item["message"], item["fix"])
            where = f"{row['finding']} / {row['defense']}"
            entry = seen.setdefault(key, {"run": row.get("run") or "", "where": [],
                                          "severity": item["severity"], "id": item["id"],
                                          "message": item["message"], "fix": item["fix"]})
            if where not in entry["where"]:
                entry["where"].append(where)
    rank = {s: i for i, s in enumerate(LINT_SEVERITIES)}
    out = sorted(seen.values(), key=lambda e: rank.get(e["severity"], len(rank)))
    return [{**e, "where": ", ".join(e["where"])} for e in out]


def report_ledger(report: dict) -> list[dict]:
    """The rows of ``report["ledger"]``, or, for an older report without that key, the rows
    :func:`~reports.ledger.ledger_rows` builds from its findings."""
    if "ledger" in report:
        return list(report["ledger"] or ())
    return ledger_rows(report["findings"])


def ledger_view(rows: Sequence[dict] | None) -> dict | None:
    """Display strings of the ledger ``rows`` (``None`` when there are none)."""
    if not rows:
        return None
    view_rows = [_row(r) for r in rows]
    return {"title": TITLE, "explanation": EXPLANATION, "rows": view_rows,
            "show_run": any(r["run"] for r in view_rows), "lint": _lint_list(rows)}


def _lint_detail(item: dict) -> str:
    run = f"{item['run']} \u00b7 " if item["run"] else ""
    return f"({run}{item['where']}): {item['message']} Fix: {item['fix']}"


def ledger_markdown(rows: Sequence[dict] | None, *, level: int = 2) -> list[str]:
    """The Markdown lines of the ledger section, its heading at ``level`` (``##``: a section
    of a report; 1 for a document of its own); none without rows."""
    view = ledger_view(rows)
    if view is None:
        return []
    e = md_escape
    show_run = view["show_run"]
    header = (["Run"] if show_run else []) + _MD_HEADER
    table = []
    for r in view["rows"]:
        cells = [e(r[k]) for k in _MD_KEYS]
        if r["emphasis"]:
            cells[_MD_KEYS.index("verdict")] = f"**{cells[_MD_KEYS.index('verdict')]}**"
        table.append(([e(r["run"])] if show_run else []) + cells)
    # "ε_emp" cannot start emphasis (the underscore is inside a word): left unescaped
    out = [f"{'#' * level} {TITLE}", "", e(EXPLANATION).replace("\u03b5\\_emp", "\u03b5_emp"), ""]
    out += md_table(header, table, right={header.index(h) for h in ("\u03b5", "\u03b4", "Power ceiling",
                                                                     "Trials / canaries")})
    if view["lint"]:
        out += ["Accounting lint findings (once per run, errors first):", ""]
        out += [f"- **{e(x['severity'])}** {e(x['id'])} {e(_lint_detail(x))}" for x in view["lint"]]
        out.append("")
    return out


def _fit(widths: list[int], floor: list[int], total: int) -> list[int]:
    """Shrink the widest columns (never below ``floor``) until the table is ``total`` wide."""
    widths = list(widths)
    while sum(widths) + 2 * (len(widths) - 1) > total:
        i = max(range(len(widths)), key=lambda j: widths[j] - floor[j])
        if widths[i] <= floor[i]:
            break
        widths[i] -= 1
    return widths


def _cell_lines(key: str, text: str, width: int) -> list[str]:
    if len(text) <= width:
        return [text]
    if key == "run":  # the tail of a directory names the run: cut at a "/" where there is one
        tail = text[-(width - 1):]
        cut = 0 if tail.startswith("/") or "/" not in tail else tail.index("/")
        return ["\u2026" + tail[cut:]]
    if key == "lint":  # "2 errors, 1 warning, 1 info": break between the counts only
        return [x.replace("\u00a0", " ") for x in textwrap.wrap(text.replace(" ", "\u00a0").replace(
            ",\u00a0", ", "), width)] or [""]
    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]


def ledger_text(rows: Sequence[dict] | None, *, width: int = TEXT_WIDTH) -> str:
    """The ledger as plain text for a terminal: a fixed-width table (each row followed by its
    details), then the lint findings; :data:`EMPTY_TEXT` without rows. Ends with a newline."""
    view = ledger_view(rows)
    if view is None:
        return EMPTY_TEXT + "\n"
    cols = [c for c in _TEXT_COLUMNS if c[0] != "run" or view["show_run"]]
    natural = [min(cap, max(len(head), *(len(r[key]) for r in view["rows"])))
               for key, head, _, cap in cols]
    widths = _fit(natural, [min(n, floor) for n, (_, _, floor, _) in zip(natural, cols)], width)
    indent = widths[0] + 2 if view["show_run"] else 2

    def line(cells: list[list[str]]) -> list[str]:
        height = max(len(c) for c in cells)
        return ["  ".join((c[i] if i < len(c) else "").ljust(w) for c, w in zip(cells, widths)).rstrip()
                for i in range(height)]

    out = line([[h] for _, h, _, _ in cols])
    out.append("  ".join("-" * w for w in widths))
    wrap = textwrap.TextWrapper(width=max(width, indent + 40), initial_indent=" " * indent,
                                subsequent_indent=" " * (indent + 2), break_on_hyphens=False)
    for r in view["rows"]:
        out += line([_cell_lines(key, r[key], w) for (key, *_), w in zip(cols, widths)])
        out += wrap.wrap(f"defense {r['defense']} \u00b7 adjacency {r['adjacency']} \u00b7 accountant "
                         f"{r['accountant']} \u00b7 trust model {r['trust_model']} \u00b7 estimator "
                         f"{r['estimator']} \u00b7 assumes: {r['assumptions']}")
    out += [""] + textwrap.wrap(EXPLANATION, width)
    if view["lint"]:
        out += ["", "Accounting lint findings (once per run, errors first):"]
        item_wrap = textwrap.TextWrapper(width=width, initial_indent="  ", subsequent_indent="      ",
                                         break_on_hyphens=False)
        for x in view["lint"]:
            out += item_wrap.wrap(f"[{x['severity']}] {x['id']} {_lint_detail(x)}")
    return "\n".join(out) + "\n"


__all__ = ["EMPTY_TEXT", "EXPLANATION", "TITLE", "epsilon_emp_text", "ledger_markdown", "ledger_text",
           "ledger_view", "lint_text", "report_ledger"]
