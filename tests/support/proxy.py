"""A local HTTP proxy for tests: CONNECT tunnels to this machine, behind HTTP Basic
credentials as a company proxy wants them, recording what each tunnel was for and which
command lines the machine's processes showed meanwhile (what any local user sees in ps)."""

from __future__ import annotations

import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from tests.support.index import _basic, serve_in_thread, stop_serving


def command_lines() -> list[list[str]]:
    """Every process's command line, as any local user may read it (ps, /proc/PID/cmdline)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        if raw:
            found.append(raw.decode(errors="replace").rstrip("\0").split("\0"))
    return found


class _Server(ThreadingHTTPServer):
    # Non-daemon handler threads, so server_close() joins them: no tunnel outlives the proxy.
    daemon_threads = False

    def __init__(self, proxy: ConnectProxy) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.proxy = proxy


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # a silent client must not keep stop() waiting for ever

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_CONNECT(self) -> None:
        proxy = self.server.proxy
        host, _, port = self.path.rpartition(":")
        with proxy.lock:
            proxy.command_lines.append(command_lines())
        if self.headers.get("Proxy-Authorization") != proxy.authorization:
            with proxy.lock:
                proxy.refused.append(self.path)
            self.send_response(407)
            self.send_header("Proxy-Authenticate", 'Basic realm="test proxy"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if host not in ("127.0.0.1", "localhost") or not port.isdigit():
            self.send_error(403, "this proxy tunnels to 127.0.0.1 only")
            return
        with socket.create_connection((host, int(port)), timeout=self.timeout) as upstream:
            with proxy.lock:
                proxy.tunnels.append(self.path)
            self.send_response(200, "Connection established")
            self.end_headers()
            self._relay(upstream)
        self.close_connection = True

    def _relay(self, upstream: socket.socket) -> None:
        """Bytes both ways until either side closes (or the proxy stops)."""
        ends = [self.connection, upstream]
        while not self.server.proxy.closing.is_set():
            readable, _, _ = select.select(ends, [], [], 0.05)
            try:
                for end in readable:
                    data = end.recv(65536)
                    if not data:
                        return
                    (upstream if end is self.connection else self.connection).sendall(data)
            except OSError:  # a side hung up mid-tunnel
                return


class ConnectProxy:
    """An HTTP proxy on http://127.0.0.1:<random port> that wants `credentials`."""

    def __init__(self, credentials: tuple[str, str]) -> None:
        self.credentials = credentials
        #: The Proxy-Authorization header a tunnel needs; without it: 407.
        self.authorization = _basic(*credentials)
        self.lock = threading.Lock()
        #: "host:port" of each tunnel opened.
        self.tunnels: list[str] = []
        #: "host:port" of each CONNECT refused for its credentials.
        self.refused: list[str] = []
        #: For each CONNECT, every process's command line at that moment.
        self.command_lines: list[list[list[str]]] = []
        self.closing = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The proxy's URL, with its credentials (percent-encoded)."""
        if self._server is None:
            raise RuntimeError("ConnectProxy is not started")
        user, password = (quote(part, safe="") for part in self.credentials)
        return f"http://{user}:{password}@127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ConnectProxy:
        self.closing.clear()
        self._server = _Server(self)
        self._thread = serve_in_thread(self._server, "proxy")
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.closing.set()
        if self._server is not None and self._thread is not None:
            stop_serving(self._server, self._thread)
            self._server = self._thread = None
