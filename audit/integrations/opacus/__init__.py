"""Auditing your own Opacus training (sample-level DP-SGD): empirical epsilon beside Opacus's.

The modules, each importing only those above it:

* :mod:`.claim`: the epsilon Opacus claims for a run (its accountant, or yours).
* :mod:`.run`: your training as the audit needs it (:class:`OpacusRun`), and running it.
* :mod:`.gradient_canaries`: white-box gradient canaries through the DPOptimizer.
* :mod:`.white_box`: the white-box audits (``one-run``, ``cp``).
* :mod:`.black_box`: the black-box audit with mislabelled inputs (``one-run-input``).
* :mod:`.opacus_audit`: :func:`audit_opacus`, its findings and report (with an example).
* :mod:`.run_sources`: the run of ``fedaudit opacus``: built-in, or loaded from your file.
"""

from audit.integrations.opacus.black_box import black_box_input_one_run
from audit.integrations.opacus.claim import ACCOUNTANTS, UNIT, opacus_claim, opacus_epsilon
from audit.integrations.opacus.gradient_canaries import CANARY_SCALE, GradientCanaryTap
from audit.integrations.opacus.opacus_audit import DEFENSE_NAME, ESTIMATORS, audit_opacus, opacus_findings_report
from audit.integrations.opacus.run import OpacusRun, OpacusTraining
from audit.integrations.opacus.run_sources import builtin_run, load_run
from audit.integrations.opacus.white_box import white_box_cp, white_box_one_run

__all__ = [
    "ACCOUNTANTS", "CANARY_SCALE", "DEFENSE_NAME", "ESTIMATORS", "GradientCanaryTap", "OpacusRun",
    "OpacusTraining", "UNIT", "audit_opacus", "black_box_input_one_run", "builtin_run", "load_run",
    "opacus_claim", "opacus_epsilon", "opacus_findings_report", "white_box_cp", "white_box_one_run",
]
