"""Tests of secinstall.resolve: choosing files for pins, pip's report, missing dependencies."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from tests.support.index import LocalIndex
from tests.support.wheels import WheelMaker

from secinstall.client import Client
from secinstall.errors import HashesRequiredError, ResolveError, SdistRefusedError
from secinstall.index import Finder
from secinstall.models import (
    IndexFile,
    InstallOptions,
    Plan,
    PlannedDist,
    Sources,
    UserRequirement,
)
from secinstall.resolve import (
    choose_file,
    is_fully_pinned,
    missing_dependencies,
    pip_command,
    pip_environment,
    plan_from_report,
    resolve_pinned,
    source_lines,
)
from secinstall.target import Target, resolve_target
from secinstall.tls import create_context

UNFIT_TAG = "cp27-cp27m-win32"


@pytest.fixture(scope="module")
def target() -> Target:
    return resolve_target()


def _hex(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def _file(filename: str, *, sha256: str | None = None, requires_python: str | None = None,
          yanked: str | None = None) -> IndexFile:
    return IndexFile(filename=filename, url=f"https://files.example/{filename}",
                     hashes={"sha256": sha256 or _hex(filename)},
                     requires_python=requires_python, yanked=yanked)


def _ur(text: str, *hashes: str, source: str = "requirements.txt:1",
        constraint: bool = False) -> UserRequirement:
    pins = {"sha256": frozenset(hashes)} if hashes else {}
    return UserRequirement(Requirement(text), pins, source, is_constraint=constraint)


# -- choose_file ----------------------------------------------------------------------------


def test_choose_best_tag(target: Target) -> None:
    best = _file(f"demo-1.0-{target.tags[0]}.whl")
    files = [_file("demo-1.0-py3-none-any.whl"), best, _file(f"demo-1.0-{UNFIT_TAG}.whl"),
             _file("demo-1.0.tar.gz"), _file("demo-1.1-py3-none-any.whl")]
    assert choose_file("demo", "1.0", files, target, {}, "cli") == best


def test_choose_file_prefers_the_pinned_hash(target: Target) -> None:
    pure = _file("demo-1.0-py3-none-any.whl")
    files = [pure, _file(f"demo-1.0-{target.tags[0]}.whl")]
    pins = {"sha256": frozenset({pure.hashes["sha256"]})}
    assert choose_file("demo", "1.0", files, target, pins, "cli") == pure


def test_choose_file_without_index_hash_leaves_the_check_to_verify(target: Target) -> None:
    unhashed = IndexFile("demo-1.0-py3-none-any.whl", "file:///links/demo-1.0-py3-none-any.whl",
                         hashes={})
    pins = {"sha256": frozenset({_hex("x")})}
    assert choose_file("demo", "1.0", [unhashed], target, pins, "cli") == unhashed


def test_choose_file_prefers_not_yanked(target: Target) -> None:
    yanked = _file("demo-1.0-py3-none-any.whl", yanked="broken")
    fine = IndexFile("demo-1.0-py3-none-any.whl", "https://mirror.example/demo-1.0.whl",
                     hashes={"sha256": _hex("mirror")})
    assert choose_file("demo", "1.0", [yanked, fine], target, {}, "cli") == fine
    assert choose_file("demo", "1.0", [yanked], target, {}, "cli") == yanked  # == allows it


def test_no_file_matches_the_pins(target: Target) -> None:
    files = [_file("demo-1.0-py3-none-any.whl"), _file(f"demo-1.0-{target.tags[0]}.whl")]
    pinned = _hex("something else")
    with pytest.raises(ResolveError) as info:
        choose_file("demo", "1.0", files, target, {"sha256": frozenset({pinned})},
                    "requirements.txt:3")
    message = info.value.message
    assert "no file of demo==1.0 matches the hashes pinned in requirements.txt:3" in message
    assert f"pinned sha256:{pinned}" in message
    for f in files:
        assert f"{f.filename} sha256:{f.hashes['sha256']}" in message


def test_only_an_sdist(target: Target) -> None:
    files = [_file("demo-1.0.tar.gz"), _file("demo-0.9-py3-none-any.whl")]
    with pytest.raises(SdistRefusedError, match=r"demo==1\.0 is only available as a source "
                       r"distribution \(demo-1\.0\.tar\.gz\)"):
        choose_file("demo", "1.0", files, target, {}, "cli")


def test_missing_version_lists_the_versions(target: Target) -> None:
    files = [_file("demo-0.9-py3-none-any.whl"), _file("demo-1.1.tar.gz"),
             _file("demo-1.10-py3-none-any.whl")]
    with pytest.raises(ResolveError) as info:
        choose_file("demo", "1.0", files, target, {}, "requirements.txt:7")
    assert info.value.message == (
        "demo==1.0 (requirements.txt:7) was not found on the configured indexes; "
        "versions there: 0.9, 1.1, 1.10")


def test_arbitrary_equality_version(target: Target) -> None:
    files = [_file("demo-1.0-py3-none-any.whl")]
    with pytest.raises(ResolveError, match=r"demo 'nightly' \(requirements\.txt:2\) is not a "
                       "PEP 440 version"):
        choose_file("demo", "nightly", files, target, {}, "requirements.txt:2")


def test_requires_python_is_honoured(target: Target) -> None:
    future = _file(f"demo-1.0-{target.tags[0]}.whl", requires_python=">=4")
    fits = _file("demo-1.0-py3-none-any.whl",
                 requires_python=f">={target.version[0]}.{target.version[1]}")
    assert choose_file("demo", "1.0", [future, fits], target, {}, "cli") == fits
    with pytest.raises(ResolveError, match=r"no wheel of demo==1\.0 fits the target \(Python "):
        choose_file("demo", "1.0", [future, _file(f"demo-1.0-{UNFIT_TAG}.whl")], target, {},
                    "cli")


# -- is_fully_pinned --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reqs", "expected"),
    [
        ([("demo==1.0", True)], True),
        ([("demo===1.0", True)], True),
        ([("demo @ https://files.example/demo-1.0-py3-none-any.whl", True)], True),
        ([("demo==1.0", True), ("lib==2.0", True)], True),
        ([("demo==1.0", False)], False),
        ([("demo>=1.0", True)], False),
        ([("demo==1.*", True)], False),
        ([("demo==1.0", True), ("lib==2.0", False)], False),
        ([], False),
    ],
    ids=["exact", "arbitrary-equality", "url", "two", "no-hash", "range", "wildcard",
         "one-unhashed", "nothing"],
)
def test_is_fully_pinned(reqs: list[tuple[str, bool]], expected: bool) -> None:
    urs = tuple(_ur(text, _hex(text)) if hashed else _ur(text) for text, hashed in reqs)
    assert is_fully_pinned(InstallOptions(requirements=urs)) is expected


# -- resolve_pinned against the local index --------------------------------------------------------


@pytest.fixture
def finder(ca_file: Path, index: LocalIndex) -> Iterator[Finder]:
    with Client(ssl_context=create_context([ca_file]), retries=0) as client:
        yield Finder(client, [index.url])


def test_resolve_pinned(index: LocalIndex, make_wheel: WheelMaker, finder: Finder,
                        target: Target) -> None:
    demo = make_wheel("Demo", "1.0")
    lib = make_wheel("lib", "2.0")
    index.add(demo)
    index.add(make_wheel("Demo", "1.1"))
    index.add(lib)
    demo_sha = hashlib.sha256(demo.read_bytes()).hexdigest()
    lib_sha = hashlib.sha256(lib.read_bytes()).hexdigest()
    options = InstallOptions(requirements=(
        _ur("Demo[extra]==1.0", demo_sha), _ur("lib==2.0", lib_sha),
        _ur("never; python_version < '3'", _hex("never")),
    ))

    plan = resolve_pinned(options, target, finder)

    assert (plan.resolver, plan.require_hashes) == ("pinned", True)
    assert [(d.name, d.version, d.file.filename, d.requested_extras) for d in plan.items] == [
        ("demo", "1.0", demo.name, ("extra",)), ("lib", "2.0", lib.name, ())]
    assert plan.items[0].pinned == {"sha256": frozenset({demo_sha})}
    assert sorted(index.requests) == ["/simple/demo/", "/simple/lib/"]


def test_resolve_pinned_conflicting_constraint(finder: Finder, target: Target) -> None:
    options = InstallOptions(
        requirements=(_ur("demo==1.0", _hex("d")),),
        constraints=(_ur("demo<1.0", source="constraints.txt:2", constraint=True),),
    )
    with pytest.raises(ResolveError, match=r"demo==1\.0 \(requirements\.txt:1\) conflicts with "
                       r"the constraint demo<1\.0 \(constraints\.txt:2\)"):
        resolve_pinned(options, target, finder)


def test_resolve_pinned_twice(index: LocalIndex, make_wheel: WheelMaker, finder: Finder,
                              target: Target) -> None:
    demo = make_wheel("demo", "1.0")
    index.add(demo)
    digest = hashlib.sha256(demo.read_bytes()).hexdigest()
    options = InstallOptions(requirements=(
        _ur("demo==1.0", digest, source="a.txt:1"),
        _ur("Demo==1.0", digest, source="b.txt:4")))
    with pytest.raises(ResolveError, match=r"Demo is required twice: a\.txt:1 and b\.txt:4"):
        resolve_pinned(options, target, finder)


# -- pip's report ------------------------------------------------------------------------------


def _item(name: str, version: str, *, requires: list[str] | None = None,
          requested: bool = False, extras: list[str] | None = None,
          url: str | None = None, archive: Mapping[str, Any] | None = None) -> dict[str, Any]:
    filename = f"{canonicalize_name(name).replace('-', '_')}-{version}-py3-none-any.whl"
    digest = _hex(filename)
    item: dict[str, Any] = {
        "download_info": {
            "url": url or f"https://files.example/packages/ab/cd/{filename}",
            "archive_info": dict(archive) if archive is not None else {
                "hash": f"sha256={digest}", "hashes": {"sha256": digest}},
        },
        "is_direct": False,
        "is_yanked": False,
        "requested": requested,
        "metadata": {"metadata_version": "2.1", "name": name, "version": version,
                     "requires_dist": requires or []},
    }
    if extras:
        item["requested_extras"] = extras
    return item


def _report(*items: dict[str, Any]) -> dict[str, Any]:
    return {"version": "1", "pip_version": "24.2", "install": list(items),
            "environment": {"python_version": "3.11"}}


REPORT = _report(
    _item("App", "1.0", requested=True, extras=["fast"],
          requires=["lib>=1", 'speedups; extra == "fast"', 'legacy; python_version < "3"',
                    'docs; extra == "docs"']),
    _item("lib", "1.2", requires=["six"]),
    _item("speedups", "0.3"),
    _item("six", "1.16.0"),
)


def test_plan_from_report(target: Target) -> None:
    plan = plan_from_report(REPORT, InstallOptions(requirements=(_ur("app[fast]"),)), target)

    assert (plan.resolver, plan.require_hashes) == ("pip", False)
    assert [(d.name, d.version, d.requested, d.via) for d in plan.items] == [
        ("app", "1.0", True, ()),
        ("lib", "1.2", False, ("App==1.0",)),
        ("speedups", "0.3", False, ("App==1.0",)),
        ("six", "1.16.0", False, ("lib==1.2",)),
    ]
    app = plan.items[0]
    assert app.requested_extras == ("fast",)
    assert app.file == IndexFile(
        filename="app-1.0-py3-none-any.whl",
        url="https://files.example/packages/ab/cd/app-1.0-py3-none-any.whl",
        hashes={"sha256": _hex("app-1.0-py3-none-any.whl")}, origin="pip report",
        hashes_from="resolver")
    assert app.metadata is not None and app.metadata["name"] == "App"


def test_plan_from_report_old_hash_field_and_quoted_url(target: Target) -> None:
    item = _item("demo", "1.0+local",
                 url="https://files.example/demo-1.0%2Blocal-py3-none-any.whl#sha256=ab",
                 archive={"hash": "sha256=" + "AB" * 32})
    plan = plan_from_report(_report(item), InstallOptions(requirements=(_ur("demo"),)), target)
    assert plan.items[0].file.hashes == {"sha256": "ab" * 32}
    assert plan.items[0].file.filename == "demo-1.0+local-py3-none-any.whl"


def test_plan_from_report_require_hashes_lists_missing_pins(target: Target) -> None:
    options = InstallOptions(requirements=(_ur("app[fast]"),), require_hashes=True)
    with pytest.raises(HashesRequiredError) as info:
        plan_from_report(REPORT, options, target)
    assert "4 distribution(s) have none" in info.value.message
    sha = _hex
    assert info.value.details == [
        f"App==1.0 --hash=sha256:{sha('app-1.0-py3-none-any.whl')}    # requested",
        f"lib==1.2 --hash=sha256:{sha('lib-1.2-py3-none-any.whl')}    # via App==1.0",
        f"speedups==0.3 --hash=sha256:{sha('speedups-0.3-py3-none-any.whl')}    # via App==1.0",
        f"six==1.16.0 --hash=sha256:{sha('six-1.16.0-py3-none-any.whl')}    # via lib==1.2",
    ]


def test_plan_from_report_one_pin_turns_hash_checking_on(target: Target) -> None:
    pinned = _hex("app-1.0-py3-none-any.whl")
    options = InstallOptions(requirements=(_ur("app[fast]==1.0", pinned),),
                             constraints=(_ur("six", _hex("six-1.16.0-py3-none-any.whl"),
                                              constraint=True),))
    with pytest.raises(HashesRequiredError) as info:
        plan_from_report(REPORT, options, target)
    assert [line.split()[0] for line in info.value.details] == ["lib==1.2", "speedups==0.3"]


def test_plan_from_report_all_pinned(target: Target) -> None:
    reqs = [_ur(f"{n}=={v}", _hex(f"{n}-{v}-py3-none-any.whl"))
            for n, v in [("app", "1.0"), ("lib", "1.2"), ("speedups", "0.3"), ("six", "1.16.0")]]
    plan = plan_from_report(REPORT, InstallOptions(requirements=tuple(reqs)), target)
    assert plan.require_hashes is True
    assert plan.items[3].pinned == {"sha256": frozenset({_hex("six-1.16.0-py3-none-any.whl")})}


@pytest.mark.parametrize(
    ("info", "message"),
    [
        ({"url": "https://files.example/demo-1.0.tar.gz",
          "archive_info": {"hashes": {"sha256": "ab" * 32}}}, "demo 1.0: demo-1.0.tar.gz"),
        ({"url": "file:///src/demo", "dir_info": {}}, "demo comes from a directory"),
        ({"url": "https://git.example/demo.git",
          "vcs_info": {"vcs": "git", "commit_id": "0" * 40}}, "demo comes from a VCS checkout"),
    ],
    ids=["sdist", "directory", "vcs"],
)
def test_plan_from_report_refuses_what_needs_a_build(
    target: Target, info: dict[str, Any], message: str
) -> None:
    item = _item("demo", "1.0")
    item["download_info"] = info
    with pytest.raises(SdistRefusedError, match=message):
        plan_from_report(_report(item), InstallOptions(requirements=(_ur("demo"),)), target)


# -- missing_dependencies ---------------------------------------------------------------------


def _planned(name: str, version: str, extras: tuple[str, ...] = ()) -> PlannedDist:
    return PlannedDist(canonicalize_name(name), version,
                       _file(f"{name}-{version}-py3-none-any.whl"), {}, requested=True,
                       requested_extras=extras)


def test_missing_dependencies(target: Target) -> None:
    plan = Plan((_planned("app", "1.0", ("fast",)), _planned("lib", "1.0")), "pinned")
    requires = {
        canonicalize_name("app"): ["lib>=2", "Helper", 'speedups; extra == "fast"',
                                   'docs; extra == "docs"', 'legacy; python_version < "3"'],
        canonicalize_name("lib"): ["app"],
    }
    missing = missing_dependencies(plan, requires, target)
    assert [(str(m.req), m.via, m.have) for m in missing] == [
        ("lib>=2", "app==1.0", "1.0"),
        ("Helper", "app==1.0", None),
        ('speedups; extra == "fast"', "app==1.0", None),
    ]


def test_missing_dependencies_satisfied(target: Target) -> None:
    plan = Plan((_planned("app", "1.0"), _planned("Lib.Two", "2.0rc1")), "pinned")
    requires = {canonicalize_name("app"): ["lib-two>=2.0rc1"]}
    assert missing_dependencies(plan, requires, target) == []


def test_missing_dependencies_invalid_requirement_names_the_dist(target: Target) -> None:
    plan = Plan((_planned("app", "1.0"),), "pinned")
    with pytest.raises(ResolveError) as info:
        missing_dependencies(plan, {canonicalize_name("app"): ["lib >= = 2"]}, target)
    assert "app==1.0" in info.value.message
    assert "lib >= = 2" in info.value.message


def test_index_credentials_stay_off_pips_command_line(target: Target, tmp_path: Path) -> None:
    # Any local user can read a process's command line (ps, /proc/PID/cmdline) while pip
    # resolves: the index URLs go in the requirements file, which only we can read.
    options = InstallOptions(requirements=(_ur("app"),), sources=Sources(
        index_url="https://ci:t0ken@pkgs.example/simple/",
        extra_index_urls=("https://ci:t0ken@more.example/simple/",),
        find_links=("/srv/wheel house",)))

    cmd = pip_command(options, target, tmp_path / "r.txt", None, None)

    assert not any("t0ken" in arg or "example" in arg for arg in cmd)
    assert source_lines(options) == [
        "--index-url https://ci:t0ken@pkgs.example/simple/",
        "--extra-index-url https://ci:t0ken@more.example/simple/",
        "--find-links '/srv/wheel house'"]
    assert source_lines(InstallOptions(requirements=(), sources=Sources(no_index=True))) \
        == ["--no-index"]


def test_proxy_credentials_stay_off_pips_command_line(
        target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy URL may carry a token too: pip gets it in its environment, which only its
    # owner can read, and uses it for every host, as its own --proxy does.
    proxy = "http://ci:t0%25ken@proxy.example:3128"
    options = InstallOptions(requirements=(_ur("app"),), sources=Sources(proxy=proxy))
    for key, value in (("NO_PROXY", "pypi.org"), ("no_proxy", "pypi.org"),
                       ("HTTPS_PROXY", "http://other.example:8080")):
        monkeypatch.setenv(key, value)

    cmd = pip_command(options, target, tmp_path / "r.txt", None, None)
    env = pip_environment(options)

    assert not any("t0%25ken" in arg or "example" in arg for arg in cmd)
    assert {k: v for k, v in env.items() if k.lower().endswith("_proxy")} == {
        "https_proxy": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy, "HTTP_PROXY": proxy}


def test_pip_reads_no_configuration_but_what_it_is_given(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Not even the machine's (/etc/pip.conf), which --isolated still reads.
    for key, value in (("PIP_CONFIG_FILE", "/somewhere/pip.conf"), ("PIP_INDEX_URL", "x"),
                       ("REQUESTS_CA_BUNDLE", "/ca.pem"), ("HTTPS_PROXY", "http://p:1"),
                       ("NO_PROXY", "pypi.org")):
        monkeypatch.setenv(key, value)

    env = pip_environment(InstallOptions(requirements=(_ur("app"),)))

    assert env["PIP_CONFIG_FILE"] == os.devnull
    assert "PIP_INDEX_URL" not in env and "REQUESTS_CA_BUNDLE" not in env
    # No proxy of ours: the environment's, with its exceptions, as for secinstall itself.
    assert (env["HTTPS_PROXY"], env["NO_PROXY"]) == ("http://p:1", "pypi.org")


