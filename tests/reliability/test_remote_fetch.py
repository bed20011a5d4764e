"""Remote image URLs: refused by default; with an allowlist, fetched only from public addresses, within limits.

DNS and the network are replaced where the test needs a "public" host (a fake resolver and an
``httpx.MockTransport``); the end-to-end tests use the real resolver and a real server on loopback, which
must never be reached.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import io
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from liveserver import running, serve_fake
from PIL import Image

from pagescribe.errors import ImageTooLarge, InvalidRequest
from pagescribe.images import ImageLimits
from pagescribe.wire.fetch import RemoteFetcher, is_public_address
from pagescribe.wire.media import MediaPolicy, decode_url

HOST = "images.example.com"
PUBLIC_IP = "93.184.216.34"


def png(size: tuple[int, int] = (12, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (0, 90, 200)).save(buffer, "PNG")
    return buffer.getvalue()


class Recorder:
    """A fake web: answers by URL path, remembers every request that reached it."""

    def __init__(self, routes: dict[str, httpx.Response]) -> None:
        self.routes = routes
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return self.routes.get(request.url.path, httpx.Response(404))


def policy(web: Recorder, *, dns: dict[str, list[str]] | None = None, **options: Any) -> MediaPolicy:
    table = {HOST: [PUBLIC_IP], **(dns or {})}

    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("Name or service not known")
        return table[host]

    allowed = options.pop("allowed_hosts", frozenset({HOST}))
    return MediaPolicy(allowed_hosts=allowed, resolver=resolve, transport=httpx.MockTransport(web), **options)


def test_an_allowlisted_public_host_is_fetched_on_the_checked_address() -> None:
    web = Recorder({"/page.png": httpx.Response(200, content=png())})
    image = decode_url(f"https://{HOST}/page.png?sig=secret", policy=policy(web), source="img")
    assert (image.width, image.height) == (12, 8)
    [request] = web.seen
    # The connection goes to the address that passed the check (no second DNS lookup to rebind), while the
    # Host header and the TLS server name stay the host's, so virtual hosting and certificates still work.
    assert request.url.host == PUBLIC_IP and request.headers["host"] == HOST
    assert request.extensions["sni_hostname"] == HOST


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.0.0.5", "172.16.3.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
        "255.255.255.255", "224.0.0.251", "198.18.0.1", "::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1",
        "2002:7f00:1::", "64:ff9b::a9fe:a9fe", "::",
    ],
)  # fmt: skip
def test_a_host_resolving_to_a_non_public_address_is_never_contacted(address: str) -> None:
    web = Recorder({"/a.png": httpx.Response(200, content=png())})
    with pytest.raises(InvalidRequest, match="non-public address"):
        decode_url(f"http://{HOST}/a.png", policy=policy(web, dns={HOST: [address]}), source="img")
    assert web.seen == []


def test_one_private_address_among_public_ones_is_enough_to_refuse() -> None:
    web = Recorder({"/a.png": httpx.Response(200, content=png())})
    dns = {HOST: [PUBLIC_IP, "10.1.2.3"]}
    with pytest.raises(InvalidRequest, match="non-public"):
        decode_url(f"http://{HOST}/a.png", policy=policy(web, dns=dns), source="img")
    assert web.seen == []


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/latest/meta-data/", "http://[::1]/a.png", "http://127.0.0.1:8080/a.png"],
)
def test_allowlisting_an_internal_address_literal_does_not_open_it(url: str) -> None:
    host = httpx.URL(url).host
    web = Recorder({})
    with pytest.raises(InvalidRequest, match="non-public"):
        decode_url(url, policy=policy(web, allowed_hosts=frozenset({host})), source="img")
    assert web.seen == []


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://cdn.example.org/a.png", "not in the allowed image hosts"),
        (f"ftp://{HOST}/a.png", "ftp: URL"),
        (f"file://{HOST}/etc/passwd", "file: URL"),
        (f"gopher://{HOST}/", "gopher: URL"),
    ],
)
def test_other_hosts_and_schemes_are_refused(url: str, why: str) -> None:
    web = Recorder({})
    with pytest.raises(InvalidRequest, match="remote image URLs are refused") as info:
        decode_url(url, policy=policy(web), source="img")
    assert why in info.value.message and web.seen == []


def test_with_no_allowlist_nothing_is_fetched_at_all() -> None:
    web = Recorder({"/a.png": httpx.Response(200, content=png())})
    with pytest.raises(InvalidRequest, match="fetches no remote images"):
        decode_url(f"https://{HOST}/a.png", policy=policy(web, allowed_hosts=frozenset()), source="img")
    assert web.seen == []


def test_redirects_are_followed_only_to_places_that_pass_the_same_checks() -> None:
    web = Recorder(
        {
            "/moved": httpx.Response(302, headers={"Location": "/page.png"}),
            "/to-metadata": httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}),
            "/to-internal-name": httpx.Response(301, headers={"Location": f"http://{HOST}.internal/x.png"}),
            "/to-other-host": httpx.Response(307, headers={"Location": "https://evil.example.net/x.png"}),
            "/loop": httpx.Response(302, headers={"Location": "/loop"}),
            "/page.png": httpx.Response(200, content=png()),
        }
    )
    allowed = frozenset({HOST, f"{HOST}.internal", "169.254.169.254"})
    checked = policy(web, dns={f"{HOST}.internal": ["10.0.0.7"]}, allowed_hosts=allowed)
    assert decode_url(f"https://{HOST}/moved", policy=checked, source="img").width == 12
    for path, why in [
        ("/to-metadata", "non-public"),
        ("/to-internal-name", "non-public"),
        ("/to-other-host", "not in the allowed"),
        ("/loop", "more than 3 redirects"),
    ]:
        with pytest.raises(InvalidRequest, match=why):
            decode_url(f"https://{HOST}{path}", policy=checked, source="img")
    assert {r.url.host for r in web.seen} == {PUBLIC_IP}  # no hop ever reached another address


def test_bodies_over_the_image_byte_limit_are_cut_off() -> None:
    limits = ImageLimits(max_bytes=10_000)
    declared = Recorder({"/big.png": httpx.Response(200, content=b"\0" * 50_000)})
    with pytest.raises(ImageTooLarge, match="50,000 bytes"):
        decode_url(f"https://{HOST}/big.png", policy=policy(declared, limits=limits), source="img")

    sent: list[int] = []

    def endless() -> Iterator[bytes]:
        while True:
            sent.append(4096)
            yield b"\0" * 4096

    undeclared = Recorder({"/stream.png": httpx.Response(200, content=endless())})
    with pytest.raises(ImageTooLarge, match="at least"):
        decode_url(f"https://{HOST}/stream.png", policy=policy(undeclared, limits=limits), source="img")
    assert sum(sent) < 20_000  # reading stopped at the limit, not at the end of the body


def test_slow_servers_and_slow_dns_run_into_the_deadline() -> None:
    def drip() -> Iterator[bytes]:
        for _ in range(50):
            time.sleep(0.05)
            yield b"\0"

    slow = Recorder({"/slow.png": httpx.Response(200, content=drip())})
    started = time.monotonic()
    with pytest.raises(InvalidRequest, match="took over"):
        decode_url(f"https://{HOST}/slow.png", policy=policy(slow, fetch_timeout_s=0.3), source="img")

    def hanging(host: str, port: int) -> list[str]:
        time.sleep(2)
        return [PUBLIC_IP]

    stuck = MediaPolicy(allowed_hosts=frozenset({HOST}), resolver=hanging, fetch_timeout_s=0.3)
    with pytest.raises(InvalidRequest, match="timed out"):
        decode_url(f"https://{HOST}/a.png", policy=stuck, source="img")
    assert time.monotonic() - started < 1.5

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    silent = MediaPolicy(
        allowed_hosts=frozenset({HOST}), resolver=lambda h, p: [PUBLIC_IP], transport=httpx.MockTransport(timeout)
    )
    with pytest.raises(InvalidRequest, match="timed out"):
        decode_url(f"https://{HOST}/a.png", policy=silent, source="img")


def test_fetch_failures_are_the_callers_400_without_the_query_string() -> None:
    web = Recorder({})
    with pytest.raises(InvalidRequest, match="answered HTTP 404") as info:
        decode_url(f"https://{HOST}/missing.png?X-Amz-Signature=abc123", policy=policy(web), source="img")
    assert "abc123" not in info.value.message
    unknown = policy(web, allowed_hosts=frozenset({"nowhere.example.com"}))
    with pytest.raises(InvalidRequest, match="cannot resolve"):
        decode_url("https://nowhere.example.com/a.png", policy=unknown, source="img")


def test_what_counts_as_public() -> None:
    assert is_public_address(ipaddress.ip_address("93.184.216.34"))
    assert is_public_address(ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946"))
    assert not is_public_address(ipaddress.ip_address("2002:0a00:0001::"))  # 6to4 wrapping 10.0.0.1


# -- end to end: a real server, the real resolver, a real listener that must stay untouched ----------------


class _Counting(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        body = png()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def bait() -> Iterator[str]:
    """An image server on loopback: what a forged request would reach."""
    _Counting.hits = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_allowlisted_name_that_resolves_to_loopback_is_refused_end_to_end(bait: str, tmp_path: Any) -> None:
    port = bait.split(":")[1]
    assert httpx.get(f"http://{bait}/x.png").status_code == 200 and _Counting.hits == 1  # the bait works
    settings = {"allowed_image_hosts": ["localhost", "127.0.0.1"]}
    with running(serve_fake(log_path=tmp_path / "server.log", settings=settings)) as server:
        server.wait_for_ping(200)
        for url in (f"http://localhost:{port}/x.png", f"http://{bait}/x.png"):
            body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]}
            response = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=30)
            assert response.status_code == 400, response.text
            assert "non-public address" in response.json()["error"]["message"]
        dialog = {"inputs": [[{"role": "user", "content": "x", "image": f"http://localhost:{port}/x.png"}]]}
        assert httpx.post(f"{server.url}/invocations", json=dialog, timeout=30).status_code == 400
    assert _Counting.hits == 1  # the server never fetched from it


def test_the_allowlist_setting_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from pagescribe.server.settings import ServerSettings

    monkeypatch.setenv("PAGESCRIBE_ALLOWED_IMAGE_HOSTS", "Images.Example.com, cdn.example.org")
    monkeypatch.setenv("PAGESCRIBE_IMAGE_FETCH_TIMEOUT_S", "3")
    media = ServerSettings().media_policy
    assert media.allowed_hosts == frozenset({HOST, "cdn.example.org"}) and media.fetch_timeout_s == 3
    monkeypatch.delenv("PAGESCRIBE_ALLOWED_IMAGE_HOSTS")
    assert ServerSettings().media_policy.allowed_hosts == frozenset()


def test_an_inline_image_never_touches_the_network() -> None:
    def no_network(request: httpx.Request) -> httpx.Response:
        raise AssertionError("fetched")

    checked = MediaPolicy(allowed_hosts=frozenset({HOST}), transport=httpx.MockTransport(no_network))
    uri = "data:image/png;base64," + base64.b64encode(png()).decode()
    assert decode_url(uri, policy=checked, source="img").width == 12


# -- TLS on the pinned address ------------------------------------------------------------------------------


def _certificates(tmp: Path, name: str) -> tuple[Path, Path, Path]:
    """A throwaway CA, and a certificate for ``name`` it signed: (ca.pem, cert.pem, key.pem)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def subject(common_name: str) -> Any:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(subject("test CA")).issuer_name(subject("test CA"))
        .public_key(ca_key.public_key()).serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    leaf = (
        x509.CertificateBuilder().subject_name(subject(name)).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(2).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    paths = tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


class _LoopbackFetcher(RemoteFetcher):
    """The fetcher with only its address check replaced (tested above), so TLS can be tried on loopback."""

    def check(self, url: httpx.URL, *, source: str) -> Any:
        return ipaddress.ip_address("127.0.0.1")


@pytest.mark.parametrize(("certified", "works"), [("images.test", True), ("other.test", False)])
def test_tls_on_the_pinned_address_still_verifies_the_host_name(tmp_path: Path, certified: str, works: bool) -> None:
    ca, cert, key = _certificates(tmp_path, certified)
    seen: dict[str, Any] = {}

    class Handler(_Counting):
        def do_GET(self) -> None:
            seen["host"] = self.headers["Host"]
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def remember_sni(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        seen["sni"] = name

    context.sni_callback = remember_sni  # type: ignore[assignment]
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    trusting = httpx.HTTPTransport(verify=ssl.create_default_context(cafile=str(ca)), retries=0)
    fetcher = _LoopbackFetcher(allowed_hosts=frozenset({"images.test"}), transport=trusting, timeout_s=5)
    url = f"https://images.test:{server.server_address[1]}/a.png"
    try:
        if works:
            assert fetcher.fetch(url, source="img") == png()
            assert seen == {"sni": "images.test", "host": f"images.test:{server.server_address[1]}"}
        else:
            with pytest.raises(InvalidRequest, match="cannot fetch") as info:
                fetcher.fetch(url, source="img")
            assert "certificate verify failed" in str(info.value.__cause__)
            assert "host" not in seen  # the handshake failed before any request was sent
    finally:
        server.shutdown()
