"""Fetching a remote ``image_url`` from an allowlisted host without becoming a request-forgery proxy.

Nothing is fetched unless an operator named the host. Even then every hop is checked the same way: the
scheme is ``http`` or ``https``, the host is on the allowlist, and *every* address the host resolves to is a
public one (never loopback, private, link-local such as the instance metadata service at 169.254.169.254,
carrier-grade NAT, multicast or reserved, including IPv4 addresses hidden in IPv6 forms). The connection then
goes to the address that was checked, not to a second lookup, so DNS rebinding cannot swap in an internal
address between check and use; TLS still verifies the certificate against the host name. Redirects are
followed by hand, each one checked again; the body is read in pieces and refused past the byte limit, and
the whole fetch has a deadline.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

from pagescribe.errors import ImageTooLarge, InvalidRequest

#: host, port -> the IP addresses (as text) the host name resolves to.
Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SCHEMES = ("http", "https")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# NAT64's well-known prefix carries an IPv4 address in its last 32 bits.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# getaddrinfo has no timeout of its own; lookups run here so a hanging resolver cannot hold a request.
_RESOLVER_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pagescribe-dns")


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, through the system resolver."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class RemoteFetcher:
    """Fetches image bytes from the hosts in ``allowed_hosts``; see the module docstring.

    ``resolver`` and ``transport`` are there for tests (a fake DNS, an ``httpx.MockTransport``).
    """

    allowed_hosts: frozenset[str] = frozenset()
    max_bytes: int = 20 * 1024 * 1024
    timeout_s: float = 10.0
    max_redirects: int = 3
    resolver: Resolver = field(default=system_resolver, compare=False, repr=False)
    transport: httpx.BaseTransport | None = field(default=None, compare=False, repr=False)

    def fetch(self, url: str, *, source: str) -> bytes:
        """The body at ``url``; ``InvalidRequest`` when refused or when the fetch fails, ``ImageTooLarge``
        past ``max_bytes``. What the bytes are is for the image decoder to say."""
        deadline = time.monotonic() + self.timeout_s
        current = _parse(url, source=source)
        with self._client() as client:
            for _ in range(self.max_redirects + 1):
                address = self.check(current, source=source)
                with _fetch_errors(current, source=source):
                    response = client.send(_pinned(current, address), stream=True)
                    try:
                        if response.status_code not in _REDIRECTS:
                            return self._body(response, current, source=source, deadline=deadline)
                        current = _redirect_target(response, current, source=source)
                    finally:
                        response.close()
        raise InvalidRequest(f"{source}: more than {self.max_redirects} redirects from {_shown(current)}", param=source)

    def check(self, url: httpx.URL, *, source: str) -> IPAddress:
        """The public address to connect to for ``url``, or ``InvalidRequest`` saying why it is refused."""
        host = url.host.lower().rstrip(".")
        if url.scheme not in _SCHEMES:
            raise refused(source, f"a {url.scheme}: URL")
        if host not in self.allowed_hosts:
            raise refused(source, f"host {host!r} is not in the allowed image hosts")
        addresses = self._resolve(host, url.port or (443 if url.scheme == "https" else 80), source=source)
        private = [str(a) for a in addresses if not is_public_address(a)]
        if private:
            raise refused(source, f"host {host!r} resolves to a non-public address ({', '.join(private[:3])})")
        return addresses[0]

    def _resolve(self, host: str, port: int, *, source: str) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass  # a name, not an address literal
        future = _RESOLVER_POOL.submit(self.resolver, host, port)
        try:
            found = future.result(timeout=self.timeout_s)
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
        except FutureTimeout as exc:
            raise InvalidRequest(f"{source}: resolving {host!r} timed out", param=source) from exc
        except (OSError, ValueError, UnicodeError) as exc:
            raise InvalidRequest(f"{source}: cannot resolve host {host!r}", param=source) from exc
        if not addresses:
            raise InvalidRequest(f"{source}: cannot resolve host {host!r}", param=source)
        return addresses

    def _client(self) -> httpx.Client:
        # trust_env=False: an HTTP(S)_PROXY variable must not route the request around the address check.
        return httpx.Client(
            transport=self.transport or httpx.HTTPTransport(retries=0),
            timeout=httpx.Timeout(self.timeout_s),
            follow_redirects=False,
            trust_env=False,
        )

    def _body(self, response: httpx.Response, url: httpx.URL, *, source: str, deadline: float) -> bytes:
        if response.status_code != 200:
            raise InvalidRequest(f"{source}: {_shown(url)} answered HTTP {response.status_code}", param=source)
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise ImageTooLarge(_too_large(source, int(declared), self.max_bytes), param=source)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise ImageTooLarge(_too_large(source, size, self.max_bytes, at_least=True), param=source)
            if time.monotonic() > deadline:
                raise InvalidRequest(f"{source}: fetching {_shown(url)} took over {self.timeout_s:g} s", param=source)
            chunks.append(chunk)
        return b"".join(chunks)


def is_public_address(address: IPAddress) -> bool:
    """True only for globally routable unicast addresses, looking inside IPv6 forms that embed IPv4."""
    if address.is_multicast or not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = [address.ipv4_mapped, address.sixtofour, address.teredo[1] if address.teredo else None]
        if address in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        return all(is_public_address(e) for e in embedded if e is not None)
    return True


def _parse(url: str, *, source: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise InvalidRequest(f"{source}: not a valid URL", param=source) from exc
    if not parsed.host and parsed.scheme in _SCHEMES:
        raise InvalidRequest(f"{source}: the URL has no host", param=source)
    return parsed


def _pinned(url: httpx.URL, address: IPAddress) -> httpx.Request:
    """A GET of ``url`` sent to ``address``: Host header and TLS name stay the host's own."""
    host = url.raw_host.decode("ascii")
    host_header = host if url.port is None else f"{host}:{url.port}"
    return httpx.Request(
        "GET",
        url.copy_with(host=str(address)),
        headers={"Host": host_header, "Accept": "image/*"},
        extensions={"sni_hostname": host},
    )


def _redirect_target(response: httpx.Response, url: httpx.URL, *, source: str) -> httpx.URL:
    location = response.headers.get("location")
    if not location:
        raise InvalidRequest(f"{source}: {_shown(url)} redirected without a Location", param=source)
    return _parse(str(url.join(location)), source=source)


@contextmanager
def _fetch_errors(url: httpx.URL, *, source: str) -> Iterator[None]:
    try:
        yield
    except httpx.TimeoutException as exc:
        raise InvalidRequest(f"{source}: fetching {_shown(url)} timed out", param=source) from exc
    except httpx.HTTPError as exc:
        raise InvalidRequest(f"{source}: cannot fetch {_shown(url)}: {type(exc).__name__}", param=source) from exc


def refused(source: str, why: str) -> InvalidRequest:
    """The 400 for a remote URL this server will not fetch, saying why and what to send instead."""
    return InvalidRequest(
        f"{source}: remote image URLs are refused ({why}); send the image inline as a data: URI", param=source
    )


def _shown(url: httpx.URL) -> str:
    # Scheme, host and path only: query strings often carry signatures that do not belong in logs.
    text = f"{url.scheme}://{url.host}{url.path}"
    return text if len(text) <= 120 else text[:117] + "..."


def _too_large(source: str, size: int, limit: int, *, at_least: bool = False) -> str:
    prefix = "at least " if at_least else ""
    return f"{source}: the fetched image is {prefix}{size:,} bytes, over the limit of {limit:,} bytes"
