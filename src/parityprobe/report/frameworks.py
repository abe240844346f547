"""The security framework controls findings are mapped to, with their published identifiers and wording.

Two frameworks, the ones SREs and auditors ask about for workload identities:

- the **OWASP Top 10 Non-Human Identities Risks 2025** (``NHI1:2025`` … ``NHI10:2025``), each risk with its
  title as OWASP publishes it (https://owasp.org/www-project-non-human-identities-top-10/2025/);
- the **NIST Cybersecurity Framework 2.0** core (NIST CSWP 29), subcategories such as ``PR.AA-05``, each with
  its outcome statement as the core states it.

Only the controls :mod:`parityprobe.report.mapping` maps findings to are listed: an identifier appears here
once, so a title is written once and a mapping can only cite a control that exists. A :class:`Rule` is one
row of that mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from parityprobe.model import Category, Finding
from parityprobe.report.view import FrameworkRef, Guidance

OWASP_NHI = "OWASP NHI Top 10"
NIST_CSF = "NIST CSF 2.0"


def _owasp(number: int, title: str) -> FrameworkRef:
    return FrameworkRef(OWASP_NHI, f"NHI{number}:2025", title)


def _nist(subcategory: str, outcome: str) -> FrameworkRef:
    return FrameworkRef(NIST_CSF, subcategory, outcome)


# OWASP Top 10 Non-Human Identities Risks 2025.
NHI1 = _owasp(1, "Improper Offboarding")
NHI4 = _owasp(4, "Insecure Authentication")
NHI5 = _owasp(5, "Overprivileged NHI")
NHI6 = _owasp(6, "Insecure Cloud Deployment Configurations")
NHI7 = _owasp(7, "Long-Lived Secrets")
NHI8 = _owasp(8, "Environment Isolation")
NHI9 = _owasp(9, "NHI Reuse")
NHI10 = _owasp(10, "Human Use of NHI")

# NIST CSF 2.0 subcategories.
ID_AM_08 = _nist(
    "ID.AM-08", "Systems, hardware, software, services, and data are managed throughout their life cycles"
)
ID_RA_01 = _nist("ID.RA-01", "Vulnerabilities in assets are identified, validated, and recorded")
PR_AA_01 = _nist(
    "PR.AA-01",
    "Identities and credentials for authorized users, services, and hardware are managed by the organization",
)
PR_AA_03 = _nist("PR.AA-03", "Users, services, and hardware are authenticated")
PR_AA_05 = _nist(
    "PR.AA-05",
    "Access permissions, entitlements, and authorizations are defined in a policy, managed, enforced, and "
    "reviewed, and incorporate the principles of least privilege and separation of duties",
)
PR_PS_01 = _nist("PR.PS-01", "Configuration management practices are established and applied")
PR_PS_04 = _nist("PR.PS-04", "Log records are generated and made available for continuous monitoring")
PR_IR_04 = _nist("PR.IR-04", "Adequate resource capacity to ensure availability is maintained")
DE_CM_03 = _nist(
    "DE.CM-03", "Personnel activity and technology usage are monitored to find potentially adverse events"
)
DE_CM_09 = _nist(
    "DE.CM-09",
    "Computing hardware and software, runtime environments, and their data are monitored to find potentially "
    "adverse events",
)


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the mapping: which findings it covers, the controls they bear on, and what to do.

    ``fields`` are globs on :attr:`Finding.field` (``ttl``, ``role * token_ttl``, ``siem[[]*[]]``; empty: any
    field, or none); ``about`` globs on the lowercased probe name, step id and scenario id (empty: any).
    """

    category: Category
    fields: tuple[str, ...]
    about: tuple[str, ...]
    references: tuple[FrameworkRef, ...]  # OWASP NHI risks first, then NIST CSF subcategories
    remediation: str  # one or two sentences: where to look and what to change

    def fits(self, finding: Finding, probe: str | None) -> bool:
        """True when ``finding``, whose step used ``probe`` (None: not known), is one this rule covers."""
        if finding.category is not self.category:
            return False
        if self.fields and not (finding.field and _matches(finding.field, self.fields)):
            return False
        subjects = [s.lower() for s in (probe, finding.step, finding.scenario) if s]
        return not self.about or any(_matches(s, self.about) for s in subjects)

    @property
    def guidance(self) -> Guidance:
        """What a finding this rule covers is told."""
        return Guidance(self.references, self.remediation)

    @property
    def applies(self) -> str:
        """What the rule covers, as the docs' table says it: ``field `ttl`, `max ttl```, or ``any``."""
        parts = []
        if self.fields:
            parts.append("field " + ", ".join(f"`{glob}`" for glob in self.fields))
        if self.about:
            parts.append("probe, step or scenario " + ", ".join(f"`{glob}`" for glob in self.about))
        return "; ".join(parts) or "any"


def _matches(value: str, globs: tuple[str, ...]) -> bool:
    return any(fnmatchcase(value, glob) for glob in globs)
