"""A local PEP 503/691 package index over HTTPS (trustme certificate) for tests."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import json
import shutil
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import trustme
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename
from packaging.version import Version

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
API_VERSION = "1.3"  # 1.1: size and versions (PEP 700); 1.3: provenance (PEP 740)
_OPTIONAL = ("requires-python", "upload-time")  # keys left out of JSON file entries when unset


def ca_bundle(ca: trustme.CA, tmp: Path) -> Path:
    """Write the CA's certificate as a PEM bundle (for `--cert`) and return its path."""
    path = tmp / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@dataclass
class _File:
    project: str
    version: str
    path: Path  # the copy taken by add()
    sha256: str
    size: int
    serve_bytes: bytes | None
    provenance: bytes | None
    yanked: str | None
    upload_time: str | None
    requires_python: str | None
    base: str | None  # where the file is listed as hosted: another server's base URL


@dataclass
class Exchange:
    """One answer the index is about to send, handed to a misbehaviour instead.

    `status`, `headers` (with Content-Type) and `body` are what a well-behaved index would
    send; the misbehaviour writes whatever it likes (see `tests.support.faults`).
    """

    handler: BaseHTTPRequestHandler
    status: int
    headers: dict[str, str]
    body: bytes
    #: Set when the index stops: a stalled answer must end then.
    closing: threading.Event

    def send_head(self, status: int | None = None, headers: dict[str, str] | None = None) -> None:
        """Send the status line and headers (the given ones replace the normal ones)."""
        self.handler.send_response(self.status if status is None else status)
        for key, value in (self.headers if headers is None else headers).items():
            self.handler.send_header(key, value)
        self.handler.end_headers()

    def write(self, data: bytes) -> None:
        self.handler.wfile.write(data)


#: Replaces one answer of the index: see `LocalIndex.misbehave`.
Misbehaviour = Callable[[Exchange], None]


@dataclass
class _Fault:
    suffix: str
    status: int
    times: int
    action: Misbehaviour | None = None


def _negotiate(accept: str) -> str:
    """PEP 691 content negotiation: JSON if preferred, otherwise some HTML type."""
    quality: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = next((v for k, _, v in (p.partition("=") for p in params) if k.strip() == "q"), "1")
        with contextlib.suppress(ValueError):
            quality[media.lower()] = max(float(q), quality.get(media.lower(), 0.0))
    json_q = max(quality.get(JSON_TYPE, 0.0), quality.get(JSON_TYPE.replace("v1", "latest"), 0.0))
    html_q = max(quality.get(t, 0.0) for t in (HTML_TYPE, "text/html", "text/*", "*/*"))
    if json_q > 0 and json_q >= html_q:
        return JSON_TYPE
    return HTML_TYPE if quality.get(HTML_TYPE, 0.0) > quality.get("text/html", 0.0) else "text/html"


class _Server(ThreadingHTTPServer):
    # Non-daemon handler threads, so server_close() joins them and no socket outlives stop().
    daemon_threads = False

    def __init__(self, index: LocalIndex, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.index = index
        self.context = context

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        # The handshake runs in the handler thread: a client that hangs or refuses the
        # certificate must not block the accept loop.
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        with self.index._lock:
            self.index.server_errors.append(sys.exc_info()[1] or RuntimeError("unknown"))


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0 (the default): one request per connection, so stop() never waits on keep-alive.
    server: _Server
    timeout = 10  # a silent client must not keep stop() waiting for ever
    _action: Misbehaviour | None = None

    def setup(self) -> None:
        # Handshake before super().setup() opens file objects on the socket: those would
        # keep it open (a ResourceWarning) if the handshake fails.
        self.request.settimeout(self.timeout)
        self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        index = self.server.index
        with index._lock:
            index._requests.append(path)
            index._request_times.append((time.monotonic(), path))
            authorization = self.headers.get("Authorization")
            index._authorizations.append((path, authorization))
            index._user_agents.append(self.headers.get("User-Agent"))
            refused = index.require_auth is not None and authorization != _basic(
                *index.require_auth)
            fault = next((f for f in index._faults if f.times and path.endswith(f.suffix)), None)
            if fault is not None:
                fault.times -= 1
            files = sorted(index._files.values(), key=lambda f: f.path.name)
        self._action = fault.action if fault is not None else None
        if refused:
            self._send(401, b"credentials needed\n", "text/plain",
                       {"WWW-Authenticate": 'Basic realm="test index"'})
        elif fault is not None and fault.action is None:
            self._send(fault.status, b"injected fault\n", "text/plain")
        elif path.startswith("/files/"):
            self._serve_file(unquote(path.removeprefix("/files/")), files)
        elif path == "/simple/":
            self._serve_listing(None, files)
        elif path.startswith("/simple/"):
            name = canonicalize_name(unquote(path.removeprefix("/simple/")).rstrip("/"))
            if path != f"/simple/{name}/":  # PEP 503: redirect to the normalised name
                self._send(301, b"", "text/plain", {"Location": f"/simple/{name}/"})
            else:
                self._serve_listing(name, files)
        else:
            self._send(404, b"not found\n", "text/plain")

    def _serve_file(self, name: str, files: list[_File]) -> None:
        entry = next((f for f in files if f.path.name == name.removesuffix(".provenance")), None)
        if entry is None:
            body = None
        elif name.endswith(".provenance"):
            body = entry.provenance
        else:
            body = entry.path.read_bytes() if entry.serve_bytes is None else entry.serve_bytes
        if body is None:
            self._send(404, b"not found\n", "text/plain")
        elif name.endswith(".provenance"):
            self._send(200, body, "application/json")
        else:
            self._send(200, body, "application/octet-stream")

    def _serve_listing(self, project: str | None, files: list[_File]) -> None:
        content_type = _negotiate(self.headers.get("Accept", ""))
        as_json = content_type == JSON_TYPE
        base = self.server.index.base_url
        if project is None:
            projects = sorted({f.project for f in files})
            body = _root_json(projects) if as_json else _root_html(projects)
        else:
            files = [f for f in files if f.project == project]
            if not files:
                self._send(404, b"no such project\n", "text/plain")
                return
            body = _project_json(base, project, files) if as_json else _project_html(base, files)
        self._send(200, body, content_type, {"Vary": "Accept"})

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        if self._action is not None:
            all_headers = {"Content-Type": content_type, **(headers or {}),
                           "Content-Length": str(len(body))}
            self._action(Exchange(self, status, all_headers, body, self.server.index.closing))
            return
        self.send_response(status)
        for key, value in {"Content-Type": content_type, **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def serve_in_thread(server: ThreadingHTTPServer, name: str) -> threading.Thread:
    """`server`'s accept loop, in a thread of its own until `stop_serving`."""
    # A short poll interval: stop_serving() waits up to one interval for the loop to notice.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), name=name, daemon=True)
    thread.start()
    return thread


def stop_serving(server: ThreadingHTTPServer, thread: threading.Thread) -> None:
    """End what `serve_in_thread` started, and the connections `server` accepted."""
    server.shutdown()
    server.server_close()
    thread.join()


class LocalIndex:
    """A PEP 503 (HTML) + PEP 691 (JSON) index on https://127.0.0.1:<random port>."""

    def __init__(self, ca: trustme.CA, root: Path, *, client_certs: bool = False) -> None:
        self._ca = ca
        #: Mutual TLS: every client must present a certificate `ca` issued.
        self._client_certs = client_certs
        self._root = root
        self._lock = threading.Lock()
        self._files: dict[str, _File] = {}
        self._requests: list[str] = []
        self._request_times: list[tuple[float, str]] = []
        self._faults: list[_Fault] = []
        self._authorizations: list[tuple[str, str | None]] = []
        self._user_agents: list[str | None] = []
        #: (user, password) every request must give as HTTP Basic auth, else 401.
        self.require_auth: tuple[str, str] | None = None
        #: Set by stop(), so that a misbehaviour stalling an answer lets go.
        self.closing = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        #: Exceptions raised while handling a connection (e.g. a client refusing the certificate).
        self.server_errors: list[BaseException] = []

    def start(self) -> LocalIndex:
        self.closing.clear()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        if self._client_certs:
            context.verify_mode = ssl.CERT_REQUIRED
            self._ca.configure_trust(context)
        self._server = _Server(self, context)
        self._thread = serve_in_thread(self._server, "index")
        return self

    def stop(self) -> None:
        self.closing.set()
        if self._server is not None and self._thread is not None:
            stop_serving(self._server, self._thread)
            self._server = self._thread = None

    def __enter__(self) -> LocalIndex:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("LocalIndex is not started")
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/simple/"

    @property
    def requests(self) -> list[str]:
        """Paths (without query string) requested so far, in order."""
        with self._lock:
            return list(self._requests)

    @property
    def request_log(self) -> list[tuple[float, str]]:
        """(time.monotonic() when it arrived, path) of each request so far, in order."""
        with self._lock:
            return list(self._request_times)

    @property
    def authorizations(self) -> list[tuple[str, str | None]]:
        """(path, its Authorization header or None) of each request so far, in order."""
        with self._lock:
            return list(self._authorizations)

    @property
    def user_agents(self) -> list[str | None]:
        """The User-Agent header of each request so far, in order."""
        with self._lock:
            return list(self._user_agents)

    def fail_next(self, path_suffix: str, status: int, times: int = 1) -> None:
        """Answer `status` to the next `times` requests whose path ends with `path_suffix`."""
        with self._lock:
            self._faults.append(_Fault(path_suffix, status, times))

    def misbehave(self, path_suffix: str, action: Misbehaviour, times: int = 1) -> None:
        """Let `action` answer the next `times` requests whose path ends with `path_suffix`
        (in place of the answer the index would give; see `tests.support.faults`)."""
        with self._lock:
            self._faults.append(_Fault(path_suffix, 0, times, action))

    def add(
        self,
        path: Path,
        *,
        provenance: bytes | None = None,
        yanked: str | None = None,
        upload_time: str | None = None,
        serve_bytes: bytes | None = None,
        listed_sha256: str | None = None,
        requires_python: str | None = None,
        hosted_at: LocalIndex | None = None,
    ) -> str:
        """Publish a wheel or sdist (a copy, taken now) and return its URL.

        `yanked=""` yanks without a reason. The listing shows the sha256 and size of `path`
        (or `listed_sha256`), while `serve_bytes`, if given, is what a download returns.
        Adding a file name again replaces the earlier entry. With `hosted_at`, the listing
        points at that index (another origin), which must serve the file too.
        """
        if path.name.endswith(".whl"):
            project, version, _, _ = parse_wheel_filename(path.name)
        else:
            project, version = parse_sdist_filename(path.name)
        stored = self._root / "files" / path.name
        stored.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, stored)
        data = stored.read_bytes()
        entry = _File(
            project=canonicalize_name(project),
            version=str(version),
            path=stored,
            sha256=listed_sha256 or hashlib.sha256(data).hexdigest(),
            size=len(data),
            serve_bytes=serve_bytes,
            provenance=provenance,
            yanked=yanked,
            upload_time=upload_time,
            requires_python=requires_python,
            base=hosted_at.base_url if hosted_at is not None else None,
        )
        with self._lock:
            self._files[path.name] = entry
        return _file_url(self.base_url, entry)


def _file_url(base: str, entry: _File) -> str:
    return f"{entry.base or base}/files/{quote(entry.path.name)}"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _root_json(projects: list[str]) -> bytes:
    meta = {"api-version": API_VERSION}
    return json.dumps({"meta": meta, "projects": [{"name": p} for p in projects]}).encode()


def _root_html(projects: list[str]) -> bytes:
    return _page("".join(f'<a href="/simple/{p}/">{p}</a><br>\n' for p in projects))


def _project_json(base: str, project: str, files: list[_File]) -> bytes:
    entries = []
    for f in files:
        url = _file_url(base, f)
        entry: dict[str, Any] = {
            "filename": f.path.name,
            "url": url,
            "hashes": {"sha256": f.sha256},
            # PEP 691: yanked is a non-empty reason string, else a boolean.
            "yanked": f.yanked or f.yanked is not None,
            "size": f.size,
            "core-metadata": False,
            "provenance": f"{url}.provenance" if f.provenance is not None else None,
            "requires-python": f.requires_python,
            "upload-time": f.upload_time,
        }
        entries.append({k: v for k, v in entry.items() if k not in _OPTIONAL or v is not None})
    versions = sorted({f.version for f in files}, key=Version)
    meta = {"api-version": API_VERSION}
    return json.dumps(
        {"meta": meta, "name": project, "files": entries, "versions": versions}
    ).encode()


def _project_html(base: str, files: list[_File]) -> bytes:
    links = []
    for f in files:
        url = _file_url(base, f)
        attrs = f'href="{html.escape(url)}#sha256={f.sha256}"'
        if f.requires_python is not None:
            attrs += f' data-requires-python="{html.escape(f.requires_python)}"'
        if f.yanked is not None:
            attrs += f' data-yanked="{html.escape(f.yanked)}"'
        if f.provenance is not None:
            attrs += f' data-provenance="{html.escape(url)}.provenance"'
        links.append(f"<a {attrs}>{html.escape(f.path.name)}</a><br>\n")
    return _page("".join(links))


def _page(body: str) -> bytes:
    head = f'<meta name="pypi:repository-version" content="{API_VERSION}">'
    return f"<!DOCTYPE html>\n<html><head>{head}</head>\n<body>\n{body}</body></html>\n".encode()
