"""The ``cloudwatch_logs`` connector: a CloudWatch Logs log group (or an AWS-compatible server's), searched
with FilterLogEvents.

```yaml
logs:
  type: cloudwatch_logs
  log_group: /vault/audit
  log_stream_prefix: staging-          # optional: only streams whose name starts with this
  region: eu-west-1
  credentials: {method: assume_role, role_arn: "arn:aws:iam::111111111111:role/siem-reader"}
  # endpoint_url: http://127.0.0.1:5000   # an AWS-compatible server (the lab's moto)
  # time_field: time                   # the JSON record's own time; else the log event's timestamp
  # page_size: 1000                    # FilterLogEvents `limit`, 1-10,000 events per page
```

One search is one FilterLogEvents query, followed page by page (``nextToken``) until CloudWatch gives no
token, over the query window (``startTime``/``endTime`` in epoch milliseconds). Its ``filterPattern`` is the
quoted longest common prefix of the pending correlation ids (every id of a run starts ``pp-<run>-``), so one
query stands for all of them: an OR of the ids (``?"id1" ?"id2"``) would not fit CloudWatch's 1,024-character
pattern limit for a run with many steps, and moto silently matches everything with it. The events found are
then kept only where they carry one of the ids as a whole token (:func:`~.connector.correlation_ids_in`).

A JSON message becomes its flattened fields; any other message carrying an id becomes one field,
``message``. An event's time is the record's ``time_field`` when it has one, else the log event's
``timestamp``; its ``ingested_at`` is CloudWatch's ``ingestionTime``.

Credentials are the ``aws`` section's kinds (``default``, ``profile``, ``static``, ``assume_role``,
``web_identity``; see :mod:`parityprobe.probes.aws.settings`), with permission ``logs:FilterLogEvents`` on
the group. A log group that does not exist is no answer (an error), never "no events".
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from parityprobe.config.environments import http_address

# mypy checks probes/ as its own tree (mypy_path is src): the mapped package is not resolvable here.
from parityprobe.probes.aws.settings import (  # type: ignore[import-not-found]
    AwsCredentials,
    AwsDefaultCredentials,
    AwsWebIdentityCredentials,
)
from parityprobe.siem.connector import ConnectorSettings, SiemConnector

# CloudWatch's own rule for a log group name.
_LOG_GROUP = re.compile(r"[.\-_/#A-Za-z0-9]{1,512}")


class CloudWatchLogsSettings(ConnectorSettings):
    """A log group (``log_group``, optionally only the streams named ``log_stream_prefix``...), in
    ``region``, reached at ``endpoint_url`` when it is not AWS itself, as ``credentials``; the JSON field
    holding each record's time (``time_field``, dotted) and how many events one page asks for
    (``page_size``)."""

    name: ClassVar[str] = "cloudwatch_logs"
    type: Literal["cloudwatch_logs"]
    log_group: str
    log_stream_prefix: str | None = Field(default=None, min_length=1, max_length=512)
    region: str = Field(min_length=1)
    endpoint_url: str | None = None
    credentials: AwsCredentials = Field(default_factory=AwsDefaultCredentials)
    time_field: str = Field(default="time", min_length=1)
    page_size: int = Field(default=1000, ge=1, le=10_000)

    @field_validator("log_group")
    @classmethod
    def _log_group(cls, v: str) -> str:
        if not _LOG_GROUP.fullmatch(v):
            raise ValueError("a log group name is 1-512 letters, digits, '.', '-', '_', '/' or '#'")
        return v

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        return None if v is None else http_address(v)

    def connect(self) -> SiemConnector:
        from parityprobe.siem._cloudwatch import CloudWatchLogsConnector

        return CloudWatchLogsConnector(self)

    def resolve_paths(self, base_dir: Path) -> None:
        if isinstance(self.credentials, AwsWebIdentityCredentials):
            # As the aws section does: absolute, symlinks kept (a kubelet replaces the target at rotation).
            token_file = Path(self.credentials.token_file).expanduser()
            self.credentials.token_file = os.path.abspath(base_dir / token_file)
