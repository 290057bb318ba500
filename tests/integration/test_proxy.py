"""A proxy that wants credentials (`--proxy http://USER:TOKEN@host:port`): pip's resolver
goes through it, and no command line on the machine shows the token meanwhile."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement

from secinstall.models import InstallOptions, Sources, UserRequirement
from secinstall.resolve import resolve_with_pip
from secinstall.target import resolve_target
from tests.support.index import LocalIndex
from tests.support.proxy import ConnectProxy
from tests.support.wheels import WheelMaker

TOKEN = "pr0xy%t0ken"  # noqa: S105 - a test token; `%` is special in pip's config files
QUOTED_TOKEN = "pr0xy%25t0ken"  # noqa: S105


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
