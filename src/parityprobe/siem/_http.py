"""What every HTTP SIEM connector shares: one httpx client per connector, each request bounded by the
connector's ``timeout_seconds``, and every way a request can fail mapped once to :class:`SiemUnavailable`
or :class:`SiemThrottled`.

Imported by a connector's ``connect()`` (never by a settings module: it imports httpx). Reasons are short
fixed phrases of ours, naming the connector type and the SIEM's host: never a response body (an error page
can echo the request, credentials included), never a header, never the base URL's user info.

Mapping (:data:`TRANSPORT_ERRORS` for transport failures, :func:`check_status` for replies):

- no connection, DNS failure, TLS failure → ``UNREACHABLE``;
- no answer (or no complete answer) within ``timeout_seconds`` → ``TIMEOUT``;
- 429, or 503 with ``Retry-After`` (Splunk's "search quota exceeded") → :class:`SiemThrottled` with the
  ``Retry-After`` seconds (delta or HTTP date), or None when the SIEM did not say;
- 401, 403 (credentials refused), any other 4xx, a redirect (never followed: it would carry our
  credentials elsewhere), 5xx, a body that is not the JSON promised → ``TARGET_ERROR``;
- a CA file that cannot be loaded → ``HARNESS_ERROR`` (the configuration's fault, raised by ``connect()``).
"""

from __future__ import annotations

import base64
import json
import ssl
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from parityprobe.model import ErrorKind
from parityprobe.siem.connector import SiemThrottled, SiemUnavailable, parse_time

# A reply larger than this is not read to its end: a query matching this much is not a correlation lookup.
MAX_REPLY_BYTES = 64 * 1024 * 1024

# (exception class, kind, phrase), most specific first: ConnectTimeout is a timeout, not a connect error.
TRANSPORT_ERRORS: tuple[tuple[type[Exception], ErrorKind, str], ...] = (
    (httpx.TimeoutException, ErrorKind.TIMEOUT, "timed out"),
    (ssl.SSLError, ErrorKind.UNREACHABLE, "tls handshake failed"),
    (httpx.ProxyError, ErrorKind.UNREACHABLE, "proxy unreachable"),
    (httpx.ConnectError, ErrorKind.UNREACHABLE, "connection failed"),
    (httpx.ReadError, ErrorKind.TARGET_ERROR, "connection lost"),
    (httpx.WriteError, ErrorKind.TARGET_ERROR, "connection lost"),
    (httpx.CloseError, ErrorKind.TARGET_ERROR, "connection lost"),
    (httpx.NetworkError, ErrorKind.UNREACHABLE, "network error"),
    (httpx.RemoteProtocolError, ErrorKind.TARGET_ERROR, "malformed http response"),
    (httpx.LocalProtocolError, ErrorKind.HARNESS_ERROR, "invalid request"),
    (httpx.UnsupportedProtocol, ErrorKind.HARNESS_ERROR, "unsupported url scheme"),
    (httpx.ProtocolError, ErrorKind.TARGET_ERROR, "http protocol error"),
    (httpx.TransportError, ErrorKind.UNREACHABLE, "transport error"),
    (httpx.DecodingError, ErrorKind.TARGET_ERROR, "response not decodable"),
    (httpx.TooManyRedirects, ErrorKind.TARGET_ERROR, "too many redirects"),
    (httpx.RequestError, ErrorKind.TARGET_ERROR, "http error"),
    (httpx.HTTPError, ErrorKind.TARGET_ERROR, "http error"),
    (httpx.InvalidURL, ErrorKind.HARNESS_ERROR, "invalid url"),
    (httpx.StreamError, ErrorKind.HARNESS_ERROR, "response stream misused"),
    (httpx.CookieConflict, ErrorKind.HARNESS_ERROR, "cookie conflict"),
)


def basic_credentials(username: str, password: str) -> str:
    """An ``Authorization: Basic`` header value (RFC 7617)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date (RFC 9110 §10.2.3); None when
    absent or unreadable; never negative."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def parse_when(value: Any) -> datetime | None:
    """An event time as :func:`~parityprobe.siem.connector.parse_time` reads it, and also epoch seconds or
    milliseconds written as text (``"1732266000.123"``, Splunk's ``_indextime``, flattened numbers); None for
    a number out of range rather than an exception."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return parse_time(value)
    try:
        return parse_time(value)
    except (OverflowError, OSError, ValueError):  # an epoch number out of range (or NaN)
        return None


def check_status(response: httpx.Response, label: str) -> None:
    """Raise what a non-2xx reply means (see the module docstring); the body is never quoted."""
    status = response.status_code
    if 200 <= status < 300:
        return
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    if status == 429 and retry_after is None:
        # Datadog says when its rate-limit window resets, in seconds, instead of Retry-After.
        retry_after = retry_after_seconds(response.headers.get("X-RateLimit-Reset"))
    if status == 429 or (status == 503 and retry_after is not None):
        raise SiemThrottled(f"{label}: throttled (HTTP {status})", retry_after)
    if status == 401:
        raise SiemUnavailable(f"{label}: credentials refused (HTTP 401)", ErrorKind.TARGET_ERROR)
    if status == 403:
        raise SiemUnavailable(f"{label}: access refused (HTTP 403)", ErrorKind.TARGET_ERROR)
    if 300 <= status < 400:
        raise SiemUnavailable(f"{label}: unexpected redirect (HTTP {status})", ErrorKind.TARGET_ERROR)
    if status >= 500:
        raise SiemUnavailable(f"{label}: server error (HTTP {status})", ErrorKind.TARGET_ERROR)
    raise SiemUnavailable(f"{label}: request refused (HTTP {status})", ErrorKind.TARGET_ERROR)


def transport_failure(exc: BaseException, label: str) -> SiemUnavailable:
    """The :class:`SiemUnavailable` for an exception raised while sending or reading (first match in
    :data:`TRANSPORT_ERRORS`; a TLS failure is found down the cause chain)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            exc = cause
            break
        cause = cause.__cause__ or cause.__context__
    for cls, kind, phrase in TRANSPORT_ERRORS:
        if isinstance(exc, cls):
            return SiemUnavailable(f"{label}: {phrase}", kind)
    return SiemUnavailable(f"{label}: http error", ErrorKind.TARGET_ERROR)


def malformed(label: str, what: str) -> SiemUnavailable:
    """A reply of the wrong shape: ``what`` is a fixed phrase of ours (``"no hits.hits list"``)."""
    return SiemUnavailable(f"{label}: malformed reply ({what})", ErrorKind.TARGET_ERROR)


class HttpSiem:
    """One connector's HTTP client: ``base_url``, fixed ``headers`` (its credentials), TLS verification
    (``verify`` on or off, ``ca_cert`` a PEM bundle), ``timeout`` seconds for each whole request — connect,
    send and read the complete reply, however slowly the server trickles it.

    ``label`` (the connector type) starts every reason, followed by the SIEM's host and port.
    """

    def __init__(
        self,
        base_url: str,
        *,
        label: str,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        verify: bool = True,
        ca_cert: str | None = None,
    ) -> None:
        url = httpx.URL(base_url)
        port = f":{url.port}" if url.port is not None else ""
        self.label = f"{label} {url.host}{port}"
        self.timeout = timeout
        tls: ssl.SSLContext | bool = verify
        if verify and ca_cert is not None:
            try:
                tls = ssl.create_default_context(cafile=ca_cert)
            except (OSError, ssl.SSLError):
                raise SiemUnavailable(
                    f"{self.label}: cannot load CA file {ca_cert}", ErrorKind.HARNESS_ERROR
                ) from None
        self._client = httpx.Client(
            base_url=base_url,
            headers=dict(headers or {}),
            timeout=httpx.Timeout(timeout),
            verify=tls,
            follow_redirects=False,
            trust_env=False,
        )

    def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        """The whole body of a 2xx reply; raises :class:`SiemUnavailable` / :class:`SiemThrottled`."""
        deadline = time.monotonic() + self.timeout
        try:
            with self._client.stream(
                method, path, params=params, data=data, json=json_body, headers=headers
            ) as response:
                check_status(response, self.label)
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > MAX_REPLY_BYTES:
                        raise SiemUnavailable(
                            f"{self.label}: reply larger than {MAX_REPLY_BYTES // (1024 * 1024)} MiB",
                            ErrorKind.TARGET_ERROR,
                        )
                    # The read timeout bounds each wait for bytes; this bounds the whole reply.
                    if time.monotonic() > deadline:
                        raise SiemUnavailable(f"{self.label}: timed out", ErrorKind.TIMEOUT)
                    chunks.append(chunk)
                return b"".join(chunks)
        except SiemUnavailable:
            raise
        except (
            httpx.HTTPError,
            httpx.InvalidURL,
            httpx.StreamError,
            httpx.CookieConflict,
            ssl.SSLError,
        ) as exc:
            raise transport_failure(exc, self.label) from None

    def send_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """The parsed JSON body of a 2xx reply; a body that is not JSON is :func:`malformed`."""
        body = self.send(method, path, params=params, data=data, json_body=json_body, headers=headers)
        try:
            return json.loads(body)
        except ValueError:  # UnicodeDecodeError is a ValueError too
            raise malformed(self.label, "not json") from None

    def close(self) -> None:
        self._client.close()
