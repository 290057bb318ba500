"""`install` with PEP 740 attestations: real PyPI files and provenance served by the local index."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name

from secinstall.verify.attestations import load_provenance, verify_file
from secinstall.verify.publishers import TrustFile
from tests.conftest import Venv
from tests.support.cli import install, pinned
from tests.support.index import LocalIndex
from tests.support.pep740 import (
    NEW_IDENTITY,
    NEW_PUBLISHER,
    OLD_PUBLISHER,
    PROJECT,
    SDIST,
    WHEEL,
    fixture_bytes,
    fixtures_dir,
    is_installed,
    real_log_index,
    serve_real_wheel,
    sha256_of,
    wheel_pin,
)
from tests.support.snapshot import snapshot
from tests.support.tampering import TAMPERED
from tests.support.wheels import WheelMaker

Json = dict[str, Any]


# --- helpers ------------------------------------------------------------------------------


def trust_file(venv: Venv) -> Path:
    return venv.path / ".secinstall" / "publishers.json"


def trusted_entry(venv: Venv) -> Json:
    entry: Json = json.loads(trust_file(venv).read_text(encoding="utf-8"))["projects"][PROJECT]
    return entry


# --- 1. the real wheel installs with its publisher verified --------------------------------


@pytest.mark.parametrize(
    "options",
    [[], ["--attestations", "require", "--publisher", f"{PROJECT}={NEW_PUBLISHER}"]],
    ids=["default-auto", "require-with-matching-pin"],
)
def test_real_wheel_installs_with_publisher_verified(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], options: list[str],
) -> None:
    serve_real_wheel(index)
    report = tmp_path / "report.json"

    code = install(index, ca_file, venv, tmp_path, *wheel_pin(tmp_path), *options,
                   "--report", str(report))

    out, err = capsys.readouterr()
    assert code == 0, err
    assert is_installed(venv)
    assert "Attestations verified for 1 file(s)" in out
    assert f"{WHEEL}: published by {NEW_PUBLISHER} (workflow release.yml, environment pypi)" in out
    assert f"Rekor log index {real_log_index(WHEEL)}, production" in out
    assert "no PEP 740 provenance" not in err
    assert f"/files/{WHEEL}.provenance" in index.requests

    (item,) = json.loads(report.read_text(encoding="utf-8"))["install"]
    evidence = item["secinstall"]["attestation"]
    assert evidence["filename"] == WHEEL
    assert evidence["sha256"] == sha256_of(fixture_bytes(WHEEL))
    assert evidence["publisher"] == {"kind": "github", "repository": "pypi/pypi-attestations",
                                     "workflow": "release.yml", "environment": "pypi"}
    assert evidence["identity"].startswith(NEW_IDENTITY)
    assert evidence["issuer"] == "https://token.actions.githubusercontent.com"
    assert evidence["rekor_log_index"] == real_log_index(WHEEL)
    assert evidence["predicate_type"] == "https://docs.pypi.org/attestations/publish/v1"
    assert (evidence["instance"], evidence["trust_root"]) == ("production", "embedded")
    assert item["secinstall"]["attestation_note"] is None


@pytest.mark.parametrize("mode", ["auto", "require"])
def test_pin_naming_another_repository_refused(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], mode: str,
) -> None:
    serve_real_wheel(index)
    before = snapshot(venv.path)

    code = install(index, ca_file, venv, tmp_path, *wheel_pin(tmp_path), "--attestations", mode,
                   "--publisher", f"{PROJECT}={OLD_PUBLISHER}")

    err = capsys.readouterr().err
    assert code == 1
    assert f"error: {WHEEL}" in err
    assert f"publisher mismatch: expected {OLD_PUBLISHER}, provenance says {NEW_PUBLISHER}" in err
    assert snapshot(venv.path) == before
    assert not is_installed(venv)


# --- 2. a file without provenance -----------------------------------------------------------


def test_file_without_provenance_warned_under_auto(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], make_wheel: WheelMaker,
) -> None:
    wheel = make_wheel("plain", "1.0")
    index.add(wheel)
    report = tmp_path / "report.json"

    code = install(index, ca_file, venv, tmp_path,
                   *pinned(tmp_path, "plain==1.0", sha256_of(wheel.read_bytes())),
                   "--report", str(report))

    out, err = capsys.readouterr()
    assert code == 0, err
    assert (venv.purelib / "plain" / "__init__.py").is_file()
    assert ("warning: 1 file(s) have no PEP 740 provenance, so their publisher is unverified: "
            "plain-1.0-py3-none-any.whl") in err
    assert "Attestations verified" not in out
    (item,) = json.loads(report.read_text(encoding="utf-8"))["install"]
    assert item["secinstall"]["attestation"] is None
    assert item["secinstall"]["attestation_note"] == "no provenance"
    # Nothing verified, so nothing is trusted on first use.
    assert not trust_file(venv).exists()


def test_file_without_provenance_refused_under_require(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], make_wheel: WheelMaker,
) -> None:
    wheel = make_wheel("plain", "1.0")
    index.add(wheel)
    before = snapshot(venv.path)

    code = install(index, ca_file, venv, tmp_path,
                   *pinned(tmp_path, "plain==1.0", sha256_of(wheel.read_bytes())),
                   "--attestations", "require")

    err = capsys.readouterr().err
    assert code == 1
    assert ("error: plain-1.0-py3-none-any.whl: no PEP 740 provenance found, and "
            "--attestations require is set") in err
    assert snapshot(venv.path) == before


# --- 3. tampering ---------------------------------------------------------------------------


@pytest.mark.parametrize(("make", "caught_by"), TAMPERED.values(), ids=TAMPERED.keys())
def test_tampered_real_data_refused(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], make: Callable[[], tuple[bytes, bytes]], caught_by: str,
) -> None:
    wheel_bytes, provenance = make()
    served = tmp_path / "served" / WHEEL
    served.parent.mkdir()
    served.write_bytes(wheel_bytes)
    # Listed (and pinned) with the hash of what is served: the hash check passes, so only
    # the attestation can catch the change.
    index.add(served, provenance=provenance)
    before = snapshot(venv.path)

    code = install(index, ca_file, venv, tmp_path,
                   *pinned(tmp_path, f"{PROJECT}==0.0.30", sha256_of(wheel_bytes)))

    err = capsys.readouterr().err
    assert code == 1
    assert f"error: {WHEEL} (provenance from {index.base_url}/files/{WHEEL}.provenance): " \
           "attestation 1" in err
    assert caught_by.lower() in err.lower()
    if wheel_bytes != fixture_bytes(WHEEL):
        assert f"the downloaded file is {sha256_of(wheel_bytes)}" in err
    else:
        assert "sha256 mismatch" not in err
    assert snapshot(venv.path) == before
    assert not is_installed(venv)


# --- 5. publisher drift (trust on first use) --------------------------------------------------


def seed_trust_with_older_release(venv: Venv) -> None:
    """Write the trust file as installing 0.0.19 would have: the evidence comes from
    verifying the real 0.0.19 sdist and its provenance, recorded by `TrustFile.update`."""
    evidence = verify_file(
        SDIST, sha256_of(fixture_bytes(SDIST)),
        load_provenance(fixture_bytes(SDIST + ".provenance"), source=SDIST + ".provenance"),
    )
    assert str(evidence.publisher) == f"{OLD_PUBLISHER} (workflow release.yml)"
    trust_file(venv).unlink(missing_ok=True)
    TrustFile(venv.path / ".secinstall").update({canonicalize_name(PROJECT): evidence})


def test_publisher_recorded_on_first_use(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
) -> None:
    serve_real_wheel(index)
    assert not trust_file(venv).exists()

    assert install(index, ca_file, venv, tmp_path, *wheel_pin(tmp_path)) == 0

    entry = trusted_entry(venv)
    assert entry["publisher"] == {"kind": "github", "repository": "pypi/pypi-attestations",
                                  "workflow": "release.yml", "environment": "pypi"}
    assert entry["identity"].startswith(NEW_IDENTITY)
    assert entry["file"] == WHEEL


def test_publisher_drift_refused_then_accepted(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    serve_real_wheel(index)
    assert install(index, ca_file, venv, tmp_path, *wheel_pin(tmp_path)) == 0
    seed_trust_with_older_release(venv)
    assert trusted_entry(venv)["publisher"]["repository"] == "trailofbits/pypi-attestations"
    assert trusted_entry(venv)["file"] == SDIST
    capsys.readouterr()
    before = snapshot(venv.path)

    code = install(index, ca_file, venv, tmp_path, *wheel_pin(tmp_path), "--force-reinstall")

    err = capsys.readouterr().err
    assert code == 1
    assert f"error: publisher drift for {PROJECT}: it was published by {OLD_PUBLISHER} " \
           f"(workflow release.yml) before, {WHEEL} is published by {NEW_PUBLISHER} " \
           "(workflow release.yml, environment pypi)" in err
    assert f"--accept-publisher-change {PROJECT}" in err
    assert snapshot(venv.path) == before

    code = install(index, ca_file, venv, tmp_path, *wheel_pin(tmp_path), "--force-reinstall",
                   "--accept-publisher-change", PROJECT)

    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"published by {NEW_PUBLISHER}" in out
    assert is_installed(venv)
    entry = trusted_entry(venv)
    assert entry["publisher"]["repository"] == "pypi/pypi-attestations"
    assert entry["identity"].startswith(NEW_IDENTITY)
    assert entry["file"] == WHEEL

    # The new publisher is now the trusted one: no acceptance needed any more.
    assert install(index, ca_file, venv, tmp_path, *wheel_pin(tmp_path),
                   "--force-reinstall") == 0


def test_provenance_missing_after_a_publisher_was_trusted_is_drift(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], make_wheel: WheelMaker,
) -> None:
    """Dropping the provenance must not get around trust on first use: under `auto`, a
    project whose publisher was recorded is refused when a new file comes without one."""
    serve_real_wheel(index)
    assert install(index, ca_file, venv, tmp_path, *wheel_pin(tmp_path)) == 0
    unattested = make_wheel(PROJECT, "0.0.31")
    index.add(unattested)
    upgrade = pinned(tmp_path, f"{PROJECT}==0.0.31", sha256_of(unattested.read_bytes()))
    capsys.readouterr()
    before = snapshot(venv.path)

    code = install(index, ca_file, venv, tmp_path, *upgrade)

    err = capsys.readouterr().err
    assert code == 1
    assert f"error: publisher drift for {PROJECT}: it was published by {NEW_PUBLISHER} " \
           f"(workflow release.yml, environment pypi) before, {unattested.name} has no " \
           "PEP 740 provenance" in err
    assert f"--accept-publisher-change {PROJECT}" in err
    assert snapshot(venv.path) == before

    code = install(index, ca_file, venv, tmp_path, *upgrade,
                   "--accept-publisher-change", PROJECT)

    err = capsys.readouterr().err
    assert code == 0, err
    assert f"have no PEP 740 provenance, so their publisher is unverified: {unattested.name}" \
        in err
    assert (venv.purelib / "pypi_attestations-0.0.31.dist-info").is_dir()
    # No new publisher was verified, so the recorded one stays.
    assert trusted_entry(venv)["publisher"]["repository"] == "pypi/pypi-attestations"


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"projects": [1]}',
        '{"projects": {"pypi-attestations": {"identity": "x"}}}',
        '{"projects": {"pypi-attestations": {"publisher": "github:pypi/pypi-attestations"}}}',
    ],
    ids=["not-json", "list", "projects-list", "entry-without-publisher", "publisher-string"],
)
def test_unreadable_trust_file_refused(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], content: str,
) -> None:
    serve_real_wheel(index)
    trust_file(venv).parent.mkdir()
    trust_file(venv).write_text(content, encoding="utf-8")
    before = snapshot(venv.path)

    code = install(index, ca_file, venv, tmp_path, *wheel_pin(tmp_path))

    err = capsys.readouterr().err
    assert code == 1
    assert f"error: the trusted-publisher file {trust_file(venv)} is unreadable (" in err
    assert "Traceback" not in err
    assert snapshot(venv.path) == before


# --- 7. --provenance-dir ---------------------------------------------------------------------


def test_provenance_dir_used_when_index_serves_none(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    index.add(fixtures_dir() / WHEEL)
    provenance_dir = tmp_path / "provenance"
    provenance_dir.mkdir()
    (provenance_dir / f"{WHEEL}.provenance").write_bytes(fixture_bytes(WHEEL + ".provenance"))

    code = install(index, ca_file, venv, tmp_path, *wheel_pin(tmp_path),
                   "--attestations", "require", "--provenance-dir", str(provenance_dir))

    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"{WHEEL}: published by {NEW_PUBLISHER}" in out
    assert is_installed(venv)
    assert not any(r.endswith(".provenance") for r in index.requests)


def test_without_provenance_dir_the_same_index_is_refused_under_require(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The control for the test above: the index alone has no provenance for the wheel."""
    index.add(fixtures_dir() / WHEEL)
    before = snapshot(venv.path)

    code = install(index, ca_file, venv, tmp_path, *wheel_pin(tmp_path),
                   "--attestations", "require")

    assert code == 1
    assert f"{WHEEL}: no PEP 740 provenance found" in capsys.readouterr().err
    assert snapshot(venv.path) == before


def test_provenance_dir_looked_at_before_the_index(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    serve_real_wheel(index)
    provenance_dir = tmp_path / "provenance"
    provenance_dir.mkdir()
    local = provenance_dir / f"{WHEEL}.provenance"
    local.write_bytes(fixture_bytes(SDIST + ".provenance"))
    before = snapshot(venv.path)

    code = install(index, ca_file, venv, tmp_path, *wheel_pin(tmp_path),
                   "--provenance-dir", str(provenance_dir))

    err = capsys.readouterr().err
    assert code == 1
    assert f"{WHEEL} (provenance from {local})" in err
    assert f"the statement is for '{SDIST}'" in err
    assert snapshot(venv.path) == before


# --- 8. the project's configuration file ----------------------------------------------------


@pytest.fixture
def project_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[project]\nname = "app"\nversion = "1"\n\n'
        '[tool.secinstall]\nattestations = "require"\n\n'
        f'[tool.secinstall.publishers]\n{PROJECT} = "{OLD_PUBLISHER}"\n',
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    return path


@pytest.mark.parametrize("cli", [[], ["--attestations", "auto"]], ids=["config", "cli-wins"])
def test_config_attestations_require(
    project_config: Path, index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], make_wheel: WheelMaker, cli: list[str],
) -> None:
    wheel = make_wheel("plain", "1.0")
    index.add(wheel)
    before = snapshot(venv.path)

    code = install(index, ca_file, venv, tmp_path,
                   *pinned(tmp_path, "plain==1.0", sha256_of(wheel.read_bytes())), *cli)

    err = capsys.readouterr().err
    if cli:
        assert code == 0, err
        assert "1 file(s) have no PEP 740 provenance" in err
        assert (venv.purelib / "plain" / "__init__.py").is_file()
    else:
        assert code == 1
        assert "plain-1.0-py3-none-any.whl: no PEP 740 provenance found, and " \
               "--attestations require is set" in err
        assert snapshot(venv.path) == before


@pytest.mark.parametrize("cli", [[], ["--publisher", f"{PROJECT}={NEW_PUBLISHER}"]],
                         ids=["config", "cli-wins"])
def test_config_publisher_pin(
    project_config: Path, index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], cli: list[str],
) -> None:
    serve_real_wheel(index)
    before = snapshot(venv.path)

    code = install(index, ca_file, venv, tmp_path, *wheel_pin(tmp_path), *cli)

    out, err = capsys.readouterr()
    if cli:
        assert code == 0, err
        assert f"{WHEEL}: published by {NEW_PUBLISHER}" in out
        assert is_installed(venv)
    else:
        assert code == 1
        assert f"publisher mismatch: expected {OLD_PUBLISHER}, provenance says " \
               f"{NEW_PUBLISHER}" in err
        assert snapshot(venv.path) == before
