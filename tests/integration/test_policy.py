"""The usage policy against a real HTTPS index: upload times, yanked files, two indexes
serving one name, a JSON API with advisories, OSV records, licences, and `audit`.

The first part drives the policy API with real plans (the pinned resolver and pip's);
the last part (`TestCommandLine`) drives `secinstall` itself and needs the CLI wiring.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import trustme
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from secinstall.cache import Cache
from secinstall.cli import main
from secinstall.client import Client
from secinstall.errors import PolicyError
from secinstall.fetch import fetch_all
from secinstall.index import Finder
from secinstall.install import find_installed
from secinstall.models import (
    AttestationPolicy,
    InstalledDist,
    InstallOptions,
    Plan,
    Sources,
    UserRequirement,
)
from secinstall.pipeline import with_index_details
from secinstall.policy import UsagePolicy, load_policy
from secinstall.policy_checks import check_fetched, check_metadata, check_plan
from secinstall.resolve import resolve_pinned, resolve_with_pip
from secinstall.target import Target, resolve_target
from secinstall.tls import create_context
from secinstall.verify.wheel import check_wheel
from secinstall.vulnerabilities import audit, json_api_url
from tests.conftest import Venv
from tests.support import faults
from tests.support.index import LocalIndex
from tests.support.snapshot import snapshot
from tests.support.wheels import WheelMaker


def ago(delta: timedelta) -> str:
    """An index `upload-time` (PEP 700) for `delta` before now."""
    return (datetime.now(timezone.utc) - delta).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


OLD = timedelta(days=60)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pin(wheel: Path) -> str:
    name, version, _, _ = parse_wheel_filename(wheel.name)
    return f"{name}=={version} --hash=sha256:{sha256(wheel)}"


def licensed(expression: str) -> dict[str, str | bytes]:
    return {"METADATA": f"Metadata-Version: 2.4\nName: lib\nVersion: 1.0\n"
                        f"License-Expression: {expression}\n"}


def osv_record(directory: Path, ident: str, name: str = "lib", fixed: str = "1.1") -> Path:
    record = {"id": ident, "aliases": ["CVE-2099-0001"], "summary": "remote code execution",
              "affected": [{"package": {"ecosystem": "PyPI", "name": name},
                            "ranges": [{"type": "ECOSYSTEM",
                                        "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{ident}.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    return path


@dataclass
class Policies:
    """Checks plans from the local index(es) against a policy loaded from `tmp`."""

    client: Client
    target: Target
    tmp: Path
    ca_file: Path

    def load(self, *settings: str, pyproject: str | None = None) -> UsagePolicy:
        if pyproject is not None:
            (self.tmp / "pyproject.toml").write_text(pyproject, encoding="utf-8")
        return load_policy(self.tmp, os.environ, None, settings)

    def pinned(self, index_urls: list[str], *wheels: Path) -> Plan:
        reqs = tuple(UserRequirement(Requirement(pin(w).split()[0]),
                                     {"sha256": frozenset({sha256(w)})}, "test")
                     for w in wheels)
        return resolve_pinned(InstallOptions(requirements=reqs), self.target,
                              Finder(self.client, index_urls))

    def pip(self, index_urls: list[str], *reqs: str) -> tuple[Plan, list[UserRequirement]]:
        """pip's resolver, then the index details the pipeline adds (yanked, upload time)."""
        users = [UserRequirement(Requirement(r), {}, "command line") for r in reqs]
        options = InstallOptions(requirements=tuple(users), sources=Sources(
            index_url=index_urls[0], extra_index_urls=tuple(index_urls[1:]),
            certs=(str(self.ca_file),)))
        plan = resolve_with_pip(options, self.target)
        return with_index_details(plan, Finder(self.client, index_urls), 4), users

    def check(self, plan: Plan, policy: UsagePolicy, index_urls: list[str],
              requirements: list[UserRequirement] | None = None) -> list[str]:
        return check_plan(plan, policy, client=self.client, index_urls=index_urls,
                          requirements=requirements or [])

    def refusal(self, plan: Plan, policy: UsagePolicy, index_urls: list[str],
                requirements: list[UserRequirement] | None = None) -> str:
        with pytest.raises(PolicyError) as info:
            self.check(plan, policy, index_urls, requirements)
        return "\n".join([info.value.message, *info.value.details])


@pytest.fixture(scope="module")
def target() -> Target:
    return resolve_target()


@pytest.fixture
def policies(ca_file: Path, target: Target, tmp_path: Path) -> Iterator[Policies]:
    with Client(ssl_context=create_context([ca_file]), retries=0) as client:
        yield Policies(client, target, tmp_path / "project", ca_file)


@pytest.fixture(autouse=True)
def _project_dir(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()


@pytest.fixture
def public(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIndex]:
    """A second index, standing for the public one next to a private `index`."""
    with LocalIndex(ca, tmp_path_factory.mktemp("public")) as started:
        yield started


# -- an install that violates nothing ------------------------------------------------------


def test_plan_that_violates_nothing_is_unaffected(
    policies: Policies, index: LocalIndex, make_wheel: WheelMaker
) -> None:
    wheel = make_wheel("lib", "1.0", extra_dist_info=licensed("MIT"))
    index.add(wheel, upload_time=ago(OLD))
    plan = policies.pinned([index.url], wheel)
    policy = policies.load(pyproject='[tool.secinstall.policy]\ndeny = ["evil", "lib<1"]\n'
                           'min-release-age = 7\nlicenses-allow = ["MIT"]\n'
                           'vulnerabilities = "refuse"\n')
    before = index.requests

    assert policies.check(plan, policy, [index.url]) == []
    assert index.requests == before  # one index, nothing assigned: no extra look-ups


# -- allow and deny ----------------------------------------------------------------------------


def test_deny_range_refuses_with_origin_and_override(
    policies: Policies, index: LocalIndex, make_wheel: WheelMaker
) -> None:
    old, new = make_wheel("lib", "1.0"), make_wheel("lib", "2.0")
    index.add(old, upload_time=ago(OLD))
    index.add(new, upload_time=ago(OLD))
    policy = policies.load(pyproject='[tool.secinstall.policy]\ndeny = ["LIB<2"]\n')

    message = policies.refusal(policies.pinned([index.url], old), policy, [index.url])

    assert message == (f'lib 1.0 is denied by the entry "LIB<2" of deny (from '
                       f'{policies.tmp / "pyproject.toml"} [tool.secinstall.policy]); remove '
                       "it there to install this")
    assert policies.check(policies.pinned([index.url], new), policy, [index.url]) == []
    overridden = policies.load("deny=[]")
    assert policies.check(policies.pinned([index.url], old), overridden, [index.url]) == []


# -- minimum release age -----------------------------------------------------------------------


def test_cooldown_refuses_a_fresh_upload(
    policies: Policies, index: LocalIndex, make_wheel: WheelMaker
) -> None:
    fresh, seasoned = make_wheel("lib", "2.0"), make_wheel("lib", "1.0")
    index.add(fresh, upload_time=ago(timedelta(hours=2)))
    index.add(seasoned, upload_time=ago(timedelta(days=10)))
    policy = policies.load(pyproject="[tool.secinstall.policy]\nmin-release-age = 3\n")

    message = policies.refusal(policies.pinned([index.url], fresh), policy, [index.url])

    assert message.startswith(f"lib 2.0 ({fresh.name}) was uploaded ")
    assert "0.1 days ago: too new for min-release-age = 3 days, from " \
           f"{policies.tmp / 'pyproject.toml'} [tool.secinstall.policy]" in message
    assert "--policy-set cooldown-exempt+=lib" in message
    assert policies.check(policies.pinned([index.url], seasoned), policy, [index.url]) == []
    exempt = policies.load("cooldown-exempt+=lib")
    assert policies.check(policies.pinned([index.url], fresh), exempt, [index.url]) == []


def test_uploaded_prior_to_in_pips_spelling(
    policies: Policies, index: LocalIndex, make_wheel: WheelMaker
) -> None:
    wheel = make_wheel("lib", "1.0")
    index.add(wheel, upload_time="2025-03-01T10:00:00Z")
    plan = policies.pinned([index.url], wheel)

    message = policies.refusal(plan, policies.load("uploaded-prior-to=2025-03-01"),
                               [index.url])

    assert "was uploaded 2025-03-01 10:00 UTC" in message
    assert "too new for uploaded-prior-to = 2025-03-01T00:00:00" in message
    assert policies.check(plan, policies.load("uploaded-prior-to='2025-03-02T00:00:00Z'"),
                          [index.url]) == []


def test_cooldown_fails_closed_without_upload_time(
    policies: Policies, index: LocalIndex, make_wheel: WheelMaker
) -> None:
    wheel = make_wheel("lib", "1.0")
    index.add(wheel)  # the JSON page has no upload-time for it
    plan = policies.pinned([index.url], wheel)

    message = policies.refusal(plan, policies.load("min-release-age=1"), [index.url])

    assert message.startswith(f"{wheel.name}: its index gives no upload time")
    assert "refused (fail closed)" in message and "cooldown-exempt+=lib" in message


# -- yanked releases (PEP 592) -----------------------------------------------------------------


def test_yanked_release_only_when_pinned_exactly(
    policies: Policies, index: LocalIndex, make_wheel: WheelMaker
) -> None:
    index.add(make_wheel("app", "1.0", requires=["lib==1.0"]), upload_time=ago(OLD))
    index.add(make_wheel("lib", "1.0"), yanked="data loss", upload_time=ago(OLD))

    # pip takes a yanked release that a dependency pins; the policy wants the user's own pin.
    plan, reqs = policies.pip([index.url], "app")
    assert [(d.name, d.file.yanked) for d in plan.items] == [("app", None), ("lib", "data loss")]
    message = policies.refusal(plan, policies.load(), [index.url], reqs)
    assert message == ("lib 1.0 is yanked (data loss): PEP 592 allows a yanked release only "
                       "when pinned exactly; require lib==1.0 to install it anyway (yanked = "
                       '"pinned-only", from default)')

    plan, reqs = policies.pip([index.url], "app", "lib==1.0")
    assert policies.check(plan, policies.load(), [index.url], reqs) == []
    assert "yanked = \"refuse\", from command line" in policies.refusal(
        plan, policies.load("yanked=refuse"), [index.url], reqs)


# -- index pinning (dependency confusion) ------------------------------------------------------


def test_name_on_two_indexes_is_refused_unless_assigned(
    policies: Policies, index: LocalIndex, public: LocalIndex, make_wheel: WheelMaker
) -> None:
    private = make_wheel("mylib", "1.0")
    squatted = make_wheel("mylib", "9.0", files={"mylib/__init__.py": "print('pwned')\n"})
    index.add(private, upload_time=ago(OLD))
    public.add(squatted, upload_time=ago(OLD))
    urls = [index.url, public.url]
    unassigned = policies.load()

    plan, reqs = policies.pip(urls, "mylib")
    assert plan.items[0].version == "9.0"  # what pip alone would install
    message = policies.refusal(plan, unassigned, urls, reqs)
    assert message == (
        f"mylib is on several indexes ({index.url}, {public.url}) and they don't serve the "
        f"same {squatted.name}: taking the highest version from any of them is how dependency "
        'confusion works, so with several indexes each such name must be assigned to one; say '
        'where it comes from: [tool.secinstall.policy.indexes] mylib = '
        f'"{public.url}", or --policy-set indexes.mylib={public.url}')

    assigned = policies.load(pyproject="[tool.secinstall.policy.indexes]\n"
                                       f'mylib = "{index.url}"\n')
    message = policies.refusal(plan, assigned, urls, reqs)
    assert message == (
        f"mylib 9.0 ({squatted.name}) comes from {public.url}, but the policy allows mylib "
        f"only from {index.url} (indexes.mylib, from {policies.tmp / 'pyproject.toml'} "
        "[tool.secinstall.policy]), which has 1.0; pin one of those, or change indexes.mylib")

    plan, reqs = policies.pip(urls, "mylib==1.0")
    assert policies.check(plan, assigned, urls, reqs) == []
    pinned = policies.pinned(urls, private)
    assert policies.check(pinned, assigned, urls) == []
    with pytest.raises(PolicyError, match="mylib is on several indexes"):
        policies.check(pinned, unassigned, urls)


def test_same_file_on_two_indexes_is_no_confusion(
    policies: Policies, index: LocalIndex, public: LocalIndex, make_wheel: WheelMaker
) -> None:
    wheel, other = make_wheel("lib", "1.0"), make_wheel("other", "1.0")
    index.add(wheel, upload_time=ago(OLD))
    index.add(other, upload_time=ago(OLD))
    public.add(wheel, upload_time=ago(OLD))  # a mirror: the very same bytes
    urls = [index.url, public.url]
    plan = policies.pinned(urls, wheel, other)

    assert policies.check(plan, policies.load(), urls) == []
    assert "/simple/lib/" in public.requests and "/simple/other/" in public.requests


def test_index_listing_failure_fails_closed(
    policies: Policies, index: LocalIndex, public: LocalIndex, make_wheel: WheelMaker
) -> None:
    wheel = make_wheel("lib", "1.0")
    index.add(wheel, upload_time=ago(OLD))
    plan = policies.pinned([index.url], wheel)
    public.fail_next("/simple/lib/", 503, times=5)

    message = policies.refusal(plan, policies.load(), [index.url, public.url])

    assert message.startswith("can't check which index lib comes from (fail closed): "
                              f"{public.url}: giving up on {public.url}lib/")


# -- attestations ------------------------------------------------------------------------------


def test_required_attestations_for_chosen_projects(
    policies: Policies, index: LocalIndex, make_wheel: WheelMaker, tmp_path: Path
) -> None:
    lib, other = make_wheel("lib", "1.0"), make_wheel("other", "1.0")
    index.add(lib, upload_time=ago(OLD))
    index.add(other, upload_time=ago(OLD))
    plan = policies.pinned([index.url], lib, other)
    cache = Cache(tmp_path / "cache")
    try:
        fetched = fetch_all(policies.client, cache, plan.items, jobs=2,
                            policy=AttestationPolicy())
    finally:
        cache.close()
    policy = policies.load("require-attestations=['lib']")

    with pytest.raises(PolicyError) as info:
        check_fetched(fetched, policy, AttestationPolicy())

    assert info.value.message.startswith(f"{lib.name}: no PEP 740 provenance found, and the "
                                         "policy requires attestations for lib")
    check_fetched(fetched, policies.load("require-attestations=['other-project']"),
                  AttestationPolicy())


# -- known vulnerabilities ---------------------------------------------------------------------


def test_vulnerability_from_local_osv_database(
    policies: Policies, index: LocalIndex, make_wheel: WheelMaker, tmp_path: Path
) -> None:
    old, fixed = make_wheel("lib", "1.0"), make_wheel("lib", "1.1")
    index.add(old, upload_time=ago(OLD))
    index.add(fixed, upload_time=ago(OLD))
    osv_record(tmp_path / "osv", "GHSA-aaaa-bbbb-cccc")
    refuse = policies.load(pyproject=f'[tool.secinstall.policy]\nosv-dir = "{tmp_path / "osv"}"'
                                     '\nvulnerabilities = "refuse"\n')

    message = policies.refusal(policies.pinned([index.url], old), refuse, [index.url])

    assert message.startswith("lib 1.0 has 1 known vulnerability: GHSA-aaaa-bbbb-cccc "
                              "(CVE-2099-0001), fixed in 1.1; upgrade to a fixed version")
    assert "--policy-set vulnerabilities-ignore+=GHSA-aaaa-bbbb-cccc" in message
    assert policies.check(policies.pinned([index.url], fixed), refuse, [index.url]) == []
    ignoring = policies.load("vulnerabilities-ignore+=CVE-2099-0001")
    assert policies.check(policies.pinned([index.url], old), ignoring, [index.url]) == []
    warned = policies.load("vulnerabilities=warn")
    assert policies.check(policies.pinned([index.url], old), warned, [index.url]) == [
        "lib 1.0 has 1 known vulnerability: GHSA-aaaa-bbbb-cccc (CVE-2099-0001), fixed in 1.1 "
        '(vulnerabilities = "warn", from command line (--policy-set vulnerabilities=warn))']


def test_vulnerability_from_the_index_json_api(
    policies: Policies, index: LocalIndex, make_wheel: WheelMaker
) -> None:
    wheel = make_wheel("lib", "1.0")
    index.add(wheel, upload_time=ago(OLD))
    answer = {"info": {"name": "lib", "version": "1.0"}, "vulnerabilities": [
        {"id": "PYSEC-2099-1", "aliases": ["CVE-2099-0002"], "fixed_in": ["1.0.1"],
         "details": "Bad things.", "link": "https://osv.dev/vulnerability/PYSEC-2099-1",
         "source": "osv", "withdrawn": None}]}
    index.misbehave("/pypi/lib/1.0/json", faults.body(json.dumps(answer).encode(),
                                                      "application/json"))
    policy = policies.load("vulnerabilities=refuse", f"vulnerability-indexes=['{index.url}']")
    plan = policies.pinned([index.url], wheel)

    message = policies.refusal(plan, policy, [index.url])

    assert message.startswith("lib 1.0 has 1 known vulnerability: PYSEC-2099-1 (CVE-2099-0002)"
                              ", fixed in 1.0.1")
    assert "/pypi/lib/1.0/json" in index.requests
    serve_no_advisories(index, "lib", "1.0")  # what PyPI says of a version without any
    assert policies.check(plan, policy, [index.url]) == []


def serve_no_advisories(index: LocalIndex, name: str, version: str) -> None:
    """Let `index`'s JSON API say, once, that `name` `version` has no known vulnerability
    (the local index answers 404 otherwise: it has no vulnerability data)."""
    answer = {"info": {"name": name, "version": version}, "vulnerabilities": []}
    index.misbehave(f"/pypi/{name}/{version}/json",
                    faults.body(json.dumps(answer).encode(), "application/json"))


def test_json_api_without_data_for_the_version_is_not_nothing_known(
    policies: Policies, index: LocalIndex, make_wheel: WheelMaker, tmp_path: Path
) -> None:
    """A 404 from the JSON API of the index that lists the very file used to count as
    "no known vulnerabilities", so a mirror without the JSON API (or a network whose PyPI
    answers 404 to every per-version URL) passed every check, even with "refuse". That
    index knows the version: its 404 means it has no vulnerability data to give."""
    wheels = [make_wheel(f"lib{i}", "1.0") for i in range(7)]
    for wheel in wheels:
        index.add(wheel, upload_time=ago(OLD))
    plan = policies.pinned([index.url], *wheels)
    apis = f"vulnerability-indexes=['{index.url}']"

    message = policies.refusal(plan, policies.load("vulnerabilities=refuse", apis), [index.url])

    assert message == (
        f"could not check 7 distributions for known vulnerabilities: {index.url} has no "
        f"vulnerability data for them (HTTP 404 from its JSON API, e.g. {index.base_url}/pypi/"
        "lib0/1.0/json): lib0 1.0, lib1 1.0, lib2 1.0, lib3 1.0, lib4 1.0, and 2 more (-v "
        "lists them); refused (fail closed; vulnerabilities = \"refuse\", from command line "
        "(--policy-set vulnerabilities=refuse)): set osv-dir to a directory of OSV records to "
        "check offline, or vulnerabilities = \"warn\" to install anyway, or use an index "
        "that serves its JSON API (/pypi/<name>/<version>/json)")
    assert policies.check(plan, policies.load(apis), [index.url]) == [
        f"could not check 7 distributions for known vulnerabilities: {index.url} has no "
        f"vulnerability data for them (HTTP 404 from its JSON API, e.g. {index.base_url}/pypi/"
        "lib0/1.0/json): lib0 1.0, lib1 1.0, lib2 1.0, lib3 1.0, lib4 1.0, and 2 more (-v "
        "lists them) (vulnerabilities = \"warn\", from default; osv-dir, a directory of OSV "
        "records, would check them)"]
    one = policies.pinned([index.url], wheels[0])
    assert policies.refusal(one, policies.load("vulnerabilities=refuse", apis), [index.url]) \
        .startswith(f"could not check lib0 1.0 for known vulnerabilities: {index.url} has no "
                    f"vulnerability data for it (HTTP 404 from {index.base_url}/pypi/lib0/1.0/"
                    "json); refused (fail closed; ")
    # With osv-dir, the local database checked it: the JSON API had nothing to add.
    osv = f"osv-dir={tmp_path / 'osv'}"
    (tmp_path / "osv").mkdir()
    assert policies.check(plan, policies.load("vulnerabilities=refuse", apis, osv),
                          [index.url]) == []


def test_vulnerability_source_failure_fails_closed(
    policies: Policies, index: LocalIndex, make_wheel: WheelMaker
) -> None:
    wheel = make_wheel("lib", "1.0")
    index.add(wheel, upload_time=ago(OLD))
    index.fail_next("/pypi/lib/1.0/json", 503, times=2)
    plan = policies.pinned([index.url], wheel)
    apis = f"vulnerability-indexes=['{index.url}']"

    message = policies.refusal(plan, policies.load("vulnerabilities=refuse", apis), [index.url])

    assert message.startswith("could not check lib 1.0 for known vulnerabilities: ")
    assert "fail closed" in message
    assert policies.check(plan, policies.load(apis), [index.url])[0].startswith(
        "could not check lib 1.0 for known vulnerabilities")


def test_json_api_failures_warn_once_for_them_all(
    policies: Policies, index: LocalIndex, make_wheel: WheelMaker
) -> None:
    """A JSON API that can't be asked (the network down, the index failing) gave one
    warning per distribution: installing 40 packages printed 40 near-identical warnings.
    Now one warning for them all, as for a 404: how many, the first few names, and the
    distinct errors; the log (-v) has each one. "refuse" still fails closed."""
    wheels = [make_wheel(f"lib{i}", "1.0") for i in range(7)]
    for wheel in wheels:
        index.add(wheel, upload_time=ago(OLD))
    for i in range(6):
        index.fail_next(f"/pypi/lib{i}/1.0/json", 503)
    index.misbehave("/pypi/lib6/1.0/json", faults.body(b"<html>", "application/json"))
    plan = policies.pinned([index.url], *wheels)
    apis = f"vulnerability-indexes=['{index.url}']"
    logged: list[str] = []

    warnings = check_plan(plan, policies.load(apis), client=policies.client,
                          index_urls=[index.url], log=logged.append)

    api = f"{index.base_url}/pypi"
    assert warnings == [
        f"could not check 7 distributions for known vulnerabilities: the JSON API of "
        f"{index.url} could not be asked (e.g. giving up on {api}/lib0/1.0/json after 1 "
        f"attempts: HTTP 503; {api}/lib6/1.0/json is not a valid JSON API answer: Expecting "
        "value: line 1 column 1 (char 0)): lib0 1.0, "
        "lib1 1.0, lib2 1.0, lib3 1.0, lib4 1.0, and 2 more (-v lists them) "
        '(vulnerabilities = "warn", from default)']
    assert logged == [f"lib{i} 1.0: not checked for known vulnerabilities (giving up on "
                      f"{api}/lib{i}/1.0/json after 1 attempts: HTTP 503)"
                      for i in range(6)] + [
        f"lib6 1.0: not checked for known vulnerabilities ({api}/lib6/1.0/json is not a "
        "valid JSON API answer: Expecting value: line 1 column 1 (char 0))"]

    for i in range(7):
        index.fail_next(f"/pypi/lib{i}/1.0/json", 503)
    message = policies.refusal(plan, policies.load("vulnerabilities=refuse", apis), [index.url])
    assert message.startswith("the usage policy refuses this install: could not check lib0 "
                              f"1.0 for known vulnerabilities: giving up on {api}/lib0/1.0/json ")
    assert "(fail closed; " in message and "(and 6 more problem(s))" in message


def test_audit_finds_a_vulnerable_installed_version(
    index: LocalIndex, make_wheel: WheelMaker, venv: Venv, ca_file: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str]
) -> None:
    lib, other = make_wheel("lib", "1.0"), make_wheel("other", "2.0")
    for wheel in (lib, other):
        index.add(wheel)
    code = main(["install", "--python", str(venv.path), "--index-url", index.url, "--cert",
                 str(ca_file), "--cache-dir", str(tmp_path / "cache"), "lib==1.0", "other"])
    assert code == 0, capsys.readouterr().err
    osv_record(tmp_path / "osv", "GHSA-aaaa-bbbb-cccc")
    osv_record(tmp_path / "osv", "GHSA-dddd-eeee-ffff", name="other", fixed="2.0")
    installed = find_installed(resolve_target(str(venv.python)))

    findings = audit(installed, client=None, osv_dir=tmp_path / "osv", api_indexes=()).findings

    assert [(f.name, f.version, f.advisory.id, f.advisory.fixed_in) for f in findings] == [
        ("lib", "1.0", "GHSA-aaaa-bbbb-cccc", ("1.1",))]
    assert audit(installed, client=None, osv_dir=tmp_path / "osv", api_indexes=(),
                 ignore=["CVE-2099-0001"]).findings == []


@pytest.mark.network
def test_pypi_json_api_knows_old_urllib3_vulnerabilities() -> None:
    url = json_api_url("https://pypi.org/simple/", "urllib3", "1.26.4")
    assert url == "https://pypi.org/pypi/urllib3/1.26.4/json"
    installed = {canonicalize_name("urllib3"): InstalledDist(canonicalize_name("urllib3"),
                                                             "1.26.4", Path("/nonexistent"))}
    with Client(ssl_context=create_context()) as client:
        if client.get(url).status == 404:
            pytest.skip("this network's PyPI serves no per-version JSON API")
        findings = audit(installed, client=client, osv_dir=None,
                         api_indexes=["https://pypi.org/simple/"]).findings
    ids = {n for f in findings for n in (f.advisory.id, *f.advisory.aliases)}
    assert "CVE-2021-33503" in ids  # fixed in 1.26.5


# -- licences ----------------------------------------------------------------------------------


def test_licence_from_pips_metadata_before_download(
    policies: Policies, index: LocalIndex, make_wheel: WheelMaker
) -> None:
    index.add(make_wheel("lib", "1.0", extra_dist_info=licensed("GPL-3.0-only")),
              upload_time=ago(OLD))
    plan, reqs = policies.pip([index.url], "lib")
    assert plan.items[0].metadata is not None  # pip's report has it: no download needed
    policy = policies.load(pyproject='[tool.secinstall.policy]\nlicenses-allow = ["MIT"]\n')

    message = policies.refusal(plan, policy, [index.url], reqs)

    assert message.startswith("lib 1.0 is licensed GPL-3.0-only (License-Expression), which "
                              "the policy does not allow: GPL-3.0-only is not in licenses-allow")
    assert "--policy-set licenses-exempt+=lib" in message


@pytest.mark.parametrize(("expression", "allowed"), [
    ("MIT OR GPL-3.0-only", True), ("MIT AND GPL-3.0-only", False),
], ids=["or", "and"])
def test_licence_after_download_for_pinned_input(
    policies: Policies, index: LocalIndex, make_wheel: WheelMaker, tmp_path: Path,
    expression: str, allowed: bool
) -> None:
    wheel = make_wheel("lib", "1.0", extra_dist_info=licensed(expression))
    index.add(wheel, upload_time=ago(OLD))
    plan = policies.pinned([index.url], wheel)
    policy = policies.load("licenses-allow=['MIT']")
    assert plan.items[0].metadata is None
    assert policies.check(plan, policy, [index.url]) == []  # not known yet
    cache = Cache(tmp_path / "cache")
    try:
        fetched = fetch_all(policies.client, cache, plan.items, jobs=1,
                            policy=AttestationPolicy(mode="off"))
    finally:
        cache.close()
    info = check_wheel(fetched[0], policies.target.tags)
    metadata = [("lib", "1.0", info.metadata)]

    if allowed:
        assert check_metadata(metadata, policy) == []
    else:
        with pytest.raises(PolicyError, match=r"GPL-3\.0-only is not in licenses-allow"):
            check_metadata(metadata, policy)


# -- the command line (needs the lead's wiring) ------------------------------------------------


class TestCommandLine:
    """`secinstall install --policy/--policy-set/--uploaded-prior-to`, `policy show`, `audit`."""

    @pytest.fixture(autouse=True)
    def _setup(self, index: LocalIndex, ca_file: Path, tmp_path: Path, venv: Venv,
               capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
        self.index, self.venv, self.capsys, self.ca_file = index, venv, capsys, ca_file
        self.local = ["--index-url", index.url, "--cert", str(ca_file),
                      "--cache-dir", str(tmp_path / "cache"), "--python", str(venv.path)]
        self.project = tmp_path / "project"
        monkeypatch.chdir(self.project)

    def run(self, *argv: str | Path) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        out, err = self.capsys.readouterr()
        return code, out, err

    def install(self, *argv: str | Path) -> tuple[int, str, str]:
        return self.run("install", *self.local, *argv)

    def test_install_that_violates_nothing(self, make_wheel: WheelMaker) -> None:
        self.index.add(make_wheel("lib", "1.0"), upload_time=ago(OLD))
        (self.project / "pyproject.toml").write_text(
            '[tool.secinstall.policy]\ndeny = ["evil"]\nmin-release-age = 7\n', encoding="utf-8")
        code, out, err = self.install("lib")
        assert code == 0, err
        assert "Installed: lib 1.0" in out

    def test_refusal_from_policy_file_leaves_environment_unchanged(
        self, make_wheel: WheelMaker
    ) -> None:
        self.index.add(make_wheel("lib", "1.0"), upload_time=ago(OLD))
        given = self.project / "strict.toml"
        given.write_text('[policy]\ndeny = ["lib<2"]\n', encoding="utf-8")
        before = snapshot(self.venv.path)

        code, _, err = self.install("--policy", given, "lib")

        assert code == 1
        assert f'error: lib 1.0 is denied by the entry "lib<2" of deny (from {given} [policy])' \
            in err
        assert snapshot(self.venv.path) == before

    def test_cooldown_from_pyproject_and_its_override(self, make_wheel: WheelMaker) -> None:
        self.index.add(make_wheel("lib", "1.0"), upload_time=ago(timedelta(hours=1)))
        (self.project / "pyproject.toml").write_text(
            "[tool.secinstall.policy]\nmin-release-age = 2\n", encoding="utf-8")
        before = snapshot(self.venv.path)

        code, _, err = self.install("lib")
        assert code == 1
        assert "too new for min-release-age = 2 days" in err
        assert snapshot(self.venv.path) == before

        code, out, err = self.install("--policy-set", "cooldown-exempt+=lib", "lib")
        assert code == 0, err
        assert "Installed: lib 1.0" in out

    def test_uploaded_prior_to_option(self, make_wheel: WheelMaker) -> None:
        self.index.add(make_wheel("lib", "1.0"), upload_time="2025-06-01T00:00:00Z")
        before = snapshot(self.venv.path)
        code, _, err = self.install("--uploaded-prior-to", "2025-01-01T00:00:00Z", "lib")
        assert code == 1
        assert "lib" in err and ("uploaded-prior-to" in err or "2025-01-01" in err)
        assert snapshot(self.venv.path) == before

    def test_name_on_two_indexes(self, make_wheel: WheelMaker, public: LocalIndex) -> None:
        self.index.add(make_wheel("mylib", "1.0"), upload_time=ago(OLD))
        public.add(make_wheel("mylib", "9.0"), upload_time=ago(OLD))
        before = snapshot(self.venv.path)

        code, _, err = self.install("--extra-index-url", public.url, "mylib")
        assert code == 1
        assert "mylib is on several indexes" in err
        assert snapshot(self.venv.path) == before

        code, out, err = self.install("--extra-index-url", public.url, "--policy-set",
                                      f"indexes.mylib={self.index.url}", "mylib==1.0")
        assert code == 0, err
        assert "Installed: mylib 1.0" in out

    def test_licence_of_pinned_input_checked_after_download(
        self, make_wheel: WheelMaker
    ) -> None:
        wheel = make_wheel("lib", "1.0", extra_dist_info=licensed("AGPL-3.0-only"))
        self.index.add(wheel, upload_time=ago(OLD))
        reqs = self.project / "requirements.txt"
        reqs.write_text(pin(wheel) + "\n", encoding="utf-8")
        before = snapshot(self.venv.path)

        code, _, err = self.install("--policy-set", "licenses-deny=['AGPL-3.0-only']",
                                    "-r", reqs)

        assert code == 1
        assert "lib 1.0 is licensed AGPL-3.0-only" in err
        assert snapshot(self.venv.path) == before

    def test_policy_show(self) -> None:
        (self.project / "secinstall.toml").write_text("[policy]\nmin-release-age = 7\n",
                                                      encoding="utf-8")
        code, out, _ = self.run("policy", "show", "--policy-set", "vulnerabilities=refuse")
        assert code == 0
        assert f"# {self.project / 'secinstall.toml'} [policy]" in out
        assert 'vulnerabilities = "refuse"' in out and "command line" in out

    def test_audit(self, make_wheel: WheelMaker, tmp_path: Path) -> None:
        self.index.add(make_wheel("lib", "1.0"), upload_time=ago(OLD))
        assert self.install("lib")[0] == 0
        osv_record(tmp_path / "osv", "GHSA-aaaa-bbbb-cccc")
        (self.project / "secinstall.toml").write_text(
            f'[policy]\nosv-dir = "{tmp_path / "osv"}"\nvulnerability-indexes = []\n',
            encoding="utf-8")

        code, out, _ = self.run("audit", "--python", self.venv.path)

        assert code == 1
        assert "lib 1.0" in out and "GHSA-aaaa-bbbb-cccc" in out and "1.1" in out

    def serve_advisory(self, index: LocalIndex, name: str, version: str, ident: str) -> None:
        """Let `index`'s JSON API give `ident` as the one vulnerability of `name` `version`."""
        answer = {"info": {"name": name, "version": version}, "vulnerabilities": [
            {"id": ident, "aliases": [], "fixed_in": ["99.0"], "details": "Bad things.",
             "link": f"https://osv.dev/vulnerability/{ident}", "withdrawn": None}]}
        index.misbehave(f"/pypi/{name}/{version}/json",
                        faults.body(json.dumps(answer).encode(), "application/json"))

    def install_lib_and_other(self, make_wheel: WheelMaker) -> None:
        """lib 1.0 installed by secinstall from `index`, other 2.0 by another tool."""
        self.index.add(make_wheel("lib", "1.0"), upload_time=ago(OLD))
        assert self.install("lib")[0] == 0
        dist_info = self.venv.purelib / "other-2.0.dist-info"  # as pip would leave it
        dist_info.mkdir()
        (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: other\n"
                                            "Version: 2.0\n", encoding="utf-8")
        (dist_info / "INSTALLER").write_text("pip\n", encoding="utf-8")

    def test_audit_asks_only_the_index_each_distribution_came_from(
        self, make_wheel: WheelMaker, public: LocalIndex
    ) -> None:
        """Every index in vulnerability-indexes used to be asked about every distribution:
        an unreachable one (TestPyPI, from many networks) failed every audit, and another
        index's advisories for the same name (another namespace) were reported. Now what
        secinstall installed is looked up on the index it came from, and what another tool
        installed on the first of vulnerability-indexes."""
        self.install_lib_and_other(make_wheel)
        self.serve_advisory(self.index, "lib", "1.0", "PYSEC-2099-1")
        self.serve_advisory(public, "lib", "1.0", "PYSEC-2099-2")  # another project "lib"
        self.serve_advisory(public, "other", "2.0", "PYSEC-2099-3")
        unreachable = "https://127.0.0.1:9/simple/"
        indexes = f"vulnerability-indexes=['{public.url}', '{self.index.url}', '{unreachable}']"

        code, out, err = self.run("audit", "-v", "--python", self.venv.path,
                                  "--cert", self.ca_file, "--policy-set", indexes)

        assert code == 1, err
        assert "lib 1.0: PYSEC-2099-1, fixed in 99.0" in out
        assert "other 2.0: PYSEC-2099-3, fixed in 99.0" in out
        assert "PYSEC-2099-2" not in out
        assert out.endswith("2 known vulnerabilities found\n")
        assert [p for p in self.index.requests if p.startswith("/pypi/")] == ["/pypi/lib/1.0/json"]
        assert [p for p in public.requests if p.startswith("/pypi/")] == ["/pypi/other/2.0/json"]
        assert f"lib 1.0: installed by secinstall from {self.index.url}; asked " \
            f"{self.index.base_url}/pypi/lib/1.0/json" in out
        assert "other 2.0: not installed by secinstall, so where it came from is unknown " \
            "(taken to be the first of vulnerability-indexes, as pip-audit takes PyPI); " \
            f"asked {public.base_url}/pypi/other/2.0/json" in out

    def install_libs_warned(self, setting: str) -> tuple[str, list[str]]:
        """Install lib0, lib1 and lib2 with -v and `setting` (--policy-set): what it printed
        (-v), and its warnings about known vulnerabilities."""
        code, out, err = self.install("--policy-set", setting, "-v", "lib0", "lib1", "lib2")
        assert code == 0, err
        assert "Installed: lib0 1.0, lib1 1.0, lib2 1.0" in out
        return out, [line for line in err.splitlines() if "known vulnerabilities" in line]

    def test_json_api_without_data_fails_closed_or_warns_once(
        self, make_wheel: WheelMaker
    ) -> None:
        """The index the files come from answers 404 to its JSON API (a mirror that doesn't
        pass it through): "refuse" refuses rather than install unchecked, "warn" installs
        with one warning for them all, not one per distribution."""
        wheels = [make_wheel(f"lib{i}", "1.0") for i in range(3)]
        for wheel in wheels:
            self.index.add(wheel, upload_time=ago(OLD))
        names = [f"lib{i}" for i in range(3)]
        apis = f"vulnerability-indexes=['{self.index.url}']"
        before = snapshot(self.venv.path)

        code, out, err = self.install("--policy-set", "vulnerabilities=refuse",
                                      "--policy-set", apis, *names)

        assert code == 1, out
        assert err.startswith("error: could not check 3 distributions for known "
                              f"vulnerabilities: {self.index.url} has no vulnerability data "
                              "for them (HTTP 404 from its JSON API")
        assert "lib0 1.0, lib1 1.0, lib2 1.0; refused (fail closed;" in err
        assert "set osv-dir" in err
        assert snapshot(self.venv.path) == before

        out, warned = self.install_libs_warned(apis)

        assert warned == [
            "warning: could not check 3 distributions for known vulnerabilities: "
            f"{self.index.url} has no vulnerability data for them (HTTP 404 from its JSON "
            f"API, e.g. {self.index.base_url}/pypi/lib0/1.0/json): lib0 1.0, lib1 1.0, "
            'lib2 1.0 (vulnerabilities = "warn", from default; osv-dir, a directory of OSV '
            "records, would check them)"]
        assert f"lib2 1.0: no vulnerability data (HTTP 404 from {self.index.base_url}" \
            "/pypi/lib2/1.0/json)" in out  # -v

    def test_json_api_failures_warn_once(self, make_wheel: WheelMaker) -> None:
        """With the JSON API failing (HTTP 503) for every distribution, "warn" installs
        with one warning for them all, not one per distribution; -v lists each."""
        names = [f"lib{i}" for i in range(3)]
        for name in names:
            self.index.add(make_wheel(name, "1.0"), upload_time=ago(OLD))
            self.index.fail_next(f"/pypi/{name}/1.0/json", 503)
        api = f"{self.index.base_url}/pypi"

        out, warned = self.install_libs_warned(f"vulnerability-indexes=['{self.index.url}']")

        assert warned == [
            "warning: could not check 3 distributions for known vulnerabilities: the JSON "
            f"API of {self.index.url} could not be asked (e.g. giving up on "
            f"{api}/lib0/1.0/json after 1 attempts: HTTP 503): lib0 1.0, lib1 1.0, "
            'lib2 1.0 (vulnerabilities = "warn", from default)']
        for name in names:  # -v
            assert f"{name} 1.0: not checked for known vulnerabilities (giving up on " \
                f"{api}/{name}/1.0/json after 1 attempts: HTTP 503)" in out

    def test_audit_of_what_the_index_has_no_vulnerability_data_for(
        self, make_wheel: WheelMaker, public: LocalIndex
    ) -> None:
        """A 404 from the JSON API used to count as "no known vulnerabilities" in an audit
        too. Now: not checked, whether the recorded index answers it or (for what another
        tool installed) the first of vulnerability-indexes, where the name may not even be.
        A source that can't be asked otherwise still fails the audit."""
        self.install_lib_and_other(make_wheel)
        indexes = f"vulnerability-indexes=['{public.url}', '{self.index.url}']"

        code, out, err = self.run("audit", "-v", "--python", self.venv.path,
                                  "--cert", self.ca_file, "--policy-set", indexes)

        assert code == 0, err
        assert out.endswith("0 known vulnerabilities found (2 of 2 distributions not "
                            "checked)\n")
        assert "warning: 2 distribution(s) not checked for known vulnerabilities: the JSON " \
            f"API of {self.index.url}, {public.url} has no vulnerability data for them " \
            "(HTTP 404 or 410; for what another tool installed, it may not come from there):" \
            " lib 1.0, other 2.0; set osv-dir" in err
        assert f"lib 1.0: installed by secinstall from {self.index.url}; asked " \
            f"{self.index.base_url}/pypi/lib/1.0/json: HTTP 404 from {self.index.base_url}/" \
            f"pypi/lib/1.0/json, so {self.index.url} has no vulnerability data for it" in out
        assert "other 2.0: not installed by secinstall" in out

        serve_no_advisories(self.index, "lib", "1.0")
        serve_no_advisories(public, "other", "2.0")
        code, out, err = self.run("audit", "--python", self.venv.path, "--cert", self.ca_file,
                                  "--policy-set", indexes)
        assert (code, out, err) == (0, "0 known vulnerabilities found\n", "")

        public.misbehave("/pypi/other/2.0/json", faults.body(b"<html>", "application/json"))
        code, out, err = self.run("audit", "--python", self.venv.path, "--cert", self.ca_file,
                                  "--policy-set", indexes)
        assert code == 1
        assert "error: could not check 1 source(s) for known vulnerabilities, so the audit " \
            "is incomplete" in err

    def test_audit_says_what_it_could_not_check(
        self, make_wheel: WheelMaker, public: LocalIndex
    ) -> None:
        """A distribution from an index that is not in vulnerability-indexes (a private index
        without a JSON API, say) is asked nowhere: not another index, which would answer for
        another project of that name, and not counted as having no known vulnerability."""
        self.index.add(make_wheel("lib", "1.0"), upload_time=ago(OLD))
        assert self.install("lib")[0] == 0
        self.serve_advisory(public, "lib", "1.0", "PYSEC-2099-2")

        code, out, err = self.run("audit", "--python", self.venv.path, "--cert", self.ca_file,
                                  "--policy-set", f"vulnerability-indexes=['{public.url}']")

        assert code == 0, err
        assert out == "0 known vulnerabilities found (1 of 1 distributions not checked)\n"
        assert "warning: not checked for known vulnerabilities (no JSON API to ask, and no " \
            f"osv-dir): lib 1.0, installed by secinstall from {self.index.url}, which is not " \
            "in vulnerability-indexes; add such an index" in err
        assert not [p for p in public.requests if p.startswith("/pypi/")]
        osv_record(self.project / "osv", "GHSA-aaaa-bbbb-cccc")
        code, out, err = self.run("audit", "--python", self.venv.path, "--cert", self.ca_file,
                                  "--policy-set", f"vulnerability-indexes=['{public.url}']",
                                  "--policy-set", f"osv-dir={self.project / 'osv'}")
        assert code == 1, err
        assert "lib 1.0: GHSA-aaaa-bbbb-cccc" in out and "not checked" not in out + err
