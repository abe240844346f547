"""Server versions as drift: environments whose steps reached different versions of a plane's server.

Each run records, once, the version of each plane's server its steps reached (:attr:`Run.servers
<parityprobe.model.Run.servers>`: Vault or OpenBao from ``sys/health``, Kubernetes from ``/version``); a
probe whose every step may reach another server says what it met on the step itself
(:attr:`Observation.server <parityprobe.model.Observation.server>`: a TLS handshake's protocol and cipher).
Where the environments' versions of a plane (or of a step's server) differ, that is a ``config_drift``
finding of its own, ``low``: a
version difference alone is worth knowing, not worth a page. It is ``medium`` when a behavioural finding of
the same scenario (a decision, a grant, a declared answer or a latency that differs) concerns a step on that
plane, since the version may explain it; the finding then says which. A plane's steps are known by their
probes' names (``vault.kv_read`` is on the ``vault`` plane). An environment that recorded no version (the
plane cannot say, or the question failed) is left out: a missing version is no difference.
"""

from __future__ import annotations

from collections.abc import Sequence

from parityprobe.compare import severity
from parityprobe.model import Category, Finding, Run
from parityprobe.spec import ScenarioSpec

_BEHAVIOURAL = frozenset(
    {
        Category.EXPECTATION_VIOLATION,
        Category.OUTCOME_MISMATCH,
        Category.GRANT_MISMATCH,
        Category.DECLARED_MISMATCH,
        Category.LATENCY_MISMATCH,
    }
)


def drift(spec: ScenarioSpec, runs: Sequence[Run], found: Sequence[Finding]) -> list[Finding]:
    """One finding per plane whose server versions differ between the runs, and one per step whose servers
    differ; ``found`` are the comparison's other findings, which decide their severity."""
    out = []
    for plane in sorted({plane for run in runs for plane in run.servers}):
        versions = {run.environment: run.servers[plane] for run in runs if plane in run.servers}
        out.extend(_differ(spec.id, None, plane, versions, found))
    for step in spec.steps:
        met = {
            run.environment: obs.server
            for run in runs
            if (obs := run.observation(step.id)) is not None and obs.server is not None
        }
        out.extend(_differ(spec.id, step.id, step.probe.split(".", 1)[0], met, found))
    return out


def _differ(
    scenario: str, step: str | None, plane: str, versions: dict[str, str], found: Sequence[Finding]
) -> list[Finding]:
    if len(set(versions.values())) < 2:
        return []
    explained = [f for f in found if f.category in _BEHAVIOURAL and _plane(f) == plane]
    message = f"the environments run different {plane} server versions"
    if explained:
        steps = ", ".join(dict.fromkeys(f.step or "" for f in explained))
        message += f", which may explain what differs on {steps}"
    return [
        Finding(
            category=Category.CONFIG_DRIFT,
            severity=severity.server_version(explains=bool(explained)),
            scenario=scenario,
            step=step,
            environments=versions,
            message=message,
            explanation="A server upgraded in one environment only changes defaults and behaviour "
            "(policy evaluation, token handling, protocols and ciphers, API answers) that tests in the "
            "other never meet.",
            field=f"server {plane}",
        )
    ]


def _plane(finding: Finding) -> str | None:
    return finding.probe.split(".", 1)[0] if finding.probe else None
