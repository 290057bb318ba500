"""`secinstall serve`: a real server process in front of the local HTTPS index, asked by
urllib and by a real pip; verified files are served, the others refused with the reason."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from secinstall.cli import main
from tests.conftest import Venv
from tests.support.cli import pip_install
from tests.support.index import LocalIndex
from tests.support.pep740 import (
    NEW_PUBLISHER,
    OLD_PUBLISHER,
    PROJECT,
    PUBLISHED_BY,
    SDIST,
    WHEEL,
    fixture_bytes,
    fixtures_dir,
    is_installed,
    serve_real_wheel,
    sha256_of,
)
from tests.support.serve import ServeProcess
from tests.support.snapshot import snapshot
from tests.support.tampering import flip_middle_byte, tampered_provenance
from tests.support.wheels import WheelMaker, build_sdist

JSON_ACCEPT = "application/vnd.pypi.simple.v1+json"


def serve_args(index: LocalIndex, ca_file: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["--port", "0", "--cert", str(ca_file), "--index-url", index.url,
            "--cache-dir", str(tmp_path / "cache"), *extra]


@pytest.fixture
def server(index: LocalIndex, ca_file: Path, tmp_path: Path) -> Iterator[ServeProcess]:
    with ServeProcess(serve_args(index, ca_file, tmp_path)) as started:
        yield started
    assert started.exit_code == 0, started.text
    assert "Stopped: " in started.text


def get(url: str, accept: str = "", host: str | None = None) -> tuple[int, str, dict[str, str],
                                                                      bytes]:
    """(status, reason, headers, body) of a GET, without following redirects."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect)
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    if host is not None:
        request.add_header("Host", host)
    try:
        with opener.open(request, timeout=60) as resp:
            return resp.status, resp.reason, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.reason, dict(exc.headers), exc.read()


# --- listings --------------------------------------------------------------------------------


def test_project_page_lists_upstream_wheels_pointing_at_the_server(
    index: LocalIndex, server: ServeProcess, make_wheel: WheelMaker, tmp_path: Path,
) -> None:
    wheel = make_wheel("demo-pkg", "1.0", requires_python=">=3.8")
    index.add(wheel, requires_python=">=3.8")
    index.add(make_wheel("demo-pkg", "2.0"), yanked="broken")
    index.add(build_sdist(tmp_path / "sdist", "demo-pkg", "3.0"))

    status, _, headers, body = get(server.url + "demo-pkg/", accept=JSON_ACCEPT)
    assert status == 200
    assert headers["Content-Type"] == JSON_ACCEPT
    page = json.loads(body)
    assert page["name"] == "demo-pkg"
    assert page["versions"] == ["1.0", "2.0"]  # the sdist's 3.0 is not offered
    first, second = page["files"]
    assert first["filename"] == wheel.name
    assert first["url"] == f"{server.url.removesuffix('/simple/')}/files/demo-pkg/{wheel.name}"
    assert first["hashes"] == {"sha256": sha256_of(wheel.read_bytes())}
    assert first["requires-python"] == ">=3.8"
    assert first["yanked"] is False
    assert second["yanked"] == "broken"
    assert "provenance" not in first

    status, _, headers, html = get(server.url + "demo-pkg/", accept="text/html")
    assert status == 200
    assert headers["Content-Type"].startswith("application/vnd.pypi.simple.v1+html")
    assert f'/files/demo-pkg/{wheel.name}#sha256={sha256_of(wheel.read_bytes())}"' in html.decode()
    assert 'data-requires-python="&gt;=3.8"' in html.decode()
    assert "1 source distribution(s) not listed" in html.decode()
    assert ".tar.gz" not in html.decode().split("-->", 1)[1]


@pytest.mark.parametrize("path", ["Demo_Pkg/", "demo-pkg"], ids=["unnormalised", "no-slash"])
def test_project_urls_redirect_to_the_normalised_name(
    index: LocalIndex, server: ServeProcess, make_wheel: WheelMaker, path: str,
) -> None:
    index.add(make_wheel("demo-pkg", "1.0"))
    status, _, headers, _ = get(server.url + path)
    assert (status, headers["Location"]) == (301, "/simple/demo-pkg/")


def test_unknown_project_is_404(server: ServeProcess) -> None:
    assert get(server.url + "nothing-here/")[0] == 404


def test_other_host_header_refused(
    index: LocalIndex, server: ServeProcess, make_wheel: WheelMaker,
) -> None:
    # A web page reaching the server through DNS rebinding names its own host.
    index.add(make_wheel("demo-pkg", "1.0"))
    status, _, _, _ = get(server.url + "demo-pkg/", host=f"evil.example:{server.port}")
    assert status == 421
    assert not any(r.startswith("/simple/demo-pkg") for r in index.requests)


# --- files -----------------------------------------------------------------------------------


def test_verified_file_is_served_byte_for_byte(
    index: LocalIndex, server: ServeProcess, make_wheel: WheelMaker,
) -> None:
    wheel = make_wheel("demo-pkg", "1.0")
    index.add(wheel)
    get(server.url + "demo-pkg/")
    status, _, headers, body = get(
        f"{server.url.removesuffix('/simple/')}/files/demo-pkg/{wheel.name}")
    assert status == 200
    assert body == wheel.read_bytes()
    assert headers["Cache-Control"] == "no-store"
    assert server.wait_for(f"served {wheel.name}: sha256 checked against index; no provenance")


def test_sdist_file_refused_with_reason(
    index: LocalIndex, server: ServeProcess, tmp_path: Path,
) -> None:
    sdist = build_sdist(tmp_path / "sdist", "demo-pkg", "3.0")
    index.add(sdist)
    status, reason, _, body = get(
        f"{server.url.removesuffix('/simple/')}/files/demo-pkg/{sdist.name}")
    assert status == 403
    assert "only wheels are served" in reason
    assert "source distribution runs arbitrary code" in body.decode()
    assert f"/files/{sdist.name}" not in index.requests


def test_tampered_file_refused_with_reason_in_status_line(
    index: LocalIndex, server: ServeProcess, make_wheel: WheelMaker,
) -> None:
    wheel = make_wheel("demo-pkg", "1.0")
    index.add(wheel, serve_bytes=flip_middle_byte(wheel.read_bytes()))
    status, reason, _, body = get(
        f"{server.url.removesuffix('/simple/')}/files/demo-pkg/{wheel.name}")
    assert status == 403
    assert reason.startswith("secinstall refused it: ")
    assert f"{wheel.name} does not match the hash the index gives for it" in reason
    assert "the index says sha256:" + sha256_of(wheel.read_bytes()) in body.decode()
    assert server.wait_for(f"refused {wheel.name}: ")


def test_file_no_index_lists_is_404(
    index: LocalIndex, server: ServeProcess, make_wheel: WheelMaker,
) -> None:
    index.add(make_wheel("demo-pkg", "1.0"))
    status, _, _, body = get(f"{server.url.removesuffix('/simple/')}/files/demo-pkg/"
                             "demo_pkg-9.0-py3-none-any.whl")
    assert status == 404
    assert b"no index lists it for demo-pkg" in body


def test_same_file_name_with_other_contents_on_another_index_refused(
    index: LocalIndex, ca: trustme.CA, ca_file: Path, tmp_path: Path, make_wheel: WheelMaker,
) -> None:
    # Dependency confusion, or a mirror gone wrong: which of the two is the real one?
    one = make_wheel("demo-pkg", "1.0")
    other = make_wheel("demo-pkg", "1.0", files={"demo_pkg/__init__.py": "evil = True\n"})
    index.add(one)
    with LocalIndex(ca, tmp_path / "other-index") as extra:
        extra.add(other)
        extra_url = extra.url
        args = [*serve_args(index, ca_file, tmp_path), "--extra-index-url", extra_url]
        with ServeProcess(args) as server:
            status, reason, _, _ = get(
                f"{server.url.removesuffix('/simple/')}/files/demo-pkg/{one.name}")
    assert status == 403
    assert f"{one.name} is listed with different contents by two indexes: " in reason
    assert f"{index.url} (sha256:{sha256_of(one.read_bytes())})" in reason
    assert f"{extra_url} (sha256:{sha256_of(other.read_bytes())})" in reason


# --- a real pip, the real attested wheel --------------------------------------------------------


def test_pip_installs_the_attested_wheel_through_the_server(
    index: LocalIndex, server: ServeProcess, venv: Venv,
) -> None:
    serve_real_wheel(index)

    result = pip_install(venv, "--no-deps", "--index-url", server.url,
                         f"{PROJECT}==0.0.30")

    assert result.returncode == 0, result.stdout + result.stderr
    assert is_installed(venv)
    assert server.wait_for(f"served {WHEEL}: sha256 checked against index; {PUBLISHED_BY}")
    assert f"/files/{WHEEL}.provenance" in index.requests


@pytest.mark.parametrize(
    ("serve", "options", "reason"),
    [
        pytest.param(
            {"serve_bytes": flip_middle_byte(fixture_bytes(WHEEL))}, [],
            f"{WHEEL} does not match the hash the index gives for it", id="wheel-byte"),
        pytest.param(
            {"provenance": tampered_provenance("signature-byte")}, [], "signature",
            id="provenance-signature"),
        pytest.param(
            {"provenance": fixture_bytes(SDIST + ".provenance")}, [],
            f"the statement is for '{SDIST}', not {WHEEL}", id="provenance-of-another-file"),
        pytest.param(
            {}, ["--publisher", f"{PROJECT}={OLD_PUBLISHER}"],
            f"publisher mismatch: expected {OLD_PUBLISHER}, provenance says {NEW_PUBLISHER}",
            id="publisher-pin"),
        pytest.param(
            {"provenance": None}, ["--attestations", "require"],
            "no PEP 740 provenance found, and --attestations require is set",
            id="require-without-provenance"),
    ],
)
def test_pip_shows_why_a_file_was_refused(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    serve: dict[str, bytes | None], options: list[str], reason: str,
) -> None:
    provenance = serve.pop("provenance", fixture_bytes(WHEEL + ".provenance"))
    serve_bytes = serve.pop("serve_bytes", None)
    index.add(fixtures_dir() / WHEEL, provenance=provenance, serve_bytes=serve_bytes)
    before = snapshot(venv.path)

    with ServeProcess(serve_args(index, ca_file, tmp_path, *options)) as server:
        result = pip_install(venv, "--no-deps", "--index-url", server.url,
                             f"{PROJECT}==0.0.30")

    assert result.returncode != 0
    assert "403 Client Error: secinstall refused it: " in result.stderr
    assert reason in result.stderr
    assert reason in server.text
    assert snapshot(venv.path) == before


# --- the address -------------------------------------------------------------------------------


def test_non_loopback_host_refused(
    index: LocalIndex, ca_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["serve", "--host", "0.0.0.0", *serve_args(index, ca_file, tmp_path)])  # noqa: S104
    assert code == 1
    err = capsys.readouterr().err
    assert "--host 0.0.0.0 is not a loopback address" in err
    assert "--unsafe-listen-on-network" in err


def test_server_that_would_be_its_own_upstream_refused(
    ca_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["serve", "--port", "8741", "--index-url", "http://127.0.0.1:8741/simple/",
                 "--cache-dir", str(tmp_path / "cache")])
    assert code == 1
    assert "is this server itself" in capsys.readouterr().err
