"""The accounting lint: checks of a DP training run, as configured and as observed, that
catch the accounting assumptions that do not hold (issue 23, item 5).

The modules, each importing only those above it:

* :mod:`.facts`: :class:`RunFacts`, what is known of the run (every field optional).
* :mod:`.findings`: :class:`LintFinding` (``to_dict``: ``id``, ``severity``, ``message``,
  ``fix``) and :class:`LintRule`.
* :mod:`.rules`: one small check per assumption, :data:`RULES` and :func:`run_lint`.

Facts from real objects: ``audit.integrations.opacus.lint_facts.opacus_facts`` and
``audit.integrations.flower.lint_facts.flower_facts``. See ``docs/lint.md``.
"""

from audit.privacy.lint.facts import (
    ADJACENCIES,
    OPERATIONS,
    SAMPLING_ASSUMED,
    SAMPLING_USED,
    UNITS,
    RunFacts,
)
from audit.privacy.lint.findings import SEVERITIES, LintFinding, LintRule
from audit.privacy.lint.rules import DELTA_WARN_FRACTION, RULE_IDS, RULES, run_lint

__all__ = [
    "ADJACENCIES", "DELTA_WARN_FRACTION", "LintFinding", "LintRule", "OPERATIONS", "RULES",
    "RULE_IDS", "RunFacts", "SAMPLING_ASSUMED", "SAMPLING_USED", "SEVERITIES", "UNITS", "run_lint",
]
