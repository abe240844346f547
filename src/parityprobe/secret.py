"""The secret type: tokens, secret values and credentials are wrapped in it from the moment they are read."""

from __future__ import annotations

from typing import Any, NoReturn

_MASK = "***"


class Secret:
    """An opaque secret value.

    ``str()``, ``repr()`` and f-strings show a mask, never the value; only :meth:`reveal` gives the value,
    and only the code that sends it to its target should call it. Equality compares values without
    exposing them, so tests can check a secret output was passed on.
    """

    __slots__ = ("_label", "_value")

    def __init__(self, value: str, label: str = "secret") -> None:
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value: str | None = value
        self._label = label

    @classmethod
    def withheld(cls, label: str) -> Secret:
        """A secret whose value was never recorded (read back from a report or a store): it has a label
        and no value, and :meth:`reveal` refuses."""
        secret = cls("", label)
        secret._value = None
        return secret

    @property
    def label(self) -> str:
        """A non-secret name for the value (``vault token``, ``aws secret key``…), for messages."""
        return self._label

    def reveal(self) -> str:
        """The plain value. Call it only at the point where the value is sent to its target."""
        if self._value is None:
            raise ValueError(f"the value of this {self._label} was not recorded")
        return self._value

    def __str__(self) -> str:
        return _MASK

    def __repr__(self) -> str:
        return f"Secret({self._label}: {_MASK})"

    def __format__(self, spec: str) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")

    def __getstate__(self) -> Any:
        raise TypeError("a Secret cannot be serialised")
