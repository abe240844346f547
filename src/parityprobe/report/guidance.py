"""What a finding means in the security frameworks SREs and auditors use, and what to do about it.

:func:`guidance` gives a finding its :class:`~parityprobe.report.view.Guidance`: the OWASP Non-Human
Identities Top 10 (2025) risks and NIST CSF 2.0 subcategories it bears on, and a remediation hint, from the
first rule of :data:`~parityprobe.report.mapping.RULES` that fits it (by category and field, and where it
matters by the step's probe: break-glass paths, each plane's own commands). ``docs/frameworks.md`` shows the
table.

A finding names the probe of the step it concerns (:attr:`~parityprobe.model.Finding.probe`); configuration
drift and SIEM findings name none: their field says the plane instead (Vault keys ``policy …``, ``role …``,
``auth method …``; AWS keys ``iam …``, ``secret …``; ``siem[0]``), and the rules match on the field.
"""

from __future__ import annotations

from parityprobe.model import Finding
from parityprobe.report.frameworks import NIST_CSF, OWASP_NHI, Rule
from parityprobe.report.mapping import RULES
from parityprobe.report.view import Guidance

_LABELS = (("OWASP", OWASP_NHI), ("NIST CSF", NIST_CSF))


def rule_for(finding: Finding) -> Rule:
    """The first rule of :data:`~parityprobe.report.mapping.RULES` that fits ``finding``."""
    probe = finding.probe
    # Every category ends with a rule without fields or globs (a test holds it), so one always fits.
    return next(rule for rule in RULES if rule.fits(finding, probe))


def guidance(finding: Finding) -> Guidance:
    """``finding``'s framework references and remediation hint."""
    return rule_for(finding).guidance


def references_line(found: Guidance) -> str:
    """``OWASP NHI5:2025, NHI8:2025 · NIST CSF PR.AA-05``: the references by framework, identifiers only."""
    parts = []
    for label, framework in _LABELS:
        ids = [ref.id for ref in found.references if ref.framework == framework]
        if ids:
            parts.append(f"{label} {', '.join(ids)}")
    return " · ".join(parts)
