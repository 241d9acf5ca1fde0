"""Who is exposed, rendered: the display strings of a finding's ``exposure`` entry (per-group
TPR at low FPR with intervals, the top-k most exposed member ids, the plot) for the HTML
page (``templates/exposure.html.j2``, included by ``report.html.j2``, autoescaped as the
rest of the page) and the Markdown lines (every user string through
:func:`reports.markdown.md_escape`).

The figures are those of :mod:`audit.membership.exposure` (Carlini et al. 2022 for TPR at
low FPR and per-example vulnerability; Aerni et al. 2024 for evaluating the most
vulnerable records); this module only words them.

Project choices: rates are shown as percentages to 3 significant digits, intervals as
``[low, high]``; a group table longer than :data:`COLLAPSE_ABOVE` rows is folded into a
``<details>`` element in HTML (Markdown lists every row); the page names records by id
only, as the report does.
"""

from __future__ import annotations

from typing import Any

from reports.formatting import NA, format_number, md_escape

# reports.html and reports.markdown import this module inside their functions: it builds
# on their helpers.

#: a group table with more rows than this is folded in HTML
COLLAPSE_ABOVE = 12
_SOURCES = {"class": "per class", "user": "per user-named group",
            "none": "no groups (no class labels and no group column)"}
PRIVACY_NOTE = ("This section names records by id only, never by content; the ids of the most "
                "exposed records are those of members, so it is as sensitive as the membership "
                "of those records.")


def pct(value: Any) -> str:
    """A rate as a percentage (``"n/a"`` for ``None``)."""
    return NA if value is None else format_number(100 * float(value)) + "%"


def _interval(value: Any) -> str:
    return NA if value is None else f"[{pct(value[0])}, {pct(value[1])}]"


def _rate(tpr: Any, interval: Any) -> str:
    return NA if tpr is None else f"{pct(tpr)} {_interval(interval)}"


def _group_row(g: dict) -> dict:
    return {"rank": str(g["rank"]), "name": g["name"], "members": str(g["members"]),
            "non_members": str(g["non_members"]), "auc": format_number(g["auc"]),
            "tpr": _rate(g["tpr"], g["interval"]), "fpr": pct(g["fpr"]),
            "strict": _rate(g["strict_tpr"], g["strict_interval"]),
            "global": _rate(g["global_tpr"], g["global_interval"]),
            "global_fpr": pct(g["global_fpr"]), "note": g["note"] or ""}


def exposure_view(exposure: dict | None) -> dict | None:
    """Display strings of ``finding["exposure"]`` (``None`` when the finding has none)."""
    if not exposure:
        return None
    fpr, o = pct(exposure["fpr"]), exposure["overall"]
    groups = [_group_row(g) for g in exposure["groups"]]
    summary = (f"At the global {fpr} FPR threshold the attack finds {_rate(o['tpr'], o['interval'])} "
               f"of the {o['members']} members ({o['non_members']} non-members).")
    ranked = [g for g in exposure["groups"] if g["tpr"] is not None]
    if ranked:
        top = ranked[0]
        summary += (f" Most exposed group: {top['name']}, {pct(top['tpr'])} at "
                    f"{pct(top['fpr'])} FPR on its own non-members.")
    image = exposure.get("image")
    return {
        "source": _SOURCES.get(exposure["group_source"], exposure["group_source"]),
        "summary": summary,
        "method": (f"Own threshold: fixed on the group's non-members at {fpr} FPR (and at "
                   f"{pct(exposure['strict_fpr'])} for groups with 1000 non-members or more); "
                   f"global threshold: fixed at {fpr} FPR on all non-members. Groups whose TPR "
                   f"stands at a coarser FPR (too few non-members) rank after those at {fpr}. "
                   "Intervals: {format_number(100 * exposure['confidence'])}% "
                   f"{exposure['interval_method']}. Scores: {exposure['score']}; record ids: "
                   f"{exposure['record_ids']}."),
        "fpr": fpr, "strict_fpr": pct(exposure["strict_fpr"]),
        "groups": groups, "collapsed": len(groups) > COLLAPSE_ABOVE,
        "groups_title": f"{len(groups)} group{'s' if len(groups) != 1 else ''}, most exposed first",
        "top": [{"rank": str(r["rank"]), "record_id": r["record_id"], "group": r["group"] or NA,
                 "score": format_number(r["score"], 4), "p_value": format_number(r["p_value"])}
                for r in exposure["top_exposed"]],
        "top_title": (f"The {len(exposure['top_exposed'])} most exposed members (of top_k = "
                      f"{exposure['top_k']}), by id; p-value: share of non-members scoring as "
                      "high or higher, (1 + count) / (1 + non-members)"),
        "image": None if image is None else {"png_base64": image["png_base64"],
                                             "caption": image["caption"]},
        "privacy_note": PRIVACY_NOTE,
    }


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(c or " " for c in row) + " |" for row in rows] + [""]


def exposure_markdown(view: dict | None) -> list[str]:
    """The Markdown lines of :func:`exposure_view`'s result (none without exposure)."""
    if view is None:
        return []
    e = md_escape
    out = [f"### Who is exposed ({e(view['source'])})", "", e(view["summary"]), "",
           e(view["method"]), ""]
    if view["groups"]:
        out += [e(view["groups_title"]) + ":", ""]
        out += _md_table(["Rank", "Group", "Members", "Non-members", "AUC",
                          f"TPR at own {view['fpr']} FPR", "FPR",
                          f"TPR at {view['strict_fpr']} FPR", "TPR at global threshold",
                          "Group FPR at global threshold", "Note"],
                         [[e(g[k]) for k in ("rank", "name", "members", "non_members", "auc",
                                             "tpr", "fpr", "strict", "global", "global_fpr",
                                             "note")] for g in view["groups"]])
    if view["top"]:
        out += [e(view["top_title"]) + ":", ""]
        out += _md_table(["Rank", "Record id", "Group", "Score", "p-value"],
                         [[e(t[k]) for k in ("rank", "record_id", "group", "score", "p_value")]
                          for t in view["top"]])
    if view["image"]:
        out += [f"Plot in report.html. Caption: {e(view['image']['caption'])}", ""]
    return out + [e(view["privacy_note"]), ""]
