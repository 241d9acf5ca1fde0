"""Markdown rendering of an audit report (same content as the HTML page, no images).

User strings are escaped so that they neither break the tables (``|``, newlines) nor
turn into markup or raw HTML (``<``, ``*``, ``[`` ...) in a Markdown viewer.
"""

from __future__ import annotations

import re

from reports.formatting import md_escape, md_table
from reports.html import NA, NO_DP_CLAIM, report_view
from reports.ledger_render import ledger_markdown, report_ledger



def md_code(text: object) -> str:
    """``text`` as an inline code span, with a fence longer than any backtick run in it."""
    s = " ".join(str(text).splitlines())
    runs = [len(r) for r in re.findall(r"`+", s)]
    fence = "`" * (max(runs, default=0) + 1)
    if s.startswith("`") or s.endswith("`") or not s.strip():
        s = f" {s} "
    return f"{fence}{s}{fence}"


def _params(params: list[tuple[str, str]]) -> list[str]:
    if not params:
        return ["No parameters.", ""]
    return md_table(["Parameter", "Value"], [[md_escape(k), md_escape(v)] for k, v in params])


def _claims(alts: dict) -> list[str]:
    """The "Claims for this run" table, its verdict sentence and the alternatives' statements
    (their per-round parts summarised in one line)."""
    e = md_escape
    header = ["Claim", "ε", "δ", "Unit", "Trust model", "Accountant"]
    rows = []
    for r in alts["rows"]:
        row = [e(r["label"]), r["epsilon"], r["delta"], e(r["unit"]), e(r["trust_model"]),
               e(r["accountant"])]
        if alts["show_verdicts"]:
            row.append(f"**{e(r['verdict'])}**" if r["violation"] else e(r["verdict"]))
        rows.append(row)
    if alts["show_verdicts"]:
        header.append("ε_emp verdict")
    out = [f"**{e(alts['title'])}**", ""] + md_table(header, rows, right={1, 2})
    if alts["verdict_text"]:
        # "ε_emp" cannot start emphasis (the underscore is inside a word): left unescaped
        out += [e(alts["verdict_text"]).replace("\u03b5\\_emp", "\u03b5_emp"), ""]
    if alts["details"]:
        for r in alts["details"]:
            line = f"- {e(r['label'])}"
            if r["statement"]:
                line += f": {e(r['statement'])}"
            if r["parts"]:
                line += f" ({e(r['parts']['title'])}: {e(r['parts']['summary'])}.)"
            out.append(line)
        out.append("")
    return out


def _finding(f: dict) -> list[str]:
    e = md_escape
    out = [f"## Finding {f['index']}: {e(f['title'])}", "",
           f"ID {md_code(f['id'])} · runtime {f['runtime']}", "",
           f"### Defense: {e(f['defense'])}", ""]
    out += _params(f["defense_params"])
    claim = f["claim"]
    out += ["### Privacy claim", ""]
    if claim["has_dp"]:
        out += [f"**Differential privacy claim: {e(claim['short'])}**", ""]
        out += md_table(["Claim", "Value"], [[e(k), e(v)] for k, v in claim["rows"]])
    else:
        out += [f"**{NO_DP_CLAIM}**", ""]
    parts = claim["parts"]
    if parts:
        out += [f"{e(parts['title'])}: {e(parts['summary'])}", ""]
        if parts["kind"] == "layers":
            out += md_table(["Layer", "Share", "Noise multiplier z_l", "Clip C_l",
                             "σ_l = z_l·C_l", "ε_l"],
                            [[e(r["name"]), r["share"], r["noise_multiplier"], r["clip_norm"],
                              r["sigma"], r["epsilon"]] for r in parts["rows"]],
                            right={1, 2, 3, 4, 5})
        else:
            out += md_table([e(parts["name_header"])] + [e(h) for h in parts["headers"]],
                            [[e(r["name"])] + [e(c) for c in r["cells"]] for r in parts["rows"]],
                            right=set(range(1, len(parts["headers"]) + 1)))
    out += [e(claim["statement"]), ""]
    if claim["alternatives"]:
        out += _claims(claim["alternatives"])
    t = f["threat"]
    knows = "; ".join(e(k) for k in t["knows"]) or "nothing beyond what it observes"
    out += [f"### Threat model: {e(t['name'])}", ""]
    out += md_table(["Field", "Value"], [["Adversary", e(t["adversary"])],
                                         ["Observes", e(t["observes"])], ["Knows", knows]])
    out += [e(t["description"]), ""]
    out += [f"### Attack: {e(f['attack'])} ({e(f['attack_family'])})", ""]
    out += _params(f["attack_params"])
    out += ["### Setting", ""]
    out += md_table(["Setting", "Value"], [[e(k), e(v)] for k, v in f["setting_rows"]])
    out += ["### Results", ""]
    if f["metrics"]:
        rows = [[e(m["name"]), e(m["unit"]), m["mean"], m["worst"], m["baseline_mean"],
                 m["baseline_worst"], f"{m['advantage']} ({m['arrow']} {m['direction']})"]
                for m in f["metrics"]]
        out += md_table(["Metric", "Unit", "Mean", "Worst case", "Baseline mean",
                         "Baseline worst", "Advantage"], rows, right={2, 3, 4, 5, 6})
        if f["baselines"]:
            out += ["Baselines:", ""] + [f"- {e(n)}: {e(d)}" for n, d in f["baselines"]] + [""]
        if f["notes"]:
            out += ["Notes:", ""] + [f"- {e(n)}: {e(d)}" for n, d in f["notes"]] + [""]
    else:
        out += ["No metrics.", ""]
    if f["text_samples"]:
        out += ["Recovered text beside the truth (the first targets):", ""]
        out += md_table(["Truth", "Recovered"],
                        [[e(t), e(r) or "(nothing)"] for t, r in f["text_samples"]])
    if f["image"]:
        out += [f"Images: (image grid in report.html). Caption: {e(f['image']['caption'])}", ""]
    from reports.exposure_render import exposure_markdown  # it builds on md_escape

    return out + exposure_markdown(f["exposure"])


def render_markdown(report: dict) -> str:
    """Render an audit report as Markdown.

    Same content and order as :func:`~reports.html.render_html`: summary table, the
    claimed-vs-empirical ledger (when a finding has an empirical-epsilon verdict), run
    metadata, environment, notes, then one section per finding with its results table.
    Image grids are not embedded; the text points to ``report.html`` instead.

    Args:
        report: A report that passes :func:`~reports.schema.validate_report`.

    Returns:
        The Markdown text, ending with a newline; equal reports give identical text.

    Raises:
        InvalidParameterError: If ``report`` is not a valid report.
    """
    v = report_view(report)
    e = md_escape
    out = [f"# {e(v['title'])}", ""]
    command = md_code(v["command"]).replace("|", "\\|")  # GFM splits cells even in code
    out += md_table(["Field", "Value"], [["Created (UTC)", e(v["created"])], ["Command", command],
                                         ["Seed", str(v["seed"])], ["Runtime", v["runtime"]]])
    out += ["## Summary", ""]
    if v["findings"]:
        rows = []
        for f in v["findings"]:
            h = f["headline"]
            claim = f["claim"]["short"] if f["claim"]["has_dp"] else f"**{NO_DP_CLAIM}**"
            if f["claim"]["has_dp"] and f["claim"]["alternatives"]:
                claim += f" ({f['claim']['alternatives']['others']})"
            metric = [NA, NA, NA, NA] if h is None else [
                e(h["name"]) + (f" ({e(h['unit'])})" if h["unit"] else ""),
                h["mean"], h["baseline_mean"], h["advantage_text"]]
            rows.append([e(f["id"]), e(f["defense"]), e(claim) if f["claim"]["has_dp"] else claim,
                         e(f["attack"])] + metric)
        out += md_table(["Finding", "Defense", "Claim", "Attack", "Headline metric", "Mean",
                         "Baseline mean", "Advantage"], rows, right={5, 6, 7})
        out += ["Advantage = attack mean − baseline mean; the direction says which sign "
                "means more leakage.", ""]
    else:
        out += ["This report has no findings.", ""]
    out += ledger_markdown(report_ledger(report))
    env = v["env"]
    out += ["## Environment", ""]
    out += md_table(["Field", "Value"],
                    [["Device", e(env["device"])], ["Threads", str(env["threads"])],
                     ["fedaudit", e(env["fedaudit"])], ["Python", e(env["python"])],
                     ["Platform", e(env["platform"])]]
                    + [[e(n), e(ver)] for n, ver in env["packages"]])
    if v["notes"]:
        out += ["## Notes", ""] + [f"- {e(n)}" for n in v["notes"]] + [""]
    for f in v["findings"]:
        out += _finding(f)
    out += [f"Rendered by fedaudit {e(env['fedaudit'])} from report.json (schema version "
            f"{v['schema_version']}), which is the source of truth for every number here."]
    return "\n".join(out) + "\n"
