"""The one HTTP client: pooled connections on the TLS factory, with retries, timeouts,
size limits and redirect rules known once, for index pages, downloads and provenance.

`file://` URLs (local indexes and find-links, which pip allows) are read from disk.
Plain `http://` is refused unless the host is trusted (`--trusted-host`).

The TLS context and the connection pool are made at the first connection: an install
served from the cache makes none, and doesn't pay for loading the CA bundle or urllib3.
"""

from __future__ import annotations

import contextlib
import copy
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from . import __version__
from .credentials import Credentials, origin, split_credentials
from .errors import FetchError, TLSError

if TYPE_CHECKING:
    import socket
    import ssl

    import urllib3

USER_AGENT = f"secinstall/{__version__}"
#: Index pages and provenance are small; a larger answer is a broken or hostile server.
MAX_PAGE_BYTES = 64 * 1024 * 1024
#: Statuses worth another try (with back-off, and `Retry-After` where given).
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
CHUNK = 256 * 1024
#: A body slower than this (bytes a second) over a whole --timeout is a stalled transfer,
#: retried like a broken one (curl's --speed-limit / --speed-time): the read timeout alone
#: lets a server that sends a byte now and then hold an install up for ever.
LOW_SPEED = 1024

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Response:
    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes


def redact_url(url: str) -> str:
    """`url` without credentials, for output and records (an index URL may carry a token)."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(
        parts._replace(netloc="****@" + parts.netloc.rpartition("@")[2]))


def without_credentials(url: str) -> str:
    """`url` with no userinfo at all, for what is written to be used again (a lock file):
    the credentials come from the index configuration or ~/.netrc when it is used."""
    return split_credentials(url)[0]


def index_key(url: str) -> str:
    """An index URL to compare with another: one index whatever credentials its URL
    carries (real, redacted as in a record, or none), with one trailing slash."""
    return without_credentials(url).rstrip("/") + "/"


#: Where a URL with credentials may appear in free text (another program's output).
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")


def redact_text(text: str) -> str:
    """`text` with the credentials of any URL in it masked, as `redact_url` does."""
    return _USERINFO.sub(r"\1****@", text)


def _host(url: str) -> str:
    return (urllib.parse.urlsplit(url).hostname or "").lower()


def proxy_for(url: str, configured: str | None) -> str | None:
    """The URL (credentials included) of the proxy a request to `url` goes through, if
    any: `configured` (--proxy, pip's `proxy`) for every host, as pip uses it; else the
    environment's for the URL's scheme (HTTPS_PROXY, HTTP_PROXY), else ALL_PROXY, but not
    for the hosts NO_PROXY names: as requests (so pip's resolver) does."""
    if configured:
        return configured
    from urllib.request import getproxies

    proxies = getproxies()
    proxy = proxies.get(urllib.parse.urlsplit(url).scheme) or proxies.get("all")
    if proxy and _bypasses_proxy(url):
        return None
    return proxy or None


def _host_port(url: str) -> str:
    """`url`'s host and port, without userinfo."""
    return urllib.parse.urlsplit(url).netloc.rpartition("@")[2]


def _bypasses_proxy(url: str) -> bool:
    """Whether NO_PROXY exempts `url` from the environment's proxy, decided as
    `requests.utils.should_bypass_proxies` decides it, so as pip's resolver does: one
    that downloads through the proxy what pip reached directly (or the other way round)
    fails behind a firewall that allows only one of them. An IPv4 address matches itself
    or a network in CIDR notation; a name matches itself or a dot-suffix of its own, with
    or without the port; then urllib's reading (which also takes `*`)."""
    import os
    import socket
    from urllib.request import proxy_bypass

    parts = urllib.parse.urlsplit(url)
    host = parts.hostname
    if host is None:
        return True
    entries = [e for e in (os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or "")
               .replace(" ", "").split(",") if e]
    address = _ipv4(host)
    if address is not None:
        if any(host == entry or _in_network(address, entry) for entry in entries):
            return True
    else:
        with_port = f"{host}:{parts.port}" if parts.port else host
        for entry in (e.lstrip(".") for e in entries):
            if entry in (host, with_port) or host.endswith("." + entry) \
                    or with_port.endswith("." + entry):
                return True
    try:
        return bool(proxy_bypass(host))
    except (TypeError, socket.gaierror):
        return False


def _in_network(address: int, entry: str) -> bool:
    """Whether the IPv4 `address` is in `entry`, if that is a network in CIDR notation."""
    if entry.count("/") != 1:
        return False
    network, bits_text = entry.split("/")
    try:
        bits = int(bits_text)
    except ValueError:
        return False
    start = _ipv4(network)
    if start is None or not 1 <= bits <= 32:
        return False
    mask = (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF
    return address & mask == start & mask


def _ipv4(text: str) -> int | None:
    """`text` as an IPv4 address (in any form inet_aton takes, as requests reads it)."""
    import socket

    try:
        return int.from_bytes(socket.inet_aton(text), "big")
    except (OSError, ValueError):
        return None


#: A proxy's refusal to open a tunnel (407: not without the right credentials; 403: its
#: policy forbids that host), as http.client reports it (in urllib3's errors, and so in
#: pip's log): its status and reason. A decision, not a transient failure (a 5xx is
#: retried).
PROXY_REFUSED = re.compile(r"Tunnel connection failed: (4\d\d\b[^'\"\n)]*)")


def proxy_refusal(proxy: str, answer: str, url: str) -> str:
    """What to say when `proxy` (its URL as given) refused a request for `url` with
    `answer` (e.g. `HTTP 407 Proxy Authentication Required`): for a 407, how to give
    credentials, and never those it was given; else which host it refused."""
    bare, pair = split_credentials(proxy)
    answer = answer.strip()
    what = f"{answer}, for {redact_url(url)}"
    if not answer.startswith("HTTP 407"):
        return (f"the proxy {bare} refused to connect to {_host_port(url)} ({what}): ask "
                "its administrators to allow that host, or set NO_PROXY if it is reachable "
                "without the proxy")
    how = ("in the proxy URL, percent-encoded: --proxy http://USER:TOKEN@host:port, "
           "or the same URL in HTTPS_PROXY")
    if pair is not None:
        return (f"the proxy {bare} refused the credentials sent ({what}): check the user "
                f"name and token {how}")
    return f"the proxy {bare} wants credentials ({what}): give them {how}"


class Client:
    """A thread-safe client; one per run, shared by every stage."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext],
        trusted_hosts: Sequence[str] = (),
        timeout: float = 15.0,
        retries: int = 5,
        proxy: str | None = None,
        pool_size: int = 16,
        backoff: float = 0.25,
        credential_urls: Sequence[str] = (),
    ) -> None:
        """`ssl_context` may be a function that makes it, called at the first connection
        (its errors, e.g. an unreadable `--cert` bundle, are raised there).
        `credential_urls`: the configured index and find-links URLs, whose credentials
        hold for their whole origin (see `credentials`)."""
        self.trusted_hosts = frozenset(h.lower().split(":")[0] for h in trusted_hosts)
        self.retries = retries
        self.backoff = backoff
        self._timeout = timeout
        # Shared with the copies `with_retries` makes: `stop` stops them all.
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._reading: set[socket.socket] = set()  # bodies being read, for `stop` to cut
        self._connections = _Connections(ssl_context, proxy, pool_size)
        self._credentials = Credentials(credential_urls)

    def with_retries(self, retries: int) -> Client:
        """This client, on the same connections, with another retry budget (e.g. none
        for a best-effort look-up that must not hold an install up)."""
        clone = copy.copy(self)
        clone.retries = retries
        return clone

    def stop(self) -> None:
        """The run is ending (Ctrl-C): none is retried or started, and the bodies being
        read end at once, even where a read waits on a silent server (a request not yet
        answered ends with its answer, within one --timeout). For good: a client isn't
        restarted."""
        import socket

        with self._lock:
            self._stopped.set()
            for sock in self._reading:
                with contextlib.suppress(OSError):  # e.g. the server hung up first
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._connections.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ---------------------------------------------------------------------

    def get(self, url: str, *, accept: str | None = None,
            max_bytes: int | None = None) -> Response:
        """GET a whole (small) resource: an index page, a provenance object (at most
        `max_bytes`, by default `MAX_PAGE_BYTES` as it is when called)."""
        if max_bytes is None:
            max_bytes = MAX_PAGE_BYTES
        if url.startswith("file:"):
            path = _file_path(url)
            if path.is_dir():
                path = path / "index.html"
            try:
                with path.open("rb") as f:
                    body = f.read(max_bytes + 1)
            except OSError as exc:
                status = 404 if isinstance(exc, FileNotFoundError) else 500
                return Response(url, status, {}, b"")
            self._check_size(url, len(body), max_bytes)
            ctype = "text/html" if path.suffix in (".html", ".htm", "") else ""
            return Response(url, 200, {"content-type": ctype}, body)
        chunks: list[bytes] = []
        status, final_url, headers = self._stream(
            url, chunks.append, chunks.clear, accept=accept, max_bytes=max_bytes,
            allow_status=(404, 410),
        )
        return Response(final_url, status, headers, b"".join(chunks))

    def download(self, url: str, write: Callable[[bytes], object],
                 restart: Callable[[], object], *, max_bytes: int) -> None:
        """Stream `url` into `write`; `restart` is called before a retry starts over."""
        if url.startswith("file:"):
            try:
                with _file_path(url).open("rb") as f:
                    received = 0
                    while chunk := f.read(CHUNK):
                        received += len(chunk)
                        self._check_size(url, received, max_bytes)
                        write(chunk)
            except OSError as exc:
                raise FetchError(f"can't read {redact_url(url)}: {exc.strerror or exc}") \
                    from exc
            return
        self._stream(url, write, restart, accept=None, max_bytes=max_bytes)

    # -- internals ----------------------------------------------------------------------

    def _check_scheme(self, url: str) -> None:
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme == "https":
            return
        if scheme == "http" and _host(url) in self.trusted_hosts:
            return
        if scheme == "http":
            raise FetchError(
                f"refusing plain http:// URL {redact_url(url)}: traffic to it can be read "
                "and changed in transit; use https, or mark the host with --trusted-host "
                f"{_host(url)}",
            )
        raise FetchError(f"unsupported URL scheme in {redact_url(url)}")

    @staticmethod
    def _check_size(url: str, size: int, max_bytes: int) -> None:
        if size > max_bytes:
            raise FetchError(f"{redact_url(url)} is larger than the limit of {max_bytes} bytes")

    def _stream(
        self, url: str, write: Callable[[bytes], object], restart: Callable[[], object], *,
        accept: str | None, max_bytes: int, allow_status: tuple[int, ...] = (),
    ) -> tuple[int, str, dict[str, str]]:
        import urllib3

        # urllib3 would drop a URL's userinfo: it goes as a header, and out of messages.
        url, authorization = self._credentials.authorize(url)
        attempt = 0
        while True:
            self._check_stopped(url)
            self._check_scheme(url)
            # Per-request headers replace the pool's, User-Agent included: given each time.
            headers = {"User-Agent": USER_AGENT}
            if accept:
                headers["Accept"] = accept
            if authorization is not None:
                headers["Authorization"] = authorization
            pool, proxy = self._connections.pool(url)
            try:
                resp = pool.request(
                    "GET", url, headers=headers, preload_content=False,
                    redirect=False, retries=False, timeout=self._timeout,
                )
            except urllib3.exceptions.SSLError as exc:
                if _cert_error(exc) is not None:
                    raise TLSError(
                        f"TLS verification failed for {_host(url)}: {_ssl_reason(exc)}. "
                        "For a private index, give its CA bundle with --cert",
                    ) from exc
                if "CERTIFICATE_REQUIRED" in str(exc):  # a verdict too: not retried
                    raise TLSError(
                        f"{_host(url)} asks for a client certificate (mutual TLS): give it "
                        "with --client-cert (one PEM file holding the certificate and its "
                        "private key)") from exc
                # Not a verdict on the certificate: a handshake broken on the way (reset,
                # garbled record) is worth another try, and fails closed after the last.
                try:
                    attempt = self._retry_or_raise(url, attempt, f"TLS handshake failed: "
                                                   f"{_ssl_reason(exc)}")
                except FetchError as final:
                    # With TLS 1.3 a server's refusal to go on without a client
                    # certificate often arrives as a bare EOF, after the handshake.
                    raise TLSError(f"{final.message} (if the index asks for a client "
                                   "certificate, give it with --client-cert)") from exc
                continue
            except urllib3.exceptions.HTTPError as exc:
                # Refused once (credentials, or the host), refused again: not retried.
                if proxy and (refused := PROXY_REFUSED.search(str(exc))):
                    raise FetchError(proxy_refusal(proxy, f"HTTP {refused.group(1)}",
                                                   url)) from exc
                attempt = self._retry_or_raise(url, attempt, f"connection failed: {exc}")
                continue
            try:
                if resp.status in (301, 302, 303, 307, 308):
                    url, authorization = self._redirect(url, resp.headers.get("Location", ""),
                                                        authorization)
                    continue
                if resp.status in RETRY_STATUSES:
                    attempt = self._retry_or_raise(
                        url, attempt, f"HTTP {resp.status}", resp.headers.get("Retry-After"))
                    continue
                if resp.status in allow_status:
                    return resp.status, url, dict(resp.headers)
                if resp.status == 407 and proxy:  # plain http:// goes to the proxy as is
                    raise FetchError(proxy_refusal(
                        proxy, f"HTTP {resp.status} {resp.reason or ''}", url))
                if resp.status != 200:
                    raise _status_error(url, resp.status, resp.reason,
                                        sent_credentials=authorization is not None)
                length = resp.headers.get("Content-Length")
                if length and length.isdigit():
                    self._check_size(url, int(length), max_bytes)
                received = 0
                since, window = time.monotonic(), 0
                with self._interruptible(url, resp):
                    # read1: what has arrived (stream() waits for a whole CHUNK, so a slow
                    # body would never be looked at).
                    while chunk := resp.read1(CHUNK, decode_content=True):
                        received += len(chunk)
                        self._check_size(url, received, max_bytes)
                        write(chunk)
                        self._check_stopped(url)
                        window += len(chunk)
                        now = time.monotonic()
                        if now - since >= self._timeout:
                            if window < LOW_SPEED * (now - since):
                                raise urllib3.exceptions.ProtocolError(
                                    f"stalled: {window} bytes in {now - since:.0f} s, under "
                                    f"{LOW_SPEED} bytes a second")
                            since, window = now, 0
                    # Without a Content-Length the end is the hang-up: a body cut by `stop`
                    # would look whole.
                    self._check_stopped(url)
                return resp.status, url, dict(resp.headers)
            # SSLError here is a TLS record that didn't decrypt mid-body (the certificate
            # was verified when connecting): the transfer was damaged, like a cut one.
            except (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError,
                    urllib3.exceptions.DecodeError, urllib3.exceptions.SSLError) as exc:
                restart()
                attempt = self._retry_or_raise(url, attempt, f"transfer broken: {exc}")
            finally:
                # A body left unread (redirect, retry, error, size limit) must not go
                # back to the pool with its connection: close it (no stray sockets).
                if not resp.closed:
                    resp.close()
                resp.release_conn()

    def _redirect(self, url: str, location: str,
                  authorization: str | None) -> tuple[str, str | None]:
        """The URL redirected to, and the Authorization header that may go with it."""
        target = urllib.parse.urljoin(url, location)
        old, new = urllib.parse.urlsplit(url), urllib.parse.urlsplit(target)
        if new.scheme != old.scheme or new.netloc.lower() != old.netloc.lower():
            raise FetchError(
                f"refusing redirect from {redact_url(url)} to {redact_url(target)}: a "
                "redirect may not change the scheme or host",
            )
        target, own = self._credentials.authorize(target)
        # Credentials never follow a redirect to another origin, should the rule above
        # ever be relaxed; on the same one, those the first URL carried still hold.
        if own is None and origin(target) == origin(url):
            own = authorization
        return target, own

    def _retry_or_raise(self, url: str, attempt: int, reason: str,
                        retry_after: str | None = None) -> int:
        # After `stop`, a failure is the stop's (a read it cut) or beside the point.
        self._check_stopped(url)
        if attempt >= self.retries:
            raise FetchError(
                f"giving up on {redact_url(url)} after {attempt + 1} attempts: {reason}")
        delay = self.backoff * (2 ** attempt)
        if retry_after:
            delay = max(delay, _parse_retry_after(retry_after))
        self._stopped.wait(min(delay, 30.0))  # cut short by `stop`: the loop then ends
        return attempt + 1

    def _check_stopped(self, url: str) -> None:
        if self._stopped.is_set():
            raise FetchError(f"stopped before {redact_url(url)} was complete")

    @contextlib.contextmanager
    def _interruptible(self, url: str, resp: urllib3.BaseHTTPResponse) -> Iterator[None]:
        """While `resp`'s body is read, `stop` shuts its connection down: a read blocked
        on a silent server returns at once, where it would wait a whole --timeout."""
        import socket

        # A duplicate of the connection's socket: the socket itself is out of reach once
        # an answer ends the connection (HTTP/1.0, `Connection: close`), and it is an
        # SSLSocket, whose shutdown() drops the TLS state, so that a read under way would
        # return the encrypted bytes as body (CPython issue 124618).
        with socket.socket(fileno=socket.dup(resp.fileno())) as sock:
            with self._lock:
                self._check_stopped(url)
                self._reading.add(sock)
            try:
                yield
            finally:
                with self._lock:
                    self._reading.discard(sock)


def parallel_map(client: Client | None, fn: Callable[[T], R], items: Sequence[T], *,
                 workers: int) -> list[R]:
    """`fn` on each of `items`, on up to `workers` threads making requests with `client`:
    the results in order, or the first failure (in order) once every call has ended.

    Ctrl-C stops `client` and drops the calls not started: without that, the run would
    end only after every request, retries and back-offs included (minutes with a stalled
    server)."""
    from concurrent.futures import ThreadPoolExecutor, wait

    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(items))))
    try:
        futures = [pool.submit(fn, item) for item in items]
        wait(futures)  # every call first: a Ctrl-C meanwhile wins over an earlier failure
        return [f.result() for f in futures]
    except KeyboardInterrupt:
        if client is not None:
            client.stop()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        # Ctrl-C too: the calls under way (ending soon) must not outlast the caller, who
        # may be about to close what they write to (e.g. the cache).
        pool.shutdown()


class _Connections:
    """The pools, made at the first connection; shared by a client's copies
    (`with_retries`): one direct, one for each proxy used (see `proxy_for`)."""

    def __init__(self, ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext],
                 proxy: str | None, size: int) -> None:
        self._ssl_context = ssl_context
        self._proxy = proxy
        self._size = size
        self._lock = threading.Lock()
        self._pools: dict[str | None, urllib3.PoolManager] = {}

    def pool(self, url: str) -> tuple[urllib3.PoolManager, str | None]:
        """The pool for a request to `url`, and the proxy it goes through (if any)."""
        proxy = proxy_for(url, self._proxy)
        with self._lock:
            if proxy not in self._pools:
                if callable(self._ssl_context):
                    self._ssl_context = self._ssl_context()
                self._pools[proxy] = _pool_manager(proxy, self._ssl_context, self._size)
            return self._pools[proxy], proxy

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.clear()


def _pool_manager(proxy: str | None, context: ssl.SSLContext,
                  size: int) -> urllib3.PoolManager:
    import urllib3

    if not proxy:
        return urllib3.PoolManager(ssl_context=context, maxsize=size)
    # urllib3 ignores a proxy URL's credentials: they go as a header (requests does so).
    bare, pair = split_credentials(proxy)
    headers = (urllib3.make_headers(proxy_basic_auth=f"{pair[0]}:{pair[1]}")
               if pair is not None else None)
    try:
        return urllib3.ProxyManager(bare, proxy_headers=headers, ssl_context=context,
                                    maxsize=size)
    except urllib3.exceptions.ProxySchemeUnknown as exc:
        # Not shown: without a scheme, a token in it can't be told from the rest.
        what = ("a SOCKS proxy (ALL_PROXY=socks5://... is curl's way) is not supported"
                if bare.lower().startswith("socks") else "unsupported proxy URL")
        raise FetchError(f"{what}: give an HTTP proxy as http://[USER:TOKEN@]host:port "
                         "(or https://), with --proxy or HTTPS_PROXY") from exc


def _status_error(url: str, status: int, reason: str | None, *,
                  sent_credentials: bool) -> FetchError:
    message = f"HTTP {status} {reason or ''}".strip() + f" for {redact_url(url)}"
    # What to do is the one thing a user can't tell from the status alone.
    if status in (401, 403) and sent_credentials:
        message += (": the index refused the credentials sent (from the index URL or "
                    "~/.netrc): check the user name and token, and what they may read")
    elif status in (401, 403):
        message += (": the index wants credentials: give them in the index URL "
                    "(https://USER:TOKEN@host/simple/) or in ~/.netrc (secinstall reads "
                    "no keyring)")
    return FetchError(message)


def _parse_retry_after(value: str) -> float:
    if value.strip().isdigit():
        return float(value.strip())
    import email.utils

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, when.timestamp() - time.time())


def _cert_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verdict inside a wrapped TLS error, if that is what it is."""
    import ssl

    inner: BaseException | None = exc
    seen: set[int] = set()
    while inner is not None and id(inner) not in seen:
        seen.add(id(inner))
        if isinstance(inner, ssl.SSLCertVerificationError):
            return inner
        inner = inner.__cause__ or inner.__context__ or (
            inner.args[0] if inner.args and isinstance(inner.args[0], BaseException) else None)
    return None


def _ssl_reason(exc: Exception) -> str:
    cert = _cert_error(exc)
    if cert is not None:
        return cert.verify_message or str(cert)
    return str(exc)


def _file_path(url: str) -> Path:
    from urllib.request import url2pathname

    return Path(url2pathname(urllib.parse.urlsplit(url).path))
