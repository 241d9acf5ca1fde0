"""Statistics over seeds shared by the defense benchmarks (``fedre_frontier.py``,
``deer.py``, ``dr_encoder_compression.py``): the mean with its 95% Student-t interval
(:func:`reports.frontier.mean_interval`, the frontier's own rule) and the verdict on a claim
from differences paired by seed.

Verdict rule: a claim that wants the paired differences on ``side`` of 0 *holds* when the
whole interval lies there, *fails* when the whole interval lies on the other side, and is
*not judgeable* otherwise (the interval contains 0, or one seed gives no interval).
``side`` is ``"positive"`` (low > 0), ``"nonnegative"`` (low >= 0: "not worse") or
``"negative"`` (high < 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

SIDES = ("positive", "nonnegative", "negative")


def t_interval(values: Iterable[float]) -> tuple[float, float, float]:
    """(mean, low, high) of the 95% Student-t interval of the mean; nan bounds for one value."""
    from reports.frontier import mean_interval

    iv = mean_interval(values)
    if iv["mean"] is None:
        raise ValueError("t_interval needs at least one value")
    low, high = iv["interval"] or (math.nan, math.nan)
    return iv["mean"], low, high


def fmt_interval(values: Iterable[float], digits: int = 3, scale: float = 1.0) -> str:
    """``"mean [low, high]"`` of ``values`` times ``scale`` (the mean alone for one value)."""
    mean, low, high = t_interval([float(v) * scale for v in values])
    if math.isnan(low):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def paired_verdict(diffs: Iterable[float], *, side: str) -> str:
    """"holds", "fails" or "not judgeable: <why>" for paired differences (module docstring)."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, not {side!r}")
    _, low, high = t_interval(diffs)
    if math.isnan(low):
        return "not judgeable: one seed gives no interval"
    if side == "negative":
        supports, contradicts = high < 0, low >= 0
    else:
        supports = low > 0 if side == "positive" else low >= 0
        contradicts = high < 0
    return "holds" if supports else "fails" if contradicts else "not judgeable: the interval contains 0"
