"""Tests of the lock writers in secinstall.lockfiles: `pylock.toml` and hashed requirements,
from verified runs built from real wheels (and real PEP 740 provenance)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.pylock import Pylock
from packaging.utils import canonicalize_name, parse_wheel_filename
from tests.support.wheels import WheelMaker

from secinstall.errors import AttestationError, RequirementsError
from secinstall.lockfiles import (
    plan_from_pylock,
    pylock_text,
    requirements_text,
    write_pylock,
    write_requirements,
)
from secinstall.lockfiles._toml import toml_dumps
from secinstall.models import (
    AttestationEvidence,
    FetchedFile,
    IndexFile,
    Plan,
    PlannedDist,
    Publisher,
    VerifiedDist,
)
from secinstall.pipeline import Outcome
from secinstall.requirements import parse_files
from secinstall.target import Target, resolve_target
from secinstall.verify.attestations import load_provenance, parse_publisher, verify_file
from secinstall.verify.hashes import check_hashes
from secinstall.verify.wheel import check_wheel

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

PYPI = "https://pypi.org/simple/"
FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "pep740"
ATTESTED = FIXTURES / "pypi_attestations-0.0.30-py3-none-any.whl"
EMAIL_SIGNED = FIXTURES / "rfc8785-0.1.2-py3-none-any.whl"
GITHUB = Publisher("github", "pypi/pypi-attestations", "release.yml", "pypi")


@pytest.fixture(scope="module")
def host() -> Target:
    return resolve_target()


def verified(wheel: Path, target: Target, *, via: Sequence[str] = (), origin: str = "",
             upload_time: str | None = None,
             evidence: AttestationEvidence | None = None) -> tuple[VerifiedDist, Any]:
    """`wheel` downloaded and put through the real hash and wheel checks."""
    data = wheel.read_bytes()
    name, version, _, _ = parse_wheel_filename(wheel.name)
    hashes = {a: hashlib.new(a, data).hexdigest() for a in ("sha256", "sha512")}
    file = IndexFile(filename=wheel.name, url=wheel.as_uri(), hashes={"sha256": hashes["sha256"]},
                     upload_time=upload_time, origin=origin)
    dist = PlannedDist(name=name, version=str(version), file=file, pinned={},
                       requested=not via, via=tuple(via))
    fetched = FetchedFile(dist=dist, path=wheel, hashes=hashes, size=len(data),
                          from_cache=False)
    sources = check_hashes(fetched, require_pin=False)
    return (VerifiedDist(fetched=fetched, hash_sources=sources, attestation=evidence),
            check_wheel(fetched, target.tags))


def outcome_of(target: Target, checked: Sequence[tuple[VerifiedDist, Any]]) -> Outcome:
    return Outcome(target=target, plan=Plan(items=tuple(v.dist for v, _ in checked),
                                            resolver="pip"),
                   verified=[v for v, _ in checked],
                   wheel_info={v.dist.name: info for v, info in checked})


def provenance_of(wheel: Path, **options: Any) -> AttestationEvidence:
    """The real evidence of verifying `wheel`'s real provenance (offline)."""
    suffix = ".publish.attestation" if wheel == EMAIL_SIGNED else ".provenance"
    loaded = load_provenance(Path(f"{wheel}{suffix}").read_bytes(), source=f"{wheel}{suffix}")
    return verify_file(wheel.name, hashlib.sha256(wheel.read_bytes()).hexdigest(), loaded,
                       **options)


@pytest.fixture(scope="module")
def real_outcome(host: Target, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """pypi-attestations (GitHub publisher), rfc8785 (an e-mail signer, not a Trusted
    Publisher) and a built pyasn1 that pypi-attestations requires."""
    from tests.support.wheels import build_wheel

    pyasn1 = build_wheel(tmp_path_factory.mktemp("wheels"), "pyasn1", "0.6.1")
    email = provenance_of(EMAIL_SIGNED, instance="staging", publishers=[parse_publisher(
        "email:william@yossarian.net,issuer=https://github.com/login/oauth")])
    return outcome_of(host, [
        verified(ATTESTED, host, origin=PYPI, upload_time="2025-06-20T18:02:11.123456Z",
                 evidence=provenance_of(ATTESTED)),
        verified(EMAIL_SIGNED, host, origin="/srv/wheels", evidence=email),
        verified(pyasn1, host, via=["pypi-attestations==0.0.30"], origin=PYPI),
    ])


def load_toml(text: str) -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads(text)
    return data


# --- pylock.toml -----------------------------------------------------------------------------


def test_pylock_validates_and_reads_back(real_outcome: Outcome, host: Target,
                                         tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    write_pylock(real_outcome, path, indexes=[PYPI])

    Pylock.from_dict(load_toml(path.read_text(encoding="utf-8")))
    plan, pins = plan_from_pylock(path, host)

    assert (plan.resolver, plan.require_hashes) == ("lock", True)
    by_name = {v.dist.name: v for v in real_outcome.verified}
    assert [d.name for d in plan.items] == sorted(by_name)
    for dist in plan.items:
        original = by_name[dist.name]
        assert (dist.version, dist.file.filename, dist.file.url, dist.file.size) == (
            original.dist.version, original.dist.file.filename, original.dist.file.url,
            original.fetched.size)
        assert dist.file.hashes == original.fetched.hashes
        assert dist.pinned == {a: frozenset({h}) for a, h in original.fetched.hashes.items()}
    assert {d.name: d.via for d in plan.items} == {
        "pyasn1": ("pypi-attestations==0.0.30",), "pypi-attestations": (), "rfc8785": ()}
    assert {d.name: d.file.upload_time for d in plan.items} == {
        "pyasn1": None, "pypi-attestations": "2025-06-20T18:02:11.123456Z", "rfc8785": None}
    # Only the Trusted Publisher becomes a pin; an e-mail signer is no PEP 740 kind.
    assert pins == {"pypi-attestations": (GITHUB,)}


def test_pylock_contents(real_outcome: Outcome, host: Target) -> None:
    data = load_toml(pylock_text(real_outcome, indexes=[PYPI]))

    assert (data["lock-version"], data["created-by"]) == ("1.0", "secinstall")
    assert data["requires-python"] == ">={}.{}".format(*host.version[:2])
    packages = {p["name"]: p for p in data["packages"]}
    assert packages["pypi-attestations"]["index"] == PYPI
    assert "index" not in packages["rfc8785"]  # a find-links directory is no index
    assert packages["pypi-attestations"]["dependencies"] == [{"name": "pyasn1"}]
    assert packages["pypi-attestations"]["attestation-identities"] == [
        {"kind": "GitHub", "repository": "pypi/pypi-attestations", "workflow": "release.yml",
         "environment": "pypi"}]
    assert "attestation-identities" not in packages["rfc8785"]
    assert packages["pypi-attestations"]["wheels"][0]["upload-time"] == dt.datetime(
        2025, 6, 20, 18, 2, 11, 123456, tzinfo=dt.timezone.utc)
    assert set(packages["pyasn1"]["wheels"][0]) == {"name", "url", "size", "hashes"}
    assert list(packages) == sorted(packages)


def test_pylock_options(real_outcome: Outcome) -> None:
    data = load_toml(pylock_text(real_outcome, requires_python=">=3.10,<4",
                                 created_by="someone"))
    assert (data["requires-python"], data["created-by"]) == (">=3.10,<4", "someone")
    assert all("index" not in p for p in data["packages"])


def test_pins_from_the_lock_enforce_the_publisher(real_outcome: Outcome, host: Target,
                                                  tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    write_pylock(real_outcome, path)
    project = canonicalize_name("pypi-attestations")
    _, pins = plan_from_pylock(path, host)
    assert provenance_of(ATTESTED, publishers=pins[project]).publisher == GITHUB

    path.write_text(path.read_text().replace('"pypi/pypi-attestations"', '"evil/fork"'))
    _, pins = plan_from_pylock(path, host)
    with pytest.raises(AttestationError, match="publisher mismatch: expected github:evil/fork"):
        provenance_of(ATTESTED, publishers=pins[project])


@pytest.mark.parametrize(
    ("publisher", "identity"),
    [
        (Publisher("gitlab", "group/sub/proj", ".gitlab-ci.yml", "production"),
         {"kind": "GitLab", "repository": "group/sub/proj",
          "workflow_filepath": ".gitlab-ci.yml", "environment": "production"}),
        (Publisher("google", "sa@proj.iam.gserviceaccount.com"),
         {"kind": "Google", "email": "sa@proj.iam.gserviceaccount.com"}),
        (Publisher("github", "owner/repo"), {"kind": "GitHub", "repository": "owner/repo"}),
    ],
    ids=["gitlab", "google", "github-repository-only"],
)
def test_publisher_kinds_round_trip(host: Target, make_wheel: WheelMaker, tmp_path: Path,
                                    publisher: Publisher, identity: dict[str, str]) -> None:
    evidence = AttestationEvidence(
        filename="proj-1.0-py3-none-any.whl", sha256="0" * 64, publisher=publisher,
        identity="", issuer="", predicate_type="", rekor_log_index=1, integrated_time=0,
        instance="production", trust_root="embedded")
    outcome = outcome_of(host, [verified(make_wheel("proj", "1.0"), host, evidence=evidence)])
    path = tmp_path / "pylock.toml"
    write_pylock(outcome, path)

    assert load_toml(path.read_text())["packages"][0]["attestation-identities"] == [identity]
    assert plan_from_pylock(path, host)[1] == {"proj": (publisher,)}


def test_pylock_layout(host: Target, make_wheel: WheelMaker) -> None:
    wheel = make_wheel("Solo_Pkg", "1.0")
    outcome = outcome_of(host, [verified(wheel, host, origin=PYPI)])
    hashes = outcome.verified[0].fetched.hashes
    text = pylock_text(outcome, requires_python=">=3.10", indexes=[PYPI])
    assert text == f"# Written by secinstall from a verified resolution for Python " \
        f"{host.python_version} ({host.tags[0]}).\n" + f"""\
lock-version = "1.0"
created-by = "secinstall"
requires-python = ">=3.10"

[[packages]]
name = "solo-pkg"
version = "1.0"
index = "{PYPI}"

[[packages.wheels]]
name = "solo_pkg-1.0-py3-none-any.whl"
url = "{wheel.as_uri()}"
size = {wheel.stat().st_size}
hashes = {{sha256 = "{hashes['sha256']}", sha512 = "{hashes['sha512']}"}}
"""


def test_incomplete_run_refused(real_outcome: Outcome, tmp_path: Path) -> None:
    partial = dataclasses.replace(real_outcome, verified=real_outcome.verified[:1])
    for write, name in ((write_pylock, "pylock.toml"), (write_requirements, "reqs.txt")):
        with pytest.raises(RequirementsError) as caught:
            write(partial, tmp_path / name)
        assert "2 planned distribution(s) were not downloaded and verified in this run" \
            in caught.value.message
        assert "pyasn1==0.6.1, rfc8785==0.1.2" in caught.value.message
        assert not (tmp_path / name).exists()


def test_write_replaces_atomically(real_outcome: Outcome, tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    path.write_text("old")
    old_umask = os.umask(0o022)
    try:
        write_pylock(real_outcome, path)
    finally:
        os.umask(old_umask)
    assert path.read_text().startswith("# Written by secinstall")
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    assert os.listdir(tmp_path) == ["pylock.toml"]
    with pytest.raises(RequirementsError, match=r"can't write .*missing.*No such file"):
        write_pylock(real_outcome, tmp_path / "missing" / "pylock.toml")


# --- hashed requirements ---------------------------------------------------------------------


def test_requirements_parse_with_every_hash(real_outcome: Outcome, tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    write_requirements(real_outcome, path)

    parsed = parse_files([path], environ={})
    by_name = {v.dist.name: v for v in real_outcome.verified}
    assert [canonicalize_name(r.req.name) for r in parsed.requirements] == sorted(by_name)
    for req in parsed.requirements:
        original = by_name[canonicalize_name(req.req.name)]
        assert req.is_pinned
        assert str(req.req.specifier) == f"=={original.dist.version}"
        assert req.hashes == {a: frozenset({h}) for a, h in original.fetched.hashes.items()}
    logical = path.read_text().replace("\\\n", " ").splitlines()
    requirements = [line for line in logical if line and not line.lstrip().startswith("#")]
    assert len(requirements) == 3
    assert all("--hash=sha256:" in line for line in requirements)


def test_requirements_layout(real_outcome: Outcome) -> None:
    text = requirements_text(real_outcome, filename="reqs.txt")
    pyasn1 = next(v for v in real_outcome.verified if v.dist.name == "pyasn1").fetched.hashes
    assert text.startswith("# Written by secinstall ")
    assert "#     python -m secinstall install --require-hashes -r reqs.txt\n" in text
    assert (f"pyasn1==0.6.1 \\\n    --hash=sha256:{pyasn1['sha256']} \\\n"
            f"    --hash=sha512:{pyasn1['sha512']}\n"
            "    # via pypi-attestations==0.0.30\n") in text


def _pip_dry_run(requirements: Path, find_links: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
         "--no-index", "--find-links", str(find_links), "--require-hashes",
         "-r", str(requirements), "--report", "-", "--quiet"],
        capture_output=True, text=True, check=False,
    )


def test_pip_installs_the_requirements(host: Target, make_wheel: WheelMaker,
                                       tmp_path: Path) -> None:
    links = tmp_path / "links"
    links.mkdir()
    built = [make_wheel("alpha", "1.0", requires=["beta>=2"]), make_wheel("beta", "2.1")]
    for wheel in built:
        (links / wheel.name).write_bytes(wheel.read_bytes())
    outcome = outcome_of(host, [verified(links / "alpha-1.0-py3-none-any.whl", host),
                                verified(links / "beta-2.1-py3-none-any.whl", host,
                                         via=["alpha==1.0"])])
    path = tmp_path / "requirements.txt"
    write_requirements(outcome, path)

    proc = _pip_dry_run(path, links)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert sorted(i["metadata"]["name"] for i in report["install"]) == ["alpha", "beta"]

    # pip refuses a file that differs from the one verified.
    make_wheel("beta", "2.1", files={"beta/__init__.py": "evil = True\n"}).replace(
        links / "beta-2.1-py3-none-any.whl")
    proc = _pip_dry_run(path, links)
    assert proc.returncode != 0
    assert "DO NOT MATCH THE HASHES" in proc.stderr


# --- the TOML writer -------------------------------------------------------------------------

_keys = st.text(max_size=6)
_scalars = st.one_of(
    st.text(max_size=12), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.datetimes(), st.datetimes(timezones=st.just(dt.timezone.utc)),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, database=None, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=5))
def test_toml_round_trip(table: dict[str, Any]) -> None:
    assert tomllib.loads(toml_dumps(table)) == table


@pytest.mark.parametrize(
    ("value", "error"),
    [(1.5, TypeError), (None, TypeError), (2**63, ValueError)],
    ids=["float", "none", "big-int"],
)
def test_toml_refuses_what_it_cannot_write(value: object, error: type[Exception]) -> None:
    for table in ({"key": value}, {"key": [value]}, {"t": {"a": [{}], "key": value}}):
        with pytest.raises(error, match=r"can't write a \w+ as TOML|does not fit"):
            toml_dumps(table)
