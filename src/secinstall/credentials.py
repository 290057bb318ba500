"""Credentials for private indexes, found where pip finds them: in a URL's userinfo
(`https://USER:TOKEN@host/simple/`), else in ~/.netrc (or the file $NETRC names).

They are sent as HTTP Basic auth, and only to the origin (scheme, host, port) they were
given for: an index's credentials reach its own files (e.g. under /packages/, listed
without credentials), never a file hosted on another server.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from collections.abc import Iterable

#: (scheme, host, port): what a credential is for.
Origin = tuple[str, str, int]
#: (user, password), percent-decoded.
Pair = tuple[str, str]

_DEFAULT_PORTS = {"https": 443, "http": 80}


def origin(url: str) -> Origin:
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # not a number: such a URL fails when it is requested
        port = None
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme, 0)


def split_credentials(url: str) -> tuple[str, Pair | None]:
    """`url` without its userinfo, and the credentials that were in it."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    bare = urllib.parse.urlunsplit(parts._replace(netloc=hostport))
    return bare, (urllib.parse.unquote(user), urllib.parse.unquote(password))


def basic_auth(pair: Pair) -> str:
    import base64

    token = base64.b64encode(f"{pair[0]}:{pair[1]}".encode()).decode("ascii")
    return f"Basic {token}"


class Credentials:
    """Which credentials go with a request: thread-safe, one per client."""

    def __init__(self, configured: Iterable[str] = ()) -> None:
        """`configured`: the index and find-links URLs the user gave; credentials in
        them hold for every request to the same origin (the first given wins)."""
        self._lock = threading.Lock()
        self._by_origin: dict[Origin, Pair] = {}
        for url in configured:
            _, pair = split_credentials(url)
            if pair is not None:
                self._by_origin.setdefault(origin(url), pair)
        self._netrc: dict[str, Pair] | None = None  # host -> credentials, read once

    def authorize(self, url: str) -> tuple[str, str | None]:
        """`url` as it goes on the wire (no userinfo) and its `Authorization` header, if
        any: the URL's own credentials, else those configured for its origin, else
        netrc's for its host."""
        bare, pair = split_credentials(url)
        if pair is None:
            key = origin(bare)
            with self._lock:
                pair = self._by_origin.get(key) or self._from_netrc(key[1])
        return bare, basic_auth(pair) if pair is not None else None

    def _from_netrc(self, host: str) -> Pair | None:
        if self._netrc is None:
            self._netrc = _read_netrc()
        return self._netrc.get(host)


def _read_netrc() -> dict[str, Pair]:
    """Each host's credentials in the user's netrc file; none if it is missing or can't be
    parsed (as requests does for pip: a run that needs them fails with a 401 that points
    here). Its `default` entry is not used: it would go to every host, PyPI included."""
    import netrc

    path = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    try:
        parsed = netrc.netrc(path)
    except (OSError, netrc.NetrcParseError):
        return {}
    found: dict[str, Pair] = {}
    for host, (login, _account, password) in parsed.hosts.items():
        if login or password:
            found[host.lower()] = (login or "", password or "")
    return found
