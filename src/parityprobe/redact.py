"""The redactor: the last line of defence between secret values and every output.

Secrets are wrapped in :class:`~parityprobe.secret.Secret` so they never render; the redactor also knows
every secret value seen in an invocation (configuration references, probe outputs) and scrubs them from
any text that leaves the process: terminal, reports, logs and exception messages from SDKs, which may echo
what they were sent.

What is masked: scanning left to right, the leftmost occurrence of any secret, and at that position the
longest secret that starts there (a secret containing another is masked whole); then on after it, so
occurrences do not overlap. Every one becomes ``***``.

How, and what it costs. Secrets are kept in one Aho-Corasick automaton over the *reversed* secrets, and
``redact`` reads the text from right to left: the automaton's state at position ``i`` is the longest
reversed trie string matching the text from ``i`` rightwards, so ``best[state]`` is the longest secret
*starting* at ``i`` -- exactly what the leftmost-longest rule needs, one list lookup per character. The
scan is O(len(text)) whatever the number of secrets (each failure link followed shortens the state by at
least one, and each character lengthens it by at most one); then one pass over the matches picks them
left to right.

Registering a secret extends the automaton in place (after Meyer, "Incremental string matching", 1985)
rather than rebuilding it: a node for each suffix of the secret not yet in the trie, and the existing
nodes whose failure link must now point at one of them are found through an index of their first three
characters (new nodes of depth 1 to 3) or by walking the failure tree below the new node's parent
(deeper). Cost: O(len(secret)) plus the nodes looked at, those starting with the first new node's string:
for random-looking secrets a few dozen however many are known (the more secrets, the longer the string
must be to be new); only many secrets sharing long inner repeats make it large. Memory: about 100 bytes
per character of secret.

Threads: ``register`` serialises on a lock; ``redact`` takes none. It can read the automaton while a
registration changes it because every change keeps it a correct automaton for the secrets registered
before: a node is filled in before the edge to it is published, failure links only ever move to a longer
(still correct) suffix, and ``best`` only grows. So every secret registered before a ``redact`` call began
is masked by it; one registered during the call may or may not be.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Final, TypeVar

from parityprobe.secret import Secret

MASK = "***"
# Shorter values would mask ordinary words; secrets this short are not secrets worth the name.
_MIN_LENGTH = 6
# Shared by every node with fewer than two children; a node gets a dict of its own with its second child.
_NO_CHILDREN: Final[dict[str, int]] = {}
_ROOT: Final = 0
_K = TypeVar("_K")


class Redactor:
    """Knows the secret values of one invocation (or of one daemon's life) and removes them from text.

    Secrets registered through :meth:`run_secrets` belong to one run: once the run is over and every
    record of it written, :meth:`RunSecrets.close` forgets those that nothing else registered, so a daemon
    running for months does not keep every token it ever fetched. Forgetting builds a new automaton from
    the values still known and swaps it in whole: a ``redact`` call uses the automaton it started with.
    """

    def __init__(self, secrets: Iterable[Secret] = ()) -> None:
        self._lock = threading.Lock()
        self._kept: set[str] = set()  # registered outside any run: never forgotten
        self._held: Counter[str] = Counter()  # registered by runs still open, with how many of them
        self._automaton = _Automaton()
        for secret in secrets:
            self.register(secret)

    def register(self, secret: Secret) -> None:
        """Remember a secret's value so it is masked wherever it appears, for good."""
        value = secret.reveal()
        if len(value) >= _MIN_LENGTH:
            with self._lock:
                self._kept.add(value)
                self._automaton.add(value)

    def redact(self, text: str) -> str:
        """``text`` with every known secret value replaced by ``***``; ``text`` itself when there is none."""
        return self._automaton.redact(text)

    def run_secrets(self) -> RunSecrets:
        """A registration scope for one run's secrets (see :class:`RunSecrets`)."""
        return RunSecrets(self)

    def known(self) -> int:
        """How many secret values are masked now."""
        with self._lock:
            return len(self._kept | self._held.keys())

    def logging_filter(self) -> logging.Filter:
        """A filter that redacts log records before any handler formats them."""
        return _RedactingFilter(self)

    def _hold(self, value: str) -> None:
        with self._lock:
            self._held[value] += 1
            self._automaton.add(value)

    def _release(self, values: Iterable[str]) -> None:
        with self._lock:
            gone = False
            for value in values:
                self._held[value] -= 1
                if self._held[value] <= 0:
                    del self._held[value]
                    gone = gone or value not in self._kept
            if gone:
                self._automaton = _Automaton(self._kept | self._held.keys())


class RunSecrets:
    """One run's secrets: registered in the redactor (so masked everywhere) until :meth:`close`, then
    forgotten unless something else still holds them. What a run's probes see as ``ctx.redactor``.

    Close it only once nothing of the run is left to write: its records stored, its logs written.
    """

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self._values: list[str] = []
        self._lock = threading.Lock()
        self._closed = False

    def register(self, secret: Secret) -> None:
        value = secret.reveal()
        if len(value) < _MIN_LENGTH:
            return
        with self._lock:
            if self._closed:  # a call abandoned at its deadline, answering late: keep it for good
                self.redactor.register(secret)
                return
            self._values.append(value)
        self.redactor._hold(value)

    def redact(self, text: str) -> str:
        return self.redactor.redact(text)

    def close(self) -> None:
        """Forget this run's secrets (those nothing else registered). Idempotent."""
        with self._lock:
            values, self._values, self._closed = self._values, [], True
        self.redactor._release(values)


# What a probe registers its secrets with: the redactor, or its run's scope of it.
Redacting = Redactor | RunSecrets


class _Automaton:
    """The secrets' automaton: extended in place by :meth:`add`, read without a lock by :meth:`redact`."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        # The automaton, one entry per node; node 0 is the root. A node stands for a string read right to
        # left, that is for a suffix of a secret (`_depth` characters long); `_best` is the length of the
        # longest secret that is a prefix of that suffix, 0 if none.
        # Most nodes have one child (a secret's characters no other secret shares): it is kept in `_first`
        # and `_first_to` rather than in a dict of its own, which would cost ten times the memory; any
        # further children are in `_goto`.
        self._first: list[str] = [""]
        self._first_to: list[int] = [_ROOT]
        self._goto: list[dict[str, int]] = [_NO_CHILDREN]
        self._fail: list[int] = [_ROOT]
        self._best: list[int] = [0]
        self._depth: list[int] = [0]
        # Only registration reads these. The failure tree's children lists are pruned lazily: an entry
        # counts only while that node's failure link still points at the list's owner.
        self._fail_children: dict[int, list[int]] = {}
        self._by_first_two: dict[str, list[int]] = {}  # nodes by their suffix's first two characters
        self._third: list[str] = [""]  # their third character
        for value in values:
            self.add(value)

    def add(self, value: str) -> None:
        """Mask ``value`` from now on (the caller serialises additions)."""
        if value not in self._values:
            self._insert(value)
            self._values.add(value)

    def redact(self, text: str) -> str:
        """``text`` with every known secret value replaced by ``***``; ``text`` itself when there is none."""
        if len(text) < _MIN_LENGTH or len(self._fail) == 1:
            return text
        first, first_to, goto, fail, best = self._first, self._first_to, self._goto, self._fail, self._best
        found: list[tuple[int, int]] = []  # (start, length), right to left
        state = _ROOT
        for i in range(len(text) - 1, -1, -1):
            ch = text[i]
            while True:
                if first[state] == ch:
                    state = first_to[state]
                    break
                nxt = goto[state].get(ch)
                if nxt is not None:
                    state = nxt
                    break
                if state == _ROOT:
                    break
                state = fail[state]
            if best[state]:
                found.append((i, best[state]))
        if not found:
            return text
        parts: list[str] = []
        end = 0
        for start, length in reversed(found):
            if start >= end:
                parts.append(text[end:start])
                parts.append(MASK)
                end = start + length
        parts.append(text[end:])
        return "".join(parts)

    # Registration. The caller serialises it.

    def _child(self, node: int, ch: str) -> int | None:
        if self._first[node] == ch:
            return self._first_to[node]
        return self._goto[node].get(ch)

    def _insert(self, value: str) -> None:
        child, fail, best, depth = self._child, self._fail, self._best, self._depth
        fail_children, by_first_two = self._fail_children, self._by_first_two
        node, shared = _ROOT, len(value) - 1
        while shared >= 0 and (nxt := child(node, value[shared])) is not None:
            node, shared = nxt, shared - 1
        # value[i:] for i from `shared` down is not in the trie yet: one new node each, parent first.
        for i in range(shared, -1, -1):
            ch = value[i]
            new = len(fail)
            link = _ROOT
            if node != _ROOT:
                up = fail[node]
                while (target := child(up, ch)) is None and up != _ROOT:
                    up = fail[up]
                link = _ROOT if target is None else target
            # Fill the node in completely before the edge to it is published: a concurrent scan may take
            # that edge the moment it exists.
            depth.append(depth[node] + 1)
            best.append(best[link])
            fail.append(link)
            self._first.append("")
            self._first_to.append(_ROOT)
            self._goto.append(_NO_CHILDREN)
            self._add_child(node, ch, new)
            if link != _ROOT:
                _append(fail_children, link, new)
            self._third.append(value[i + 2] if depth[node] >= 2 else "")
            if node != _ROOT:
                _append(by_first_two, value[i : i + 2], new)
            # A new node deeper than 3 whose parent has no failure-tree children is what a fresh secret
            # mostly creates: nothing can start with it yet, so there is nothing to relink.
            if depth[node] <= 2 or node in fail_children:
                self._relink(node, new, value[i : i + 3])
            node = new
        self._raise_best(node, len(value))

    def _add_child(self, node: int, ch: str, new: int) -> None:
        if not self._first[node]:
            self._first_to[node] = new
            self._first[node] = ch  # last: this publishes the edge
        elif (children := self._goto[node]) is _NO_CHILDREN:
            self._goto[node] = {ch: new}
        else:
            children[ch] = new

    def _relink(self, parent: int, new: int, head: str) -> None:
        """Point at ``new`` every node whose longest proper suffix in the trie is now ``new``.

        Those are the nodes whose string starts with ``new``'s (as read right to left: ends with it) and
        whose failure link is shorter. Up to depth 3 they are looked up by their first characters;
        deeper, they are the ``ch``-children of the nodes whose string starts with ``parent``'s, that is of
        ``parent``'s subtree in the failure tree. Below a node that already has a ``ch``-child nothing
        changes (those children start with a longer string than ``new``), so the walk stops there.
        """
        fail, depth = self._fail, self._depth
        level, ch = depth[new], head[0]
        candidates: Iterable[int]
        if level == 1:  # rare: a character no secret ended with before
            candidates = [x for key, xs in self._by_first_two.items() if key[0] == ch for x in xs]
        elif level == 2:
            candidates = self._by_first_two.get(head[:2], ())
        elif level == 3:
            third, c3 = self._third, head[2]
            candidates = [x for x in self._by_first_two.get(head[:2], ()) if third[x] == c3]
        else:
            # The hot loop of a registration, hence inlined.
            first, first_to, goto, children = self._first, self._first_to, self._goto, self._fail_children
            candidates = []
            stack = [parent]
            while stack:
                y = stack.pop()
                x = first_to[y] if first[y] == ch else goto[y].get(ch)
                if x is None or y == parent:
                    below = children.get(y)
                    if below is not None:
                        stack += [z for z in below if fail[z] == y]
                else:
                    candidates.append(x)
        # Applied after the walk, which must see the failure tree as it was before this node.
        for x in [x for x in candidates if x != new and depth[fail[x]] < level]:
            fail[x] = new
            _append(self._fail_children, new, x)

    def _raise_best(self, node: int, length: int) -> None:
        """A secret of ``length`` ends at ``node``: every node whose string starts with it can match it."""
        best, fail, children = self._best, self._fail, self._fail_children
        stack = [node]
        while stack:
            y = stack.pop()
            # `best` never shrinks down the failure tree, so a subtree already this long is left alone.
            if best[y] < length:
                best[y] = length
                stack.extend(z for z in children.get(y, ()) if fail[z] == y)


def _append(lists: dict[_K, list[int]], key: _K, item: int) -> None:
    entries = lists.get(key)
    if entries is None:
        lists[key] = [item]
    else:
        entries.append(item)


class _RedactingFilter(logging.Filter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = self._redactor.redact(message)
        record.args = None
        if record.exc_text:
            record.exc_text = self._redactor.redact(record.exc_text)
        return True
