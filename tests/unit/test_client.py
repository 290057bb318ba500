"""Tests of secinstall.client: retries, redirects, size limits, TLS and file:// URLs.

The local HTTPS index is the network; its `misbehave` faults play the broken servers.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.support import faults
from tests.support.index import JSON_TYPE, LocalIndex, Misbehaviour
from tests.support.wheels import WheelMaker

from secinstall.client import (
    USER_AGENT,
    Client,
    parallel_map,
    proxy_for,
    redact_text,
    without_credentials,
)
from secinstall.errors import FetchError, TLSError
from secinstall.tls import create_context


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Collect after each test, so a socket the client leaks fails the test that leaked it."""
    yield
    gc.collect()


@pytest.fixture
def client(ca_file: Path) -> Iterator[Client]:
    with Client(ssl_context=create_context([ca_file]), retries=2, backoff=0.001,
                timeout=10) as made:
        yield made


@pytest.fixture
def big_wheel(index: LocalIndex, make_wheel: WheelMaker) -> tuple[Path, str]:
    """A ~300 kB incompressible wheel on the index (a cut in the middle is a cut), and its URL."""
    payload = bytes((i * 7919 + i // 251) % 256 for i in range(300_000))
    wheel = make_wheel("demo", "1.0", files={"demo/blob.bin": payload})
    return wheel, index.add(wheel)


class _PlainHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"plain")


@contextlib.contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A plain-HTTP server on 127.0.0.1 with `handler`, as `http://127.0.0.1:PORT`."""
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def http_url() -> Iterator[str]:
    """A plain-HTTP server on 127.0.0.1 that answers every GET with `plain`."""
    with _serving(_PlainHandler) as base:
        yield f"{base}/simple/"


def _download(client: Client, url: str, max_bytes: int = 1 << 24) -> tuple[bytes, int]:
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
    assert client.get(index.url + "no-such-project/").status == 404
    assert index.requests == ["/simple/no-such-project/"]  # an answer, not retried


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
    client: Client, index: LocalIndex, location: str
) -> None:
    # localhost is in the index's certificate: following the redirect would work.
    target = location.format(port=index.base_url.rsplit(":", 1)[1])
    index.misbehave("/simple/", faults.redirect(target))
    with pytest.raises(FetchError, match="refusing redirect") as info:
        client.get(index.url)
    assert index.url in info.value.message
    assert target in info.value.message
    assert index.requests == ["/simple/"]


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
    assert info.value.message == f"giving up on {index.url}demo/ after 3 attempts: HTTP 503"
    assert len(index.requests) == 3  # retries=2: one try and two more


def test_429_waits_for_retry_after(
    client: Client, index: LocalIndex, make_wheel: WheelMaker
) -> None:
    index.add(make_wheel("demo", "1.0"))
    index.misbehave("/simple/demo/", faults.status(429, {"Retry-After": "1"}))
    start = time.monotonic()
    resp = client.get(index.url + "demo/")
    waited = time.monotonic() - start
    assert resp.status == 200
    assert waited >= 0.95  # the client's own back-off is 1 ms
    assert index.requests == ["/simple/demo/"] * 2


def test_connection_refused_is_retried_then_reported(ca_file: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the client connects
    url = f"https://127.0.0.1:{port}/simple/"
    with Client(ssl_context=create_context([ca_file]), retries=1, backoff=0.001) as client, \
            pytest.raises(FetchError, match="after 2 attempts: connection failed") as info:
        client.get(url)
    assert url in info.value.message


@pytest.mark.parametrize("fault", [faults.truncated(0.5), faults.reset(0.5)],
                         ids=["cut-short", "reset"])
def test_download_broken_mid_body_starts_over(
    client: Client, index: LocalIndex, big_wheel: tuple[Path, str], fault: Misbehaviour
) -> None:
    wheel, url = big_wheel
    index.misbehave(wheel.name, fault)
    data, restarts = _download(client, url)
    assert data == wheel.read_bytes()  # the first half was thrown away, not kept twice
    # A reset may reach the client before it read the headers: then there is nothing to undo.
    assert restarts <= 1
    assert index.requests == [f"/files/{wheel.name}"] * 2


def test_download_always_broken_gives_up(
    client: Client, index: LocalIndex, big_wheel: tuple[Path, str]
) -> None:
    wheel, url = big_wheel
    index.misbehave(wheel.name, faults.truncated(0.5), times=10)
    with pytest.raises(FetchError, match="after 3 attempts: transfer broken"):
        _download(client, url)
    assert len(index.requests) == 3


# -- stop (Ctrl-C) -------------------------------------------------------------------------


@pytest.mark.parametrize("retries", [2, 0], ids=["retries-left", "last-try"])
@pytest.mark.parametrize("length", [True, False], ids=["declared", "streamed"])
def test_stop_cuts_a_read_stalled_mid_body(
    ca_file: Path, index: LocalIndex, big_wheel: tuple[Path, str], length: bool, retries: int
) -> None:
    """A read blocked on a silent server used to end only at the read timeout (here 60 s):
    `stop` now ends it at once, as the stop, not as a broken transfer to try again (or to
    give up on, on the last try). Without a Content-Length, the body it cut is not taken
    for a whole one."""
    wheel, url = big_wheel
    index.misbehave(wheel.name, faults.stall(300, keep=0.5, length=length))
    sent = len(wheel.read_bytes()) // 2
    received = 0
    arrived = threading.Event()  # all that was sent: the next read waits on the server

    def write(chunk: bytes) -> None:
        nonlocal received
        received += len(chunk)
        if received >= sent:
            arrived.set()

    errors: list[FetchError] = []
    with Client(ssl_context=create_context([ca_file]), retries=retries, backoff=0.001,
                timeout=60) as client:

        def download() -> None:
            try:
                client.download(url, write, lambda: None, max_bytes=1 << 24)
            except FetchError as exc:
                errors.append(exc)

        thread = threading.Thread(target=download)
        thread.start()
        assert arrived.wait(30)
        client.stop()
        thread.join(20)
        assert not thread.is_alive(), "the read was not cut"
    assert [e.message for e in errors] == [f"stopped before {url} was complete"]
    assert index.requests == [f"/files/{wheel.name}"]


def test_parallel_map_gives_the_results_in_order_or_the_first_failure_once_all_ended(
    client: Client
) -> None:
    ended: list[int] = []

    def slow(i: int) -> int:
        time.sleep(0.05 * (3 - i))  # the later an item, the sooner it ends
        ended.append(i)
        if i in (1, 2):
            raise ValueError(i)
        return i

    assert parallel_map(client, slow, [3, 0], workers=2) == [3, 0]
    ended.clear()
    with pytest.raises(ValueError) as failed:
        parallel_map(client, slow, [0, 1, 2, 3], workers=4)
    assert failed.value.args == (1,)  # the first in order, though 2 failed sooner
    assert sorted(ended) == [0, 1, 2, 3]


def test_ctrl_c_in_parallel_map_stops_the_client_and_drops_the_calls_not_started(
    client: Client, index: LocalIndex, make_wheel: WheelMaker
) -> None:
    """Ctrl-C used to wait for every call (each request until its --timeout, here 10 s,
    and its retries); now the stalled one is cut, the next never starts, and Ctrl-C is
    what is raised, even after another call failed."""
    index.add(make_wheel("lib", "1.0"))
    index.misbehave("/simple/lib/", faults.stall(300, keep=0.5))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    main = threading.main_thread().ident
    assert main == threading.get_ident()

    def ctrl_c() -> None:
        while "/simple/lib/" not in index.requests:
            time.sleep(0.01)
        signal.pthread_kill(main, signal.SIGINT)

    def look_up(name: str) -> int:
        if name == "broken":
            raise ValueError(name)
        return client.get(f"{index.url}{name}/").status

    threading.Thread(target=ctrl_c, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        parallel_map(client, look_up, ["broken", "lib", "other"], workers=1)
    assert time.monotonic() - started < 5
    assert index.requests == ["/simple/lib/"]
    with pytest.raises(FetchError, match="stopped before"):
        client.get(f"{index.url}other/")


# -- what the client refuses ----------------------------------------------------------------


def test_plain_http_needs_trusted_host(client: Client, http_url: str) -> None:
    with pytest.raises(FetchError, match="refusing plain http://") as info:
        client.get(http_url)
    assert http_url in info.value.message
    assert "--trusted-host 127.0.0.1" in info.value.message


def test_plain_http_to_trusted_host_is_allowed(ca_file: Path, http_url: str) -> None:
    host = http_url.split("/")[2]  # with its port, as pip's --trusted-host allows
    with Client(ssl_context=create_context([ca_file]), trusted_hosts=[host]) as client:
        assert client.get(http_url).body == b"plain"


def test_unsupported_scheme(client: Client) -> None:
    with pytest.raises(FetchError, match=r"unsupported URL scheme in ftp://example\.org/x"):
        client.get("ftp://example.org/x")


@pytest.mark.parametrize("length", [True, False], ids=["declared", "streamed"])
def test_size_limit_on_get(
    client: Client, index: LocalIndex, make_wheel: WheelMaker, length: bool
) -> None:
    index.add(make_wheel("demo", "1.0"))
    index.misbehave("/simple/demo/", faults.body(b"x" * 4096, length=length))
    with pytest.raises(FetchError, match="larger than the limit of 100 bytes") as info:
        client.get(index.url + "demo/", max_bytes=100)
    assert f"{index.url}demo/" in info.value.message
    assert len(index.requests) == 1  # not retried


def test_size_limit_on_download(client: Client, big_wheel: tuple[Path, str]) -> None:
    with pytest.raises(FetchError, match="larger than the limit of 1000 bytes"):
        _download(client, big_wheel[1], max_bytes=1000)


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


def test_file_url_download_has_the_same_size_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.whl"
    big.write_bytes(b"x" * 5000)
    with Client(ssl_context=create_context()) as client, \
            pytest.raises(FetchError, match="larger than the limit of 1000 bytes"):
        client.download(big.as_uri(), lambda _c: None, lambda: None, max_bytes=1000)


# -- credentials ----------------------------------------------------------------------------


def test_401_names_the_url_without_its_credentials_and_says_what_to_do(
    client: Client, index: LocalIndex
) -> None:
    index.require_auth = ("user", "right")
    with pytest.raises(FetchError) as info:
        client.get(index.url + "x/")
    assert info.value.message == (
        f"HTTP 401 Unauthorized for {index.url}x/: the index wants credentials: give them "
        "in the index URL (https://USER:TOKEN@host/simple/) or in ~/.netrc (secinstall "
        "reads no keyring)")
    url = index.url.replace("https://", "https://user:wr0ng-t0ken@") + "x/"
    with pytest.raises(FetchError) as info:
        client.get(url)
    assert "wr0ng-t0ken" not in info.value.message
    assert info.value.message.startswith(
        f"HTTP 401 Unauthorized for {index.url}x/: the index refused the credentials sent")


def test_redact_text_masks_every_url_with_credentials() -> None:
    text = ("Looking in indexes: https://u:t0k@a.example/simple/, https://b.example/simple/ "
            "and file from http://t0k@c.example:8080/x.whl")
    assert redact_text(text) == (
        "Looking in indexes: https://****@a.example/simple/, https://b.example/simple/ "
        "and file from http://****@c.example:8080/x.whl")
    assert without_credentials("https://u:t0k@a.example:1/s/?q#f") == "https://a.example:1/s/?q#f"


def test_url_credentials_go_as_basic_auth_and_follow_a_redirect_on_the_same_origin(
    client: Client, index: LocalIndex, make_wheel: WheelMaker
) -> None:
    index.add(make_wheel("demo-pkg", "1.0"))
    index.require_auth = ("us er", "p@ss:w/rd")
    resp = client.get(index.url.replace("https://", "https://us%20er:p%40ss%3Aw%2Frd@")
                      + "Demo.Pkg/")
    assert resp.status == 200
    assert resp.url == index.url + "demo-pkg/"  # as it went on the wire: no userinfo
    header = "Basic " + base64.b64encode(b"us er:p@ss:w/rd").decode()
    assert index.authorizations == [("/simple/Demo.Pkg/", header),
                                    ("/simple/demo-pkg/", header)]


def test_every_request_says_it_is_secinstall(
    client: Client, index: LocalIndex, make_wheel: WheelMaker
) -> None:
    # Indexes (PyPI among them) tell installers apart by User-Agent, for statistics and
    # to reach whoever runs a misbehaving client; the Accept header must not replace it.
    wheel = make_wheel("demo-pkg", "1.0")
    index.add(wheel)
    client.get(index.url + "demo-pkg/", accept="application/vnd.pypi.simple.v1+json")
    client.download(f"{index.base_url}/files/{wheel.name}", lambda _chunk: None,
                    lambda: None, max_bytes=10**6)
    assert index.user_agents == [USER_AGENT, USER_AGENT]


def test_configured_credentials_hold_for_their_origin_only(
    ca_file: Path, index: LocalIndex, make_wheel: WheelMaker, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A netrc `default` entry would go to every host: it is not used.
    netrc = tmp_path / "netrc"
    netrc.write_text("default login anyone password anything\n")
    monkeypatch.setenv("NETRC", str(netrc))
    url = index.add(make_wheel("demo", "1.0"))
    elsewhere = url.replace("127.0.0.1", "localhost")  # another origin, same server
    configured = index.url.replace("https://", "https://u:t@")
    with Client(ssl_context=create_context([ca_file]), credential_urls=[configured]) as client:
        _download(client, url)
        _download(client, elsewhere)
    assert [h for _, h in index.authorizations] == [
        "Basic " + base64.b64encode(b"u:t").decode(), None]


def test_no_proxy_skips_the_environments_proxy_not_a_given_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As pip does: NO_PROXY is of the environment's proxy (requests' trust_env), and a
    # proxy given (--proxy, pip's `proxy`) is used for every host.
    monkeypatch.setenv("HTTPS_PROXY", "http://u:t@env.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example, .corp.example,10.1.2.3:8443")
    given = "http://u:t@given.example:3128"
    for url, proxy in [("https://pypi.org/simple/", "http://u:t@env.example:3128"),
                       ("https://internal.example/simple/", None),
                       ("https://index.corp.example/simple/", None),
                       # requests matches an IP address without its port
                       ("https://u:t@10.1.2.3:8443/simple/", "http://u:t@env.example:3128"),
                       ("https://10.1.2.3/simple/", "http://u:t@env.example:3128")]:
        assert proxy_for(url, None) == proxy, url
        assert proxy_for(url, given) == given
    # IPv4 networks in CIDR notation, as requests reads them (urllib doesn't); not IPv6.
    monkeypatch.setenv("NO_PROXY", "pypi.org, 10.0.0.0/8, fd00::/8, not-a-network/99")
    for url, proxy in [("https://10.20.30.40:8443/simple/", None),
                       ("https://[fd12::1]/simple/", "http://u:t@env.example:3128"),
                       ("https://pypi.org/simple/", None),
                       ("https://192.168.1.1/simple/", "http://u:t@env.example:3128"),
                       ("https://index.example/simple/", "http://u:t@env.example:3128")]:
        assert proxy_for(url, None) == proxy, url
    monkeypatch.delenv("HTTPS_PROXY")
    assert proxy_for("https://pypi.org/simple/", None) is None


NO_PROXY_VALUES = ["", "*", "localhost", "127.0.0.1", "127.1", "::1", "[::1]", "[::1]:8443",
                   "10.0.0.0/8", "10.0.0.0/33", "10.0.0.0/8/8", "fd00::/8", "10.1.2.3:8443",
                   "example.com", ".example.com", "ample.com", "example.com:8443",
                   "EXAMPLE.com", " example.com , other.org", "pypi.org,,", "*.example.com"]
NO_PROXY_URLS = ["https://localhost:8443/simple/", "https://127.0.0.1/simple/",
                 "https://[::1]:8443/simple/", "https://[fd12::1]/simple/",
                 "https://10.1.2.3:8443/simple/", "https://10.200.0.1/simple/",
                 "https://example.com/simple/", "https://www.example.com:8443/simple/",
                 "https://notexample.com/simple/", "https://EXAMPLE.COM/simple/",
                 "https://u:t@other.org/simple/", "https://pypi.org/simple/"]


@pytest.mark.parametrize("no_proxy", NO_PROXY_VALUES)
def test_no_proxy_is_read_as_pips_resolver_reads_it(monkeypatch: pytest.MonkeyPatch,
                                                     no_proxy: str) -> None:
    """The oracle is the requests that pip vendors: a host secinstall downloads from
    through the proxy while pip's resolver reached it directly (or the other way round)
    fails behind a firewall that allows one of them. urllib's reading differed on IPv6
    addresses, IP addresses with ports and CIDR networks."""
    utils = pytest.importorskip("pip._vendor.requests.utils")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    for url in NO_PROXY_URLS:
        assert (proxy_for(url, None) is None) == utils.should_bypass_proxies(url, None), url


def test_the_environments_proxy_is_the_schemes_else_all_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # requests' order, so pip's resolver's: the scheme's proxy, then ALL_PROXY; NO_PROXY
    # holds for both. A plain http:// index (--trusted-host) takes HTTP_PROXY.
    monkeypatch.setenv("ALL_PROXY", "http://all.example:3128")
    assert proxy_for("https://pypi.org/simple/", None) == "http://all.example:3128"
    assert proxy_for("http://index.lan/simple/", None) == "http://all.example:3128"
    monkeypatch.setenv("HTTPS_PROXY", "http://tls.example:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://plain.example:3128")
    assert proxy_for("https://pypi.org/simple/", None) == "http://tls.example:3128"
    assert proxy_for("http://index.lan/simple/", None) == "http://plain.example:3128"
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.setenv("NO_PROXY", "pypi.org")
    assert proxy_for("https://pypi.org/simple/", None) is None
    assert proxy_for("https://files.example/x.whl", None) == "http://all.example:3128"


def test_plain_http_through_a_proxy_sends_its_credentials_and_a_407_says_so(
    ca_file: Path,
) -> None:
    # Plain http:// goes to the proxy as a request (no tunnel): its answer is the proxy's.
    seen: list[tuple[str, str | None]] = []

    class Refusing(_PlainHandler):
        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Proxy-Authorization")))
            self.send_response(407)
            self.send_header("Content-Length", "0")
            self.end_headers()

    with _serving(Refusing) as proxy:
        client = Client(ssl_context=create_context([ca_file]), trusted_hosts=["index.example"],
                        proxy=proxy.replace("://", "://u:t%40k@"), retries=2, backoff=0.001)
        with client, pytest.raises(FetchError) as info:
            client.get("http://index.example/simple/")

    assert seen == [("http://index.example/simple/",
                     "Basic " + base64.b64encode(b"u:t@k").decode())]
    assert info.value.message == (
        f"the proxy {proxy} refused the credentials sent (HTTP 407 Proxy Authentication "
        "Required, for http://index.example/simple/): check the user name and token in the "
        "proxy URL, percent-encoded: --proxy http://USER:TOKEN@host:port, or the same URL "
        "in HTTPS_PROXY")


@pytest.mark.parametrize("proxy", ["ci:t0k3n@proxy.example:3128",
                                   "socks5://ci:t0k3n@proxy.example:1080"])
def test_a_proxy_url_without_http_is_refused_without_its_credentials(
    ca_file: Path, proxy: str,
) -> None:
    with Client(ssl_context=create_context([ca_file]), proxy=proxy) as client, \
            pytest.raises(FetchError) as info:
        client.get("https://index.example/simple/")
    said = ("a SOCKS proxy (ALL_PROXY=socks5://... is curl's way) is not supported"
            if proxy.startswith("socks") else "unsupported proxy URL")
    assert info.value.message.startswith(f"{said}: give an HTTP proxy as http://")
    assert "t0k3n" not in info.value.message
