"""The verifying index: a local PEP 503/691 index in front of the upstream ones that
lists their wheels and serves a file only after it passed `install`'s checks (hashes,
attestations and publisher policy, the archive), answering 403 with the reason otherwise.

Plain http on a loopback address: pip and uv treat 127.0.0.0/8 and ::1 as secure
origins, and nothing leaves the machine between the client and this server.
"""

from __future__ import annotations

import html
import ipaddress
import json
import shutil
import socket
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)

from . import tls
from .cache import Cache, default_cache_dir
from .client import Client
from .errors import ConfigError, FetchError, SecinstallError, VerificationError
from .fetch import fetch_one
from .index import Finder
from .models import (
    AttestationPolicy,
    IndexFile,
    PlannedDist,
    Sources,
    VerifiedDist,
)
from .pipeline import verify
from .verify.publishers import TrustFile
from .verify.wheel import WheelInfo

Log = Callable[[str], None]

#: The port `hook enable` and `serve` agree on when none is given.
DEFAULT_PORT = 8740
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
#: A reason phrase longer than this is cut (the body keeps the whole message).
MAX_REASON = 1000


@dataclass(frozen=True)
class ServeSettings:
    """What the verifying index fetches from and how it verifies."""

    sources: Sources
    policy: AttestationPolicy = field(default_factory=AttestationPolicy)
    #: The content-addressed cache (default: the user's, as for `install`).
    cache_dir: Path | None = None
    #: A temporary cache for this server only (`--no-cache-dir`).
    no_cache: bool = False
    #: An environment's `.secinstall/` whose trusted publishers are checked (trust on
    #: first use); None checks only the pins.
    trust_dir: Path | None = None
    #: Record a newly verified publisher in `trust_dir` as soon as its file is served.
    record_trust: bool = True


@dataclass(frozen=True)
class Served:
    """A file that passed verification and was served."""

    verified: VerifiedDist
    info: WheelInfo


@dataclass(frozen=True)
class Refusal:
    """A file that was asked for and refused, and why."""

    project: str
    filename: str
    reason: str


class NotListedError(FetchError):
    """A file no upstream index lists (answered 404, not recorded as a refusal)."""


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class VerifyingIndex:
    """The server's state: upstream client and finder, cache, and what was served."""

    def __init__(self, settings: ServeSettings, *, log: Log = lambda _m: None) -> None:
        src = settings.sources
        self.settings = settings
        self.log = log
        self.client = Client(ssl_context=tls.create_context(src.certs, src.client_cert),
                             trusted_hosts=src.trusted_hosts, timeout=src.timeout,
                             retries=src.retries, proxy=src.proxy,
                             credential_urls=(*src.index_urls, *src.find_links))
        self.finder = Finder(self.client, src.index_urls, src.find_links)
        self.cache = Cache(None if settings.no_cache
                           else settings.cache_dir or default_cache_dir())
        self.trust = TrustFile(settings.trust_dir) if settings.trust_dir is not None else None
        self._lock = threading.Lock()
        self._cache_note_said = False  # a cache that can't be written: said once
        self._listings: dict[NormalizedName, list[IndexFile]] = {}
        self.served: list[Served] = []
        self.refused: list[Refusal] = []

    def close(self) -> None:
        self.client.close()
        self.cache.close()

    # -- listings -------------------------------------------------------------------------

    def wheels(self, project: str) -> tuple[list[IndexFile], int]:
        """The wheels upstream lists for `project` and how many sdists were left out."""
        name = canonicalize_name(project)
        files = self.finder.files(name)
        wheels = [f for f in files if f.filename.endswith(".whl") and _wheel_of(f, name)]
        with self._lock:
            self._listings[name] = wheels
        return wheels, sum(1 for f in files if not f.filename.endswith(".whl"))

    def _upstream_file(self, project: NormalizedName, filename: str) -> IndexFile:
        with self._lock:
            known = self._listings.get(project)
        if known is None or not any(f.filename == filename for f in known):
            known, _ = self.wheels(project)
        same = [f for f in known if f.filename == filename]
        if not same:
            raise NotListedError(f"{filename}: no index lists it for {project}")
        digests = {f.hashes.get("sha256") for f in same} - {None}
        if len(digests) > 1:
            where = ", ".join(f"{f.origin} (sha256:{f.hashes.get('sha256')})" for f in same)
            raise VerificationError(
                f"{filename} is listed with different contents by two indexes: {where}; "
                "one of them serves something else under this name",
            )
        return same[0]

    # -- files ----------------------------------------------------------------------------

    def verified_file(self, project: str, filename: str) -> Served:
        """Fetch, verify and record `filename`; raises `SecinstallError` on refusal."""
        name = canonicalize_name(project)
        try:
            try:
                wheel_name, version, _build, _tags = parse_wheel_filename(filename)
            except InvalidWheelFilename as exc:
                raise VerificationError(
                    f"{filename} is not a wheel: only wheels are served, since a source "
                    "distribution runs arbitrary code when it is built",
                ) from exc
            if canonicalize_name(wheel_name) != name:
                raise VerificationError(f"{filename} is not a file of {name}")
            file = self._upstream_file(name, filename)
            dist = PlannedDist(name=name, version=str(version), file=file, pinned={},
                               requested=False)
            fetched = fetch_one(self.client, self.cache, dist, policy=self.settings.policy)
            with self._lock:
                if self.cache.note is not None and not self._cache_note_said:
                    self._cache_note_said = True
                    self.log(f"warning: {self.cache.note}")
            # The wheel's tags are the client's choice (`pip download --platform` is
            # legitimate) and no pins exist here, so neither is checked.
            verified, info = verify(fetched, require_pin=False, policy=self.settings.policy,
                                    trust=self.trust, tags=())
            if self.trust is not None and self.settings.record_trust \
                    and verified.attestation is not None:
                with self._lock:
                    self.trust.update({name: verified.attestation})
        except NotListedError:
            raise
        except SecinstallError as exc:
            with self._lock:
                self.refused.append(Refusal(name, filename, exc.message))
            raise
        served = Served(verified, info)
        with self._lock:
            self.served.append(served)
        return served


def _wheel_of(file: IndexFile, name: NormalizedName) -> bool:
    """A valid wheel file name of project `name` (an index may list anything)."""
    try:
        return canonicalize_name(parse_wheel_filename(file.filename)[0]) == name
    except InvalidWheelFilename:
        return False


# -- pages --------------------------------------------------------------------------------


def _negotiate(accept: str) -> str:
    """PEP 691: JSON when the client prefers it (or equally), else HTML."""
    quality: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for p in params:
            key, _, value = p.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        quality[media.lower()] = max(q, quality.get(media.lower(), 0.0))
    json_q = max(quality.get(JSON_TYPE, 0.0),
                 quality.get("application/vnd.pypi.simple.latest+json", 0.0))
    html_q = max(quality.get(t, 0.0) for t in (HTML_TYPE, "text/html", "*/*"))
    return JSON_TYPE if json_q > 0 and json_q >= html_q else HTML_TYPE


def _file_url(base: str, project: str, f: IndexFile) -> str:
    return f"{base}/files/{project}/{urllib.parse.quote(f.filename)}"


def project_page(base: str, project: NormalizedName, files: Sequence[IndexFile],
                 refused_sdists: int, content_type: str) -> bytes:
    """The project page that points every file at this server (no provenance, no
    core metadata: the client gets both checked, inside the verified wheel)."""
    if content_type == JSON_TYPE:
        sizes_known = all(f.size is not None for f in files)
        entries = []
        for f in files:
            entry: dict[str, Any] = {"filename": f.filename, "url": _file_url(base, project, f),
                                     "hashes": dict(f.hashes),
                                     "yanked": f.yanked if f.yanked else f.yanked is not None}
            if f.requires_python:
                entry["requires-python"] = f.requires_python
            if f.size is not None:
                entry["size"] = f.size
            if f.upload_time:
                entry["upload-time"] = f.upload_time
            entries.append(entry)
        versions = [str(v) for v in sorted({parse_wheel_filename(f.filename)[1] for f in files})]
        doc = {"meta": {"api-version": "1.1" if sizes_known else "1.0",
                        "_secinstall-refused-sdists": refused_sdists},
               "name": project, "files": entries, "versions": versions}
        return json.dumps(doc).encode()
    links = []
    for f in files:
        fragment = next((f"#{a}={h}" for a, h in sorted(f.hashes.items())), "")
        attrs = f'href="{html.escape(_file_url(base, project, f) + fragment)}"'
        if f.requires_python:
            attrs += f' data-requires-python="{html.escape(f.requires_python)}"'
        if f.yanked is not None:
            attrs += f' data-yanked="{html.escape(f.yanked)}"'
        links.append(f"<a {attrs}>{html.escape(f.filename)}</a><br>\n")
    note = (f"<!-- secinstall: {refused_sdists} source distribution(s) not listed: "
            "building one runs arbitrary code -->\n" if refused_sdists else "")
    return _html_page(f"Links for {project}", "".join(links), note)


def root_page(content_type: str) -> bytes:
    """No project list: clients ask for a project's page directly, and the upstream
    list can be large (PyPI's is hundreds of MB)."""
    if content_type == JSON_TYPE:
        return json.dumps({"meta": {"api-version": "1.0"}, "projects": []}).encode()
    return _html_page("secinstall verifying index",
                      "<p>Project pages are at /simple/&lt;project&gt;/.</p>\n", "")


def _html_page(title: str, body: str, comment: str) -> bytes:
    head = (f'<meta name="pypi:repository-version" content="1.0">'
            f"<title>{html.escape(title)}</title>")
    return (f"<!DOCTYPE html>\n<html><head>{head}</head>\n<body>\n{comment}{body}"
            "</body></html>\n").encode()


def reason_phrase(message: str) -> str:
    """`message` as an HTTP reason phrase: one line of printable ASCII (clients decode
    it as Latin-1), cut to MAX_REASON characters."""
    text = " ".join(message.split())
    text = "".join(c if 32 <= ord(c) < 127 else "?" for c in text)
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


# -- the HTTP server -----------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so stopping never waits on keep-alive.
    server: _Server
    server_version = "secinstall-serve"
    #: Seconds a silent client may hold a handler thread.
    timeout = 60

    def log_message(self, format: str, *args: Any) -> None:
        pass  # what matters (served, refused) is logged by the index itself

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if not self._host_allowed():
            self._send(421, b"this server answers only to its own address\n", "text/plain",
                       reason="Misdirected Request: wrong Host header")
            return
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        parts = path.split("/")
        if path == "/simple/":
            ctype = _negotiate(self.headers.get("Accept", ""))
            self._send(200, root_page(ctype), ctype, {"Vary": "Accept"})
        elif len(parts) in (3, 4) and parts[1] == "simple" and parts[2] \
                and (len(parts) == 3 or not parts[3]):
            self._project(parts[2], with_slash=len(parts) == 4)
        elif len(parts) == 4 and parts[1] == "files" and parts[2] and parts[3]:
            self._file(parts[2], parts[3])
        else:
            self._send(404, b"not found\n", "text/plain")

    def _host_allowed(self) -> bool:
        # A web page can't use DNS rebinding to reach this server: browsers send the
        # attacker's name in Host.
        if not self.server.check_host:
            return True
        host = (self.headers.get("Host") or "").lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return is_loopback(name)

    def _project(self, raw: str, *, with_slash: bool) -> None:
        name = canonicalize_name(raw)
        if raw != name or not with_slash:
            self._send(301, b"", "text/plain", {"Location": f"/simple/{name}/"})
            return
        index = self.server.index
        try:
            wheels, sdists = index.wheels(name)
        except SecinstallError as exc:
            index.log(f"upstream failed for {name}: {exc.message}")
            self._send(502, f"secinstall: {exc.message}\n".encode(), "text/plain",
                       reason=reason_phrase(f"secinstall: {exc.message}"))
            return
        if not wheels and not sdists:
            self._send(404, f"no index lists {name}\n".encode(), "text/plain")
            return
        if sdists:
            index.log(f"{name}: {sdists} source distribution(s) not listed (wheels only)")
        ctype = _negotiate(self.headers.get("Accept", ""))
        body = project_page(self.server.base_url, name, wheels, sdists, ctype)
        self._send(200, body, ctype, {"Vary": "Accept"})

    def _file(self, project: str, filename: str) -> None:
        index = self.server.index
        try:
            served = index.verified_file(project, filename)
        except NotListedError as exc:
            self._send(404, f"{exc.message}\n".encode(), "text/plain; charset=utf-8")
            return
        except (VerificationError, FetchError) as exc:
            verdict = "refused" if isinstance(exc, VerificationError) else "could not fetch"
            index.log(f"{verdict} {filename}: {exc.message}")
            status = 403 if isinstance(exc, VerificationError) else 502
            message = (f"secinstall {verdict} it: {exc.message}" if filename in exc.message
                       else f"secinstall {verdict} {filename}: {exc.message}")
            body = "\n    ".join([message, *exc.details]) + "\n"
            self._send(status, body.encode(), "text/plain; charset=utf-8",
                       reason=reason_phrase(message))
            return
        except SecinstallError as exc:  # e.g. TLS to upstream: the server can't do its job
            index.log(f"could not fetch {filename}: {exc.message}")
            self._send(502, f"secinstall: {exc.message}\n".encode(), "text/plain",
                       reason=reason_phrase(f"secinstall could not fetch {filename}: "
                                            f"{exc.message}"))
            return
        v = served.verified
        index.log(f"served {filename}: sha256 checked against "
                  f"{' and '.join(v.hash_sources) or 'nothing known'}; "
                  + (f"published by {v.attestation.publisher or v.attestation.identity}"
                     if v.attestation is not None else v.attestation_note or ""))
        path = v.fetched.path
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(v.fetched.size))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            with path.open("rb") as f:
                shutil.copyfileobj(f, self.wfile)

    def _send(self, status: int, body: bytes, content_type: str,
              headers: dict[str, str] | None = None, *, reason: str | None = None) -> None:
        self.send_response(status, reason)
        # Every answer is a fresh verdict: a client's HTTP cache must not skip this server.
        for key, value in {"Content-Type": content_type, "Cache-Control": "no-store",
                           **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    # Non-daemon handler threads: closing the server waits for answers in progress.
    daemon_threads = False

    def __init__(self, address: tuple[str, int], index: VerifyingIndex,
                 check_host: bool) -> None:
        self.index = index
        self.check_host = check_host
        super().__init__(address, _Handler)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return  # the client hung up
        self.index.log(f"error while answering {client_address}: {exc!r}")


class _Server6(_Server):
    address_family = socket.AF_INET6


class IndexServer:
    """The verifying index, served from a background thread."""

    def __init__(self, settings: ServeSettings, *, host: str = "127.0.0.1", port: int = 0,
                 log: Log = lambda _m: None, allow_remote: bool = False) -> None:
        if not is_loopback(host) and not allow_remote:
            raise ConfigError(
                f"--host {host} is not a loopback address: clients would fetch over plain "
                "http across the network, where the answers can be changed; use 127.0.0.1 "
                "(or pass --unsafe-listen-on-network if you really mean it)",
            )
        self.index = VerifyingIndex(settings, log=log)
        own = {host.lower(), "localhost", "127.0.0.1", "[::1]", "::1"}
        loops = [u for u in settings.sources.index_urls
                 if (urllib.parse.urlsplit(u).hostname or "").lower() in own
                 and urllib.parse.urlsplit(u).port == port and port]
        if loops:
            self.index.close()
            raise ConfigError(f"the upstream index {loops[0]} is this server itself; give "
                              "the real index with --index-url")
        cls = _Server6 if ":" in host.strip("[]") else _Server
        try:
            self._server = cls((host.strip("[]"), port), self.index,
                               check_host=not allow_remote)
        except OSError as exc:
            self.index.close()
            raise ConfigError(f"can't listen on {host}:{port}: {exc.strerror or exc}") from exc
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The index URL to give clients (`.../simple/`)."""
        return f"{self._server.base_url}/simple/"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> IndexServer:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="secinstall-serve", daemon=True)
        self._thread.start()
        return self

    def wait(self) -> None:
        """Block until interrupted (Ctrl-C raises KeyboardInterrupt here)."""
        if self._thread is not None:
            while self._thread.is_alive():
                self._thread.join(0.5)

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
        self.index.close()

    def __enter__(self) -> IndexServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

