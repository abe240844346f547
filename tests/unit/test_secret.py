"""The secret type and the redactor."""

from __future__ import annotations

import logging
import pickle

import pytest

from parityprobe.redact import Redactor
from parityprobe.secret import Secret


def test_secret_never_renders() -> None:
    s = Secret("hvs.abcdefghijkl", "vault token")
    assert str(s) == "***" and f"{s}" == "***" and f"{s:>20}" == "***"
    assert "abcdefghijkl" not in repr(s) and "vault token" in repr(s)
    assert "abcdefghijkl" not in repr({"t": s}) and "abcdefghijkl" not in str([s])
    assert s.reveal() == "hvs.abcdefghijkl"
    assert s == Secret("hvs.abcdefghijkl") and s != Secret("other-value")
    with pytest.raises(TypeError):
        pickle.dumps(s)


def test_redactor_masks_known_values_longest_first() -> None:
    redactor = Redactor([Secret("abcdef123456"), Secret("abcdef")])
    assert redactor.redact("x=abcdef123456 y=abcdef") == "x=*** y=***"
    assert redactor.redact("nothing here") == "nothing here"
    redactor.register(Secret("abc"))  # too short to be told apart from ordinary words
    assert redactor.redact("abc") == "abc"


def test_logging_filter_redacts_messages_and_arguments(caplog: pytest.LogCaptureFixture) -> None:
    redactor = Redactor([Secret("s.0123456789abcdef")])
    logger = logging.getLogger("parityprobe.test")
    logger.addFilter(redactor.logging_filter())
    try:
        with caplog.at_level(logging.INFO, logger="parityprobe.test"):
            logger.info("token %s in url http://x/?t=%s", "s.0123456789abcdef", "s.0123456789abcdef")
    finally:
        logger.removeFilter(logger.filters[-1])
    assert caplog.messages == ["token *** in url http://x/?t=***"]
