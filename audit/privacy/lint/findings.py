"""What a lint rule reports (:class:`LintFinding`) and what a rule is (:class:`LintRule`).

A finding has the rule's id, a severity, one line naming the values that disagree, and a
hint saying how to fix it. Severities (the project's convention):

* ``error``: an assumption of the accounting does not hold for this run, so the claimed
  (epsilon, delta) does not follow from it;
* ``warning``: the claim may follow but rests on something weaker than stated (a
  non-cryptographic noise generator, a delta barely below ``1/n``, an accounted step count
  above the run's);
* ``info``: worth knowing, nothing wrong with the claim (more noise than accounted, a rule
  that could not be evaluated).

The rules themselves and :func:`~audit.privacy.lint.rules.run_lint` are in
:mod:`audit.privacy.lint.rules`, so this module needs nothing of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from audit.core.validation import check_options

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class LintFinding:
    """One finding of the accounting lint.

    Attributes:
        id: The rule's id (e.g. ``sampling``).
        severity: ``error``, ``warning`` or ``info``.
        message: One line naming the values that disagree.
        fix: How to fix it (or silence it by stating the claim that does hold).
    """

    id: str
    severity: str
    message: str
    fix: str

    def __post_init__(self) -> None:
        check_options("severity", "LintFinding", self.severity, SEVERITIES)

    def to_dict(self) -> dict:
        """JSON-ready form: keys ``id``, ``severity``, ``message``, ``fix``."""
        return {"id": self.id, "severity": self.severity, "message": self.message, "fix": self.fix}


@dataclass(frozen=True)
class LintRule:
    """A rule: its id, one line on what it checks, the facts it needs (attribute names of
    :class:`~audit.privacy.lint.facts.RunFacts`, all known; ``needs_any``: at least one of
    these known), and the check (facts -> findings)."""

    id: str
    summary: str
    needs: tuple[str, ...]
    check: Callable
    needs_any: tuple[str, ...] = ()

    def missing(self, facts: object) -> tuple[str, ...]:
        """The needed facts that are unknown (``None``) in ``facts``."""
        miss = tuple(n for n in self.needs if getattr(facts, n) is None)
        if self.needs_any and all(getattr(facts, n) is None for n in self.needs_any):
            miss += (" or ".join(self.needs_any),)
        return miss


__all__ = ["LintFinding", "LintRule", "SEVERITIES"]
