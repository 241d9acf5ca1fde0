"""Renderings of a compliance report (:mod:`audit.compliance.compliance_report`): a self-contained HTML page
(inline CSS, the epsilon plot and the findings' images as data URIs, a Content-Security-Policy
that allows nothing else, every user string escaped by jinja2's autoescaping), Markdown for
pull requests, and PDF (fpdf2, through :func:`reports.pdf.html_to_pdf` on a simpler HTML).
Every rendering has the same sections in the same order as the JSON; the Frameworks section
has one table per framework (clause | status | evidence), empty in a report written before
frameworks existed; the claimed-vs-empirical ledger is :mod:`reports.ledger_render`'s (the
audit report's template, Markdown and view), empty likewise. A sweep's page adds its
privacy-utility frontier after the ledger (:mod:`reports.frontier_render`, HTML only).
"""

from __future__ import annotations

import base64
import io
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from reports.ledger_render import EMPTY_TEXT, TITLE as LEDGER_TITLE, ledger_markdown, ledger_view
from reports.markdown import md_escape

SECTIONS = ("Verdict", "Policy rules", "Defenses", LEDGER_TITLE, "Findings by severity",
            "NIST SP 800-226 questions", "Frameworks", "Reproducibility")


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isinf(v):
            return "∞"
        return f"{v:.4g}"
    return str(v)


def clause_evidence(clause: dict) -> list[str]:
    """One line per judgement behind a framework clause: finding, rule, what was compared, result."""
    out = []
    for e in clause["evidence"]:
        who = " · ".join(str(x) for x in (e.get("finding"), e.get("rule")) if x is not None)
        out.append(f"{who + ': ' if who else ''}{e['detail']} [{e['result']}]")
    return out


def framework_heading(fw: dict) -> tuple[str, str]:
    """The framework's heading and its citation line (with the counts of each status)."""
    src = fw["source"]
    counts = ", ".join(f"{n} {st}" for st, n in fw["counts"].items() if n)
    return (f"{fw['name']} ({fw['version']})",
            f"{src['title']}. {src['publisher']}, {src['year']}. {src['url']} · mapping "
            f"{'built-in' if fw['builtin'] else 'file'} {fw['file']} · {counts}")


def epsilon_plot_png(report: dict) -> bytes | None:
    """Bars of claimed epsilon and empirical epsilon per defense (None when no run estimated one)."""
    rows = [(d["name"], e) for d in report["defenses"] for e in d["empirical"] if e["epsilon_emp"] is not None]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 0.6 + 0.5 * len(rows)), dpi=100)
    labels = [f"{n} ({e['estimator']})" for n, e in rows]
    y = range(len(rows))
    ax.barh([i + 0.2 for i in y], [e["epsilon_claim"] or 0 for _, e in rows], height=0.4, label="epsilon claimed",
            color="#8899cc")
    ax.barh([i - 0.2 for i in y], [e["epsilon_emp"] for _, e in rows], height=0.4, label="epsilon empirical",
            color=["#cc3333" if e["verdict"] == "VIOLATION" else "#339966" for _, e in rows])
    ax.set_yticks(list(y), labels)
    ax.set_xlabel("epsilon")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def compliance_view(report: dict, images: dict[str, dict] | None = None, frontier: dict | None = None) -> dict:
    """Display strings shared by the renderers; ``images``: finding id -> {png_base64, caption};
    ``frontier``: :func:`reports.frontier_render.frontier_view` of a sweep (None: no such section)."""
    plot = epsilon_plot_png(report)
    return {
        "r": report,
        "fmt": _fmt,
        "sections": SECTIONS,
        "plot": None if plot is None else base64.b64encode(plot).decode("ascii"),
        "images": images or {},
        "frameworks": report.get("frameworks", []),
        "ledger": ledger_view(report.get("ledger")), "ledger_title": LEDGER_TITLE, "ledger_empty": EMPTY_TEXT,
        "clause_evidence": clause_evidence,
        "framework_heading": framework_heading,
        "frontier": frontier,
    }


_HTML = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>{{ r.title }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
.PASS { color: #1b7a3a; font-weight: bold; } .FAIL { color: #b00020; font-weight: bold; }
.NOT { color: #8a6d00; font-weight: bold; }
.verdict { border: 2px solid #999; padding: 0.8em; } code { font-size: 0.9em; }
.fw-SATISFIED { color: #1b7a3a; font-weight: bold; } .fw-NOT-SATISFIED { color: #b00020; font-weight: bold; }
.fw-NOT-EVIDENCED { color: #8a6d00; font-weight: bold; } .fw-OUT-OF-SCOPE { color: #666; }
.ledger-violation, .lint-error { color: #b00020; } .ledger-inconclusive, .lint-warning { color: #8a6d00; }
img { max-width: 100%; border: 1px solid #ccc; }
</style>
</head>
<body>
<h1>{{ r.title }}</h1>
<p>Created {{ r.created_utc }} · schema {{ r.schema_version }} · policy {{ r.policy.source }}</p>
<h2 id="verdict">Verdict</h2>
<p class="verdict"><span class="{{ r.verdict.status.split()[0] }}">{{ r.verdict.status }}</span> — {{ r.verdict.summary }}</p>
<h2 id="policy">Policy rules</h2>
<table><tr><th>rule</th><th>status</th><th>why</th><th>evidence</th></tr>
{% for x in r.policy.rules %}<tr><td>{{ x.title }}<br><code>{{ x.rule }}</code></td><td class="{{ x.status.split()[0] }}">{{ x.status }}</td><td>{{ x.why }}</td>
<td>{% for e in x.evidence %}{% for k, v in e.items() %}{{ k }}: {{ fmt(v) }}{% if not loop.last %}, {% endif %}{% endfor %}<br>{% endfor %}</td></tr>
{% endfor %}</table>
<h2 id="defenses">Defenses</h2>
{% if plot %}<figure><img src="data:image/png;base64,{{ plot }}" alt="claimed and empirical epsilon per defense"><figcaption>Claimed and empirical epsilon (red: the evidence contradicts the claim).</figcaption></figure>{% endif %}
{% for d in r.defenses %}
<h3>{{ d.name }}</h3>
<table><tr><th>parameters</th><td>{% for k, v in d.params.items() %}{{ k }}={{ fmt(v) }} {% endfor %}</td></tr>
<tr><th>claim</th><td>{{ d.claim.statement }}</td></tr>
<tr><th>epsilon, delta</th><td>{{ fmt(d.claim.epsilon) }}, {{ fmt(d.claim.delta) }}</td></tr>
<tr><th>unit of privacy</th><td>{{ d.claim.unit or "—" }}</td></tr>
<tr><th>accountant</th><td>{{ d.claim.accountant or "—" }}</td></tr>
<tr><th>trust model</th><td>{{ d.claim.trust_model or "—" }}</td></tr></table>
{% if d.empirical %}<table><tr><th>finding</th><th>estimator</th><th>epsilon_emp</th><th>nature</th><th>confidence</th><th>epsilon claimed</th><th>verdict</th></tr>
{% for e in d.empirical %}<tr><td><code>{{ e.finding }}</code></td><td>{{ e.estimator }}</td><td>{{ fmt(e.epsilon_emp) }}</td><td>{{ e.nature }}</td><td>{{ fmt(e.confidence) }}</td><td>{{ fmt(e.epsilon_claim) }}</td><td class="{{ (e.verdict or '').split()[0] }}">{{ e.verdict }}</td></tr>{% endfor %}</table>{% endif %}
{% for a in d.attacks %}<p>Attack <b>{{ a.attack }}</b> ({{ a.family }}), threat model {{ a.threat_model }}:</p>
<table><tr><th>metric</th><th>mean</th><th>worst</th><th>trivial baseline</th><th>baseline</th></tr>
{% for m in a.metrics %}<tr><td>{{ m.name }}</td><td>{{ fmt(m.mean) }}</td><td>{{ fmt(m.worst) }}</td><td>{{ fmt(m.baseline_mean) }}</td><td>{{ m.baseline or "—" }}</td></tr>{% endfor %}</table>{% endfor %}
{% endfor %}
{% if ledger %}{% include "ledger.html.j2" %}{% else %}<h2 id="ledger">{{ ledger_title }}</h2>
<p>{{ ledger_empty }}</p>{% endif %}
{% if frontier %}{% include "frontier.html.j2" %}{% endif %}
<h2 id="findings">Findings by severity</h2>
<table><tr><th>severity</th><th>finding</th><th>defense</th><th>attack</th><th>threat model</th><th>verdict</th><th>run</th></tr>
{% for f in r.findings %}<tr><td>{{ f.severity }}</td><td>{{ f.title }}<br><code>{{ f.id }}</code></td><td>{{ f.defense }}</td><td>{{ f.attack }}</td><td>{{ f.threat_model }}</td><td>{{ f.verdict or "—" }}</td><td><code>{{ f.run }}</code></td></tr>{% endfor %}</table>
{% for f in r.findings %}{% if images.get(f.id) %}<figure><img src="data:image/png;base64,{{ images[f.id].png_base64 }}" alt="{{ images[f.id].caption }}"><figcaption>{{ f.id }}: {{ images[f.id].caption }}</figcaption></figure>{% endif %}{% endfor %}
<h2 id="nist">NIST SP 800-226 questions</h2>
<table><tr><th>question</th><th>answer</th><th>evidence</th></tr>
{% for q in r.nist_sp_800_226 %}<tr><td>{{ q.question }}</td><td>{{ q.answer }}</td><td>{% if q.evidence %}{{ q.evidence | join(", ") }}{% else %}none{% endif %}</td></tr>{% endfor %}</table>
<h2 id="frameworks">Frameworks</h2>
{% if not frameworks %}<p>No framework mapping was selected (the policy's frameworks).</p>{% endif %}
{% for fw in frameworks %}{% set head = framework_heading(fw) %}
<h3>{{ head[0] }}</h3>
<p>{{ head[1] }}</p>
<table><tr><th>clause</th><th>status</th><th>evidence</th></tr>
{% for c in fw.clauses %}<tr><td><code>{{ c.id }}</code> {{ c.title }}<br><small>{{ c.paraphrase }}</small></td><td class="fw-{{ c.status.replace(' ', '-') }}">{{ c.status }}</td>
<td>{{ c.why }}{% for line in clause_evidence(c) %}<br>{{ line }}{% endfor %}{% if c.note %}<br><small>Mapping: {{ c.note }}</small>{% endif %}</td></tr>
{% endfor %}</table>
{% endfor %}
<h2 id="reproducibility">Reproducibility</h2>
<p>This report: <code>{{ r.reproducibility.command }}</code></p>
<table><tr><th>run</th><th>command</th><th>seed</th><th>device</th><th>git revision</th><th>packages</th></tr>
{% for x in r.reproducibility.runs %}<tr><td><code>{{ x.dir }}</code></td><td><code>{{ x.command }}</code></td><td>{{ x.seed }}</td><td>{{ x.environment.device }}</td><td>{{ x.environment.git_revision or "not recorded" }}</td><td>{% for k, v in x.environment.packages.items() %}{{ k }} {{ v }}; {% endfor %}python {{ x.environment.python }}</td></tr>{% endfor %}</table>
<table><tr><th>artifact</th><th>SHA-256</th><th>bytes</th></tr>
{% for a in r.reproducibility.artifacts %}<tr><td><code>{{ a.path }}</code></td><td><code>{{ a.sha256 }}</code></td><td>{{ a.bytes }}</td></tr>{% endfor %}</table>
</body>
</html>
"""


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    templates = str(Path(__file__).resolve().parent / "templates")  # ledger.html.j2 (frontier.html.j2), which it includes
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, loader=jinja2.FileSystemLoader(templates))
    return env.from_string(_HTML)


def compliance_html(report: dict, images: dict[str, dict] | None = None, frontier: dict | None = None) -> str:
    """The self-contained HTML page (with a sweep's privacy-utility ``frontier`` section after
    the ledger when given)."""
    return _template().render(**compliance_view(report, images, frontier))


def compliance_markdown(report: dict) -> str:
    """Markdown for a pull request (no images)."""
    e = md_escape
    r = report
    out = [f"# {e(r['title'])}", "", f"Created {r['created_utc']} · schema {r['schema_version']} · "
           f"policy {e(r['policy']['source'])}", "", "## Verdict", "",
           f"**{r['verdict']['status']}** — {e(r['verdict']['summary'])}", "", "## Policy rules", "",
           "| rule | status | why |", "|---|---|---|"]
    out += [f"| {e(x['title'])} | **{x['status']}** | {e(x['why'])} |" for x in r["policy"]["rules"]]
    out += ["", "## Defenses", ""]
    for d in r["defenses"]:
        c = d["claim"]
        out += [f"### {e(d['name'])}", "", e(c["statement"]), "",
                f"epsilon {_fmt(c.get('epsilon'))}, delta {_fmt(c.get('delta'))}, unit "
                f"{e(c.get('unit') or '—')}, accountant {e(c.get('accountant') or '—')}, trust model "
                f"{e(c.get('trust_model') or '—')}", ""]
        if d["empirical"]:
            out += ["| finding | estimator | epsilon_emp | nature | confidence | claimed | verdict |",
                    "|---|---|---|---|---|---|---|"]
            out += [f"| `{x['finding']}` | {e(str(x['estimator']))} | {_fmt(x['epsilon_emp'])} | {e(str(x['nature']))} | "
                    f"{_fmt(x['confidence'])} | {_fmt(x['epsilon_claim'])} | **{x['verdict']}** |" for x in d["empirical"]]
            out.append("")
        for a in d["attacks"]:
            out += [f"Attack **{e(a['attack'])}** ({e(a['family'])}), threat model {e(a['threat_model'])}:", "",
                    "| metric | mean | worst | trivial baseline |", "|---|---|---|---|"]
            out += [f"| {e(m['name'])} | {_fmt(m['mean'])} | {_fmt(m['worst'])} | {_fmt(m['baseline_mean'])} |"
                    for m in a["metrics"]]
            out.append("")
    out += ledger_markdown(r.get("ledger")) or [f"## {LEDGER_TITLE}", "", EMPTY_TEXT, ""]
    out += ["## Findings by severity", "", "| severity | finding | defense | attack | verdict |", "|---|---|---|---|---|"]
    out += [f"| {f['severity']} | `{e(f['id'])}` | {e(f['defense'])} | {e(f['attack'])} | {f['verdict'] or '—'} |"
            for f in r["findings"]]
    out += ["", "## NIST SP 800-226 questions", "", "| question | answer | evidence |", "|---|---|---|"]
    out += [f"| {e(q['question'])} | {e(q['answer'])} | {e(', '.join(q['evidence'])) or 'none'} |"
            for q in r["nist_sp_800_226"]]
    out += ["", "## Frameworks", ""]
    if not r.get("frameworks"):
        out += ["No framework mapping was selected (the policy's frameworks).", ""]
    for fw in r.get("frameworks", []):
        head, cite = framework_heading(fw)
        out += [f"### {e(head)}", "", e(cite), "", "| clause | status | evidence |", "|---|---|---|"]
        out += [f"| `{e(c['id'])}` {e(c['title'])} | **{c['status']}** | "
                + e(" ".join([c["why"], *(f"— {x}" for x in clause_evidence(c))])) + " |" for c in fw["clauses"]]
        out.append("")
    out += ["## Reproducibility", "", f"This report: `{r['reproducibility']['command']}`", "",
            "| run | command | seed | device | git revision |", "|---|---|---|---|---|"]
    out += [f"| `{x['dir']}` | `{x['command']}` | {x['seed']} | {e(x['environment']['device'])} | "
            f"{e(x['environment'].get('git_revision') or 'not recorded')} |" for x in r["reproducibility"]["runs"]]
    out += ["", "| artifact | SHA-256 | bytes |", "|---|---|---|"]
    out += [f"| `{a['path']}` | `{a['sha256']}` | {a['bytes']} |" for a in r["reproducibility"]["artifacts"]]
    return "\n".join(out) + "\n"


def _pdf_html(report: dict, images: dict[str, dict]) -> str:
    """The same sections in the HTML subset fpdf2 renders (headings, paragraphs, tables, images)."""
    from html import escape as h

    r = report

    def table(header: list[str], rows: list[list[Any]]) -> str:
        head = "".join(f"<th>{h(x)}</th>" for x in header)
        body = "".join("<tr>" + "".join(f"<td>{h(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows)
        return f'<table border="1" width="100%"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'

    out = [f"<h1>{h(r['title'])}</h1>", f"<p>Created {h(r['created_utc'])}, schema {h(r['schema_version'])}, "
           f"policy {h(r['policy']['source'])}</p>", "<h2>Verdict</h2>",
           f"<p><b>{h(r['verdict']['status'])}</b>: {h(r['verdict']['summary'])}</p>", "<h2>Policy rules</h2>",
           table(["rule", "status", "why"], [[x["title"], x["status"], x["why"]] for x in r["policy"]["rules"]]),
           "<h2>Defenses</h2>"]
    plot = epsilon_plot_png(report)
    if plot is not None:
        out.append(f'<img src="data:image/png;base64,{base64.b64encode(plot).decode()}" width="400">')
    for d in r["defenses"]:
        c = d["claim"]
        out += [f"<h3>{h(d['name'])}</h3>", f"<p>{h(c['statement'])}</p>",
                table(["epsilon", "delta", "unit", "accountant", "trust model"],
                      [[c.get("epsilon"), c.get("delta"), c.get("unit"), c.get("accountant"), c.get("trust_model")]])]
        if d["empirical"]:
            out.append(table(["estimator", "epsilon_emp", "nature", "confidence", "claimed", "verdict"],
                             [[e["estimator"], e["epsilon_emp"], e["nature"], e["confidence"], e["epsilon_claim"],
                               e["verdict"]] for e in d["empirical"]]))
        for a in d["attacks"]:
            out += [f"<p>Attack <b>{h(a['attack'])}</b>, threat model {h(a['threat_model'])}</p>",
                    table(["metric", "mean", "worst", "trivial baseline"],
                          [[m["name"], m["mean"], m["worst"], m["baseline_mean"]] for m in a["metrics"]])]
    out += _pdf_ledger(ledger_view(r.get("ledger")), table)
    out += ["<h2>Findings by severity</h2>",
            table(["severity", "finding", "defense", "attack", "verdict"],
                  [[f["severity"], f["id"], f["defense"], f["attack"], f["verdict"]] for f in r["findings"]])]
    for f in r["findings"]:
        if images.get(f["id"]):
            out += [f'<img src="data:image/png;base64,{images[f["id"]]["png_base64"]}" width="400">',
                    f"<p>{h(f['id'])}: {h(images[f['id']]['caption'])}</p>"]
    out += ["<h2>NIST SP 800-226 questions</h2>",
            table(["question", "answer", "evidence"],
                  [[q["question"], q["answer"], ", ".join(q["evidence"]) or "none"] for q in r["nist_sp_800_226"]]),
            "<h2>Frameworks</h2>"]
    if not r.get("frameworks"):
        out.append("<p>No framework mapping was selected (the policy's frameworks).</p>")
    for fw in r.get("frameworks", []):
        head, cite = framework_heading(fw)
        out += [f"<h3>{h(head)}</h3>", f"<p>{h(cite)}</p>",
                table(["clause", "status", "evidence"],
                      [[f"{c['id']} {c['title']}", c["status"], " ".join([c["why"], *clause_evidence(c)])]
                       for c in fw["clauses"]])]
    out += ["<h2>Reproducibility</h2>", f"<p>This report: {h(r['reproducibility']['command'])}</p>",
            table(["run", "command", "seed", "device", "git revision"],
                  [[x["dir"], x["command"], x["seed"], x["environment"]["device"],
                    x["environment"].get("git_revision") or "not recorded"] for x in r["reproducibility"]["runs"]]),
            table(["artifact", "SHA-256", "bytes"],
                  [[a["path"], a["sha256"], a["bytes"]] for a in r["reproducibility"]["artifacts"]])]
    return "\n".join(out)


def _pdf_ledger(view: dict | None, table) -> list[str]:
    """The ledger section of :func:`_pdf_html`: the claims and their evidence, the claims'
    details, the lint findings (``table`` escapes every cell)."""
    from html import escape as h

    out = [f"<h2>{h(LEDGER_TITLE)}</h2>"]
    if view is None:
        return out + [f"<p>{h(EMPTY_TEXT)}</p>"]
    rows = view["rows"]
    out += [f"<p>{h(view['explanation'])}</p>",
            table(["run", "finding", "claim", "ε", "δ", "ε_emp", "power ceiling", "trials", "verdict", "lint"],
                  [[x["run"], x["finding"], x["label"], x["epsilon"], x["delta"], x["epsilon_emp"],
                    x["power_ceiling"], x["trials"], x["verdict"], x["lint"]] for x in rows]),
            table(["finding", "claim", "unit", "adjacency", "accountant", "trust model", "estimator", "assumptions"],
                  [[x["finding"], x["label"], x["unit"], x["adjacency"], x["accountant"], x["trust_model"],
                    x["estimator"], x["assumptions"]] for x in rows])]
    return out + [f"<p><b>{h(x['severity'])}</b> {h(x['id'])} ({h(x['run'] + ' · ' if x['run'] else '')}"
                  f"{h(x['where'])}): {h(x['message'])} Fix: {h(x['fix'])}</p>" for x in view["lint"]]


def compliance_pdf(report: dict, images: dict[str, dict] | None, path) -> None:
    """Write the PDF to ``path`` (atomically, :func:`reports.pdf.html_to_pdf`)."""
    from reports.pdf import html_to_pdf

    html_to_pdf(_pdf_html(report, images or {}), path, title=report["title"])


#: the formats a compliance report is written in
COMPLIANCE_FORMATS = ("html", "md", "pdf", "json")


def write_compliance(report: dict, fmt: str, out, images: dict[str, dict] | None = None) -> None:
    """Write ``report`` to the file ``out`` as ``fmt`` (one of :data:`COMPLIANCE_FORMATS`),
    atomically; ``images`` (finding id -> image) illustrate the HTML and PDF forms."""
    from reports.io import write_json_atomic, write_text_atomic

    if fmt == "json":
        write_json_atomic(out, report)
    elif fmt == "md":
        write_text_atomic(out, compliance_markdown(report))
    elif fmt == "html":
        write_text_atomic(out, compliance_html(report, images))
    elif fmt == "pdf":
        compliance_pdf(report, images, out)
    else:
        raise ValueError(f"unknown compliance report format {fmt!r}")
