"""Tests of secinstall.tls: the one TLS context factory (OS trust store plus `--cert`)."""

from __future__ import annotations

import socket
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import trustme

from secinstall.errors import TLSError
from secinstall.tls import create_context


@pytest.fixture
def serve_tls(ca: trustme.CA) -> Iterator[Callable[[str], int]]:
    """Start a one-connection TLS server with a test-CA certificate for `hostname`."""
    threads: list[threading.Thread] = []
    listeners: list[socket.socket] = []

    def start(hostname: str) -> int:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert(hostname).configure_cert(context)
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                try:
                    with context.wrap_socket(conn, server_side=True) as tls:
                        tls.sendall(b"hello")
                except OSError:  # the client hung up on the certificate
                    pass

        threads.append(threading.Thread(target=serve, daemon=True))
        threads[-1].start()
        return int(listener.getsockname()[1])

    yield start
    for thread in threads:
        thread.join(timeout=10)
    for listener in listeners:
        listener.close()


def _handshake(ctx: ssl.SSLContext, port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock, \
            ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
        return tls.recv(5)


def test_context_verifies_certificates_and_hostnames() -> None:
    ctx = create_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is True
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_cert_bundle_is_trusted(ca_file: Path, serve_tls: Callable[[str], int]) -> None:
    assert _handshake(create_context([ca_file]), serve_tls("127.0.0.1")) == b"hello"


def test_unknown_ca_is_refused(serve_tls: Callable[[str], int]) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(create_context(), serve_tls("127.0.0.1"))


def test_hostname_mismatch_is_refused(ca_file: Path, serve_tls: Callable[[str], int]) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(create_context([ca_file]), serve_tls("other.example"))


@pytest.mark.parametrize("content", [None, b"not a certificate\n"], ids=["missing", "garbage"])
def test_bad_cert_file_names_the_file(tmp_path: Path, content: bytes | None) -> None:
    bundle = tmp_path / "my-ca.pem"
    if content is not None:
        bundle.write_bytes(content)
    with pytest.raises(TLSError) as info:
        create_context([bundle])
    assert str(bundle) in info.value.message
    assert "--cert" in info.value.message


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="OpenSSL trust store only")
def test_os_trust_store_is_openssls_default_paths(
    serve_tls: Callable[[str], int], ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the OS trusts (here: SSL_CERT_FILE, as OpenSSL reads it) is trusted without
    --cert, exactly as truststore's OpenSSL backend does."""
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    assert _handshake(create_context(), serve_tls("127.0.0.1")) == b"hello"


def test_one_context_serves_parallel_handshakes(
    serve_tls: Callable[[str], int], ca_file: Path
) -> None:
    """The context is shared by every download thread."""
    ctx = create_context([ca_file])
    ports = [serve_tls("127.0.0.1") for _ in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(lambda p: _handshake(ctx, p), ports)) == [b"hello"] * 4
