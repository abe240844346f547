"""Secret references: configuration names where a secret lives (``{env: NAME}`` or ``{file: PATH}``), never
the secret itself."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr, model_validator

from parityprobe.secret import Secret

LITERAL_REFUSED = "a secret field takes a reference, {env: VARIABLE} or {file: PATH}, never a literal value"


class SecretRef(BaseModel):
    """``{env: NAME}`` or ``{file: PATH}``; resolved once, at load time, into a :class:`Secret`."""

    model_config = ConfigDict(extra="forbid")

    env: str | None = None
    file: str | None = None
    _secret: Secret | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _refuse_literals(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(LITERAL_REFUSED)
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' or 'file'")
        return self

    def describe(self) -> str:
        return f"environment variable {self.env}" if self.env is not None else f"file {self.file}"

    def resolve(self, base_dir: Path, label: str) -> Secret:
        """Read the secret; raises ValueError with a message fit for the user when it is missing."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None or value == "":
                raise ValueError(f"environment variable {self.env} is not set")
        else:
            assert self.file is not None
            path = Path(self.file).expanduser()
            if not path.is_absolute():
                path = base_dir / path
            try:
                value = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None
            if not value:
                raise ValueError(f"secret file {path} is empty")
        self._secret = Secret(value, label)
        return self._secret

    def secret(self) -> Secret:
        """The resolved value; the loader resolves every reference before anything runs."""
        if self._secret is None:
            raise RuntimeError(f"secret reference to {self.describe()} was not resolved")
        return self._secret
