"""The one factory for TLS contexts: the OS trust store, plus `--cert` bundles.

On macOS and Windows the OS verifies certificates, through truststore. On Linux and the
other OpenSSL platforms, truststore's backend *is* OpenSSL's default verify paths (with
a list of well-known bundle locations as fallback); this module loads them once, the
same way. truststore would reload the whole bundle for every connection and hold one
lock across every handshake, which serialises parallel downloads
(sethmlarson/truststore#212): the trust decision is the same, only the cost differs.

Fails closed: if the OS trust store can't be used, no connection is made (pip silently
falls back to certifi).
"""

from __future__ import annotations

import os
import re
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import TLSError

# truststore's own candidates (truststore/_openssl.py, after Christian Heimes'
# certifi-system-store), for systems whose OpenSSL default paths hold no certificates.
CA_FILE_CANDIDATES = (
    "/etc/ssl/cert.pem",  # Alpine, Arch, Fedora 34-43, OpenWRT, RHEL 9-10, BSD
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # Fedora 44+, RHEL 11+
    "/etc/pki/tls/cert.pem",  # Fedora <= 34, RHEL <= 9, CentOS <= 9
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu
    "/etc/ssl/ca-bundle.pem",  # SUSE
)
_HASHED_CERT_NAME = re.compile(r"^[0-9a-fA-F]{8}\.[0-9]$")


def uses_openssl_store() -> bool:
    """True where the OS trust store is OpenSSL's (everything but macOS and Windows)."""
    return sys.platform not in ("darwin", "win32")


def _load_os_store(ctx: ssl.SSLContext) -> None:
    defaults = ssl.get_default_verify_paths()
    capath_ok = bool(defaults.capath and os.path.isdir(defaults.capath) and any(
        _HASHED_CERT_NAME.match(name) for name in os.listdir(defaults.capath)))
    if defaults.cafile or capath_ok:
        ctx.set_default_verify_paths()
        return
    for cafile in CA_FILE_CANDIDATES:
        if os.path.isfile(cafile):
            ctx.load_verify_locations(cafile=cafile)
            return
    raise TLSError(
        "no CA certificates found in the OS trust store (OpenSSL's default paths and "
        f"{', '.join(CA_FILE_CANDIDATES)} are all empty); install the system's CA "
        "certificates package, or give a bundle with --cert")


def create_context(cert_files: Sequence[str | Path] = (),
                   client_cert: str | Path | None = None) -> ssl.SSLContext:
    """A client context that verifies against the OS trust store and `cert_files`, and
    presents `client_cert` (certificate and private key, PEM) to a server that asks."""
    if uses_openssl_store():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        _load_os_store(ctx)
    else:  # pragma: no cover - macOS and Windows
        try:
            import truststore
        except ImportError as exc:
            raise TLSError(
                "truststore is not installed, so the OS trust store can't be used; "
                "secinstall does not fall back to another CA bundle",
            ) from exc
        try:
            ctx = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        except Exception as exc:
            raise TLSError(f"the OS trust store can't be used: {exc}") from exc
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    for cert in cert_files:
        try:
            ctx.load_verify_locations(cafile=str(cert))
        except (OSError, ssl.SSLError) as exc:
            raise TLSError(f"can't load CA bundle {cert} (--cert): {exc}") from exc
    if client_cert is not None:
        load_client_cert(ctx, client_cert)
    return ctx


def load_client_cert(ctx: ssl.SSLContext, path: str | Path) -> None:
    """Load a client certificate and its private key (one PEM file, as pip's
    --client-cert) into `ctx`; an encrypted key is refused, never asked for on the
    terminal (OpenSSL's default), which a CI job doesn't have."""
    try:
        ctx.load_cert_chain(str(path), password=lambda: b"")
    except (OSError, ssl.SSLError) as exc:
        raise TLSError(f"can't load the client certificate {path} (--client-cert: one PEM "
                       "file holding the certificate and its private key, unencrypted): "
                       f"{exc}") from exc
