"""Display formatting shared by the report writers (HTML, Markdown and the modules that
render one part of a report): numbers to significant digits, Markdown escaping and tables."""

from __future__ import annotations

import math
import re

NA = "n/a"
#: the label of a primary claim that has none (the "Claims for this run" table, the ledger)
PRIMARY_LABEL = "claim"
_SPECIAL = re.compile(r"([\\`*\[\]<>|~])")
_EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def format_number(value: float | int | None, digits: int = 3) -> str:
    """Format a number to ``digits`` significant digits for display.

    Plain notation is used between 1e-3 and 1e4 (integers up to 1e4 stay whole),
    scientific notation outside; trailing zeros are dropped. ``None`` gives ``"n/a"``.

    Args:
        value: The number, or None.
        digits: Significant digits.

    Returns:
        The display string, e.g. ``"24.1"``, ``"0.5"``, ``"1.23e-04"``, ``"1e-05"``.
    """
    if value is None:
        return NA
    if isinstance(value, bool):
        return str(value).lower()
    x = float(value)
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    magnitude = abs(x)
    if 1e3 <= magnitude < 1e4:
        return f"{x:.0f}"
    if 1e-3 <= magnitude < 1e3:
        decimals = max(0, digits - 1 - math.floor(math.log10(magnitude)))
        text = f"{x:.{decimals}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    mantissa, exponent = f"{x:.{max(digits - 1, 0)}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{exponent}"


def md_escape(text: object) -> str:
    """Escape ``text`` for Markdown inline use (table cells, list items, headings).

    Newlines become spaces; Markdown punctuation, ``<``/``>`` and a leading ``#`` are
    backslash-escaped; underscores inside words (``label_accuracy``) are left as they
    are, since they cannot start emphasis.
    """
    s = " ".join(str(text).splitlines())
    s = _SPECIAL.sub(r"\\\1", s)
    s = _EDGE_UNDERSCORE.sub(r"\\_", s)
    return "\\" + s if s.startswith("#") else s


def md_table(header: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> list[str]:
    """A GitHub-flavoured Markdown table, then a blank line: ``header`` and ``rows`` are cells
    already escaped (:func:`md_escape`); columns in ``right`` are right-aligned; an empty cell
    is written as a space so that the row keeps its width."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(cell if cell else " " for cell in row) + " |" for row in rows]
    return lines + [""]
