"""Private indexes that want credentials: given in the index URL or in ~/.netrc, sent as
HTTP Basic auth to the index's origin and nowhere else, and never printed or recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.conftest import Venv
from tests.support.cli import Run, Secinstall, dist_infos
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


def test_credentials_in_index_url_are_sent_to_the_index_for_pages_and_files(
    secinstall: Secinstall, private: LocalIndex, venv: Venv, lib: Path,
    no_netrc: Path, tmp_path: Path,
) -> None:
    report = tmp_path / "report.json"

    result = run(secinstall, venv, with_credentials(private), *secinstall.pinned(lib),
                 "-v", "--report", report)

    assert result.code == 0, result.err
    assert dist_infos(venv.purelib, "lib") == ["lib-1.0.dist-info"]
    seen = private.authorizations
    assert ("/simple/lib/", HEADER) in seen
    assert (f"/files/{lib.name}", HEADER) in seen
    assert all(header == HEADER for _, header in seen)
    assert TOKEN not in report.read_text() and QUOTED_TOKEN not in report.read_text()


def test_resolved_install_with_credentials_in_index_url(
    secinstall: Secinstall, private: LocalIndex, venv: Venv, make_wheel: WheelMaker,
    no_netrc: Path,
) -> None:
    private.add(make_wheel("app", "1.0", requires=["lib"]))
    private.add(make_wheel("lib", "2.0"))

    result = run(secinstall, venv, with_credentials(private), "-v", "app")

    assert result.code == 0, result.err
    assert dist_infos(venv.purelib, "lib") == ["lib-2.0.dist-info"]


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
    assert "the index refused the credentials sent" in result.err
    assert f"for {private.url}lib/" in result.err


def test_credentials_are_not_sent_to_a_file_hosted_elsewhere(
    secinstall: Secinstall, private: LocalIndex, other: LocalIndex, venv: Venv,
    make_wheel: WheelMaker, no_netrc: Path,
) -> None:
    wheel = make_wheel("lib", "1.0")
    other.add(wheel)
    private.add(wheel, hosted_at=other)

    result = run(secinstall, venv, with_credentials(private), *secinstall.pinned(wheel))

    assert result.code == 0, result.err
    assert ("/simple/lib/", HEADER) in private.authorizations
    assert other.authorizations == [(f"/files/{wheel.name}", None)]


def test_netrc_gives_credentials_for_the_index_host(
    secinstall: Secinstall, private: LocalIndex, venv: Venv, lib: Path,
    no_netrc: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    netrc = no_netrc / ".netrc"
    netrc.write_text(f"machine 127.0.0.1\n  login {USER}\n  password {TOKEN}\n")
    netrc.chmod(0o600)

    result = run(secinstall, venv, private.url, *secinstall.pinned(lib), "-v")

    assert result.code == 0, result.err
    assert (f"/files/{lib.name}", HEADER) in private.authorizations
    assert dist_infos(venv.purelib, "lib") == ["lib-1.0.dist-info"]


def test_netrc_variable_names_the_file(
    secinstall: Secinstall, private: LocalIndex, venv: Venv, lib: Path,
    no_netrc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    netrc = tmp_path / "credentials"
    netrc.write_text(f"machine 127.0.0.1 login {USER} password {TOKEN}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))

    result = run(secinstall, venv, private.url, *secinstall.pinned(lib))

    assert result.code == 0, result.err
    assert all(header == HEADER for _, header in private.authorizations)


@pytest.mark.parametrize("form", ["pylock", "requirements"])
def test_lock_with_credentials_in_index_url_records_none(
    secinstall: Secinstall, private: LocalIndex, venv: Venv, make_wheel: WheelMaker,
    no_netrc: Path, tmp_path: Path, form: str,
) -> None:
    private.add(make_wheel("app", "1.0", requires=["lib"]))
    private.add(make_wheel("lib", "2.0"))
    lock = tmp_path / ("pylock.toml" if form == "pylock" else "requirements.lock")
    argv = ["lock", "--python", str(venv.path), "--index-url", with_credentials(private),
            "--cert", str(secinstall.ca_file), "--cache-dir", str(tmp_path / "cache"),
            "--format", form, "-o", str(lock), "app"]

    from secinstall.cli import main

    code = main(argv)
    out, err = secinstall.capsys.readouterr()

    assert code == 0, err
    text = lock.read_text()
    for secret in (TOKEN, QUOTED_TOKEN, USER):
        assert secret not in text + out + err
    if form == "pylock":
        assert f"{private.base_url}/files/lib-2.0-py3-none-any.whl" in text
        # The lock installs with the credentials given then (not from the lock).
        result = run(secinstall, venv, with_credentials(private), "-r", lock)
        assert result.code == 0, result.err
        assert dist_infos(venv.purelib, "lib") == ["lib-2.0.dist-info"]


def test_report_json_has_no_credentials(
    secinstall: Secinstall, private: LocalIndex, venv: Venv, make_wheel: WheelMaker,
    no_netrc: Path,
) -> None:
    private.add(make_wheel("lib", "1.0"))

    result = run(secinstall, venv, with_credentials(private), "--dry-run", "--report", "-",
                 "lib")

    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["install"][0]["secinstall"]["index"].startswith("https://****@")

