"""The privacy-utility frontier of one defense, drawn (matplotlib, Agg backend, as
:mod:`reports.roc_plot`): one panel per metric (utility first, then attack success),
claimed epsilon on a log x axis, each curve of the defense (:func:`reports.frontier.build_frontier`)
its mean per epsilon point with the 95% interval as error bars.

Project choices: infinity is a separate tick ("∞") at three times the largest finite
epsilon, where a configuration without a DP claim and the undefended baseline are drawn;
the baseline is also a dashed horizontal line across the panel, its interval a light band;
a single-seed point is drawn hollow, without error bars, and the legend says so; labels'
``$`` are escaped so that matplotlib never reads them as mathtext; at most
:data:`MAX_PANELS` panels (the first metrics in the curves' order).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

MAX_PANELS = 6
INF_FACTOR = 3.0


def _tex(text: str) -> str:
    return str(text).replace("$", r"\$")


def _metrics(curves: Sequence[Mapping]) -> dict[str, str]:
    """The panels' metrics (utility first, then by name): name -> kind."""
    seen: dict[str, str] = {}
    for c in curves:
        for m in c["metrics"]:
            seen.setdefault(m["name"], m["kind"])
    return {n: seen[n] for n in sorted(seen, key=lambda n: (seen[n] != "utility", n))[:MAX_PANELS]}


def _bar(stat: Mapping) -> list[list[float]] | None:
    if stat.get("interval") is None:
        return None
    lo, hi = stat["interval"]
    return [[max(stat["mean"] - lo, 0.0)], [max(hi - stat["mean"], 0.0)]]


def frontier_png(curves: Sequence[Mapping], *, title: str = "") -> bytes:
    """PNG bytes of the frontier ``curves`` (those of one defense)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    kinds = _metrics(curves) or {"(no frontier metric in these runs)": ""}
    names = list(kinds)
    finite = [p["epsilon"] for c in curves for p in c["points"] if p["epsilon"] is not None]
    top = max(finite) if finite else 1.0
    low = min(finite) if finite else 1.0
    x_inf = top * INF_FACTOR
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(3.6 * cols, 2.9 * rows + 0.7), dpi=100)
    single_note = False
    handles: dict[str, object] = {}
    for k, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, k + 1)
        for i, c in enumerate(curves):
            color = f"C{i % 10}"
            for p in c["points"]:
                stat = p["metrics"].get(name)
                if not stat or stat["mean"] is None:
                    continue
                x = p["epsilon"] if p["epsilon"] is not None else x_inf
                bar = _bar(stat)
                single_note |= bar is None
                h = ax.errorbar([x], [stat["mean"]], yerr=bar, fmt="o", ms=5, color=color, capsize=2,
                                lw=1, mfc="white" if bar is None else color)
                handles.setdefault(_tex(c["label"]), h)
            xs = [(p["epsilon"], p["metrics"][name]["mean"]) for p in c["points"]
                  if p["epsilon"] is not None and p["metrics"].get(name, {}).get("mean") is not None]
            if len(xs) > 1:
                ax.plot([x for x, _ in xs], [y for _, y in xs], color=color, lw=1)
            base = c.get("baseline")
            stat = base and base["metrics"].get(name)
            if stat and stat["mean"] is not None:
                h = ax.axhline(stat["mean"], ls="--", lw=1, color=color)
                if stat.get("interval"):
                    ax.axhspan(*stat["interval"], color=color, alpha=0.12, lw=0)
                ax.errorbar([x_inf], [stat["mean"]], yerr=_bar(stat), fmt="s", ms=5, color=color,
                            capsize=2, lw=1, mfc="white" if stat.get("interval") is None else color)
                handles.setdefault(_tex(f"undefended ({base['defense']}), dashed"), h)
        ax.set_xscale("log")
        ax.set_xlim(low / 1.6, x_inf * 1.6)
        ticks = sorted({t for t in (m * 10.0 ** e for e in range(-4, 7) for m in (1, 3))
                        if low / 1.6 <= t <= top * 1.3})
        ax.set_xticks(ticks + [x_inf], [f"{t:g}" for t in ticks] + ["\u221e"])
        ax.minorticks_off()
        what = {"utility": " (utility)", "attack": " (attack success)"}.get(kinds[name], "")
        ax.set_title(_tex(name) + what, fontsize=9)
        ax.set_xlabel("claimed \u03b5", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, lw=0.3, alpha=0.5)
    labels = list(handles)
    if single_note:
        labels.append("hollow: one seed, no interval")
        handles[labels[-1]] = fig.axes[0].plot([], [], "o", mfc="white", color="grey")[0]
    if title:
        fig.suptitle(_tex(title), fontsize=10)
    legend_h = 0.25 + 0.18 * math.ceil(len(labels) / 2)
    fig.legend([handles[lbl] for lbl in labels], labels, loc="lower center", ncol=2, fontsize=7,
               frameon=False)
    height = fig.get_size_inches()[1]
    fig.tight_layout(rect=(0, min(legend_h / height, 0.5), 1, 0.95 if title else 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


__all__ = ["INF_FACTOR", "MAX_PANELS", "frontier_png"]
