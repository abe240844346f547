"""Secret references: configuration names where a secret lives (``{env: NAME}`` or ``{file: PATH}``), never
the secret itself."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr, model_validator

from parityprobe.secret import Secret

# A secret is a token, a key or a password: a file far larger than that is the wrong file.
MAX_SECRET_FILE_BYTES = 64 * 1024

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
            value = _read_secret_file(self.file, base_dir)
        self._secret = Secret(value, label)
        return self._secret

    def secret(self) -> Secret:
        """The resolved value; the loader resolves every reference before anything runs."""
        if self._secret is None:
            raise RuntimeError(f"secret reference to {self.describe()} was not resolved")
        return self._secret


def _read_secret_file(name: str, base_dir: Path) -> str:
    """The stripped text of a secret file; ValueError fit for the user when it cannot be a secret."""
    try:
        path = Path(name).expanduser()
    except RuntimeError:  # "~" with no home directory to expand it to
        raise ValueError(f"cannot expand {name!r}: no home directory is known") from None
    if not path.is_absolute():
        path = base_dir / path
    try:
        # Opening a FIFO or a device would block or stream forever: only regular files are secrets.
        if not stat.S_ISREG(path.stat().st_mode):
            raise ValueError(f"secret file {path} is not a regular file")
        with path.open("rb") as stream:
            raw = stream.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None
    if len(raw) > MAX_SECRET_FILE_BYTES:
        raise ValueError(f"secret file {path} is larger than {MAX_SECRET_FILE_BYTES // 1024} KiB")
    try:
        value = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"secret file {path} is not UTF-8 text") from None
    if not value:
        raise ValueError(f"secret file {path} is empty")
    return value
