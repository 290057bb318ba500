"""Download every planned file in parallel, streamed into the content-addressed cache and
hashed while it is written (no second read). A cached file is re-hashed before use."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from .cache import Cache
from .client import Client, parallel_map
from .errors import FetchError
from .models import AttestationPolicy, FetchedFile, PlannedDist
from .progress import NoProgress, Progress

#: A distribution larger than this is refused (the largest wheels on PyPI are ~1 GB).
MAX_FILE_BYTES = 4 * 1024**3
CHUNK = 1024 * 1024
#: Provenance objects are a few kB; more is a broken or hostile server.
MAX_PROVENANCE_BYTES = 4 * 1024**2
PYPI_FILES_HOST = "files.pythonhosted.org"
INTEGRITY_API = "https://pypi.org/integrity/{name}/{version}/{filename}/provenance"


def provenance_locations(dist: PlannedDist, policy: AttestationPolicy) -> list[str]:
    """Where a file's PEP 740 provenance may be, in the order they are tried."""
    import urllib.parse

    places = []
    if policy.provenance_dir is not None:
        places.append(str(policy.provenance_dir / f"{dist.file.filename}.provenance"))
    if dist.file.provenance_url:
        places.append(dist.file.provenance_url)
    if urllib.parse.urlsplit(dist.file.url).hostname == PYPI_FILES_HOST:
        places.append(INTEGRITY_API.format(name=dist.name, version=dist.version,
                                           filename=dist.file.filename))
    return places


def fetch_provenance(client: Client, dist: PlannedDist,
                     policy: AttestationPolicy) -> tuple[bytes, str] | None:
    """The first provenance object found for `dist`, with where it came from."""
    if policy.mode == "off":
        return None
    for place in provenance_locations(dist, policy):
        if "://" not in place:
            try:
                with open(place, "rb") as f:
                    return f.read(MAX_PROVENANCE_BYTES), place
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise FetchError(f"can't read provenance {place}: {exc}") from exc
        resp = client.get(place, accept="application/vnd.pypi.integrity.v1+json, "
                          "application/json", max_bytes=MAX_PROVENANCE_BYTES)
        if resp.status == 200:
            return resp.body, place
    return None


def _algorithms(dist: PlannedDist) -> list[str]:
    algos = {"sha256", *dist.file.hashes, *dist.pinned}
    return sorted(a for a in algos if a in hashlib.algorithms_guaranteed)


def _hash_file(path: Path, algos: Sequence[str]) -> tuple[dict[str, str], int]:
    hashers = {a: hashlib.new(a) for a in algos}
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            size += len(chunk)
            for h in hashers.values():
                h.update(chunk)
    return {a: h.hexdigest() for a, h in hashers.items()}, size


def _known_sha256(dist: PlannedDist) -> list[str]:
    known = set(dist.pinned.get("sha256", ()))
    if "sha256" in dist.file.hashes:
        known.add(dist.file.hashes["sha256"])
    return sorted(known)


def _cached(cache: Cache, dist: PlannedDist) -> bool:
    return any(cache.lookup(digest, dist.file.filename) for digest in _known_sha256(dist))


def fetch_one(client: Client, cache: Cache, dist: PlannedDist,
              progress: Progress | None = None,
              policy: AttestationPolicy | None = None) -> FetchedFile:
    """`dist`'s file (and its provenance, if any): from the cache when a known hash is
    there, else downloaded."""
    import dataclasses

    fetched = _fetch_file(client, cache, dist, progress)
    found = None
    if policy is not None and policy.mode != "off":
        known = False
        # The user's own directory first; then what verified this very file before.
        if fetched.from_cache and (policy.provenance_dir is None or not (
                policy.provenance_dir / f"{dist.file.filename}.provenance").is_file()):
            known, found = cache.provenance(fetched.sha256)
        if not known:
            found = fetch_provenance(client, dist, policy)
    if found is None:
        return fetched
    return dataclasses.replace(fetched, provenance=found[0], provenance_source=found[1])


def _fetch_file(client: Client, cache: Cache, dist: PlannedDist,
                progress: Progress | None) -> FetchedFile:
    algos = _algorithms(dist)
    filename = dist.file.filename
    for digest in _known_sha256(dist):
        cached = cache.lookup(digest, filename)
        if cached is not None:
            hashes, size = _hash_file(cached, algos)
            if hashes["sha256"] == digest:
                return FetchedFile(dist, cached, hashes, size, from_cache=True)
            # A corrupted entry: dropped, and downloaded again. A cache that can't be
            # written keeps it; the download goes to its layer for this run.
            with contextlib.suppress(OSError):
                cached.unlink()
    fd, temp = cache.new_temp()
    hashers = {a: hashlib.new(a) for a in algos}
    size = 0
    with os.fdopen(fd, "wb") as out:

        def write(chunk: bytes) -> None:
            nonlocal size
            out.write(chunk)
            size += len(chunk)
            for h in hashers.values():
                h.update(chunk)
            if progress is not None:
                progress.advance(len(chunk))

        def restart() -> None:
            nonlocal size, hashers
            out.seek(0)
            out.truncate()
            if progress is not None:
                progress.advance(-size)
            size = 0
            hashers = {a: hashlib.new(a) for a in algos}

        try:
            client.download(dist.file.url, write, restart, max_bytes=MAX_FILE_BYTES)
        except BaseException:
            out.close()
            temp.unlink(missing_ok=True)
            raise
    hashes = {a: h.hexdigest() for a, h in hashers.items()}
    try:
        path = cache.store(temp, hashes["sha256"], filename)
    except BaseException:
        temp.unlink(missing_ok=True)  # e.g. a file name the cache refuses
        raise
    return FetchedFile(dist, path, hashes, size, from_cache=False)


def fetch_all(client: Client, cache: Cache, dists: Sequence[PlannedDist], *,
              jobs: int = 8, progress: Progress | None = None,
              policy: AttestationPolicy | None = None) -> list[FetchedFile]:
    """Fetch `dists` in parallel; the first failure is raised after the others stop."""
    return fetch_each(client, cache, dists, lambda f: f, jobs=jobs, progress=progress,
                      policy=policy)


T = TypeVar("T")


def fetch_each(client: Client, cache: Cache, dists: Sequence[PlannedDist],
               then: Callable[[FetchedFile], T], *, jobs: int = 8,
               progress: Progress | None = None,
               policy: AttestationPolicy | None = None) -> list[T]:
    """Fetch `dists` in parallel and call `then` with each file as soon as it is there,
    in the same thread (so that checking one file overlaps the others' downloads); its
    results, in the order of `dists`. The first failure is raised after the others stop."""
    if not dists:
        return []
    progress = progress or NoProgress()
    sizes = [d.file.size for d in dists]
    total = sum(s for s in sizes if s) if all(sizes) else None
    progress.start("Downloading", total)
    # `then` is CPU work, mostly under the GIL: more threads at it than cores only slow
    # each other down (measured), while downloads want many. With every file in the
    # cache there is nothing to download: no more threads than cores at all (measured:
    # 8 threads took 7% longer than 2 for a warm install).
    cores = os.cpu_count() or 1
    checking = threading.BoundedSemaphore(cores)
    if all(_cached(cache, dist) for dist in dists):
        jobs = min(jobs, cores)

    def one(dist: PlannedDist) -> T:
        try:
            fetched = fetch_one(client, cache, dist, progress, policy)
        except OSError as exc:
            raise FetchError(f"can't write to the cache at {cache.root}: {exc}") from exc
        with checking:
            return then(fetched)

    try:
        return parallel_map(client, one, dists, workers=jobs)
    finally:
        progress.stop()
