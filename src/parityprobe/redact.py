"""The redactor: the last line of defence between secret values and every output.

Secrets are wrapped in :class:`~parityprobe.secret.Secret` so they never render; the redactor also knows
every secret value seen in an invocation (configuration references, probe outputs) and scrubs them from
any text that leaves the process: terminal, reports, logs and exception messages from SDKs, which may echo
what they were sent.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

from parityprobe.secret import Secret

MASK = "***"
# Shorter values would mask ordinary words; secrets this short are not secrets worth the name.
_MIN_LENGTH = 6


class Redactor:
    """Knows the secret values of one invocation and removes them from text."""

    def __init__(self, secrets: Iterable[Secret] = ()) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()
        for s in secrets:
            self.register(s)

    def register(self, secret: Secret) -> None:
        """Remember a secret's value so it is masked wherever it appears."""
        value = secret.reveal()
        if len(value) < _MIN_LENGTH:
            return
        with self._lock:
            if value not in self._values:
                self._values.add(value)
                self._pattern = None

    def redact(self, text: str) -> str:
        """``text`` with every known secret value replaced by ``***``."""
        pattern = self._compiled()
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    def _compiled(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._pattern is None and self._values:
                # Longest first, so a secret containing another is masked whole.
                alternatives = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in alternatives))
            return self._pattern

    def logging_filter(self) -> logging.Filter:
        """A filter that redacts log records before any handler formats them."""
        return _RedactingFilter(self)


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
