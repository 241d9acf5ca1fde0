"""Compliance: audit reports judged against a policy, for the people who sign off a deployment.

:mod:`~audit.compliance.policy` (the policy file and its rules), :mod:`~audit.compliance.units`
(the unit of privacy), :mod:`~audit.compliance.evidence` (what the rules read out of reports),
:mod:`~audit.compliance.rules` (each rule and :func:`~audit.compliance.rules.evaluate`),
:mod:`~audit.compliance.results` (PASS / FAIL / NOT EVALUATED and how they fold),
:mod:`~audit.compliance.framework_file` (framework mappings: NIST SP 800-226, EDPB Opinion
28/2024, EU AI Act Art. 15, OWASP ML Top 10, NIST AI 100-2, in ``frameworks/``, or the
user's own), :mod:`~audit.compliance.framework_eval` (their clauses judged against the
findings and the rules) and :mod:`~audit.compliance.compliance_report` (the compliance
report built from them).
"""
