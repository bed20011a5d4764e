"""S3 locations and the few object operations the AWS helpers and the async-endpoint client share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from pagescribe.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class S3Location:
    """A bucket and a key prefix that is empty or ends with ``/``."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        """Parse ``s3://bucket/prefix``; the prefix gets a trailing slash."""
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise InvalidRequest(f"not an s3://bucket/prefix URI: {uri!r}", param="s3")
        prefix = parsed.path.strip("/")
        return cls(parsed.netloc, f"{prefix}/" if prefix else "")

    def uri(self, name: str = "") -> str:
        return f"s3://{self.bucket}/{self.prefix}{name}"

    def key(self, name: str) -> str:
        return self.prefix + name


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` as (bucket, key)."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise InvalidRequest(f"not an s3://bucket/key URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def read_object(s3: Any, uri: str) -> bytes | None:
    """The object's bytes, or ``None`` when there is no such object (yet)."""
    from botocore.exceptions import ClientError

    bucket, key = split_uri(uri)
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None
        raise
    return body


def write_object(s3: Any, uri: str, body: bytes, *, content_type: str = "application/json") -> None:
    bucket, key = split_uri(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


def exists(s3: Any, uri: str) -> bool:
    from botocore.exceptions import ClientError

    bucket, key = split_uri(uri)
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return False
        raise
    return True
