"""OSV records for the vulnerability tests: one advisory of a PyPI project, and the ranges
that make it affect some versions of it."""

from __future__ import annotations

from typing import Any


def osv(ident: str, name: str = "lib", **affected: Any) -> dict[str, Any]:
    return {"id": ident, "aliases": [f"CVE-{ident}"], "summary": f"{ident} summary",
            "affected": [{"package": {"ecosystem": "PyPI", "name": name}, **affected}]}


RANGE: dict[str, Any] = {"ranges": [{"type": "ECOSYSTEM", "events": [
    {"introduced": "0"}, {"fixed": "1.1"}, {"introduced": "2.0"}, {"last_affected": "2.2"}]}]}
