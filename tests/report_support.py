"""A decorated report view the Markdown, JUnit and HTML renderer tests share: forbidden-calls with causes,
accepted, expired and unmatched divergences, guidance on every finding and the latency judge's notes, every
text ending in what a test wants a target, a divergences file or the guidance table to carry."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from parityprobe.model import Category, Comparison, Finding, Outcome, Report, Severity
from parityprobe.report import build_view
from parityprobe.report.divergences import Declaration
from parityprobe.report.view import FindingView, FrameworkRef, Guidance, LatencyNote, ReportView
from tests.unit.test_reports import SPECS, STEPS, T0, finding, obs, run

# The day divergences are judged on: the TTL acceptance holds, the forbidden read's has expired.
TODAY = date(2026, 6, 1)


def declared(**kw: object) -> Declaration:
    fields: dict[str, object] = {
        "scenario": "forbidden-calls",
        "step": "read-after-rotate",
        "category": Category.GRANT_MISMATCH,
        "field": "ttl",
        "environments": (),
        "reason": "staging keeps 24h tokens",
        "owner": "platform-team",
        "expires": date(2026, 12, 31),
        "source": "divergences.yaml:2",
    }
    fields.update(kw)
    return Declaration(**fields)  # type: ignore[arg-type]


def decorated(say: str = "") -> ReportView:
    """forbidden-calls with a TTL gap on three steps (one of them accepted), a forbidden read whose
    acceptance expired, a declaration that matches nothing, guidance on every finding, and the latency
    judge's notes on three steps. ``say`` ends every text a target, a divergences file or the guidance
    table could carry."""

    def ttl(step: str) -> Finding:
        values = {"staging": "24h", "production": "1h"}
        return finding(
            Category.GRANT_MISMATCH, Severity.MEDIUM, step, f"lifetimes differ{say}", values=values
        )

    findings = (
        *(replace(ttl(step), field="ttl") for step in ("login", "read-own", "read-after-rotate")),
        finding(
            Category.OUTCOME_MISMATCH,
            Severity.HIGH,
            "read-other-team",
            f"staging allows a forbidden read{say}",
            values={"staging": "allowed", "production": "denied"},
            field="outcome",
        ),
    )
    runs = tuple(
        run(env, "forbidden-calls", tuple(obs(env, s, Outcome.ALLOWED, latency_ms=2.0) for s in STEPS))
        for env in ("staging", "production")
    )
    report = Report(T0, (Comparison(SPECS["forbidden-calls"], runs, findings),))
    declarations = (
        declared(reason=f"staging keeps 24h tokens{say}", owner=f"platform-team{say}"),
        declared(
            step=None,
            category=Category.OUTCOME_MISMATCH,
            field=None,
            reason=f"migration{say}",
            owner="security-team",
            expires=date(2026, 1, 31),
            source="d.yaml:9",
        ),
        declared(scenario="gone", step=None, field=None, owner=f"nobody{say}", source="d.yaml:20"),
    )
    view = build_view(report, declarations, TODAY)
    hints = {
        Category.GRANT_MISMATCH: Guidance(
            (FrameworkRef("OWASP NHI Top 10", "NHI7:2025", f"Long-lived secrets{say}"),),
            f"Shorten the role's token_ttl{say}",
        ),
        Category.OUTCOME_MISMATCH: Guidance(
            (
                FrameworkRef("OWASP NHI Top 10", "NHI5:2025", "Overprivileged NHI"),
                FrameworkRef("NIST CSF 2.0", "PR.AA-05", "Access permissions"),
            ),
            f"Remove billing/db from the staging policy{say}",
        ),
    }

    def guided(fv: FindingView) -> FindingView:
        return replace(fv, guidance=hints[fv.finding.category])

    notes = {
        "login": LatencyNote(("staging", "production"), "mismatch", f"10x slower{say}", {}),
        "read-own": LatencyNote(("staging", "production"), "insufficient_data", f"3 of 10 samples{say}", {}),
        "read-other-team": LatencyNote(("staging", "production"), "no_difference", "alike", {}),
    }
    (scenario,) = view.scenarios
    scenario = replace(
        scenario,
        findings=tuple(guided(fv) for fv in scenario.findings),
        rows=tuple(replace(r, latency=(notes[r.step],)) if r.step in notes else r for r in scenario.rows),
    )
    causes = tuple(replace(c, shown=guided(c.shown)) for c in view.causes)
    return replace(view, scenarios=(scenario,), causes=causes)
