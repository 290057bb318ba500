"""A proxy that wants credentials (`--proxy http://USER:TOKEN@host:port`, or HTTPS_PROXY):
pip's resolver and secinstall's own client go through it, no command line on the machine
shows the token meanwhile, and no output ever does; NO_PROXY is honoured."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from secinstall.models import InstallOptions, Sources, UserRequirement
from secinstall.resolve import resolve_with_pip
from secinstall.target import resolve_target
from tests.conftest import Venv
from tests.support.cli import Run, Secinstall, dist_infos
from tests.support.index import LocalIndex, _basic
from tests.support.proxy import ConnectProxy
from tests.support.snapshot import snapshot
from tests.support.wheels import WheelMaker

TOKEN = "pr0xy%t0ken"  # noqa: S105 - a test token; `%` is special in pip's config files
QUOTED_TOKEN = "pr0xy%25t0ken"  # noqa: S105
SECRETS = (TOKEN, QUOTED_TOKEN, _basic("ci", TOKEN).split()[1])


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc/PID/cmdline")
def test_pip_resolves_through_the_proxy_without_its_credentials_on_a_command_line(
    index: LocalIndex, make_wheel: WheelMaker, ca_file: Path,
) -> None:
    # Any local user can read a process's command line (ps, /proc/PID/cmdline).
    index.add(make_wheel("app", "1.0", requires=["lib"]))
    index.add(make_wheel("lib", "2.0"))
    with ConnectProxy(("ci", TOKEN)) as proxy:
        options = InstallOptions(
            requirements=(UserRequirement(Requirement("app"), {}, "command line"),),
            sources=Sources(index_url=index.url, certs=(str(ca_file),), retries=0,
                            proxy=proxy.url))

        plan = resolve_with_pip(options, resolve_target())

    assert [(d.name, d.version) for d in plan.items] == [("app", "1.0"), ("lib", "2.0")]
    # pip asked the index through the proxy, with the proxy's credentials...
    assert proxy.refused == []
    assert proxy.tunnels
    assert set(proxy.tunnels) == {index.base_url.removeprefix("https://")}
    assert {"/simple/app/", "/simple/lib/"} <= set(index.requests)
    # ... and meanwhile pip's command line, like every other, showed none of them.
    seen = [cmd for snapshot in proxy.command_lines for cmd in snapshot]
    assert any("pip" in cmd and "--dry-run" in cmd for cmd in seen)
    assert [cmd for cmd in seen if any(TOKEN in arg or QUOTED_TOKEN in arg for arg in cmd)] == []


def install_through(secinstall: Secinstall, venv: Venv, proxy_url: str, given: str,
                    monkeypatch: pytest.MonkeyPatch, *args: str | Path) -> Run:
    """`secinstall install ARGS -v` from the local index through the proxy at `proxy_url`,
    `given` as `--proxy` or in HTTPS_PROXY (or ALL_PROXY); no output shows the proxy's
    token."""
    if given.endswith("_PROXY"):
        monkeypatch.setenv(given, proxy_url)
        args = ("-v", *args)
    else:
        args = ("-v", "--proxy", proxy_url, *args)
    result = secinstall("--python", venv.path, *args)
    for secret in SECRETS:
        assert secret not in result.out + result.err
    return result


def lib_and_app(secinstall: Secinstall, make_wheel: WheelMaker, requirement: str) -> \
        tuple[Path, tuple[str | Path, ...]]:
    """lib 1.0, and app 1.0 that needs it, on the index; and the arguments that install
    lib: `pinned` by hash (no resolver runs: secinstall's own client reads the index page
    and the file), or `resolved` as app's dependency (pip's resolver reads the pages)."""
    lib = make_wheel("lib", "1.0")
    secinstall.index.add(lib)
    secinstall.index.add(make_wheel("app", "1.0", requires=["lib"]))
    if requirement == "pinned":
        return lib, ("--require-hashes", *secinstall.pinned(lib))
    return lib, ("app",)


@pytest.mark.parametrize("given", ["--proxy", "HTTPS_PROXY", "ALL_PROXY"])
@pytest.mark.parametrize("requirement", ["pinned", "resolved"])
def test_install_through_a_proxy_that_wants_credentials(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker,
    monkeypatch: pytest.MonkeyPatch, given: str, requirement: str,
) -> None:
    lib, args = lib_and_app(secinstall, make_wheel, requirement)
    with ConnectProxy(("ci", TOKEN)) as proxy:
        result = install_through(secinstall, venv, proxy.url, given, monkeypatch, *args)

    assert result.code == 0, result.err
    assert dist_infos(venv.purelib, "lib") == ["lib-1.0.dist-info"]
    # Every tunnel was opened with the proxy's credentials, percent-decoded.
    assert proxy.refused == []
    assert set(proxy.tunnels) == {secinstall.index.base_url.removeprefix("https://")}
    assert {"/simple/lib/", f"/files/{lib.name}"} <= set(secinstall.index.requests)


def wrong_token(proxy: ConnectProxy) -> str:
    return proxy.url.replace(QUOTED_TOKEN, "an0ther%25token")


def no_credentials(proxy: ConnectProxy) -> str:
    return proxy.url.replace(f"ci:{QUOTED_TOKEN}@", "")


@pytest.mark.parametrize("given", ["--proxy", "HTTPS_PROXY"])
@pytest.mark.parametrize(("proxy_url", "says"), [
    (wrong_token, "refused the credentials"),
    (no_credentials, "wants credentials"),
])
def test_a_proxy_refusing_the_credentials_says_so_without_them(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker,
    monkeypatch: pytest.MonkeyPatch, given: str,
    proxy_url: Callable[[ConnectProxy], str], says: str,
) -> None:
    wheel = make_wheel("lib", "1.0")
    secinstall.index.add(wheel)
    before = snapshot(venv.path)
    with ConnectProxy(("ci", TOKEN)) as proxy:
        bare = no_credentials(proxy)
        result = install_through(secinstall, venv, proxy_url(proxy), given, monkeypatch,
                                 *secinstall.pinned(wheel))

    assert result.code == 1
    assert "Traceback" not in result.err
    assert "an0ther" not in result.err
    assert f"the proxy {bare}" in result.err and says in result.err
    assert "407" in result.err
    assert "--proxy http://USER:TOKEN@host:port" in result.err and "HTTPS_PROXY" in result.err
    # Credentials refused once are refused again: not retried.
    assert len(proxy.refused) == 1
    assert secinstall.index.requests == []
    assert snapshot(venv.path) == before


def test_pips_resolver_refused_by_the_proxy_says_so(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # pip then finds no version at all: that is not a project with source
    # distributions only.
    secinstall.index.add(make_wheel("app", "1.0"))
    with ConnectProxy(("ci", TOKEN)) as proxy:
        bare = no_credentials(proxy)
        result = install_through(secinstall, venv, wrong_token(proxy), "--proxy",
                                 monkeypatch, "--retries", "0", "app")

    assert result.code == 1
    assert proxy.refused
    assert "source distribution" not in result.err
    assert f"the proxy {bare}" in result.err and "407" in result.err
    assert "--proxy http://USER:TOKEN@host:port" in result.err
    assert "an0ther" not in result.err


def test_pips_resolver_that_cant_reach_the_proxy_says_so(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secinstall.index.add(make_wheel("app", "1.0"))
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = install_through(secinstall, venv, f"http://ci:{QUOTED_TOKEN}@127.0.0.1:{port}",
                             "--proxy", monkeypatch, "--retries", "0", "app")

    assert result.code == 1
    assert "source distribution" not in result.err
    assert f"through the proxy http://127.0.0.1:{port}: " in result.err


@pytest.mark.parametrize("requirement", ["pinned", "resolved"])
def test_no_proxy_names_the_hosts_reached_directly(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker,
    monkeypatch: pytest.MonkeyPatch, requirement: str,
) -> None:
    # As requests (pip's resolver included) does: a proxy from the environment is not
    # used for the hosts NO_PROXY names.
    _, args = lib_and_app(secinstall, make_wheel, requirement)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    with ConnectProxy(("ci", TOKEN)) as proxy:
        result = install_through(secinstall, venv, wrong_token(proxy), "HTTPS_PROXY",
                                 monkeypatch, *args)

    assert result.code == 0, result.err
    assert dist_infos(venv.purelib, "lib") == ["lib-1.0.dist-info"]
    assert proxy.tunnels == [] and proxy.refused == []


def test_a_proxy_refusing_the_host_says_so_at_once(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker, tmp_path: Path,
) -> None:
    # A proxy's 403 to CONNECT is its policy (this one tunnels to 127.0.0.1 only), not a
    # transient failure: asked once, and the message says who refused what.
    wheel = make_wheel("lib", "1.0")
    secinstall.index.add(wheel)
    elsewhere = secinstall.index.url.replace("127.0.0.1", "127.0.0.2")
    before = snapshot(venv.path)
    with ConnectProxy(("ci", TOKEN)) as proxy:
        bare = no_credentials(proxy)
        result = secinstall("--python", venv.path, "-v", "--proxy", proxy.url,
                            "--index-url", elsewhere, "--cert", secinstall.ca_file,
                            "--cache-dir", tmp_path / "cache", *secinstall.pinned(wheel),
                            local=False)

    assert result.code == 1
    host = elsewhere.removeprefix("https://").partition("/")[0]
    assert f"the proxy {bare} refused to connect to {host} (HTTP 403" in result.err
    assert len(proxy.command_lines) == 1
    for secret in SECRETS:
        assert secret not in result.out + result.err
    assert snapshot(venv.path) == before
