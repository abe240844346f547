"""Server versions as drift: environments whose steps reached different versions of a plane's server.

Each run records, once, the version of each plane's server its steps reached (:attr:`Run.servers
<parityprobe.model.Run.servers>`: Vault or OpenBao from ``sys/health``, Kubernetes from ``/version``). Where
the environments' versions of a plane differ, that is a ``config_drift`` finding of its own, ``low``: a
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
    """One finding per plane whose server versions differ between the runs; ``found`` are the comparison's
    other findings, which decide its severity."""
    out = []
    for plane in sorted({plane for run in runs for plane in run.servers}):
        versions = {run.environment: run.servers[plane] for run in runs if plane in run.servers}
        if len(set(versions.values())) < 2:
            continue
        explained = [f for f in found if f.category in _BEHAVIOURAL and _plane(f) == plane]
        message = f"the environments run different {plane} server versions"
        if explained:
            steps = ", ".join(dict.fromkeys(f.step or "" for f in explained))
            message += f", which may explain what differs on {steps}"
        out.append(
            Finding(
                category=Category.CONFIG_DRIFT,
                severity=severity.server_version(explains=bool(explained)),
                scenario=spec.id,
                step=None,
                environments=versions,
                message=message,
                explanation="A server upgraded in one environment only changes defaults and behaviour "
                "(policy evaluation, token handling, API answers) that tests in the other never meet.",
                field=f"server {plane}",
            )
        )
    return out


def _plane(finding: Finding) -> str | None:
    return finding.probe.split(".", 1)[0] if finding.probe else None
