"""Tests of secinstall.cache: the content-addressed layout, atomic stores, temporary caches."""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from secinstall.cache import Cache, default_cache_dir
from secinstall.errors import FetchError

DATA = b"wheel bytes"
SHA = hashlib.sha256(DATA).hexdigest()
NAME = "demo-1.0-py3-none-any.whl"


def _store(cache: Cache, data: bytes = DATA, name: str = NAME) -> Path:
    fd, temp = cache.new_temp()
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return cache.store(temp, hashlib.sha256(data).hexdigest(), name)


def test_layout_and_lookup(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    assert cache.lookup(SHA, NAME) is None
    stored = _store(cache)
    assert stored == tmp_path / "cache" / "files" / "sha256" / SHA[:2] / SHA / NAME
    assert stored.read_bytes() == DATA
    assert cache.lookup(SHA, NAME) == stored
    assert cache.lookup(SHA, "other-1.0-py3-none-any.whl") is None
    # The temporary file became the entry: nothing half-written is left beside it.
    assert [p.name for p in cache.files.iterdir()] == [SHA[:2]]


def test_temp_files_live_in_the_cache(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    fd, temp = cache.new_temp()
    os.close(fd)
    assert temp.parent == cache.files  # same filesystem: store() is a rename
    assert temp.name.startswith(".part-")


def test_store_replaces_an_entry(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    first = _store(cache)
    first.write_bytes(b"corrupted")
    assert _store(cache) == first
    assert first.read_bytes() == DATA


def test_no_cache_dir_is_temporary(tmp_path: Path) -> None:
    cache = Cache(None)
    stored = _store(cache)
    assert stored.is_file()
    cache.close()
    assert not cache.root.exists()


def test_close_keeps_a_real_cache(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    stored = _store(cache)
    cache.close()
    assert stored.read_bytes() == DATA


@pytest.mark.parametrize(
    "name",
    ["../../../../evil.whl", "sub/demo-1.0-py3-none-any.whl", "..\\evil.whl", "..", "",
     "demo\0.whl"],
    ids=["dotdot", "slash", "backslash", "parent", "empty", "nul"],
)
def test_file_name_must_be_a_name(tmp_path: Path, name: str) -> None:
    cache = Cache(tmp_path / "cache")
    with pytest.raises(FetchError, match="refusing the file name"):
        cache.lookup(SHA, name)
    fd, temp = cache.new_temp()
    os.close(fd)
    with pytest.raises(FetchError, match="refusing the file name"):
        cache.store(temp, SHA, name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


@pytest.mark.parametrize("digest", ["../../victim", SHA.upper(), SHA[:-1], ""],
                         ids=["path", "upper-case", "short", "empty"])
def test_malformed_digest_is_never_a_path(tmp_path: Path, digest: str) -> None:
    cache = Cache(tmp_path / "cache")
    victim = tmp_path / "victim" / NAME
    victim.parent.mkdir()
    victim.write_bytes(DATA)
    assert cache.lookup(digest, NAME) is None
    with pytest.raises(FetchError, match="as a sha256 digest"):
        cache.path_for(digest, NAME)


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SECINSTALL_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("SECINSTALL_CACHE_DIR")
    assert default_cache_dir() == tmp_path / "xdg" / "secinstall"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "secinstall"


def _refused_here(cache: Cache) -> Callable[[Cache], Path]:
    """A write as `Cache.write` runs it, refused by `cache` itself as a read-only mount
    refuses it (the real refusal needs a mount: tests/integration/test_cache.py)."""

    def attempt(layer: Cache) -> Path:
        if layer is cache:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(layer.files))
        return _store(layer)

    return attempt


def test_a_refused_write_goes_to_a_layer_for_this_run(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    fresh = cache.note  # a copy: asserting on cache.note would narrow it to None for mypy
    assert fresh is None and not cache.temporary
    stored = cache.write(_refused_here(cache))
    assert not stored.is_relative_to(cache.root)
    # Named by the nearest directory there is: the cache's own `files/` isn't there yet.
    assert cache.note == (f"the cache at {cache.root} can't be written ({tmp_path}: "
                          "Read-only file system): the files it holds are used (checked "
                          "again, as always); new ones are kept for this run only")
    # Found like anything cached, the cache's own copy after this run's.
    assert cache.lookup(SHA, NAME) == stored
    assert stored.parent in cache.homes(SHA)
    # From then on every write goes there, this cache untried; one layer, one note.
    note = cache.note
    fd, temp = cache.new_temp()
    os.close(fd)
    assert temp.parent == stored.parent.parent.parent
    assert cache.store(temp, SHA, NAME) == stored
    assert cache.note == note
    assert not (tmp_path / "cache").exists()
    cache.close()
    assert not stored.exists()


def test_other_write_errors_are_errors(tmp_path: Path) -> None:
    """Only a refusal for want of permission sends writes elsewhere: a full disk, or a
    cache path through a file, is an error to report."""
    (tmp_path / "a-file").write_bytes(b"")
    cache = Cache(tmp_path / "a-file" / "cache")
    with pytest.raises(NotADirectoryError):
        cache.new_temp()
    assert cache.note is None
    # Nor does a temporary cache look for another place: there is none better.
    temporary = Cache(None)
    try:
        with pytest.raises(OSError, match="Read-only"):
            temporary.write(_refused_here(temporary))
        assert temporary.note is None
    finally:
        temporary.close()
