"""Tests of secinstall.policy_checks without a network: each rule on hand-made plans, the
licence rules, attestations, known vulnerabilities (secinstall.vulnerabilities has its own
tests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from tests.support.files import write
from tests.support.osv import RANGE, osv

from secinstall.client import Client
from secinstall.errors import PolicyError
from secinstall.models import (
    AttestationPolicy,
    FetchedFile,
    IndexFile,
    Plan,
    PlannedDist,
    Publisher,
    UserRequirement,
)
from secinstall.policy import UsagePolicy, load_policy
from secinstall.policy_checks import (
    attestation_policy,
    check_fetched,
    check_metadata,
    check_plan,
    cooldown_cutoff,
)
from secinstall.tls import create_context

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
INDEX = "https://index.example/simple/"


@pytest.fixture
def client() -> Iterator[Client]:
    """A real client; these tests give it nothing that needs the network."""
    with Client(ssl_context=create_context(), retries=0) as made:
        yield made


def dist(name: str = "lib", version: str = "1.0", *, filename: str | None = None,
         uploaded: datetime | None = NOW - timedelta(days=30), yanked: str | None = None,
         metadata: dict[str, Any] | None = None) -> PlannedDist:
    file = IndexFile(
        filename=filename or f"{name.replace('-', '_')}-{version}-py3-none-any.whl",
        url=f"https://index.example/files/{name}-{version}.whl", hashes={"sha256": "ab" * 32},
        yanked=yanked, upload_time=uploaded.isoformat() if uploaded else None, origin=INDEX)
    return PlannedDist(name=canonicalize_name(name), version=version, file=file, pinned={},
                       requested=True, metadata=metadata)


def check(policy: UsagePolicy, client: Client, *dists: PlannedDist,
          resolver: str = "pip", requirements: tuple[str, ...] = ()) -> list[str]:
    plan = Plan(items=dists, resolver="pip" if resolver == "pip" else "pinned")
    reqs = [UserRequirement(Requirement(r), {}, "command line") for r in requirements]
    return check_plan(plan, policy, client=client, index_urls=[INDEX], requirements=reqs,
                      now=NOW)


def refusal(policy: UsagePolicy, client: Client, *dists: PlannedDist, **kw: Any) -> str:
    with pytest.raises(PolicyError) as info:
        check(policy, client, *dists, **kw)
    return "\n".join([info.value.message, *info.value.details])


def policy_of(*settings: str, tmp: Path = Path("/nonexistent")) -> UsagePolicy:
    return load_policy(tmp, {"XDG_CONFIG_HOME": str(tmp / "xdg")}, settings=settings)


# -- rules on hand-made plans -----------------------------------------------------------------


def test_a_plan_that_violates_nothing_passes(client: Client) -> None:
    policy = policy_of("deny=['other', 'lib<1']", "allow=['lib>=1']", "min-release-age=7",
                       "licenses-allow=['MIT']")
    assert check(policy, client, dist(metadata={"license_expression": "MIT"})) == []


@pytest.mark.parametrize(("entry", "version", "refused"), [
    ("lib", "1.0", True), ("LIB<2", "1.0", True), ("lib<2", "2.0", False),
    ("lib>=2.0a1", "2.0b1", True), ("other", "1.0", False),
], ids=["name", "range-normalised", "outside-range", "prerelease", "other-project"])
def test_deny_entries(client: Client, entry: str, version: str, refused: bool) -> None:
    policy = policy_of(f"deny=['{entry}']")
    if not refused:
        assert check(policy, client, dist(version=version)) == []
        return
    message = refusal(policy, client, dist(version=version))
    assert f'lib {version} is denied by the entry "{entry}" of deny' in message
    assert "command line (--policy-set deny=" in message


def test_allow_list_refuses_everything_else(client: Client) -> None:
    policy = policy_of("allow=['app', 'lib>=2']")
    message = refusal(policy, client, dist("other"), dist("lib", "1.0"), dist("app"))
    assert "other 1.0 is not allowed: it is not in allow" in message
    assert "lib 1.0 is not allowed: allow has only lib>=2 for it" in message
    assert "--policy-set allow+=lib==1.0" in message
    assert "app 1.0" not in message


def test_every_violation_is_listed_in_one_error(client: Client) -> None:
    policy = policy_of("deny=['a', 'b']")
    with pytest.raises(PolicyError) as info:
        check(policy, client, dist("a"), dist("b"), dist("c"))
    assert "(and 1 more problem(s))" in info.value.message
    assert len(info.value.details) == 2


def test_sdists_are_refused(client: Client) -> None:
    message = refusal(policy_of(), client, dist(filename="lib-1.0.tar.gz"))
    assert "lib-1.0.tar.gz is a source distribution" in message
    assert '(sdists = "refuse", from default)' in message


@pytest.mark.parametrize(("requirements", "resolver", "allowed"), [
    ((), "pip", False), (("lib>=1",), "pip", False), (("lib==1.0",), "pip", True),
    (("lib===1.0",), "pip", True), (("lib==1.*",), "pip", False), (("lib==2.0",), "pip", False),
    ((), "pinned", True),
], ids=["unpinned", "range", "pinned", "arbitrary-equality", "wildcard", "other-version",
        "pinned-resolver"])
def test_yanked_only_when_pinned_exactly(client: Client, requirements: tuple[str, ...],
                                         resolver: str, allowed: bool) -> None:
    yanked = dist(yanked="broken build")
    if allowed:
        assert check(policy_of(), client, yanked, requirements=requirements,
                     resolver=resolver) == []
        return
    message = refusal(policy_of(), client, yanked, requirements=requirements, resolver=resolver)
    assert "lib 1.0 is yanked (broken build): PEP 592 allows a yanked release only when " \
           "pinned exactly; require lib==1.0" in message


def test_yanked_refuse_refuses_even_pinned(client: Client) -> None:
    message = refusal(policy_of("yanked=refuse"), client, dist(yanked=""),
                      requirements=("lib==1.0",))
    assert "lib 1.0 is yanked: set yanked = \"pinned-only\" and pin it" in message


@pytest.mark.parametrize(("settings", "age", "refused"), [
    (("min-release-age=7",), timedelta(days=6), True),
    (("min-release-age=7",), timedelta(days=8), False),
    (("uploaded-prior-to=P3D",), timedelta(days=2), True),
    (("uploaded-prior-to=2026-05-01",), timedelta(days=40), False),
    (("uploaded-prior-to=2026-05-01",), timedelta(days=20), True),
    (("min-release-age=7", "cooldown-exempt=['lib']"), timedelta(hours=1), False),
], ids=["too-new", "old-enough", "pip-duration", "before-date", "after-date", "exempt"])
def test_minimum_release_age(client: Client, settings: tuple[str, ...], age: timedelta,
                             refused: bool) -> None:
    fresh = dist(uploaded=NOW - age)
    if not refused:
        assert check(policy_of(*settings), client, fresh) == []
        return
    message = refusal(policy_of(*settings), client, fresh)
    assert "too new for" in message
    assert "--policy-set cooldown-exempt+=lib" in message


def test_stricter_cooldown_rule_wins() -> None:
    policy = policy_of("min-release-age=7", "uploaded-prior-to=2026-01-01T00:00:00Z")
    cutoff = cooldown_cutoff(policy, NOW)
    assert cutoff is not None
    assert cutoff[0] == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert cutoff[1].startswith("uploaded-prior-to = 2026-01-01T00:00:00+00:00")


@pytest.mark.parametrize("upload_time", [None, "yesterday"], ids=["missing", "unreadable"])
def test_cooldown_fails_closed_without_upload_time(client: Client,
                                                   upload_time: str | None) -> None:
    item = dist(uploaded=None)
    item = PlannedDist(**{**item.__dict__, "file": IndexFile(**{
        **item.file.__dict__, "upload_time": upload_time})})
    message = refusal(policy_of("min-release-age=1"), client, item)
    assert "so its age can't be checked against min-release-age = 1 days" in message
    assert "fail closed" in message
    assert ("no upload time" if upload_time is None else "unreadable upload time") in message


# -- licences ---------------------------------------------------------------------------------


def test_check_metadata_refuses_and_warns() -> None:
    strict = policy_of("licenses-allow=['MIT']")
    with pytest.raises(PolicyError) as info:
        check_metadata([("a", "1", {"license_expression": "GPL-3.0-only"}),
                        ("b", "1", {"license": "see LICENSE file"}),
                        ("c", "1", {"license_expression": "MIT"})], strict)
    a, b = info.value.details
    assert a.startswith("a 1 is licensed GPL-3.0-only (License-Expression), which the policy "
                        "does not allow: GPL-3.0-only is not in licenses-allow")
    assert "--policy-set licenses-exempt+=a" in a
    assert b.startswith("b 1: its licence is unknown (no License-Expression; License field "
                        "'see LICENSE file'), so it can't be shown to be allowed")
    # With only a deny list, an unknown licence is a warning, and exemptions are honoured.
    deny_only = policy_of("licenses-deny=['GPL-3.0-only']", "licenses-exempt=['a']")
    assert check_metadata([("a", "1", {"license_expression": "GPL-3.0-only"}),
                           ("b", "1", {})], deny_only) == [
        "b 1: its licence is unknown (no License-Expression), so licenses-deny could not be "
        "checked"]


def test_check_metadata_reads_every_classifier_the_sbom_knows() -> None:
    # One classifier map serves the policy and the SBOM: 0BSD was known only to the SBOM,
    # so a distribution that declared it by classifier alone was refused as unknown.
    zero_bsd = {"classifier": ["License :: OSI Approved :: Zero-Clause BSD (0BSD)"]}
    assert check_metadata([("tiny", "1", zero_bsd)], policy_of("licenses-allow=['0BSD']")) == []
    with pytest.raises(PolicyError) as info:
        check_metadata([("tiny", "1", zero_bsd)], policy_of("licenses-deny=['0BSD']"))
    assert info.value.message.startswith("tiny 1 is licensed 0BSD (classifiers)")


def test_plan_metadata_is_checked_before_download(client: Client) -> None:
    message = refusal(policy_of("licenses-deny=['AGPL-3.0-only']"), client,
                      dist(metadata={"license_expression": "AGPL-3.0-only"}))
    assert "lib 1.0 is licensed AGPL-3.0-only" in message


# -- attestations -----------------------------------------------------------------------------


def test_attestation_policy_merges_under_the_command_line() -> None:
    pin = Publisher("github", "me/lib")
    base = AttestationPolicy(mode="auto", pins={NormalizedName("x"): (Publisher("gitlab", "a/b"),)},
                             origins={"attestations": "default"})
    policy = policy_of("require-attestations=true", "publishers.lib=github:me/lib",
                       "publishers.x=github:other/x")
    merged = attestation_policy(policy, base)
    assert merged.mode == "require"
    assert merged.pins == {"x": (Publisher("gitlab", "a/b"),), "lib": (pin,)}
    assert merged.origins["publisher:lib"].startswith("command line")
    cli = AttestationPolicy(mode="off", origins={"attestations": "command line"})
    assert attestation_policy(policy, cli).mode == "off"
    # A list of projects needs their provenance fetched: "off" from a file becomes "auto".
    some = policy_of("require-attestations=['lib']")
    assert attestation_policy(some, AttestationPolicy(mode="off")).mode == "auto"
    assert attestation_policy(some, AttestationPolicy(mode="auto")).mode == "auto"


def test_check_fetched_requires_provenance_for_listed_projects(tmp_path: Path) -> None:
    def fetched(name: str, provenance: bytes | None) -> FetchedFile:
        return FetchedFile(dist=dist(name), path=tmp_path / name, hashes={"sha256": "ab" * 32},
                           size=1, from_cache=False, provenance=provenance)

    policy = policy_of("require-attestations=['lib']")
    files = [fetched("lib", None), fetched("other", None)]
    with pytest.raises(PolicyError) as info:
        check_fetched(files, policy, AttestationPolicy())
    assert info.value.message.startswith("lib-1.0-py3-none-any.whl: no PEP 740 provenance "
                                         "found, and the policy requires attestations for lib")
    check_fetched([fetched("lib", b"{}"), fetched("other", None)], policy, AttestationPolicy())
    check_fetched(files, policy, AttestationPolicy(mode="off"))


# -- vulnerabilities --------------------------------------------------------------------------


def test_vulnerabilities_from_osv_refuse_warn_or_ignore(client: Client, tmp_path: Path) -> None:
    write(tmp_path / "osv" / "GHSA-1.json", json.dumps(osv("GHSA-1", **RANGE)))
    osv_dir = f"osv-dir='{tmp_path / 'osv'}'"
    message = refusal(policy_of(osv_dir, "vulnerabilities=refuse"), client, dist())
    assert message.startswith("lib 1.0 has 1 known vulnerability: GHSA-1 (CVE-GHSA-1), "
                              "fixed in 1.1; upgrade to a fixed version")
    assert "--policy-set vulnerabilities-ignore+=GHSA-1" in message
    assert check(policy_of(osv_dir, "vulnerabilities=refuse"), client, dist(version="1.1")) == []
    assert check(policy_of(osv_dir), client, dist()) == [
        "lib 1.0 has 1 known vulnerability: GHSA-1 (CVE-GHSA-1), fixed in 1.1 "
        '(vulnerabilities = "warn", from default)']
    ignoring = policy_of(osv_dir, "vulnerabilities=refuse", "vulnerabilities-ignore=['CVE-GHSA-1']")
    assert check(ignoring, client, dist()) == []
    assert check(policy_of(osv_dir, "vulnerabilities=off"), client, dist()) == []
