"""Who is exposed, drawn: per-group TPR at 1% FPR of one membership attack, with its
Clopper-Pearson interval, beside the group's TPR at the global 1% FPR threshold
(matplotlib, Agg backend, as :mod:`reports.roc_plot`). The groups come as the exposure
entries of a finding (``finding["exposure"]["groups"]``, ranked, most exposed first), so
this module knows only plain dicts.

Carlini et al. 2022 ("Membership inference attacks from first principles") for TPR at
low FPR; Aerni et al. 2024 ("Evaluations of machine learning privacy defenses are
misleading") for looking at the most vulnerable, not the average.

Project choices: one row per group, most exposed on top, at most :data:`MAX_GROUPS` rows
(the caption says how many are left out); chance (TPR = FPR) is the dashed line; a group
whose TPR stands at a coarser FPR than asked (too few non-members) is drawn hollow and its
label marked ``*``; user group names are shortened to :data:`NAME_CHARS` characters and
their ``$`` (and the title's) escaped, so that matplotlib never reads them as mathtext.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

MAX_GROUPS = 30
NAME_CHARS = 28


def plot_label(name: str, coarse: bool) -> str:
    """A group name as a plot label: shortened, ``$`` escaped, ``*`` when ``coarse``."""
    text = " ".join(str(name).split())
    if len(text) > NAME_CHARS:
        text = text[: NAME_CHARS - 1] + "\u2026"
    return text.replace("$", r"\$") + (" *" if coarse else "")


def _coarse(group: Mapping, fpr: float) -> bool:
    return group.get("fpr") is not None and group["fpr"] > fpr * (1 + 1e-9)


def exposure_png(groups: Sequence[Mapping], *, fpr: float, title: str = "") -> bytes:
    """PNG bytes of the groups' TPR at ``fpr`` (own threshold, interval bars) and at the
    global threshold; only groups with a TPR are drawn."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    rows = [g for g in groups if g.get("tpr") is not None or g.get("global_tpr") is not None]
    rows = rows[:MAX_GROUPS]
    n = max(len(rows), 1)
    height = 1.6 + 0.26 * n
    fig = Figure(figsize=(5.6, height), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    y = list(range(n))[::-1][: len(rows)]
    own = f"own threshold ({fpr:.0%} FPR on the group's non-members)"
    glob = f"global {fpr:.0%} FPR threshold"
    for yi, g in zip(y, rows):
        coarse = _coarse(g, fpr)
        if g.get("tpr") is not None:
            lo, hi = g["interval"]
            bar = [[max(g["tpr"] - lo, 0.0)], [max(hi - g["tpr"], 0.0)]]
            ax.errorbar([g["tpr"]], [yi], xerr=bar, fmt="o", ms=5, color="C0",
                        mfc="white" if coarse else "C0", capsize=2, lw=1, label=own)
            own = None
        if g.get("global_tpr") is not None:
            ax.plot([g["global_tpr"]], [yi], marker="x", ls="", color="C3", ms=5, label=glob)
            glob = None
    ax.axvline(fpr, ls="--", c="grey", lw=0.8, label="chance (TPR = FPR)")
    ax.set_yticks(y)
    ax.set_yticklabels([plot_label(g["name"], _coarse(g, fpr)) for g in rows], fontsize=7)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlim(0, 1.0)
    ax.set_xlabel(f"true-positive rate at {fpr:.0%} FPR")
    if title:
        ax.set_title(title.replace("$", r"\$"), fontsize=9)
    ax.grid(True, axis="x", lw=0.3, alpha=0.5)
    legend = 0.32  # inches under the axes for the legend, clear of the points
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=6,
               frameon=False)
    fig.tight_layout(rect=(0, legend / height, 1, 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
