"""Tests of the test support code: the local HTTPS index, the wheel builder, snapshots."""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import trustme
from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile
from packaging.utils import parse_sdist_filename, parse_wheel_filename
from tests.conftest import Venv, run_in
from tests.support.index import JSON_TYPE, LocalIndex
from tests.support.snapshot import snapshot
from tests.support.wheels import WheelMaker, build_sdist, build_wheel

PIP_ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"


@pytest.fixture
def fetch(ca: trustme.CA) -> Callable[..., tuple[int, str, bytes]]:
    """GET a URL with urllib, trusting only the test CA: (status, content type, body)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(context)

    def get(url: str, accept: str | None = None) -> tuple[int, str, bytes]:
        request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
        try:
            with urllib.request.urlopen(request, context=context, timeout=10) as response:
                return response.status, response.headers["Content-Type"], response.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.headers["Content-Type"], error.read()

    return get


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.anchors.append(dict(attrs))


def _anchors(body: bytes) -> list[dict[str, str | None]]:
    parser = _Links()
    parser.feed(body.decode())
    return parser.anchors


def test_json_listing_matches_served_files(
    index: LocalIndex, make_wheel: WheelMaker, fetch: Callable[..., Any]
) -> None:
    old = make_wheel("Demo.Pkg", "1.0")
    new = make_wheel("demo-pkg", "1.10")
    index.add(old, yanked="broken", upload_time="2024-01-02T03:04:05.000000Z")
    index.add(new, provenance=b'{"version": 1}', requires_python=">=3.10")

    status, ctype, body = fetch(index.url + "demo-pkg/", PIP_ACCEPT)
    assert (status, ctype) == (200, JSON_TYPE)
    page = json.loads(body)
    assert page["meta"]["api-version"] == "1.3"
    assert page["name"] == "demo-pkg"
    assert page["versions"] == ["1.0", "1.10"]
    files = {f["filename"]: f for f in page["files"]}
    assert set(files) == {old.name, new.name}
    for path in (old, new):
        entry = files[path.name]
        _, _, served = fetch(entry["url"])
        assert served == path.read_bytes()
        assert entry["hashes"] == {"sha256": hashlib.sha256(served).hexdigest()}
        assert entry["size"] == len(served)
        assert entry["core-metadata"] is False
    assert files[old.name]["yanked"] == "broken"
    assert files[old.name]["upload-time"] == "2024-01-02T03:04:05.000000Z"
    assert files[old.name]["provenance"] is None
    assert files[new.name]["yanked"] is False
    assert files[new.name]["requires-python"] == ">=3.10"
    provenance_url = files[new.name]["provenance"]
    assert provenance_url == files[new.name]["url"] + ".provenance"
    assert fetch(provenance_url)[2] == b'{"version": 1}'
    assert fetch(files[old.name]["url"] + ".provenance")[0] == 404


def test_html_listing(index: LocalIndex, make_wheel: WheelMaker, fetch: Callable[..., Any]) -> None:
    wheel = make_wheel("demo", "2.0")
    url = index.add(wheel, yanked="", requires_python=">=3.8,<4", provenance=b"{}")
    status, ctype, body = fetch(index.url + "demo/")
    assert (status, ctype) == (200, "text/html")
    assert b'<meta name="pypi:repository-version" content="1.3">' in body
    [anchor] = _anchors(body)
    assert anchor["href"] == f"{url}#sha256={hashlib.sha256(wheel.read_bytes()).hexdigest()}"
    assert anchor["data-requires-python"] == ">=3.8,<4"
    assert anchor["data-yanked"] == ""
    assert anchor["data-provenance"] == url + ".provenance"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "text/html"),
        ("*/*", "text/html"),
        ("text/html", "text/html"),
        (PIP_ACCEPT, JSON_TYPE),
        ("application/vnd.pypi.simple.latest+json", JSON_TYPE),
        ("application/vnd.pypi.simple.v1+html", "application/vnd.pypi.simple.v1+html"),
        (f"{JSON_TYPE}; q=0.5, text/html", "text/html"),
        (f"text/html; q=0.5, {JSON_TYPE}", JSON_TYPE),
    ],
)
def test_content_negotiation(
    index: LocalIndex,
    make_wheel: WheelMaker,
    fetch: Callable[..., Any],
    accept: str | None,
    expected: str,
) -> None:
    index.add(make_wheel("demo", "1.0"))
    for url in (index.url, index.url + "demo/"):
        status, ctype, body = fetch(url, accept)
        assert (status, ctype) == (200, expected)
        assert body.startswith(b"{") == (expected == JSON_TYPE)


def test_root_listing_and_unknown_project(
    index: LocalIndex, make_wheel: WheelMaker, fetch: Callable[..., Any]
) -> None:
    index.add(make_wheel("b_pkg", "1.0"))
    index.add(build_sdist(make_wheel("a", "1").parent, "a", "1.0"))
    page = json.loads(fetch(index.url, JSON_TYPE)[2])
    assert page["projects"] == [{"name": "a"}, {"name": "b-pkg"}]
    hrefs = [a["href"] for a in _anchors(fetch(index.url)[2])]
    assert hrefs == ["/simple/a/", "/simple/b-pkg/"]
    assert fetch(index.url + "missing/")[0] == 404
    assert fetch(index.base_url + "/files/missing-1.0-py3-none-any.whl")[0] == 404


def test_unnormalised_project_name_redirects(
    index: LocalIndex, make_wheel: WheelMaker, fetch: Callable[..., Any]
) -> None:
    index.add(make_wheel("b_pkg", "1.0"))
    status, _, body = fetch(index.url + "B.Pkg", JSON_TYPE)
    assert status == 200
    assert json.loads(body)["name"] == "b-pkg"
    assert index.requests == ["/simple/B.Pkg", "/simple/b-pkg/"]


def test_swapped_file_and_lying_hash(
    index: LocalIndex, make_wheel: WheelMaker, fetch: Callable[..., Any]
) -> None:
    wheel = make_wheel("demo", "1.0")
    url = index.add(wheel, serve_bytes=b"evil")
    assert fetch(url)[2] == b"evil"
    entry = json.loads(fetch(index.url + "demo/", JSON_TYPE)[2])["files"][0]
    assert entry["hashes"]["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()

    index.add(wheel, listed_sha256="0" * 64)
    entry = json.loads(fetch(index.url + "demo/", JSON_TYPE)[2])["files"][0]
    assert entry["hashes"]["sha256"] == "0" * 64
    assert fetch(url)[2] == wheel.read_bytes()


def test_added_file_is_a_copy(
    index: LocalIndex, make_wheel: WheelMaker, fetch: Callable[..., Any]
) -> None:
    wheel = make_wheel("demo", "1.0")
    original = wheel.read_bytes()
    url = index.add(wheel)
    wheel.write_bytes(b"changed later")
    assert fetch(url)[2] == original


def test_fault_injection_and_request_log(
    index: LocalIndex, make_wheel: WheelMaker, fetch: Callable[..., Any]
) -> None:
    url = index.add(make_wheel("demo", "1.0"))
    index.fail_next(".whl", 503, times=2)
    assert [fetch(url)[0] for _ in range(3)] == [503, 503, 200]
    assert fetch(index.url + "demo/")[0] == 200
    path = "/files/demo-1.0-py3-none-any.whl"
    assert index.requests == [path, path, path, "/simple/demo/"]


def test_client_not_trusting_the_ca_is_refused(index: LocalIndex, tmp_path: Path) -> None:
    # A client with an unrelated CA: the handshake must fail on both sides.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    trustme.CA().configure_trust(context)
    with pytest.raises(urllib.error.URLError) as caught:
        urllib.request.urlopen(index.url, context=context, timeout=10)
    assert isinstance(caught.value.reason, ssl.SSLCertVerificationError)
    index.stop()  # joins the handler threads, so the server's side is recorded
    assert any(isinstance(e, ssl.SSLError) for e in index.server_errors)
    assert index.requests == []


def test_stop_closes_the_port(ca: trustme.CA, tmp_path: Path) -> None:
    with LocalIndex(ca, tmp_path) as local:
        url = local.url
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(context)
    with pytest.raises(urllib.error.URLError) as caught:
        urllib.request.urlopen(url, context=context, timeout=10)
    assert isinstance(caught.value.reason, ConnectionRefusedError)
    with pytest.raises(RuntimeError):
        local.url  # noqa: B018


def test_ca_file_is_the_ca(ca: trustme.CA, ca_file: Path) -> None:
    assert ca_file.read_bytes() == ca.cert_pem.bytes()
    ssl.create_default_context(cafile=str(ca_file))  # parses as a CA bundle


def test_build_wheel_is_valid_and_reproducible(tmp_path: Path) -> None:
    options: dict[str, Any] = {
        "requires": ["packaging>=24", 'tomli; python_version < "3.11"'],
        "console_scripts": {"demo-cli": "demo_pkg.cli:main"},
        "files": {"demo_pkg/__init__.py": "", "demo_pkg/cli.py": b"def main(): pass\n"},
        "requires_python": ">=3.10",
        "extra_dist_info": {"licenses/LICENSE": "MIT"},
    }
    first = build_wheel(tmp_path / "a", "Demo.Pkg", "1.0.0", **options)
    second = build_wheel(tmp_path / "b", "Demo.Pkg", "1.0.0", **options)
    assert first.name == "demo_pkg-1.0.0-py3-none-any.whl"
    assert first.read_bytes() == second.read_bytes()
    name, version, _, tags = parse_wheel_filename(first.name)
    assert (name, str(version), [str(t) for t in tags]) == ("demo-pkg", "1.0.0", ["py3-none-any"])
    with WheelFile.open(first) as wheel:
        wheel.validate_record()
        metadata = wheel.read_dist_info("METADATA")
        assert "Requires-Dist: packaging>=24\n" in metadata
        assert "Requires-Python: >=3.10\n" in metadata
        assert "demo-cli = demo_pkg.cli:main" in wheel.read_dist_info("entry_points.txt")
        assert wheel.read_dist_info("licenses/LICENSE") == "MIT"
        assert "Root-Is-Purelib: true" in wheel.read_dist_info("WHEEL")


def test_build_wheel_default_package_and_broken_record(tmp_path: Path) -> None:
    good = build_wheel(tmp_path / "good", "my-lib", "2.0", tag="cp311-cp311-manylinux_2_17_x86_64")
    with zipfile.ZipFile(good) as archive:
        assert archive.read("my_lib/__init__.py") == b'__version__ = "2.0"\n'
        assert b"Root-Is-Purelib: false" in archive.read("my_lib-2.0.dist-info/WHEEL")
    bad = build_wheel(tmp_path / "bad", "my-lib", "2.0", extra_dist_info={"RECORD": "x,,\n"})
    with WheelFile.open(bad) as wheel, pytest.raises(Exception, match="RECORD"):
        wheel.validate_record()


def test_build_sdist(tmp_path: Path) -> None:
    first = build_sdist(tmp_path / "a", "My.Lib", "1.0")
    second = build_sdist(tmp_path / "b", "My.Lib", "1.0")
    assert first.read_bytes() == second.read_bytes()
    assert parse_sdist_filename(first.name)[0] == "my-lib"
    with tarfile.open(first) as tar:
        pkg_info = tar.extractfile("my_lib-1.0/PKG-INFO")
        assert pkg_info is not None
        assert b"Name: My.Lib\n" in pkg_info.read()


def test_make_wheel_keeps_variants_apart(make_wheel: WheelMaker) -> None:
    plain = make_wheel("demo", "1.0")
    other = make_wheel("demo", "1.0", files={"demo/__init__.py": "evil = True\n"})
    assert plain != other
    assert plain.read_bytes() != other.read_bytes()


def test_wheel_installs_into_venv(venv: Venv, make_wheel: WheelMaker) -> None:
    wheel = make_wheel(
        "demo",
        "3.1",
        files={"demo/__init__.py": "__version__ = '3.1'\ndef main():\n    print('hi')\n"},
        console_scripts={"demo": "demo:main"},
    )
    assert run_in(venv, "import demo").returncode != 0
    scheme = run_in(venv, "import json, sysconfig; print(json.dumps(sysconfig.get_paths()))").stdout
    destination = SchemeDictionaryDestination(
        json.loads(scheme), interpreter=str(venv.python), script_kind="posix"
    )
    with WheelFile.open(wheel) as source:
        install(source, destination, {"INSTALLER": b"tests"})
    assert (venv.purelib / "demo" / "__init__.py").is_file()
    result = run_in(venv, "import demo, sys; print(demo.__version__, sys.prefix)")
    assert result.stdout.split() == ["3.1", str(venv.path)]
    assert os.access(venv.bin / "demo", os.X_OK)


def test_run_in_hides_pythonpath(venv: Venv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    result = run_in(venv, "import sys; print(sys.flags.dont_write_bytecode); import test_support")
    assert result.stdout.strip() == "1"
    assert "ModuleNotFoundError" in result.stderr


def test_snapshot_sees_every_kind_of_change(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("x = 1\n")
    (tmp_path / "link").symlink_to("pkg/mod.py")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "junk").write_text("")
    before = snapshot(tmp_path)
    assert before["pkg"][0] == "<dir>"
    assert before["link"][0] == "<symlink:pkg/mod.py>"
    assert before["pkg/mod.py"][0] == hashlib.sha256(b"x = 1\n").hexdigest()
    assert snapshot(tmp_path) == before

    (tmp_path / "pkg" / "mod.py").chmod(0o600)
    assert snapshot(tmp_path)["pkg/mod.py"][1] == 0o600
    (tmp_path / "pkg" / "mod.py").write_text("x = 2\n")
    assert snapshot(tmp_path)["pkg/mod.py"][0] != before["pkg/mod.py"][0]
    (tmp_path / "link").unlink()
    (tmp_path / "link").symlink_to("elsewhere")
    assert snapshot(tmp_path)["link"][0] == "<symlink:elsewhere>"

    ignored = snapshot(tmp_path, ignore=lambda rel: rel == "cache")
    assert set(ignored) == {"pkg", "pkg/mod.py", "link"}


def test_environment_is_clean(tmp_path: Path) -> None:
    pip_vars = {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
    assert pip_vars == {
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
    }
    for key in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "VIRTUAL_ENV"):
        assert key not in os.environ
    cache = Path(os.environ["XDG_CACHE_HOME"])
    assert cache.is_dir()
    assert not any(cache.iterdir())


def test_pip_can_use_the_index(
    index: LocalIndex, make_wheel: WheelMaker, ca_file: Path, tmp_path: Path
) -> None:
    # The index is only useful if a real client accepts it: pip reads the JSON API.
    index.add(make_wheel("demo", "1.0"))
    wanted = index.add(make_wheel("demo", "2.0"))
    index.add(make_wheel("demo", "3.0"), yanked="bad")
    index.add(make_wheel("demo", "4.0"), requires_python="<3")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "demo", "-d", str(tmp_path)]
    command += ["--index-url", index.url, "--cert", str(ca_file)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == [wanted.rsplit("/", 1)[1]]
    assert index.requests == ["/simple/demo/", "/files/demo-2.0-py3-none-any.whl"]
