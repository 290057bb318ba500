"""The one factory for TLS contexts: the OS trust store via truststore, plus `--cert` bundles.

Fails closed: if the OS trust store can't be used, no connection is made (pip silently
falls back to certifi; see pypa/pip#13214 for the kind of surprise that causes).
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from pathlib import Path

from .errors import TLSError


def create_context(cert_files: Sequence[str | Path] = ()) -> ssl.SSLContext:
    """A client context that verifies against the OS trust store and `cert_files`."""
    try:
        import truststore
    except ImportError as exc:  # pragma: no cover - truststore is a hard dependency
        raise TLSError(
            "truststore is not installed, so the OS trust store can't be used; "
            "secinstall does not fall back to another CA bundle",
        ) from exc
    try:
        ctx: ssl.SSLContext = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    except Exception as exc:
        raise TLSError(f"the OS trust store can't be used: {exc}") from exc
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    for cert in cert_files:
        try:
            ctx.load_verify_locations(cafile=str(cert))
        except (OSError, ssl.SSLError) as exc:
            raise TLSError(f"can't load CA bundle {cert} (--cert): {exc}") from exc
    return ctx
