"""What a fuzz run says: the count, the clean rate, the slowest case, peak memory, and the failures grouped
by class (kind, exception type, where), each class with examples that can be replayed."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from tests.fuzz.pool import WALL_FACTOR, Outcome


def label(result: dict[str, Any]) -> str:
    """``case 123 [scenario forbidden-calls.yaml: tag, byte-flip]``."""
    ops = ", ".join(result.get("ops") or []) or "unmutated"
    return f"case {result['case']} [{result.get('kind', '?')} {result.get('base', '?')}: {ops}]"


def failure_class(result: dict[str, Any]) -> tuple[str, str, str]:
    failure = result["failure"]
    return failure["kind"], failure["type"], failure["where"]


def groups(outcome: Outcome) -> list[tuple[tuple[str, str, str], list[dict[str, Any]]]]:
    """Failures by class, the largest class first."""
    found: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for result in outcome.failures:
        found[failure_class(result)].append(result)
    return sorted(found.items(), key=lambda item: (-len(item[1]), item[0]))


def describe(result: dict[str, Any], seed: int, full: bool = False) -> str:
    """One failure, with everything needed to look at it again."""
    failure = result["failure"]
    kind = " ".join(x for x in (failure["kind"], failure["type"]) if x)
    lines = [
        f"{label(result)} (seed {seed}): {kind}" + (f" at {failure['where']}" if failure["where"] else ""),
        f"    input:  {result.get('input') or '?'}",
        f"    ran:    parityprobe {' '.join(result.get('command') or [])}",
        f"    replay: python -m tests.fuzz --seed {seed} --case {result['case']}",
        f"    detail: {failure['detail']}",
    ]
    if full:
        if failure.get("stderr"):
            lines.append("    stderr:\n" + _indent(failure["stderr"], 8))
        if failure.get("traceback"):
            lines.append("    traceback / stack:\n" + _indent(failure["traceback"], 8))
    return "\n".join(lines)


def _indent(text: str, width: int) -> str:
    return "\n".join(" " * width + line for line in text.rstrip().splitlines())


def _memory(outcome: Outcome) -> str:
    """Peak RSS, and the case that raised a worker's peak the most (per worker, results are in order)."""
    last: dict[int, int] = {}
    biggest: tuple[int, dict[str, Any] | None] = (0, None)
    for result in outcome.results:
        pid, rss = result.get("pid"), result.get("maxrss_kib", 0)
        if pid is None or not rss:
            continue
        grew = rss - last.get(pid, rss)
        last[pid] = rss
        if grew > biggest[0]:
            biggest = (grew, result)
    text = f"peak memory: {outcome.peak_rss_kib / 1024:.0f} MiB (max RSS of a worker)"
    if biggest[1] is not None:
        text += f"; the largest rise, +{biggest[0] / 1024:.0f} MiB, in {label(biggest[1])}"
    return text


def summary(outcome: Outcome, examples: int = 2) -> str:
    """The whole run in a few lines, then every failure class with ``examples`` examples."""
    settings = outcome.settings
    results = outcome.results
    total = len(results)
    failures = outcome.failures
    clean = total - len(failures)
    valid = sum(1 for r in results if r["failure"] is None and r.get("code") == 0)
    refused = clean - valid
    lines = [
        f"fuzz: {total} cases, seed {settings.seed}, {settings.workers} workers, "
        f"{settings.timeout:g} s and {settings.memory / 1024**3:g} GiB per case, {outcome.seconds:.1f} s",
        f"clean: {clean}/{total} ({100 * clean / max(total, 1):.2f} %): {valid} valid (exit 0), "
        f"{refused} refused with located errors (exit 2)",
    ]
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in results:
        by_kind[r.get("kind", "?")][0] += 1
        by_kind[r.get("kind", "?")][1] += r["failure"] is None
    lines.append(
        "by input: "
        + ", ".join(f"{k} {n} ({100 * c / n:.1f} % clean)" for k, (n, c) in sorted(by_kind.items()))
    )
    finished = [r for r in results if r["failure"] is None or r["failure"]["kind"] != "hang"]
    for title, among in (
        ("slowest (hangs aside)", finished),
        ("slowest clean", [r for r in results if r["failure"] is None]),
    ):
        if among:
            slowest = max(among, key=lambda r: r.get("seconds", 0.0))
            seconds, cpu = slowest.get("seconds", 0.0), slowest.get("cpu", 0.0)
            lines.append(f"{title}: {label(slowest)} {seconds:.2f} s ({cpu:.2f} s CPU)")
    hangs = sum(1 for r in failures if r["failure"]["kind"] == "hang")
    if hangs:
        bound = f"{settings.timeout:g} s of CPU or {WALL_FACTOR * settings.timeout:g} s of wall time"
        lines.append(f"hangs: {hangs} case(s) killed at {bound}")
    lines.append(_memory(outcome))
    lines.append(f"network: {outcome.connections} connection(s) to the loopback trap")
    lines.append(f"inputs: {outcome.workspace}")
    classes = groups(outcome)
    lines.append(f"failures: {len(failures)} in {len(classes)} class(es)")
    for (kind, exc_type, at), members in classes:
        title = " ".join(x for x in (kind, exc_type) if x)
        lines.append(f"  {len(members):5d}  {title}" + (f"  at {at}" if at else ""))
        for result in members[:examples]:
            lines.append(_indent(describe(result, settings.seed), 9))
    return "\n".join(lines)
