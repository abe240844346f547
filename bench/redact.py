"""Cost of ``Redactor.redact`` as the number of known secrets grows: it must stay flat.

A 4 KB log-like text holding a few of the secrets is redacted with 10, 100, 1,000 and 5,000 registered
secrets (Vault tokens, AWS key ids and secret keys, UUID secret ids), one new secret being registered
before each call, as the runner does when a probe returns a token. The same is done, in the same process
and interleaved, with the former implementation kept below as the baseline: one regular expression of every
secret, recompiled on the first call after a registration. Per-call times are medians over repetitions;
ratios are against the 10-secret case and against the baseline. Target: the new redactor flat, at most
1.5 times its 10-secret cost at 5,000 secrets.

    python bench/redact.py [--sizes 10,100,1000,5000] [--repetitions N] [--no-memory]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import string
import sys
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterable

from parityprobe.redact import MASK, Redactor
from parityprobe.secret import Secret

FLAT_TARGET = 1.5
TEXT_BYTES = 4096
_B64 = string.ascii_letters + string.digits


class RegexRedactor:
    """The former redactor, verbatim but for its name: the baseline."""

    def __init__(self, secrets: Iterable[Secret] = ()) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()
        for s in secrets:
            self.register(s)

    def register(self, secret: Secret) -> None:
        value = secret.reveal()
        if len(value) < 6:
            return
        with self._lock:
            if value not in self._values:
                self._values.add(value)
                self._pattern = None

    def redact(self, text: str) -> str:
        pattern = self._compiled()
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    def _compiled(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._pattern is None and self._values:
                alternatives = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in alternatives))
            return self._pattern


Implementation = Callable[[Iterable[Secret]], Redactor | RegexRedactor]
IMPLEMENTATIONS: dict[str, Implementation] = {"automaton": Redactor, "regex (old)": RegexRedactor}


def secret_values(rng: random.Random, count: int) -> list[str]:
    """Values shaped like the secrets an invocation sees."""
    makers: list[Callable[[], str]] = [
        lambda: "hvs.CAES" + "".join(rng.choice(_B64 + "-_") for _ in range(rng.randint(60, 90))),
        lambda: "ASIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
        lambda: "".join(rng.choice(_B64 + "+/") for _ in range(40)),
        lambda: str(uuid.UUID(int=rng.getrandbits(128))),
    ]
    return [makers[i % len(makers)]() for i in range(count)]


def log_text(rng: random.Random, secrets: list[str]) -> str:
    """About TEXT_BYTES of SDK-error-like lines; three of them carry a known secret."""
    words = ["status=403", "denied", "permission", "path=payments/db", "request-id", "X-Vault-Token"]
    lines = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(60)]
    for i, secret in zip((5, 30, 55), rng.sample(secrets, 3), strict=True):
        lines[i] += f" token={secret}"
    return "\n".join(lines)[: TEXT_BYTES + 300]


def per_call(make: Implementation, known: list[str], fresh: list[str], text: str) -> tuple[float, float]:
    """Seconds per call: (register one new secret + redact), and redact alone."""
    redactor = make(Secret(v) for v in known)
    redactor.redact(text)  # the cost of the initial set is not a per-call cost
    calls, start = 0, time.perf_counter()
    while calls < 3 or (time.perf_counter() - start < 0.5 and calls < len(fresh)):
        redactor.register(Secret(fresh[calls]))
        redactor.redact(text)
        calls += 1
    with_registration = (time.perf_counter() - start) / calls
    calls, start = 0, time.perf_counter()
    while calls < 3 or (time.perf_counter() - start < 0.3 and calls < 200):
        redactor.redact(text)
        calls += 1
    return with_registration, (time.perf_counter() - start) / calls


def memory_mb(make: Implementation, known: list[str], text: str) -> float:
    tracemalloc.start()
    try:
        redactor = make(Secret(v) for v in known)
        redactor.redact(text)
        return tracemalloc.get_traced_memory()[0] / 1e6
    finally:
        tracemalloc.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000,5000")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--no-memory", action="store_true")
    args = parser.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    rng = random.Random(7)
    pool = secret_values(rng, max(sizes) + 400)
    fresh = pool[max(sizes) :]
    texts = {n: log_text(rng, pool[:n]) for n in sizes}
    for n in sizes:  # both give the same answer, or the timings mean nothing
        outputs = {make(Secret(v) for v in pool[:n]).redact(texts[n]) for make in IMPLEMENTATIONS.values()}
        assert len(outputs) == 1 and texts[n] not in outputs, f"implementations disagree at {n} secrets"

    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for _ in range(args.repetitions):
        for n in sizes:
            for name, make in IMPLEMENTATIONS.items():  # interleaved, to share the machine's noise
                results.setdefault((name, n), []).append(per_call(make, pool[:n], fresh, texts[n]))

    def median(name: str, n: int, which: int) -> float:
        return statistics.median(r[which] for r in results[(name, n)])

    print(f"redact() on {len(texts[sizes[0]])} characters, medians of {args.repetitions} repetitions")
    print("per call = register one new secret + redact; 'redact only' = no registration in between")
    header = f"{'secrets':>8} {'impl':>12} {'ms/call':>9} {'x vs ' + str(sizes[0]):>9} {'redact only':>12}"
    print(header + ("" if args.no_memory else f" {'memory MB':>10}"))
    for n in sizes:
        for name, make in IMPLEMENTATIONS.items():
            call, alone, first = median(name, n, 0), median(name, n, 1), median(name, sizes[0], 0)
            line = f"{n:8d} {name:>12} {call * 1e3:9.3f} {call / first:9.2f} {alone * 1e3:12.3f}"
            print(line + ("" if args.no_memory else f" {memory_mb(make, pool[:n], texts[n]):10.1f}"))
    for n in sizes:
        ratio = median("automaton", n, 0) / median("regex (old)", n, 0)
        print(f"automaton / regex at {n:5d} secrets: {ratio:8.3f}")
    growth = median("automaton", sizes[-1], 0) / median("automaton", sizes[0], 0)
    verdict = "within" if growth <= FLAT_TARGET else "OVER"
    print(
        f"automaton at {sizes[-1]} / at {sizes[0]} secrets: {growth:.2f}  "
        f"[{verdict} target {FLAT_TARGET}: flat]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
