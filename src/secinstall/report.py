"""The installation report: pip's `--report` JSON (format version 1), with what secinstall
verified added under `secinstall` keys. The summary on screen is another view of it."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from . import __version__
from .client import redact_url

if TYPE_CHECKING:
    from .pipeline import Outcome


def _pip_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pip")
    except PackageNotFoundError:
        return None


def build_report(outcome: Outcome, *, weakened: list[str] | None = None) -> dict[str, Any]:
    target = outcome.target
    items = []
    for v in outcome.verified:
        dist, fetched = v.dist, v.fetched
        info = outcome.wheel_info.get(dist.name)
        metadata = dict(info.metadata) if info else dict(dist.metadata or {})
        item: dict[str, Any] = {
            "download_info": {
                "url": redact_url(dist.file.url),
                "archive_info": {"hash": f"sha256={fetched.sha256}",
                                 "hashes": dict(fetched.hashes)},
            },
            "is_direct": dist.is_direct,
            "is_yanked": dist.file.yanked is not None,
            "requested": dist.requested,
            "metadata": metadata,
            "secinstall": {
                "filename": dist.file.filename,
                "size": fetched.size,
                "sha256": fetched.sha256,
                "hash_sources": list(v.hash_sources),
                "pinned": bool(dist.pinned),
                "from_cache": fetched.from_cache,
                "index": redact_url(dist.file.origin),
                "via": list(dist.via),
                "attestation": asdict(v.attestation) if v.attestation else None,
                "attestation_note": v.attestation_note,
            },
        }
        if dist.requested_extras:
            item["requested_extras"] = list(dist.requested_extras)
        items.append(item)
    result = outcome.result
    return {
        "version": "1",
        "pip_version": _pip_version(),
        "install": items,
        "environment": dict(target.markers),
        "secinstall": {
            "version": __version__,
            "resolver": outcome.plan.resolver,
            "require_hashes": outcome.plan.require_hashes,
            "dry_run": result is None,
            "target": {"python": str(target.python), "kind": target.kind,
                       "root": str(target.final_path(target.root)),
                       "scheme": target.final_scheme,
                       "destdir": str(target.destdir) if target.destdir else None},
            "unchanged": [f"{d.name}=={d.version}" for d in outcome.unchanged],
            "removed": [f"{d.name}=={d.version}" for d in (result.removed if result else ())],
            "notes": list(outcome.notes),
            "weakened": list(weakened or []),
        },
    }
