"""Tests of secinstall.policy without a network: loading and precedence, the spelling of
every value, and `describe`."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from tests.support.files import write

from secinstall.errors import ConfigError
from secinstall.policy import (
    UsagePolicy,
    describe,
    load_policy,
    parse_time,
)


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
