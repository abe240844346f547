"""S3 probe: read one object."""

from __future__ import annotations

import time
from types import MappingProxyType

from botocore.exceptions import ReadTimeoutError
from pydantic import Field

from parityprobe.model import Grant
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult

from .client import AwsProbe, step_client
from .declared import DeclaresSimulated
from .simulator import Question, s3_arn

_CHUNK = 64 * 1024


class S3GetObjectParams(ProbeParams):
    """The bucket and the object key to read."""

    bucket: str = Field(min_length=3, max_length=63)
    key: str = Field(min_length=1, max_length=1024)


class S3GetObject(DeclaresSimulated, AwsProbe):
    """``s3:GetObject`` of ``bucket``/``key``, reading the body to the end and discarding it.

    The timer covers the call and the read: a reply whose body never arrives is not a success. Each read
    waits at most what was left of the step when the request was sent, but a body can keep trickling in:
    one still arriving at the step's deadline is cut at the next chunk, as a read timeout.
    Grant: nothing beyond the decision (the caller's identity is ``aws.caller_identity``'s).
    Outputs: ``etag`` (as S3 returns it, quoted), ``content_length`` (the bytes read) and ``version_id``
    (empty unless the bucket is versioned; random per environment, so never compared), plain strings.
    ``crosscheck: simulator`` asks for ``s3:GetObject`` on the object's ARN (the bucket policy is not
    simulated).
    """

    name = "aws.s3_get_object"
    Params = S3GetObjectParams
    outputs = frozenset({"etag", "content_length", "version_id"})
    secret_outputs: frozenset[str] = frozenset()

    def question(self, params: S3GetObjectParams) -> Question:
        return Question("s3:GetObject", s3_arn(params.bucket, params.key))

    def run(self, params: S3GetObjectParams, ctx: ProbeContext) -> ProbeResult:
        read = 0
        with step_client(ctx, "s3") as s3, ctx.timer:
            reply = s3.get_object(Bucket=params.bucket, Key=params.key)
            body = reply["Body"]
            try:
                for chunk in body.iter_chunks(_CHUNK):
                    read += len(chunk)
                    if time.monotonic() > ctx.deadline:
                        raise ReadTimeoutError(endpoint_url=s3.meta.endpoint_url)
            finally:
                body.close()
        return ProbeResult(
            grant=Grant(),
            outputs=MappingProxyType(
                {
                    "etag": reply.get("ETag", ""),
                    "content_length": str(read),
                    "version_id": reply.get("VersionId", ""),
                }
            ),
        )
