"""The redactor against a reference: the regular expression it used to compile, on random and large cases.

The reference is the former implementation: one alternation of every secret, longest first, so Python's
leftmost-first alternation masks the leftmost occurrence, the longest secret at that position, and
moves on after it. The redactor must give exactly its output, whatever the order of registration, and
keep doing so while threads register and redact at once.
"""

from __future__ import annotations

import random
import re
import string
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import SupportsIndex, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parityprobe.redact import MASK, Redactor
from parityprobe.secret import Secret

T = TypeVar("T")


def reference(secrets: Iterable[str], text: str) -> str:
    """What the regex redactor did: every secret of 6 characters or more, longest first in one pattern."""
    values = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)
    if not values:
        return text
    return re.sub("|".join(re.escape(v) for v in values), MASK, text)


def redactor(secrets: Iterable[str]) -> Redactor:
    return Redactor(Secret(s) for s in secrets)


# Small alphabets make secrets overlap, nest and share prefixes and suffixes all the time.
ALPHABETS = ["ab", "abc", "aé€𝄞", "xy\u0301z", string.ascii_lowercase[:6]]


@st.composite
def secrets_and_texts(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    alphabet = draw(st.sampled_from(ALPHABETS))
    secrets = draw(st.lists(st.text(alphabet, min_size=1, max_size=14), max_size=24))
    noise = st.text(alphabet + " -", max_size=6)
    piece = st.one_of(noise, st.sampled_from(secrets)) if secrets else noise
    texts = draw(st.lists(st.lists(piece, max_size=12).map("".join), min_size=1, max_size=4))
    return secrets, texts


@settings(deadline=None)
@given(secrets_and_texts())
def test_matches_the_regex_reference(case: tuple[list[str], list[str]]) -> None:
    secrets, texts = case
    r = redactor(secrets)
    for text in texts:
        expected = reference(secrets, text)
        got = r.redact(text)
        assert got == expected
        if expected == text:
            assert got is text


@settings(deadline=None)
@given(secrets_and_texts())
def test_each_registration_is_seen_by_the_next_redaction(case: tuple[list[str], list[str]]) -> None:
    secrets, texts = case
    r = Redactor()
    for i, secret in enumerate(secrets):
        r.register(Secret(secret))
        for text in texts:
            assert r.redact(text) == reference(secrets[: i + 1], text)


@pytest.mark.parametrize(
    ("secrets", "text", "expected"),
    [
        (["abcdef123456", "abcdef"], "x=abcdef123456 y=abcdef", "x=*** y=***"),  # one containing another
        (["123456abcdef", "abcdef"], "123456abcdef abcdef", "*** ***"),  # a suffix of another
        (["abcdefgh", "efghijkl"], "abcdefghijkl", "***ijkl"),  # overlapping: the leftmost wins
        (["xxabcdef", "abcdefghij"], "xxabcdefghij", "***ghij"),
        (["abcdef", "abcdefgh", "abcdefghij"], "abcdefghi abcdefgh", "***i ***"),  # shared prefixes
        (["s3cr3t!"], "s3cr3t!s3cr3t!s3cr3t!", "*********"),  # adjacent occurrences
        (["aaaaaa"], "aaaaaaaaaaaaa", "******a"),  # overlapping occurrences of one secret
        (["pässwörd", "🔑🔑🔑🔑🔑🔑"], "[pässwörd][🔑🔑🔑🔑🔑🔑🔑]", "[***][***🔑]"),
        (["abc", "abcde"], "abc abcde", "abc abcde"),  # shorter than 6: not secrets
        (["abcdef"], "", ""),
    ],
)
def test_examples(secrets: list[str], text: str, expected: str) -> None:
    assert redactor(secrets).redact(text) == expected == reference(secrets, text)


def test_text_without_secrets_is_returned_as_is() -> None:
    text = "nothing secret here, only words"
    assert Redactor().redact(text) is text
    assert redactor(["hvs.abcdefghijkl"]).redact(text) is text
    r = redactor(["abcdef"])
    r.register(Secret("abcdef"))  # twice: no harm
    assert r.redact("abcdef abcdef") == "*** ***"


def _families(rng: random.Random) -> Iterator[str]:
    """Secrets shaped like real ones, and sets built to overlap: shared prefixes and suffixes, nesting."""
    b64 = string.ascii_letters + string.digits + "-_"
    for _ in range(900):
        yield "hvs.CAES" + "".join(rng.choice(b64) for _ in range(rng.randint(20, 60)))
    for _ in range(400):
        yield str(uuid.UUID(int=rng.getrandbits(128)))
    for _ in range(300):
        yield "".join(rng.choice(b64) for _ in range(rng.randint(8, 30))) + "-----END KEY-----"
    for _ in range(300):
        yield "".join(rng.choice("ab") for _ in range(rng.randint(6, 24)))
    for _ in range(100):
        yield "".join(rng.choice("ßé€𝄞\u0301") for _ in range(rng.randint(6, 12)))


def test_large_seeded_case_against_the_reference() -> None:
    rng = random.Random(20240917)
    base = list(_families(rng))
    nested = [s[rng.randrange(0, len(s) // 2) :][: rng.randint(6, 40)] for s in rng.sample(base, 300)]
    nested += ["x" + s + "y" for s in rng.sample(base, 300)] + [s[:-1] for s in rng.sample(base, 100)]
    secrets = base + nested
    rng.shuffle(secrets)
    assert len(secrets) >= 2500
    r = Redactor()
    batches = [secrets[i : i + 600] for i in range(0, len(secrets), 600)]
    for n, batch in enumerate(batches, start=1):
        for s in batch:
            r.register(Secret(s))
        known = [s for b in batches[:n] for s in b]
        for _ in range(2):
            pieces = []
            for _ in range(120):
                s = rng.choice(known)
                pieces.append(rng.choice([s, s, s[: len(s) // 2], s[1:], " ", "ab", "hvs.CAES", "-----"]))
            text = "".join(pieces)
            assert r.redact(text) == reference(known, text)


def test_concurrent_registration_never_hides_an_earlier_secret() -> None:
    """Secrets registered before a redact call began are masked by it, while others are being added."""
    r = redactor(["hvs.CAESinitial-secret"])
    published: list[str] = []
    failures: list[str] = []
    writers_done = threading.Event()

    def write(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(250):
            # Shared prefix and suffix, so new nodes keep relinking existing ones.
            token = f"hvs.CAES{uuid.UUID(int=rng.getrandbits(128)).hex}=="
            r.register(Secret(token))
            published.append(token)  # only after register returned

    def read(seed: int) -> None:
        rng = random.Random(seed)
        while not writers_done.is_set() or rng.random() < 0.5:
            known = list(published)
            tokens = rng.sample(known, min(len(known), 60))
            separator = rng.choice([" ", "", "\n"])
            text = separator.join([*tokens, "status=403", "denied"])
            expected = separator.join([MASK] * len(tokens) + ["status=403", "denied"])
            try:
                got = r.redact(text)
            except Exception as exc:  # a thread's exception would not fail the test by itself
                failures.append(repr(exc))
                return
            if got != expected:
                failures.append(f"{len(tokens)} tokens: {got[:200]!r}")

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, in the middle of registrations and scans
    try:
        readers = [threading.Thread(target=read, args=(i,)) for i in range(3)]
        writers = [threading.Thread(target=write, args=(100 + i,)) for i in range(3)]
        for t in readers + writers:
            t.start()
        for t in writers:
            t.join()
        writers_done.set()
        for t in readers:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not failures, failures[:3]
    assert len(published) == 750
    assert r.redact(" ".join(published)) == " ".join([MASK] * 750)


@settings(deadline=None)
@given(st.sampled_from(ALPHABETS[:3]).flatmap(lambda a: st.lists(st.text(a, min_size=6, max_size=14))))
def test_the_automaton_extended_in_place_is_the_one_built_from_scratch(secrets: list[str]) -> None:
    """White box, for the delicate part: after registrations in any order, every node's failure link is
    its longest proper prefix that is a node, and its best match the longest secret it starts with."""
    r = redactor(secrets)._automaton
    strings = {0: ""}
    stack = [0]
    while stack:
        node = stack.pop()
        children = dict(r._goto[node])
        if r._first[node]:
            children[r._first[node]] = r._first_to[node]
        for ch, child in children.items():
            strings[child] = ch + strings[node]
            stack.append(child)
    assert len(strings) == len(r._fail)
    nodes = {s: n for n, s in strings.items()}
    for node, s in strings.items():
        if node:
            longest_prefix = next((s[:k] for k in range(len(s) - 1, 0, -1) if s[:k] in nodes), "")
            assert r._fail[node] == nodes[longest_prefix]
            assert r._best[node] == max((len(v) for v in secrets if s.startswith(v)), default=0)


class _Hooked(list[T]):
    """A list that calls ``hook`` after every change: a redaction run at each step of a registration."""

    def __init__(self, items: Iterable[T], hook: Callable[[], None]) -> None:
        super().__init__(items)
        self._hook = hook

    def append(self, item: T) -> None:
        super().append(item)
        self._hook()

    def __setitem__(self, index: SupportsIndex, item: T) -> None:  # type: ignore[override]
        super().__setitem__(index, item)
        self._hook()


@settings(deadline=None, max_examples=40)
@given(secrets_and_texts())
def test_a_redaction_in_the_middle_of_a_registration_masks_every_earlier_secret(
    case: tuple[list[str], list[str]],
) -> None:
    """Deterministic stand-in for the race: ``redact`` run between any two writes of a registration."""
    secrets, texts = case
    r = Redactor()
    earlier: list[str] = []
    text = "".join(texts) + "".join(secrets)

    def check() -> None:
        got = r.redact(text)  # raises if a published edge leads to a node not filled in yet
        visible = [s for s in earlier if len(s) >= 6 and s in got]
        assert not visible, (visible, got)

    automaton = r._automaton
    for name in ("_first", "_first_to", "_goto", "_fail", "_best", "_depth"):
        setattr(automaton, name, _Hooked(getattr(automaton, name), check))
    for secret in secrets:
        r.register(Secret(secret))
        earlier.append(secret)
        check()


# --- run scopes: a run's secrets are forgotten when it is over ------------------------------------------


def test_a_run_s_secrets_are_masked_until_it_closes_then_forgotten() -> None:
    kept = Secret("config-password-1", "password")
    redactor = Redactor([kept])
    run = redactor.run_secrets()
    token = Secret("hvs.run-token-abcdef", "token")
    run.register(token)
    assert redactor.redact(f"{kept.reveal()} {token.reveal()}") == "*** ***"
    assert run.redact(token.reveal()) == "***"
    run.close()
    assert redactor.redact(f"{kept.reveal()} {token.reveal()}") == f"*** {token.reveal()}"
    assert redactor.known() == 1
    run.close()  # idempotent


def test_a_value_held_elsewhere_outlives_one_run_s_close() -> None:
    redactor = Redactor()
    shared = Secret("shared-secret-value", "token")
    first, second = redactor.run_secrets(), redactor.run_secrets()
    first.register(shared)
    second.register(shared)
    first.close()
    assert redactor.redact(shared.reveal()) == "***"  # the second run still holds it
    redactor.register(shared)  # and now the invocation keeps it for good
    second.close()
    assert redactor.redact(shared.reveal()) == "***"


def test_a_secret_registered_after_its_run_closed_is_kept() -> None:
    """A probe call abandoned at its deadline may answer after its run ended: what it reveals is masked."""
    redactor = Redactor()
    run = redactor.run_secrets()
    run.close()
    late = Secret("late-answer-token", "token")
    run.register(late)
    assert redactor.redact(late.reveal()) == "***"


def test_forgetting_many_runs_keeps_the_automaton_small() -> None:
    kept = [Secret(f"config-secret-{i:04d}", "s") for i in range(20)]
    redactor = Redactor(kept)
    for i in range(300):
        run = redactor.run_secrets()
        run.register(Secret(f"token-{i:06d}-{'x' * 60}", "token"))
        run.close()
    assert redactor.known() == 20
    assert all(redactor.redact(s.reveal()) == "***" for s in kept)


def test_redact_during_forgetting_always_masks_what_is_kept() -> None:
    kept = Secret("always-masked-value", "password")
    redactor = Redactor([kept])
    text = f"before {kept.reveal()} after"
    stop = threading.Event()
    seen: list[str] = []

    def churn() -> None:
        i = 0
        while not stop.is_set():
            run = redactor.run_secrets()
            run.register(Secret(f"churning-token-{i}", "token"))
            run.close()
            i += 1

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        for _ in range(2000):
            seen.append(redactor.redact(text))
    finally:
        stop.set()
        worker.join()
    assert set(seen) == {"before *** after"}
