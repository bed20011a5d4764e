"""Images as they arrive on the wire: base64 fields, ``data:`` URIs, and remote URLs (refused by default)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import httpx

from pagescribe.errors import PayloadTooLarge
from pagescribe.images import ImageLimits, decode_base64_image, decode_image
from pagescribe.types import ImageInput
from pagescribe.wire.fetch import RemoteFetcher, Resolver, refused, system_resolver

#: The most images one request may carry (all its dialogs together) unless the server says otherwise.
DEFAULT_MAX_IMAGES = 64
# Base64 never holds ':', so text that starts with "scheme:" is a URL (or a data: URI), never image data.
_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9+.\-]{0,31}):")


@dataclass(frozen=True)
class MediaPolicy:
    """How far the server trusts image inputs: size limits, and which hosts a remote URL may name.

    An empty ``allowed_hosts`` (the default) refuses every remote URL: fetching arbitrary URLs from inside a
    VPC is a server-side request forgery waiting to happen. With hosts named, ``RemoteFetcher`` fetches from
    them only, and only from public addresses, within ``fetch_timeout_s`` and ``limits.max_bytes``.
    ``resolver`` and ``transport`` replace DNS and the network in tests.
    """

    limits: ImageLimits = field(default_factory=ImageLimits)
    allowed_hosts: frozenset[str] = frozenset()
    fetch_timeout_s: float = 10.0
    max_images: int = DEFAULT_MAX_IMAGES
    resolver: Resolver = field(default=system_resolver, compare=False, repr=False)
    transport: httpx.BaseTransport | None = field(default=None, compare=False, repr=False)

    @property
    def fetcher(self) -> RemoteFetcher:
        return RemoteFetcher(
            allowed_hosts=self.allowed_hosts,
            max_bytes=self.limits.max_bytes,
            timeout_s=self.fetch_timeout_s,
            resolver=self.resolver,
            transport=self.transport,
        )

    def check_image_count(self, count: int, *, param: str) -> None:
        """Refuse a request with more images than ``max_images`` before any of them is decoded."""
        if count > self.max_images:
            raise PayloadTooLarge(
                f"the request carries {count:,} images, over the limit of {self.max_images:,} per request",
                param=param,
            )


def decode_inline(text: str, *, policy: MediaPolicy, source: str) -> ImageInput:
    """A base64 string (standard or URL-safe, padding optional) or a ``data:image/...;base64,`` URI.

    A URL gets the same treatment as an OpenAI ``image_url`` (see ``decode_url``).
    """
    scheme = _scheme(text)
    if scheme is not None and scheme != "data":
        return _decode_remote(text, scheme, policy=policy, source=source)
    return decode_base64_image(text, limits=policy.limits, source=source, param=source)


def decode_url(url: str, *, policy: MediaPolicy, source: str) -> ImageInput:
    """An OpenAI ``image_url``: ``data:`` URIs (or bare base64) are decoded; remote URLs are fetched only from
    allowlisted hosts, over http or https."""
    return decode_inline(url, policy=policy, source=source)


def _scheme(text: str) -> str | None:
    found = _SCHEME.match(text[:48])
    return found.group(1).lower() if found else None


def _decode_remote(url: str, scheme: str, *, policy: MediaPolicy, source: str) -> ImageInput:
    if scheme not in ("http", "https"):
        raise refused(source, f"a {scheme}: URL")
    if not policy.allowed_hosts:
        raise refused(source, "this server fetches no remote images")
    data = policy.fetcher.fetch(url, source=source)
    return decode_image(data, limits=policy.limits, source=source, param=source)
