"""Tests of secinstall.fetch: downloads into the content-addressed cache, cache hits, broken
transfers, and provenance from the index or a local directory."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from tests.support import faults
from tests.support.index import LocalIndex, Misbehaviour
from tests.support.wheels import WheelMaker

from secinstall.cache import Cache
from secinstall.client import Client
from secinstall.errors import FetchError
from secinstall.fetch import fetch_all, fetch_one
from secinstall.index import fetch_project
from secinstall.models import AttestationPolicy, IndexFile, PlannedDist
from secinstall.tls import create_context

PROVENANCE = b'{"version": 1, "attestation_bundles": []}'


@pytest.fixture
def client(ca_file: Path) -> Iterator[Client]:
    with Client(ssl_context=create_context([ca_file]), retries=2, backoff=0.001,
                timeout=10) as made:
        yield made


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


@pytest.fixture
def wheel(index: LocalIndex, make_wheel: WheelMaker) -> Path:
    """demo 1.0 on the index, ~300 kB and incompressible (a cut in the middle is a cut)."""
    payload = bytes((i * 7919 + i // 251) % 256 for i in range(300_000))
    built = make_wheel("demo", "1.0", files={"demo/blob.bin": payload})
    index.add(built, provenance=PROVENANCE)
    return built


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _planned(client: Client, index: LocalIndex, name: str = "demo",
             pinned: dict[str, frozenset[str]] | None = None) -> PlannedDist:
    (file,) = fetch_project(client, index.url, name)
    return PlannedDist(canonicalize_name(name), "1.0", file, pinned or {}, requested=True)


def _leftovers(cache: Cache) -> list[str]:
    return [p.name for p in cache.root.rglob(".part-*")]


# -- downloads and the cache ---------------------------------------------------------------------


def test_download_into_the_cache(
    client: Client, cache: Cache, index: LocalIndex, wheel: Path
) -> None:
    fetched = fetch_one(client, cache, _planned(client, index))
    digest = _sha256(wheel)
    assert fetched.path == cache.path_for(digest, wheel.name)
    assert fetched.path.read_bytes() == wheel.read_bytes()
    assert fetched.sha256 == digest
    assert fetched.size == wheel.stat().st_size
    assert fetched.from_cache is False
    assert index.requests[-1] == f"/files/{wheel.name}"
    assert _leftovers(cache) == []


def test_second_fetch_is_a_cache_hit(
    client: Client, cache: Cache, index: LocalIndex, wheel: Path
) -> None:
    dist = _planned(client, index)
    first = fetch_one(client, cache, dist)
    asked = index.requests

    again = fetch_one(client, cache, dist)

    assert index.requests == asked  # nothing reached the index
    assert again.from_cache is True
    assert (again.path, again.hashes, again.size) == (first.path, first.hashes, first.size)


def test_pinned_hash_finds_the_cached_file(
    client: Client, cache: Cache, index: LocalIndex, wheel: Path
) -> None:
    first = fetch_one(client, cache, _planned(client, index))
    # A find-links file has no index hash: the pin is what finds it in the cache.
    local = IndexFile(wheel.name, wheel.as_uri(), hashes={})
    pinned = {"sha256": frozenset({first.sha256}),
              "sha512": frozenset({hashlib.sha512(wheel.read_bytes()).hexdigest()})}
    dist = PlannedDist(canonicalize_name("demo"), "1.0", local, pinned, requested=True)
    again = fetch_one(client, cache, dist)
    assert again.from_cache is True
    assert again.hashes == {"sha256": first.sha256, "sha512": next(iter(pinned["sha512"]))}


def test_corrupted_cache_entry_is_downloaded_again(
    client: Client, cache: Cache, index: LocalIndex, wheel: Path
) -> None:
    dist = _planned(client, index)
    first = fetch_one(client, cache, dist)
    first.path.write_bytes(b"bit rot")

    again = fetch_one(client, cache, dist)

    assert again.from_cache is False
    assert again.path == first.path
    assert again.path.read_bytes() == wheel.read_bytes()
    assert index.requests.count(f"/files/{wheel.name}") == 2


def test_malformed_index_hash_never_touches_files_outside_the_cache(
    client: Client, index: LocalIndex, make_wheel: WheelMaker, tmp_path: Path
) -> None:
    """An index listing `sha256=../../victim` must not make a cache lookup (and the
    clean-up of a 'corrupted' entry) reach `<tmp>/victim/<file name>`."""
    built = make_wheel("demo", "1.0")
    index.add(built, listed_sha256="../../victim")
    index.add(make_wheel("other", "1.0"))
    cache = Cache(tmp_path / "cache")
    fetch_one(client, cache, _planned(client, index, "other"))  # a cache in use
    victim = tmp_path / "victim" / built.name
    victim.parent.mkdir()
    victim.write_bytes(b"someone else's file")

    fetched = fetch_one(client, cache, _planned(client, index))

    assert victim.read_bytes() == b"someone else's file"
    assert fetched.sha256 == _sha256(built)  # verification will find the mismatch
    assert fetched.path.is_relative_to(cache.root)


@pytest.mark.parametrize("listed_hash", [True, False], ids=["index-hash", "no-hash"])
def test_file_name_that_is_a_path_is_refused(
    client: Client, index: LocalIndex, wheel: Path, tmp_path: Path, listed_hash: bool
) -> None:
    dist = _planned(client, index)
    hostile = dataclasses.replace(dist.file, filename="../../../../escaped.whl",
                                  hashes=dist.file.hashes if listed_hash else {})
    cache = Cache(tmp_path / "cache")
    with pytest.raises(FetchError, match="refusing the file name"):
        fetch_one(client, cache, dataclasses.replace(dist, file=hostile))
    assert not list(tmp_path.rglob("escaped.whl"))
    assert _leftovers(cache) == []


# -- broken transfers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [faults.truncated(0.5), faults.reset(0.5), faults.status(503)],
    ids=["cut-short", "reset", "503"],
)
def test_broken_transfer_is_retried_from_scratch(
    client: Client, cache: Cache, index: LocalIndex, wheel: Path, fault: Misbehaviour
) -> None:
    dist = _planned(client, index)
    index.misbehave(wheel.name, fault)

    fetched = fetch_one(client, cache, dist)

    assert fetched.path.read_bytes() == wheel.read_bytes()
    assert fetched.sha256 == _sha256(wheel)
    assert fetched.size == wheel.stat().st_size
    assert index.requests.count(f"/files/{wheel.name}") == 2
    assert _leftovers(cache) == []


def test_failed_download_leaves_nothing(
    client: Client, cache: Cache, index: LocalIndex, wheel: Path
) -> None:
    dist = _planned(client, index)
    index.misbehave(wheel.name, faults.truncated(0.5), times=10)
    with pytest.raises(FetchError, match="transfer broken"):
        fetch_one(client, cache, dist)
    assert _leftovers(cache) == []
    assert cache.lookup(_sha256(wheel), wheel.name) is None


# -- provenance ---------------------------------------------------------------------------------


def test_provenance_from_the_index(
    client: Client, cache: Cache, index: LocalIndex, wheel: Path
) -> None:
    dist = _planned(client, index)
    fetched = fetch_one(client, cache, dist, policy=AttestationPolicy())
    assert fetched.provenance == PROVENANCE
    assert fetched.provenance_source == f"{index.base_url}/files/{wheel.name}.provenance"
    assert fetched.provenance_source == dist.file.provenance_url


def test_provenance_from_a_directory_comes_first(
    client: Client, cache: Cache, index: LocalIndex, wheel: Path, tmp_path: Path
) -> None:
    local = tmp_path / "provenance"
    local.mkdir()
    (local / f"{wheel.name}.provenance").write_bytes(b'{"local": true}')
    policy = AttestationPolicy(provenance_dir=local)

    fetched = fetch_one(client, cache, _planned(client, index), policy=policy)

    assert fetched.provenance == b'{"local": true}'
    assert fetched.provenance_source == str(local / f"{wheel.name}.provenance")
    assert f"/files/{wheel.name}.provenance" not in index.requests


def test_provenance_directory_without_the_file_falls_back_to_the_index(
    client: Client, cache: Cache, index: LocalIndex, wheel: Path, tmp_path: Path
) -> None:
    policy = AttestationPolicy(provenance_dir=tmp_path)
    fetched = fetch_one(client, cache, _planned(client, index), policy=policy)
    assert fetched.provenance == PROVENANCE


def test_no_provenance(
    client: Client, cache: Cache, index: LocalIndex, make_wheel: WheelMaker
) -> None:
    index.add(make_wheel("demo", "1.0"))  # listed without a provenance URL
    fetched = fetch_one(client, cache, _planned(client, index), policy=AttestationPolicy())
    assert (fetched.provenance, fetched.provenance_source) == (None, None)


def test_provenance_url_that_is_gone(
    client: Client, cache: Cache, index: LocalIndex, wheel: Path
) -> None:
    dist = _planned(client, index)
    index.fail_next(f"{wheel.name}.provenance", 404)
    fetched = fetch_one(client, cache, dist, policy=AttestationPolicy())
    assert fetched.provenance is None


def test_attestations_off_does_not_look(
    client: Client, cache: Cache, index: LocalIndex, wheel: Path
) -> None:
    fetched = fetch_one(client, cache, _planned(client, index),
                        policy=AttestationPolicy(mode="off"))
    assert fetched.provenance is None
    assert f"/files/{wheel.name}.provenance" not in index.requests


# -- several at once ----------------------------------------------------------------------------


def test_fetch_all_keeps_the_order(
    client: Client, cache: Cache, index: LocalIndex, make_wheel: WheelMaker
) -> None:
    names = ["one", "two", "three", "four"]
    wheels = {n: make_wheel(n, "1.0") for n in names}
    for built in wheels.values():
        index.add(built)
    dists = [_planned(client, index, n) for n in names]

    fetched = fetch_all(client, cache, dists, jobs=4)

    assert [f.dist for f in fetched] == dists
    assert [f.path.read_bytes() for f in fetched] == [wheels[n].read_bytes() for n in names]


def test_fetch_all_raises_the_first_failure(
    client: Client, cache: Cache, index: LocalIndex, make_wheel: WheelMaker
) -> None:
    good, bad = make_wheel("good", "1.0"), make_wheel("bad", "1.0")
    index.add(good)
    index.add(bad)
    dists = [_planned(client, index, "good"), _planned(client, index, "bad")]
    index.fail_next(bad.name, 404)

    with pytest.raises(FetchError, match=f"HTTP 404 .*{bad.name}"):
        fetch_all(client, cache, dists, jobs=2)
    # The other download was finished, not abandoned half-way.
    assert cache.lookup(_sha256(good), good.name) is not None
    assert _leftovers(cache) == []
