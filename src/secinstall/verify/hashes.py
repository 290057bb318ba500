"""Check a fetched file's digests against every hash known for it: the index's, the
user's pins (requirements, constraints) and, in hash-checking mode, insist on a pin."""

from __future__ import annotations

from ..client import redact_url
from ..errors import HashMismatchError
from ..models import FetchedFile


def check_hashes(fetched: FetchedFile, *, require_pin: bool) -> tuple[str, ...]:
    """The sources the file's hashes were checked against; raises on any mismatch."""
    dist, got = fetched.dist, fetched.hashes
    name = dist.file.filename
    sources: list[str] = []
    index_bad = [(a, h) for a, h in dist.file.hashes.items() if a in got and got[a] != h]
    if index_bad:
        algo, want = index_bad[0]
        who = {"resolver": "pip's resolver", "lock": f"the lock file {dist.file.origin}"}.get(
            dist.file.hashes_from, "the index")
        raise HashMismatchError(
            f"{name} does not match the hash {who} gives for it: {who} says "
            f"{algo}:{want}, the downloaded file has {algo}:{got[algo]} "
            f"(from {redact_url(dist.file.url)})",
        )
    if any(a in got for a in dist.file.hashes):
        # A hash only pip's report gave may be one pip computed itself (a link with no
        # hash): it is checked, but not counted as the index's word.
        sources.append(dist.file.hashes_from)
    if dist.pinned:
        checked = [a for a in dist.pinned if a in got]
        if not any(got[a] in dist.pinned[a] for a in checked):
            pinned = ", ".join(f"{a}:{h}" for a in checked for h in sorted(dist.pinned[a]))
            raise HashMismatchError(
                f"{name} does not match the pinned hashes: pinned {pinned}; the file "
                f"has sha256:{got['sha256']}",
            )
        if "lock" not in sources:  # a lock's hashes are its pins: one source, not two
            sources.append("pin")
    elif require_pin:
        raise HashMismatchError(f"{name} has no pinned hash, and hash-checking mode is on")
    return tuple(sources)
