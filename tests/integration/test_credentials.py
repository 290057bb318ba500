"""Private indexes that want credentials: given in the index URL or in ~/.netrc, sent as
HTTP Basic auth to the index's origin and nowhere else, and never printed or recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.conftest import Venv
from tests.support.cli import Run, Secinstall
from tests.support.index import LocalIndex, _basic
from tests.support.snapshot import snapshot
from tests.support.wheels import WheelMaker

USER, TOKEN = "ci-bot", "s3cr%t/tok3n"  # characters a URL must percent-encode
QUOTED_TOKEN = "s3cr%25t%2Ftok3n"  # noqa: S105 - a test token
HEADER = _basic(USER, TOKEN)


@pytest.fixture
def private(index: LocalIndex) -> LocalIndex:
    index.require_auth = (USER, TOKEN)
    return index


@pytest.fixture
def lib(private: LocalIndex, make_wheel: WheelMaker) -> Path:
    """lib 1.0, on the private index."""
    wheel = make_wheel("lib", "1.0")
    private.add(wheel)
    return wheel


@pytest.fixture
def other(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIndex]:
    """A second index: another origin (same host, another port)."""
    with LocalIndex(ca, tmp_path_factory.mktemp("other")) as started:
        yield started


@pytest.fixture
def no_netrc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME without a .netrc (the machine's own must not answer for these tests)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("NETRC", raising=False)
    return home


def with_credentials(index: LocalIndex) -> str:
    return index.url.replace("https://", f"https://{USER}:{QUOTED_TOKEN}@")


def run(secinstall: Secinstall, venv: Venv, index_url: str, *args: str | Path) -> Run:
    result = secinstall("--python", venv.path, "--index-url", index_url,
                        "--cert", secinstall.ca_file, "--cache-dir", secinstall.tmp / "cache",
                        *args, local=False)
    for secret in (TOKEN, QUOTED_TOKEN, HEADER.split()[1]):
        assert secret not in result.out + result.err
    return result


@pytest.mark.parametrize("verbose", [[], ["-v"]])
def test_without_credentials_the_index_refuses_and_says_what_to_do(
    secinstall: Secinstall, private: LocalIndex, venv: Venv, lib: Path,
    no_netrc: Path, verbose: list[str],
) -> None:
    before = snapshot(venv.path)

    result = run(secinstall, venv, private.url, *secinstall.pinned(lib), *verbose)

    assert result.code == 1
    assert "401" in result.err
    assert "the index wants credentials" in result.err
    assert "https://USER:TOKEN@host/simple/" in result.err and "~/.netrc" in result.err
    assert "Traceback" not in result.err
    assert snapshot(venv.path) == before


def test_wrong_credentials_are_refused_without_printing_them(
    secinstall: Secinstall, private: LocalIndex, venv: Venv, lib: Path,
    no_netrc: Path,
) -> None:
    private.require_auth = (USER, "another token")

    result = run(secinstall, venv, with_credentials(private), *secinstall.pinned(lib), "-v")

    assert result.code == 1
    assert "the index wants credentials" in result.err
    assert f"https://****@127.0.0.1:{private.base_url.rsplit(':', 1)[1]}/" in result.err
