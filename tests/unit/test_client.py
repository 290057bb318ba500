"""Tests of secinstall.client: retries, redirects, size limits, TLS and file:// URLs.

The local HTTPS index is the network; a small scripted server stands in for the
misbehaving servers it can't imitate (redirects to other hosts, Retry-After, bodies cut
short or reset).
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from secinstall.client import Client
from secinstall.errors import FetchError, TLSError
from secinstall.tls import create_context
from tests.support.index import JSON_TYPE, LocalIndex
from tests.support.wheels import WheelMaker

# -- a scripted server ---------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_length: bool = True
    #: Send only this many body bytes, then hang up (a clean close, or a reset).
    cut_after: int | None = None
    reset: bool = False


class _ScriptedHandler(BaseHTTPRequestHandler):
    server: ScriptedServer
    timeout = 10

    def setup(self) -> None:
        self.request.settimeout(self.timeout)
        if self.server.tls:
            self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        reply = self.server.next_reply(self.path)
        self.send_response(reply.status)
        for key, value in reply.headers.items():
            self.send_header(key, value)
        if reply.content_length:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body if reply.cut_after is None else reply.body[: reply.cut_after])
        if reply.reset:
            linger = struct.pack("ii", 1, 0)  # close with a TCP RST instead of a FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            self.connection.close()


class ScriptedServer(ThreadingHTTPServer):
    """Answers each path with its scripted replies in turn (the last one repeats)."""

    daemon_threads = False

    def __init__(self, context: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.context = context
        self.tls = context is not None
        self.lock = threading.Lock()
        self.replies: dict[str, list[Reply]] = {}
        self.requests: list[str] = []
        self.errors: list[BaseException] = []

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.server_address[1]}"

    def script(self, path: str, *replies: Reply) -> str:
        with self.lock:
            self.replies[path] = list(replies)
        return self.url + path

    def next_reply(self, path: str) -> Reply:
        with self.lock:
            self.requests.append(path)
            queue = self.replies.get(path) or [Reply(404, b"not scripted\n")]
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        if self.context is None:
            return sock, addr
        return self.context.wrap_socket(sock, server_side=True,
                                        do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        with self.lock:
            self.errors.append(sys.exc_info()[1] or RuntimeError("unknown"))


@pytest.fixture
def scripted(ca: trustme.CA) -> Iterator[Callable[..., ScriptedServer]]:
    """Start scripted servers: `scripted()` for HTTPS, `scripted(tls=False)` for plain HTTP."""
    started: list[tuple[ScriptedServer, threading.Thread]] = []

    def start(*, tls: bool = True) -> ScriptedServer:
        context = None
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ca.issue_cert("127.0.0.1").configure_cert(context)
        server = ScriptedServer(context)
        thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
        thread.start()
        started.append((server, thread))
        return server

    yield start
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join()
    bugs = [e for s, _ in started for e in s.errors if not isinstance(e, OSError)]
    assert not bugs, f"the scripted server failed: {bugs!r}"


@pytest.fixture
def client(ca_file: Path) -> Iterator[Client]:
    with Client(ssl_context=create_context([ca_file]), retries=2, backoff=0.001,
                timeout=10) as made:
        yield made


def _download(client: Client, url: str, max_bytes: int = 1 << 20) -> tuple[bytes, int]:
    """Download `url`; return the bytes kept and how often the client started over."""
    chunks: list[bytes] = []
    restarts = 0

    def restart() -> None:
        nonlocal restarts
        restarts += 1
        chunks.clear()

    client.download(url, chunks.append, restart, max_bytes=max_bytes)
    return b"".join(chunks), restarts


# -- plain GETs and redirects ---------------------------------------------------------------


def test_get_index_page(client: Client, index: LocalIndex, make_wheel: WheelMaker) -> None:
    index.add(make_wheel("demo", "1.0"))
    resp = client.get(index.url + "demo/", accept=JSON_TYPE)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == JSON_TYPE
    assert [f["filename"] for f in json.loads(resp.body)["files"]] == ["demo-1.0-py3-none-any.whl"]


def test_get_allows_404(client: Client, index: LocalIndex) -> None:
    resp = client.get(index.url + "no-such-project/")
    assert (resp.status, resp.body) == (404, b"no such project\n")


def test_download_refuses_404(client: Client, index: LocalIndex) -> None:
    with pytest.raises(FetchError, match=r"HTTP 404 .*/files/missing\.whl"):
        _download(client, index.base_url + "/files/missing.whl")


def test_redirect_on_same_host_is_followed(
    client: Client, index: LocalIndex, make_wheel: WheelMaker
) -> None:
    index.add(make_wheel("demo-pkg", "1.0"))
    resp = client.get(index.url + "Demo.Pkg/")
    assert resp.status == 200
    assert resp.url == index.url + "demo-pkg/"
    assert index.requests == ["/simple/Demo.Pkg/", "/simple/demo-pkg/"]


@pytest.mark.parametrize(
    "location", ["https://localhost:{port}/simple/", "http://127.0.0.1:{port}/simple/"],
    ids=["other-host", "https-to-http"],
)
def test_redirect_changing_host_or_scheme_is_refused(
    client: Client, index: LocalIndex, scripted: Callable[..., ScriptedServer], location: str
) -> None:
    server = scripted()
    target = location.format(port=index.base_url.rsplit(":", 1)[1])
    url = server.script("/simple/", Reply(302, headers={"Location": target}))
    with pytest.raises(FetchError, match="refusing redirect") as info:
        client.get(url)
    assert url in info.value.message
    assert target in info.value.message
    assert index.requests == []


# -- retries --------------------------------------------------------------------------------


def test_retries_503_then_succeeds(
    client: Client, index: LocalIndex, make_wheel: WheelMaker
) -> None:
    index.add(make_wheel("demo", "1.0"))
    index.fail_next("/simple/demo/", 503, times=2)
    resp = client.get(index.url + "demo/")
    assert resp.status == 200
    assert b"demo-1.0-py3-none-any.whl" in resp.body
    assert index.requests == ["/simple/demo/"] * 3


def test_gives_up_after_retries(client: Client, index: LocalIndex, make_wheel: WheelMaker) -> None:
    index.add(make_wheel("demo", "1.0"))
    index.fail_next("/simple/demo/", 503, times=10)
    with pytest.raises(FetchError) as info:
        client.get(index.url + "demo/")
    assert info.value.message == (
        f"giving up on {index.url}demo/ after 3 attempts: HTTP 503"
    )
    assert len(index.requests) == 3  # retries=2: one try and two more


def test_429_waits_for_retry_after(
    client: Client, scripted: Callable[..., ScriptedServer]
) -> None:
    server = scripted()
    url = server.script("/page", Reply(429, headers={"Retry-After": "1"}), Reply(200, b"ok"))
    start = time.monotonic()
    resp = client.get(url)
    waited = time.monotonic() - start
    assert (resp.status, resp.body) == (200, b"ok")
    assert waited >= 0.95  # the client's own back-off is 1 ms
    assert server.requests == ["/page", "/page"]


def test_connection_refused_is_retried_then_reported(ca_file: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the client connects
    url = f"https://127.0.0.1:{port}/simple/"
    with Client(ssl_context=create_context([ca_file]), retries=1, backoff=0.001) as client, \
            pytest.raises(FetchError, match="after 2 attempts: connection failed") as info:
        client.get(url)
    assert url in info.value.message


@pytest.mark.parametrize("reset", [False, True], ids=["cut-short", "reset"])
def test_download_broken_mid_body_starts_over(
    client: Client, scripted: Callable[..., ScriptedServer], reset: bool
) -> None:
    server = scripted()
    body = bytes(range(256)) * 400
    url = server.script("/f.whl", Reply(200, body, cut_after=1000, reset=reset), Reply(200, body))
    data, restarts = _download(client, url)
    assert data == body
    assert restarts == 1
    assert server.requests == ["/f.whl", "/f.whl"]


def test_download_always_broken_gives_up(
    client: Client, scripted: Callable[..., ScriptedServer]
) -> None:
    server = scripted()
    url = server.script("/f.whl", Reply(200, b"x" * 5000, cut_after=10))
    with pytest.raises(FetchError, match="after 3 attempts: transfer broken"):
        _download(client, url)
    assert len(server.requests) == 3


# -- what the client refuses ----------------------------------------------------------------


def test_plain_http_needs_trusted_host(
    client: Client, scripted: Callable[..., ScriptedServer]
) -> None:
    server = scripted(tls=False)
    url = server.script("/simple/", Reply(200, b"plain"))
    with pytest.raises(FetchError, match="refusing plain http://") as info:
        client.get(url)
    assert "--trusted-host 127.0.0.1" in info.value.message
    assert server.requests == []


def test_plain_http_to_trusted_host_is_allowed(
    ca_file: Path, scripted: Callable[..., ScriptedServer]
) -> None:
    server = scripted(tls=False)
    url = server.script("/simple/", Reply(200, b"plain"))
    host = url.split("/")[2]  # with its port, as pip's --trusted-host allows
    with Client(ssl_context=create_context([ca_file]), trusted_hosts=[host]) as client:
        assert client.get(url).body == b"plain"


def test_unsupported_scheme(client: Client) -> None:
    with pytest.raises(FetchError, match=r"unsupported URL scheme in ftp://example\.org/x"):
        client.get("ftp://example.org/x")


@pytest.mark.parametrize("content_length", [True, False], ids=["declared", "streamed"])
def test_size_limit_on_get(
    client: Client, scripted: Callable[..., ScriptedServer], content_length: bool
) -> None:
    server = scripted()
    url = server.script("/big", Reply(200, b"x" * 4096, content_length=content_length))
    with pytest.raises(FetchError, match="larger than the limit of 100 bytes") as info:
        client.get(url, max_bytes=100)
    assert url in info.value.message
    assert len(server.requests) == 1  # not retried


def test_size_limit_on_download(client: Client, index: LocalIndex, make_wheel: WheelMaker) -> None:
    url = index.add(make_wheel("demo", "1.0"))
    with pytest.raises(FetchError, match="larger than the limit of 10 bytes"):
        _download(client, url, max_bytes=10)


def test_unknown_ca_is_a_tls_error(index: LocalIndex) -> None:
    with Client(ssl_context=create_context(), retries=3, backoff=0.001) as client, \
            pytest.raises(TLSError) as info:
        client.get(index.url)
    assert "127.0.0.1" in info.value.message
    assert "--cert" in info.value.message
    assert index.requests == []  # fails closed, and is not retried


# -- file:// URLs -----------------------------------------------------------------------------


def test_file_urls(client: Client, tmp_path: Path) -> None:
    (tmp_path / "simple" / "demo").mkdir(parents=True)
    page = tmp_path / "simple" / "demo" / "index.html"
    page.write_bytes(b"<a href='demo-1.0-py3-none-any.whl'>demo</a>")
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    wheel.write_bytes(b"wheel bytes" * 50_000)

    resp = client.get((tmp_path / "simple" / "demo").as_uri() + "/")
    assert (resp.status, resp.body) == (200, page.read_bytes())
    assert resp.headers["content-type"] == "text/html"
    assert client.get(page.as_uri()).body == page.read_bytes()
    assert client.get((tmp_path / "nothing.html").as_uri()).status == 404
    assert _download(client, wheel.as_uri()) == (wheel.read_bytes(), 0)
    with pytest.raises(FetchError, match="larger than the limit"):
        client.get(wheel.as_uri(), max_bytes=100)
    missing = (tmp_path / "missing.whl").as_uri()
    with pytest.raises(FetchError, match=f"can't read {missing}"):
        _download(client, missing)
