"""Log-log ROC curves of membership attacks (matplotlib, Agg backend), one curve per
attack, with the chance diagonal: the low-FPR region that matters for membership
inference (Carlini et al. 2022) is visible only on log axes."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np


def roc_png(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, title: str = "",
            min_fpr: float | None = None) -> bytes:
    """PNG bytes of log-log ROC curves ``{label: (fpr, tpr)}``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.6, 4.2), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    lows = []
    for label, (fpr, tpr) in curves.items():
        f, t = np.asarray(fpr, dtype=float), np.asarray(tpr, dtype=float)
        pos = f[f > 0]
        lows.append(pos.min() if pos.size else 1e-3)
        ax.step(np.clip(f, 1e-6, 1), np.clip(t, 1e-6, 1), where="post", label=label, lw=1.4)
    low = min_fpr or (min(lows) if lows else 1e-3)
    ax.plot([low, 1], [low, 1], ls="--", c="grey", lw=0.8, label="chance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, 1)
    ax.set_ylim(low, 1.02)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
