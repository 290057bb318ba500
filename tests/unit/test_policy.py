"""Tests of secinstall.policy and secinstall.vulnerabilities without a network: loading and
precedence, each rule on hand-made plans, the licence rules, OSV matching."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from secinstall.client import Client
from secinstall.errors import ConfigError, PolicyError
from secinstall.models import (
    AttestationPolicy,
    FetchedFile,
    IndexFile,
    Plan,
    PlannedDist,
    Publisher,
    UserRequirement,
)
from secinstall.policy import (
    UsagePolicy,
    attestation_policy,
    check_fetched,
    check_metadata,
    check_plan,
    cooldown_cutoff,
    describe,
    load_policy,
    parse_time,
)
from secinstall.tls import create_context
from secinstall.vulnerabilities import (
    Advisory,
    OsvDatabase,
    ignored,
    index_of,
    json_api_url,
    merge,
    osv_affects,
    parse_json_api,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
INDEX = "https://index.example/simple/"


@pytest.fixture
def client() -> Iterator[Client]:
    """A real client; these tests give it nothing that needs the network."""
    with Client(ssl_context=create_context(), retries=0) as made:
        yield made


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


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


# -- loading and precedence ------------------------------------------------------------------


def test_defaults_when_nothing_is_configured(tmp_path: Path) -> None:
    policy = load_policy(tmp_path, {"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert policy == UsagePolicy(origins={})
    assert policy.vulnerabilities == "warn" and policy.yanked == "pinned-only"


def test_sources_win_key_by_key_in_order(tmp_path: Path) -> None:
    user = write(tmp_path / "xdg" / "secinstall" / "secinstall.toml",
                 '[policy]\ndeny = ["evil"]\nmin-release-age = 3\nvulnerabilities = "refuse"\n'
                 'yanked = "refuse"\n[policy.indexes]\na = "https://a.example/simple"\n')
    project = tmp_path / "project"
    write(project / "pyproject.toml",
          '[tool.secinstall]\nattestations = "auto"\n[tool.secinstall.policy]\n'
          'deny = ["requests<2.32"]\nmin-release-age = 5\nlicenses-allow = ["mit"]\n'
          '[tool.secinstall.policy.indexes]\nb = "https://b.example/simple/"\n')
    write(project / "secinstall.toml", '[policy]\nmin-release-age = 7\n'
          '[policy.indexes]\nA = "https://c.example/simple/"\n')
    given = write(tmp_path / "given.toml", '[policy]\nvulnerabilities = "off"\n')
    policy = load_policy(project, {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}, given,
                         ["vulnerabilities=warn", "cooldown-exempt+=Foo_Bar"])
    assert [str(r) for r in policy.deny] == ["requests<2.32"]
    assert policy.min_release_age == 7
    assert policy.yanked == "refuse"
    assert policy.licenses_allow == ("MIT",)
    assert policy.indexes == {"a": "https://c.example/simple/", "b": "https://b.example/simple/"}
    assert policy.vulnerabilities == "warn"
    assert policy.cooldown_exempt == {"foo-bar"}
    assert policy.origins == {
        "deny": f"{project / 'pyproject.toml'} [tool.secinstall.policy]",
        "min-release-age": f"{project / 'secinstall.toml'} [policy]",
        "yanked": f"{user} [policy]",
        "licenses-allow": f"{project / 'pyproject.toml'} [tool.secinstall.policy]",
        "indexes.a": f"{project / 'secinstall.toml'} [policy]",
        "indexes.b": f"{project / 'pyproject.toml'} [tool.secinstall.policy]",
        "vulnerabilities": "command line (--policy-set vulnerabilities=warn)",
        "cooldown-exempt": "command line (--policy-set cooldown-exempt+=Foo_Bar)",
    }


def test_policy_file_may_be_a_pyproject(tmp_path: Path) -> None:
    given = write(tmp_path / "other" / "pyproject.toml",
                  '[tool.secinstall.policy]\nosv-dir = "osv"\n')
    policy = load_policy(tmp_path, {}, given)
    assert policy.osv_dir == tmp_path / "other" / "osv"
    assert policy.origin("osv-dir") == f"{given} [tool.secinstall.policy]"


def test_user_file_defaults_to_home_config(tmp_path: Path) -> None:
    write(tmp_path / "home" / ".config" / "secinstall" / "secinstall.toml",
          '[policy]\ndeny = ["x"]\n')
    policy = load_policy(tmp_path, {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": "rel"})
    assert [str(r) for r in policy.deny] == ["x"]


def test_appending_keeps_both_origins(tmp_path: Path) -> None:
    write(tmp_path / "secinstall.toml", '[policy]\nvulnerabilities-ignore = ["GHSA-1"]\n')
    policy = load_policy(tmp_path, {}, None, ["vulnerabilities-ignore+=['PYSEC-2', 'X']"])
    assert policy.vulnerabilities_ignore == {"GHSA-1", "PYSEC-2", "X"}
    assert policy.origin("vulnerabilities-ignore") == (
        f"{tmp_path / 'secinstall.toml'} [policy], command line (--policy-set "
        "vulnerabilities-ignore+=['PYSEC-2', 'X'])")


@pytest.mark.parametrize(("setting", "expected"), [
    ("require-attestations=true", True),
    ("require-attestations=sigstore", frozenset({"sigstore"})),
    ("require-attestations=['A_b', 'c']", frozenset({"a-b", "c"})),
    ("min-release-age=2.5", 2.5),
    ("deny=requests", (Requirement("requests"),)),
], ids=["bool", "bare-name", "toml-list", "float", "bare-string-as-list"])
def test_command_line_values_are_toml_or_plain_strings(setting: str, expected: object) -> None:
    policy = policy_of(setting)
    key = setting.partition("=")[0].replace("-", "_")
    assert getattr(policy, key) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("colour = 1", "unknown policy key 'colour'"),
    ('deny = "requests"', "deny must be a list of strings"),
    ('deny = ["requests<<2"]', "'requests<<2' is not a project name"),
    ('deny = ["x; python_version<\'3\'"]', "only a name and a version range"),
    ('licenses-allow = ["Apache 2.0"]', "use SPDX identifiers"),
    ('licenses-deny = ["MIT OR GPL-3.0-only"]', "single licence identifiers"),
    ('sdists = "allow"', "--allow-build, is not available yet"),
    ("min-release-age = -1", "number of days >= 0"),
    ('uploaded-prior-to = "last week"', "expected an ISO 8601 date"),
    ('vulnerabilities = "ignore"', "expected one of 'refuse', 'warn', 'off'"),
    ('indexes = ["x"]', "indexes must be a table"),
    ('indexes.x = "private"', 'index URL such as "https://pypi.org/simple/"'),
    ('publishers.x = "github"', "invalid publisher 'github'"),
    ('cooldown-exempt = ["not a name!"]', "not a name!"),
], ids=["unknown-key", "not-a-list", "bad-specifier", "marker", "licence-id", "licence-expr",
        "sdists", "negative-age", "bad-date", "bad-choice", "table", "url", "publisher", "name"])
def test_bad_values_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "secinstall.toml", f"[policy]\n{text}\n")
    with pytest.raises(ConfigError) as info:
        load_policy(tmp_path, {})
    assert message in info.value.message
    assert str(path) in info.value.message


def test_policy_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_policy(tmp_path, {}, tmp_path / "missing.toml")
    empty = write(tmp_path / "empty.toml", "[tool.other]\nx = 1\n")
    with pytest.raises(ConfigError, match=r"no \[policy\] or \[tool.secinstall.policy\] table"):
        load_policy(tmp_path, {}, empty)
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        policy_of("deny")
    with pytest.raises(ConfigError, match=r"min-release-age\+= adds to a list"):
        policy_of("min-release-age+=3")
    with pytest.raises(ConfigError, match=r"indexes.x\+= adds to a list"):
        policy_of("indexes.x+=https://x.example/simple/")


def test_adding_projects_to_all_required_attestations_keeps_all() -> None:
    assert policy_of("require-attestations=true",
                     "require-attestations+=lib").require_attestations is True
    assert policy_of("require-attestations+=lib").require_attestations == frozenset({"lib"})


@pytest.mark.parametrize(("value", "expected"), [
    ('"2025-01-31T12:00:00Z"', datetime(2025, 1, 31, 12, tzinfo=timezone.utc)),
    ('"2025-01-31T12:00:00+02:00"', datetime(2025, 1, 31, 10, tzinfo=timezone.utc)),
    ("2025-01-31T12:00:00Z", datetime(2025, 1, 31, 12, tzinfo=timezone.utc)),
    ('"P7D"', timedelta(days=7)),
    ('""', None),
], ids=["string-utc", "string-offset", "toml-datetime", "duration", "empty"])
def test_uploaded_prior_to_accepts_pips_spellings(tmp_path: Path, value: str,
                                                  expected: object) -> None:
    write(tmp_path / "secinstall.toml", f"[policy]\nuploaded-prior-to = {value}\n")
    assert load_policy(tmp_path, {}).uploaded_prior_to == expected


def test_a_date_without_time_is_local_midnight_as_in_pip(tmp_path: Path) -> None:
    write(tmp_path / "secinstall.toml", '[policy]\nuploaded-prior-to = "2025-01-31"\n')
    value = load_policy(tmp_path, {}).uploaded_prior_to
    assert value == datetime(2025, 1, 31).astimezone()


def test_describe_shows_every_key_and_its_origin(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.secinstall.policy]\nmin-release-age = 7\n'
          '[tool.secinstall.policy.publishers]\nsigstore = "github:sigstore/sigstore-python"\n')
    lines = describe(load_policy(tmp_path, {}, None, ["indexes.lib=https://a.example/simple"]))
    where = f"# {tmp_path / 'pyproject.toml'} [tool.secinstall.policy]"
    assert any(line.startswith("min-release-age = 7 ") and line.endswith(where)
               for line in lines)
    assert any(line.startswith('indexes.lib = "https://a.example/simple/"')
               and line.endswith("# command line (--policy-set "
                                 "indexes.lib=https://a.example/simple)") for line in lines)
    assert any(line.startswith('publishers.sigstore = ["github:sigstore/sigstore-python"]')
               for line in lines)
    assert any(line.startswith('sdists = "refuse"') and "--allow-build" in line
               for line in lines)
    assert any(line.startswith("deny = []") and line.endswith("# default") for line in lines)


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


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-05-29T15:40:34.927950Z", datetime(2024, 5, 29, 15, 40, 34, 927950, timezone.utc)),
    ("2024-05-29T15:40:34.9Z", datetime(2024, 5, 29, 15, 40, 34, 900000, timezone.utc)),
    ("2024-05-29T15:40:34.123456789+00:00",
     datetime(2024, 5, 29, 15, 40, 34, 123456, timezone.utc)),
    ("2024-05-29T15:40:34", datetime(2024, 5, 29, 15, 40, 34)),
    ("May 29", None),
], ids=["pypi", "short-fraction", "long-fraction", "naive", "invalid"])
def test_parse_time(text: str, expected: datetime | None) -> None:
    assert parse_time(text) == expected


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


def osv(ident: str, name: str = "lib", **affected: Any) -> dict[str, Any]:
    return {"id": ident, "aliases": [f"CVE-{ident}"], "summary": f"{ident} summary",
            "affected": [{"package": {"ecosystem": "PyPI", "name": name}, **affected}]}


RANGE: dict[str, Any] = {"ranges": [{"type": "ECOSYSTEM", "events": [
    {"introduced": "0"}, {"fixed": "1.1"}, {"introduced": "2.0"}, {"last_affected": "2.2"}]}]}


@pytest.mark.parametrize(("version", "affected"), [
    ("0.1", True), ("1.0", True), ("1.1a1", True), ("1.1", False), ("1.5", False),
    ("2.0", True), ("2.2", True), ("2.2.1", False), ("not a version", False),
], ids=lambda v: str(v))
def test_osv_ranges(version: str, affected: bool) -> None:
    assert osv_affects(osv("X", **RANGE)["affected"][0], version) is affected


def test_osv_versions_list_compares_normalised_versions() -> None:
    entry = osv("X", versions=["1.0", "2.0.0"])["affected"][0]
    assert osv_affects(entry, "1.0.0") and osv_affects(entry, "2.0")
    assert not osv_affects(entry, "1.0.1")


def test_osv_database(tmp_path: Path) -> None:
    write(tmp_path / "PYSEC-1.json", json.dumps(osv("PYSEC-1", "Lib", **RANGE)))
    write(tmp_path / "sub" / "GHSA-2.json", json.dumps({**osv("GHSA-2", versions=["1.0"]),
                                                        "aliases": ["PYSEC-1"]}))
    write(tmp_path / "W.json", json.dumps({**osv("W", versions=["1.0"]), "withdrawn": "2024"}))
    npm = osv("N", versions=["1.0"])
    npm["affected"][0]["package"]["ecosystem"] = "npm"
    write(tmp_path / "N.json", json.dumps(npm))
    db = OsvDatabase(tmp_path)
    found = merge(db.advisories("LIB", "1.0"))
    assert [(a.id, a.aliases, a.fixed_in) for a in found] == [
        ("PYSEC-1", ("CVE-PYSEC-1", "GHSA-2"), ("1.1",))]
    assert db.advisories("lib", "1.2") == []
    write(tmp_path / "broken.json", "{")
    with pytest.raises(ConfigError, match=r"broken\.json is not a readable OSV record"):
        OsvDatabase(tmp_path)
    with pytest.raises(ConfigError, match="not a directory"):
        OsvDatabase(tmp_path / "missing")


def test_json_api_answer_and_ignore_list() -> None:
    data = {"vulnerabilities": [
        {"id": "GHSA-a", "aliases": ["CVE-1"], "fixed_in": ["2.0"], "details": "Bad.\nMore",
         "link": "https://osv.dev/GHSA-a", "withdrawn": None},
        {"id": "PYSEC-b", "aliases": [], "fixed_in": [], "withdrawn": "2024-01-01"}]}
    found = parse_json_api(data, "https://x/pypi/lib/1.0/json")
    assert found == [Advisory("GHSA-a", ("CVE-1",), ("2.0",), "Bad.", "https://osv.dev/GHSA-a",
                              ("https://x/pypi/lib/1.0/json",))]
    assert found[0].describe() == "GHSA-a (CVE-1), fixed in 2.0"
    assert ignored(found[0], ["cve-1"]) and not ignored(found[0], ["CVE-2"])


def test_json_api_location() -> None:
    assert json_api_url("https://pypi.org/simple", "Foo_Bar", "1.0") == \
        "https://pypi.org/pypi/foo-bar/1.0/json"
    assert json_api_url("https://host/find-links/", "x", "1") is None
    pypi_file = IndexFile("x-1-py3-none-any.whl",
                          "https://files.pythonhosted.org/packages/x-1-py3-none-any.whl", {},
                          origin="pip report")
    assert index_of(pypi_file, []) == "https://pypi.org/simple/"
    assert index_of(dist().file, [INDEX]) == INDEX
    assert index_of(dist().file, []) is None


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
