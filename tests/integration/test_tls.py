"""TLS: the OS trust store plus `--cert`, plain http:// only for trusted hosts, and no
CA-bundle variables that silently replace either."""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Iterator
from http.server import HTTPServer, SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.conftest import Venv, run_in
from tests.support.cli import Secinstall, pin
from tests.support.index import LocalIndex
from tests.support.snapshot import snapshot
from tests.support.wheels import WheelMaker


@pytest.fixture
def lib(index: LocalIndex, make_wheel: WheelMaker) -> Path:
    wheel = make_wheel("lib", "1.0")
    index.add(wheel)
    return wheel


@pytest.mark.parametrize("resolver", ["pinned", "pip"])
def test_index_with_unknown_ca_is_refused(
    secinstall: Secinstall, venv: Venv, lib: Path, resolver: str
) -> None:
    requirement = pin(lib) if resolver == "pinned" else "lib"
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, "--index-url", secinstall.index.url,
                     "--retries", "0", "-r", secinstall.requirements(requirement), local=False)

    assert run.code == 1
    assert "Traceback" not in run.err
    assert "TLS verification failed for 127.0.0.1" in run.err
    assert "--cert" in run.err
    assert snapshot(venv.path) == before


def test_cert_adds_the_index_ca(secinstall: Secinstall, venv: Venv, lib: Path) -> None:
    run = secinstall("--python", venv.path, "--index-url", secinstall.index.url,
                     "--cert", secinstall.ca_file, *secinstall.pinned(lib), local=False)

    assert run.code == 0, run.err
    assert run_in(venv, "import lib").returncode == 0


@pytest.mark.parametrize("resolver", ["pinned", "pip"])
def test_client_cert_for_an_index_that_asks_for_one(
    secinstall: Secinstall, venv: Venv, ca: trustme.CA, tmp_path: Path,
    make_wheel: WheelMaker, resolver: str,
) -> None:
    # Mutual TLS, as pip's --client-cert: one PEM file, certificate and private key.
    wheel = make_wheel("lib", "1.0")
    client = tmp_path / "client.pem"
    ca.issue_cert("ci@example.com").private_key_and_cert_chain_pem.write_to_path(str(client))
    with LocalIndex(ca, tmp_path / "mtls", client_certs=True) as index:
        index.add(wheel)
        requirement = pin(wheel) if resolver == "pinned" else "lib"
        common = ("--python", venv.path, "--index-url", index.url, "--cert",
                  secinstall.ca_file, "--retries", "0", "--cache-dir", tmp_path / "cache",
                  "-r", secinstall.requirements(requirement))
        before = snapshot(venv.path)

        refused = secinstall(*common, local=False)
        assert refused.code == 1
        # The refusal comes as an alert, or (TLS 1.3, racing the close) as a bare EOF.
        assert "--client-cert" in refused.err, refused.err
        assert snapshot(venv.path) == before

        run = secinstall(*common, "--client-cert", client, local=False)

    assert run.code == 0, run.err
    assert run_in(venv, "import lib").returncode == 0


def test_a_client_cert_that_cant_be_used_is_refused_first(
    secinstall: Secinstall, venv: Venv, ca: trustme.CA, tmp_path: Path, lib: Path,
) -> None:
    # Only the certificate, no key: refused before pip's resolver or a download starts.
    client = tmp_path / "cert-only.pem"
    ca.issue_cert("ci@example.com").cert_chain_pems[0].write_to_path(str(client))

    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, "--client-cert", client, "lib")

    assert run.code == 1
    assert f"error: can't load the client certificate {client} (--client-cert: " in run.err
    assert secinstall.index.requests == []
    assert snapshot(venv.path) == before


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        self.server.paths.append(self.path)  # type: ignore[attr-defined]


@pytest.fixture
def http_index(tmp_path: Path, lib: Path) -> Iterator[str]:
    """A static PEP 503 index over plain HTTP on 127.0.0.1, listing `lib`."""
    root = tmp_path / "http-index"
    (root / "files").mkdir(parents=True)
    (root / "files" / lib.name).write_bytes(lib.read_bytes())
    digest = hashlib.sha256(lib.read_bytes()).hexdigest()
    (root / "simple" / "lib").mkdir(parents=True)
    (root / "simple" / "lib" / "index.html").write_text(
        f'<a href="../../files/{lib.name}#sha256={digest}">{lib.name}</a>\n')
    server = HTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=root))
    server.paths = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_plain_http_index_is_refused(
    secinstall: Secinstall, venv: Venv, lib: Path, http_index: str
) -> None:
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, "--index-url", http_index,
                     *secinstall.pinned(lib), local=False)

    assert run.code == 1
    assert "Traceback" not in run.err
    assert f"refusing plain http:// URL {http_index}lib/" in run.err
    assert "--trusted-host 127.0.0.1" in run.err
    assert snapshot(venv.path) == before


@pytest.mark.parametrize("resolver", ["pinned", "pip"])
def test_plain_http_index_with_trusted_host_is_used_and_reported(
    secinstall: Secinstall, venv: Venv, lib: Path, http_index: str, resolver: str
) -> None:
    requirement = pin(lib) if resolver == "pinned" else "lib"

    run = secinstall("--python", venv.path, "--index-url", http_index,
                     "--trusted-host", "127.0.0.1", "--cache-dir", secinstall.tmp / "cache",
                     "-r", secinstall.requirements(requirement), local=False)

    assert run.code == 0, run.err
    assert "verification weakened: plain http:// allowed for 127.0.0.1" in run.err
    assert run_in(venv, "import lib; print(lib.__version__)").stdout == "1.0\n"


def test_ca_bundle_variables_do_not_replace_cert(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # requests (inside pip) lets these replace --cert; with a bogus bundle that fails.
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bogus))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(bogus))
    app = make_wheel("app", "1.0", requires=["lib"])
    lib = make_wheel("lib", "1.0")
    secinstall.index.add(app)
    secinstall.index.add(lib)

    run = secinstall("--python", venv.path, "app")  # pip's resolver, then our downloads

    assert run.code == 0, run.err
    assert run_in(venv, "import app, lib").returncode == 0
