"""Images as they arrive on the wire: base64 fields, ``data:`` URIs, and (refused) remote URLs."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field

from pagescribe.errors import InvalidRequest
from pagescribe.images import ImageLimits, decode_base64_image
from pagescribe.types import ImageInput


@dataclass(frozen=True)
class MediaPolicy:
    """How far the server trusts image inputs: size limits, and which hosts a remote ``image_url`` may name.

    An empty ``allowed_hosts`` (the default) refuses every remote URL: fetching arbitrary URLs from inside a
    VPC is a server-side request forgery waiting to happen.
    """

    limits: ImageLimits = field(default_factory=ImageLimits)
    allowed_hosts: frozenset[str] = frozenset()


def decode_inline(text: str, *, policy: MediaPolicy, source: str) -> ImageInput:
    """A base64 string (standard or URL-safe, padding optional) or a ``data:image/...;base64,`` URI."""
    return decode_base64_image(text, limits=policy.limits, source=source, param=source)


def decode_url(url: str, *, policy: MediaPolicy, source: str) -> ImageInput:
    """An OpenAI ``image_url``: ``data:`` URIs are decoded; remote URLs pass only the host allowlist."""
    scheme = url.lstrip()[:16].partition(":")[0].lower()
    if scheme == "data":
        return decode_inline(url, policy=policy, source=source)
    if scheme not in ("http", "https", "file"):
        # Some clients put bare base64 in image_url; it carries no scheme at all.
        return decode_inline(url, policy=policy, source=source)
    host = (urllib.parse.urlsplit(url.strip()).hostname or "").lower()
    if scheme == "file" or host not in policy.allowed_hosts:
        shown = f"host {host!r}" if host else f"a {scheme}: URL"
        raise InvalidRequest(
            f"{source}: remote image URLs are refused ({shown} is not in the allowed image hosts); "
            "send the image inline as a data: URI",
            param=source,
        )
    raise InvalidRequest(
        f"{source}: fetching remote images is not supported by this server yet; send a data: URI",
        param=source,
    )
