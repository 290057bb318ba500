"""Tests of secinstall.verify.hashes: a file against the index's hashes and the user's pins."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import pytest
from packaging.utils import canonicalize_name
from tests.support.index import LocalIndex
from tests.support.wheels import WheelMaker

from secinstall.cache import Cache
from secinstall.client import Client
from secinstall.errors import HashMismatchError
from secinstall.fetch import fetch_one
from secinstall.index import fetch_project
from secinstall.models import FetchedFile, IndexFile, PlannedDist
from secinstall.tls import create_context
from secinstall.verify.hashes import check_hashes

DATA = b"the downloaded bytes"
SHA256 = hashlib.sha256(DATA).hexdigest()
SHA512 = hashlib.sha512(DATA).hexdigest()
OTHER = hashlib.sha256(b"other bytes").hexdigest()
URL = "https://files.example/demo-1.0-py3-none-any.whl"


def _fetched(tmp_path: Path, *, index: Mapping[str, str] | None = None,
             pinned: Mapping[str, frozenset[str]] | None = None,
             origin: str = "https://index.example/simple/",
             hashes_from: Literal["index", "resolver", "lock"] = "index") -> FetchedFile:
    path = tmp_path / "demo-1.0-py3-none-any.whl"
    path.write_bytes(DATA)
    file = IndexFile(path.name, URL, hashes=dict(index or {}), origin=origin,
                     hashes_from=hashes_from)
    dist = PlannedDist(canonicalize_name("demo"), "1.0", file, dict(pinned or {}), requested=True)
    return FetchedFile(dist, path, {"sha256": SHA256, "sha512": SHA512}, len(DATA),
                       from_cache=False)


def test_index_hash_matches(tmp_path: Path) -> None:
    fetched = _fetched(tmp_path, index={"sha256": SHA256})
    assert check_hashes(fetched, require_pin=False) == ("index",)


def test_index_mismatch(tmp_path: Path) -> None:
    fetched = _fetched(tmp_path, index={"sha256": OTHER})
    with pytest.raises(HashMismatchError) as info:
        check_hashes(fetched, require_pin=False)
    assert info.value.message == (
        f"demo-1.0-py3-none-any.whl does not match the hash the index gives for it: the index "
        f"says sha256:{OTHER}, the downloaded file has sha256:{SHA256} (from {URL})")


def test_index_mismatch_in_a_second_algorithm(tmp_path: Path) -> None:
    fetched = _fetched(tmp_path, index={"sha256": SHA256, "sha512": "0" * 128})
    with pytest.raises(HashMismatchError, match="the index says sha512:0000"):
        check_hashes(fetched, require_pin=False)


def test_resolver_hash_is_named_as_such(tmp_path: Path) -> None:
    fetched = _fetched(tmp_path, index={"sha256": SHA256}, hashes_from="resolver")
    assert check_hashes(fetched, require_pin=False) == ("resolver",)
    bad = _fetched(tmp_path, index={"sha256": OTHER}, hashes_from="resolver")
    with pytest.raises(HashMismatchError, match="the hash pip's resolver gives for it"):
        check_hashes(bad, require_pin=False)


def test_lock_hash_is_one_source(tmp_path: Path) -> None:
    # A lock file's hashes are its pins too: the result names the lock once.
    fetched = _fetched(tmp_path, index={"sha256": SHA256}, pinned={"sha256": frozenset({SHA256})},
                       origin="pylock.toml", hashes_from="lock")
    assert check_hashes(fetched, require_pin=True) == ("lock",)
    bad = _fetched(tmp_path, index={"sha256": OTHER}, origin="pylock.toml", hashes_from="lock")
    with pytest.raises(HashMismatchError, match=r"the lock file pylock\.toml says sha256:"):
        check_hashes(bad, require_pin=False)


def test_pin_mismatch(tmp_path: Path) -> None:
    fetched = _fetched(tmp_path, index={"sha256": SHA256},
                       pinned={"sha256": frozenset({OTHER})})
    with pytest.raises(HashMismatchError) as info:
        check_hashes(fetched, require_pin=False)
    assert info.value.message == (
        f"demo-1.0-py3-none-any.whl does not match the pinned hashes: pinned sha256:{OTHER}; "
        f"the file has sha256:{SHA256}")


@pytest.mark.parametrize(
    "pinned",
    [{"sha256": frozenset({OTHER, SHA256})},
     {"sha256": frozenset({OTHER}), "sha512": frozenset({SHA512})}],
    ids=["same-algorithm", "other-algorithm"],
)
def test_several_pins_one_matching(tmp_path: Path, pinned: dict[str, frozenset[str]]) -> None:
    fetched = _fetched(tmp_path, index={"sha256": SHA256}, pinned=pinned)
    assert check_hashes(fetched, require_pin=True) == ("index", "pin")


def test_pin_without_index_hash(tmp_path: Path) -> None:
    fetched = _fetched(tmp_path, pinned={"sha256": frozenset({SHA256})})
    assert check_hashes(fetched, require_pin=True) == ("pin",)


def test_require_pin_without_pins(tmp_path: Path) -> None:
    fetched = _fetched(tmp_path, index={"sha256": SHA256})
    with pytest.raises(HashMismatchError, match=r"demo-1\.0-py3-none-any\.whl has no pinned "
                       "hash, and hash-checking mode is on"):
        check_hashes(fetched, require_pin=True)


def test_nothing_to_check_against(tmp_path: Path) -> None:
    # A find-links file with no pin: nothing vouches for it, and the result says so.
    assert check_hashes(_fetched(tmp_path), require_pin=False) == ()


def test_served_bytes_differ_from_the_listing(
    ca_file: Path, index: LocalIndex, make_wheel: WheelMaker, tmp_path: Path
) -> None:
    """End to end: an index that lists one file and serves another is caught."""
    wheel = make_wheel("demo", "1.0")
    index.add(wheel, serve_bytes=b"PK not the wheel that was listed")
    listed = hashlib.sha256(wheel.read_bytes()).hexdigest()
    with Client(ssl_context=create_context([ca_file]), retries=0) as client:
        (file,) = fetch_project(client, index.url, "demo")
        dist = PlannedDist(canonicalize_name("demo"), "1.0", file, {}, requested=True)
        fetched = fetch_one(client, Cache(tmp_path / "cache"), dist)
    with pytest.raises(HashMismatchError, match=f"the index says sha256:{listed}"):
        check_hashes(fetched, require_pin=False)
