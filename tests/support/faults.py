"""Broken-server answers for the local index (`LocalIndex.misbehave(suffix, fault, times)`):
cut bodies, lying lengths, resets, stalls, trickles, odd statuses, redirects and
substituted bodies."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time

from tests.support.index import Exchange, Misbehaviour


def _part(exchange: Exchange, keep: float) -> bytes:
    return exchange.body[: int(len(exchange.body) * keep)]


def truncated(keep: float = 0.5) -> Misbehaviour:
    """Promise the whole body (its Content-Length), send only the first `keep` of it, hang up."""

    def act(exchange: Exchange) -> None:
        exchange.send_head()
        exchange.write(_part(exchange, keep))

    return act


def wrong_length(delta: int) -> Misbehaviour:
    """Send the whole body under a Content-Length that is off by `delta` bytes."""

    def act(exchange: Exchange) -> None:
        headers = {**exchange.headers, "Content-Length": str(len(exchange.body) + delta)}
        exchange.send_head(headers=headers)
        exchange.write(exchange.body)

    return act


def reset(keep: float = 0.5) -> Misbehaviour:
    """Send the first `keep` of the body, then reset the connection (a TCP RST, no TLS close)."""

    def act(exchange: Exchange) -> None:
        exchange.send_head()
        exchange.write(_part(exchange, keep))
        sock = exchange.handler.connection
        # Linger 0: close() sends RST instead of FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    return act


def stall(seconds: float = 30.0, keep: float = 0.0, *, headers: bool = True,
          length: bool = True) -> Misbehaviour:
    """Send the headers (unless `headers` is false; with `length` false, without the
    Content-Length: the end would be the hang-up) and the first `keep` of the body, then go
    silent for `seconds`, or until the index stops."""

    def act(exchange: Exchange) -> None:
        if headers:
            exchange.send_head(headers=None if length else {
                k: v for k, v in exchange.headers.items() if k != "Content-Length"})
            exchange.write(_part(exchange, keep))
        exchange.closing.wait(seconds)

    return act


def status(code: int, headers: dict[str, str] | None = None) -> Misbehaviour:
    """Answer `code` with `headers` (e.g. Retry-After) and a short text body."""

    def act(exchange: Exchange) -> None:
        body = f"injected {code}\n".encode()
        exchange.send_head(code, {"Content-Type": "text/plain", **(headers or {}),
                                  "Content-Length": str(len(body))})
        exchange.write(body)

    return act


def redirect(location: str, code: int = 302) -> Misbehaviour:
    """Redirect to `location`."""

    def act(exchange: Exchange) -> None:
        exchange.send_head(code, {"Location": location, "Content-Length": "0"})

    return act


def body(data: bytes, content_type: str | None = None, *, length: bool = True,
         headers: dict[str, str] | None = None) -> Misbehaviour:
    """Answer 200 with `data` in place of the real body (keeping its Content-Type unless
    one is given) and extra `headers`; with `length` false there is no Content-Length
    (the end is the hang-up)."""
    extra = headers or {}

    def act(exchange: Exchange) -> None:
        headers = {"Content-Type": content_type or exchange.headers["Content-Type"], **extra}
        if length:
            headers["Content-Length"] = str(len(data))
        exchange.send_head(200, headers)
        for start in range(0, len(data), 64 * 1024):
            exchange.write(data[start:start + 64 * 1024])

    return act


def drip(seconds: float, pieces: int = 10) -> Misbehaviour:
    """The right answer, slowly: the body in `pieces` pieces spread over `seconds`."""

    def act(exchange: Exchange) -> None:
        exchange.send_head()
        size = -(-len(exchange.body) // pieces)
        for start in range(0, len(exchange.body), size):
            exchange.write(exchange.body[start:start + size])
            time.sleep(seconds / pieces)

    return act


def as_usual() -> Misbehaviour:
    """The answer the index would give anyway: the faults for a path apply in turn, so
    this lets a first request through before a fault meant for a later one."""

    def act(exchange: Exchange) -> None:
        exchange.send_head()
        exchange.write(exchange.body)

    return act


def trickle(piece: int = 100, every: float = 0.2) -> Misbehaviour:
    """The right answer at a useless rate (500 bytes a second by default): `piece` bytes
    every `every` seconds, each well within any read timeout, until the client hangs up
    or the index stops."""

    def act(exchange: Exchange) -> None:
        exchange.send_head()
        for start in range(0, len(exchange.body), piece):
            try:
                exchange.write(exchange.body[start:start + piece])
                exchange.handler.wfile.flush()
            except OSError:  # the client gave up on us
                return
            if exchange.closing.wait(every):
                return

    return act


def together(count: int, then: Misbehaviour | None = None, *,
             timeout: float = 30.0) -> Misbehaviour:
    """Hold each answer until `count` requests have arrived (or `timeout` passed), then
    answer (with `then`, else normally): proves that `count` clients overlap."""
    arrived = 0
    condition = threading.Condition()

    def act(exchange: Exchange) -> None:
        nonlocal arrived
        deadline = time.monotonic() + timeout
        with condition:
            arrived += 1
            condition.notify_all()
            # Short waits: the index stopping (`closing`) must also end the wait.
            while arrived < count and not exchange.closing.is_set() \
                    and time.monotonic() < deadline:
                condition.wait(0.05)
        if then is not None:
            then(exchange)
        else:
            exchange.send_head()
            exchange.write(exchange.body)

    return act


def corrupt_record(keep: float = 0.5) -> Misbehaviour:
    """Send the first `keep` of the body, then a TLS record of garbage (written around the
    TLS layer, as a broken middlebox or an attacker on the path would), then hang up."""

    def act(exchange: Exchange) -> None:
        exchange.send_head()
        exchange.write(_part(exchange, keep))
        with socket.socket(fileno=os.dup(exchange.handler.connection.fileno())) as raw:
            # An application-data record (type 23, TLS 1.2 framing) that won't decrypt.
            raw.sendall(b"\x17\x03\x03\x00\x20" + bytes(range(32)))

    return act
