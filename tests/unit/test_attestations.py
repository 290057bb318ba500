"""PEP 740 verification against real PyPI provenance and a real staging attestation, offline."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support.pep740 import (
    SDIST,
    STAGING_WHEEL,
    WHEEL,
    fixture_bytes,
    fixtures_dir,
    load,
    provenance_json,
    sha256_of,
    verify,
)
from tests.support.tampering import TAMPERINGS, attestation_of, flip

from secinstall.errors import AttestationError, ConfigError
from secinstall.models import Publisher
from secinstall.verify.attestations import (
    EmailIdentity,
    load_provenance,
    parse_publisher,
    verify_file,
)

STAGING_PIN = "email:william@yossarian.net,issuer=https://github.com/login/oauth"
PUBLISH_V1 = "https://docs.pypi.org/attestations/publish/v1"

Json = dict[str, Any]


def test_fixture_integrity() -> None:
    lines = (fixtures_dir() / "SHA256SUMS").read_text().splitlines()
    sums = {name: digest for digest, name in (line.split(maxsplit=1) for line in lines if line)}
    assert {
        WHEEL,
        WHEEL + ".provenance",
        SDIST,
        SDIST + ".provenance",
        STAGING_WHEEL,
        STAGING_WHEEL + ".publish.attestation",
    } <= sums.keys()
    for name, digest in sums.items():
        assert sha256_of(fixture_bytes(name)) == digest, name


# --- verifying real provenance -----------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "repository", "environment"),
    [(WHEEL, "pypi/pypi-attestations", "pypi"), (SDIST, "trailofbits/pypi-attestations", None)],
    ids=["wheel-0.0.30", "sdist-0.0.19"],
)
def test_real_provenance_verifies(filename: str, repository: str, environment: str | None) -> None:
    document = provenance_json(filename)
    entry = document["attestation_bundles"][0]["attestations"][0]["verification_material"][
        "transparency_entries"
    ][0]

    evidence = verify(filename, document)

    assert evidence.filename == filename
    assert evidence.sha256 == sha256_of(fixture_bytes(filename))
    assert evidence.publisher == Publisher("github", repository, "release.yml", environment)
    assert isinstance(evidence.rekor_log_index, int)
    assert evidence.rekor_log_index > 0
    assert evidence.rekor_log_index == int(entry["logIndex"])
    assert evidence.integrated_time == int(entry["integratedTime"])
    assert f"https://github.com/{repository}/.github/workflows/release.yml@" in evidence.identity
    assert evidence.issuer == "https://token.actions.githubusercontent.com"
    assert evidence.predicate_type == PUBLISH_V1
    assert (evidence.instance, evidence.trust_root) == ("production", "embedded")


@pytest.mark.parametrize(
    "pins",
    [
        ["github:pypi/pypi-attestations"],
        ["github:PyPI/PyPI-Attestations"],
        ["github:pypi/pypi-attestations,workflow=release.yml,environment=pypi"],
        ["github:someone/else", "github:pypi/pypi-attestations,workflow=release.yml"],
    ],
    ids=["repository", "repository-other-case", "workflow-and-environment", "second-of-two"],
)
def test_matching_pin_accepted(pins: list[str]) -> None:
    evidence = verify(
        WHEEL, provenance_json(WHEEL), publishers=[parse_publisher(pin) for pin in pins]
    )
    assert evidence.publisher is not None
    assert evidence.publisher.repository == "pypi/pypi-attestations"


@pytest.mark.parametrize(
    "pin",
    [
        "github:someone/else",
        "github:pypi/pypi-attestations,workflow=other.yml",
        "github:pypi/pypi-attestations,environment=staging",
        "gitlab:pypi/pypi-attestations",
        "email:william@yossarian.net",
    ],
    ids=["other-repository", "other-workflow", "other-environment", "other-kind", "email"],
)
def test_mismatching_pin_refused(pin: str) -> None:
    with pytest.raises(AttestationError, match="publisher mismatch") as caught:
        verify(WHEEL, provenance_json(WHEEL), publishers=[parse_publisher(pin)])
    message = caught.value.message
    assert WHEEL in message
    assert f"expected {parse_publisher(pin)}" in message
    assert "provenance says github:pypi/pypi-attestations" in message


def test_production_provenance_refused_on_staging() -> None:
    with pytest.raises(AttestationError, match="on Sigstore staging"):
        verify(WHEEL, provenance_json(WHEEL), instance="staging")


# --- a bare attestation signed on staging with an e-mail identity -----------------------


def test_staging_attestation_accepted_on_staging_with_email_pin() -> None:
    evidence = verify(
        STAGING_WHEEL,
        provenance_json(STAGING_WHEEL),
        instance="staging",
        publishers=[parse_publisher(STAGING_PIN)],
    )
    assert evidence.publisher == EmailIdentity(
        "email", "william@yossarian.net", issuer="https://github.com/login/oauth"
    )
    assert evidence.identity == "william@yossarian.net"
    assert evidence.issuer == "https://github.com/login/oauth"
    assert evidence.predicate_type == PUBLISH_V1
    assert evidence.rekor_log_index > 0
    assert (evidence.instance, evidence.trust_root) == ("staging", "embedded")


def test_staging_attestation_accepted_with_email_pin_without_issuer() -> None:
    evidence = verify(
        STAGING_WHEEL,
        provenance_json(STAGING_WHEEL),
        instance="staging",
        publishers=[parse_publisher("email:william@yossarian.net")],
    )
    assert evidence.issuer == "https://github.com/login/oauth"


def test_staging_attestation_refused_on_production() -> None:
    with pytest.raises(AttestationError, match="on Sigstore production") as caught:
        verify(
            STAGING_WHEEL, provenance_json(STAGING_WHEEL), publishers=[parse_publisher(STAGING_PIN)]
        )
    assert STAGING_WHEEL in caught.value.message


def test_staging_attestation_refused_without_pin() -> None:
    with pytest.raises(AttestationError, match="names no publisher"):
        verify(STAGING_WHEEL, provenance_json(STAGING_WHEEL), instance="staging")


@pytest.mark.parametrize(
    ("pins", "expected"),
    [
        (["email:someone@example.com"], "not someone@example.com"),
        (
            ["email:william@yossarian.net,issuer=https://accounts.google.com"],
            "not https://accounts.google.com",
        ),
        (["github:woodruffw/rfc8785.py"], "(?i)issuer"),
        (["github:woodruffw/rfc8785.py,environment=pypi"], "names an environment"),
        (
            ["github:woodruffw/rfc8785.py", "email:someone@example.com"],
            "none of the pinned publishers",
        ),
    ],
    ids=["other-email", "other-issuer", "github", "environment-unverifiable", "two-wrong-pins"],
)
def test_staging_attestation_refused_with_wrong_pin(pins: list[str], expected: str) -> None:
    with pytest.raises(AttestationError, match=expected) as caught:
        verify(
            STAGING_WHEEL,
            provenance_json(STAGING_WHEEL),
            instance="staging",
            publishers=[parse_publisher(pin) for pin in pins],
        )
    assert len(caught.value.details) == (len(pins) if len(pins) > 1 else 0)


# --- tampering ----------------------------------------------------------------------------
# Each tampering, and the check that must catch it: TAMPERINGS in tests/support/tampering.py.


def test_untampered_copy_verifies() -> None:
    """The harness itself (JSON round trip, deep copy) changes nothing that matters."""
    assert verify(WHEEL, copy.deepcopy(provenance_json(WHEEL))).rekor_log_index > 0


@pytest.mark.parametrize(("tamper", "caught_by"), TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_tampered_provenance_refused(tamper: Callable[[Json], None], caught_by: str) -> None:
    document = provenance_json(WHEEL)
    tamper(document)
    assert document != provenance_json(WHEEL)
    with pytest.raises(AttestationError) as caught:
        verify(WHEEL, document)
    message = caught.value.message
    assert message.startswith(
        f"{WHEEL} (provenance from test.provenance): attestation 1 "
        f"did not verify on Sigstore production"
    )
    assert caught_by in message.lower()


def test_tampered_distribution_byte_refused() -> None:
    data = bytearray(fixture_bytes(WHEEL))
    data[len(data) // 2] ^= 0x01
    provenance = load(provenance_json(WHEEL))
    with pytest.raises(AttestationError, match="sha256 mismatch") as caught:
        verify_file(WHEEL, sha256_of(bytes(data)), provenance)
    assert sha256_of(bytes(data)) in caught.value.message


def test_provenance_of_another_file_refused() -> None:
    provenance = load(provenance_json(SDIST))
    with pytest.raises(AttestationError, match=f"statement is for '{SDIST}', not {WHEEL}"):
        verify_file(WHEEL, sha256_of(fixture_bytes(WHEEL)), provenance)


def test_renamed_distribution_refused() -> None:
    """Right bytes, but the file is offered under another version's name."""
    renamed = WHEEL.replace("0.0.30", "0.0.31")
    with pytest.raises(AttestationError, match=f"statement is for '{WHEEL}', not {renamed}"):
        verify_file(renamed, sha256_of(fixture_bytes(WHEEL)), load(provenance_json(WHEEL)))


def test_every_bundle_must_verify() -> None:
    """A valid bundle can't carry a forged one next to it."""
    document = provenance_json(WHEEL)
    forged = copy.deepcopy(document["attestation_bundles"][0])
    forged["attestations"][0]["envelope"]["signature"] = flip(
        forged["attestations"][0]["envelope"]["signature"]
    )
    document["attestation_bundles"].append(forged)
    with pytest.raises(AttestationError, match="attestation 1 did not verify"):
        verify(WHEEL, document)


# --- malformed input ----------------------------------------------------------------------


def _without_envelope() -> Json:
    document = provenance_json(STAGING_WHEEL)
    del document["envelope"]
    return document


def _bad_base64_certificate() -> Json:
    document = provenance_json(WHEEL)
    attestation_of(document)["verification_material"]["certificate"] = "not base64!"
    return document


def _unknown_publisher_kind() -> Json:
    document = provenance_json(WHEEL)
    document["attestation_bundles"][0]["publisher"]["kind"] = "Jenkins"
    return document


def _empty_bundle() -> Json:
    document = provenance_json(WHEEL)
    document["attestation_bundles"][0]["attestations"] = []
    return document


def _no_transparency_entries() -> Json:
    document = provenance_json(STAGING_WHEEL)
    document["verification_material"]["transparency_entries"] = []
    return document


MALFORMED: dict[str, Callable[[], bytes]] = {
    "not-json": lambda: b"<html>not found</html>",
    "empty": lambda: b"",
    "not-utf8": lambda: b"\xff\xfe{}",
    "json-list": lambda: b"[]",
    "json-string": lambda: b'"provenance"',
    "empty-object": lambda: b"{}",
    "bundles-not-a-list": lambda: b'{"version": 1, "attestation_bundles": "x"}',
    "version-2": lambda: b'{"version": 2, "attestation_bundles": []}',
    "no-bundles": lambda: b'{"version": 1, "attestation_bundles": []}',
    "empty-bundle": lambda: json.dumps(_empty_bundle()).encode(),
    "attestation-without-envelope": lambda: json.dumps(_without_envelope()).encode(),
    "certificate-not-base64": lambda: json.dumps(_bad_base64_certificate()).encode(),
    "unknown-publisher-kind": lambda: json.dumps(_unknown_publisher_kind()).encode(),
    "no-transparency-entries": lambda: json.dumps(_no_transparency_entries()).encode(),
}


@pytest.mark.parametrize("make", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_provenance_refused(make: Callable[[], bytes]) -> None:
    with pytest.raises(AttestationError) as caught:
        load_provenance(make(), source="https://example.invalid/x.provenance")
    assert caught.value.message.startswith("https://example.invalid/x.provenance: ")


def test_bad_arguments() -> None:
    provenance = load(provenance_json(WHEEL))
    digest = sha256_of(fixture_bytes(WHEEL))
    with pytest.raises(ConfigError, match="unknown Sigstore instance 'prod'"):
        verify_file(WHEEL, digest, provenance, instance="prod")
    with pytest.raises(AttestationError, match="not a sha256 hex digest"):
        verify_file(WHEEL, "abc", provenance)
    with pytest.raises(AttestationError, match="not a wheel or sdist filename"):
        verify_file("pypi_attestations.exe", digest, provenance)


# --- publisher pins -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("github:pypi/pypi-attestations", Publisher("github", "pypi/pypi-attestations")),
        (
            "GitHub:owner/repo,workflow=release.yml,environment=pypi",
            Publisher("github", "owner/repo", "release.yml", "pypi"),
        ),
        (
            " gitlab:group/sub/project , workflow=.gitlab-ci.yml ",
            Publisher("gitlab", "group/sub/project", ".gitlab-ci.yml"),
        ),
        (
            "google:sa@project.iam.gserviceaccount.com",
            Publisher("google", "sa@project.iam.gserviceaccount.com"),
        ),
        ("email:a@example.com", EmailIdentity("email", "a@example.com")),
        (
            STAGING_PIN,
            EmailIdentity(
                "email", "william@yossarian.net", issuer="https://github.com/login/oauth"
            ),
        ),
    ],
    ids=["github", "github-options", "gitlab-subgroup", "google", "email", "email-issuer"],
)
def test_parse_publisher(spec: str, expected: Publisher) -> None:
    assert parse_publisher(spec) == expected


@pytest.mark.parametrize(
    "spec",
    [
        "pypi/pypi-attestations",
        "bitbucket:owner/repo",
        "github:owner",
        "github:owner/repo/extra",
        "github:",
        "gitlab:project",
        "google:not-an-email",
        "email:someone",
        "github:owner/repo,workflow",
        "github:owner/repo,workflow=",
        "github:owner/repo,issuer=https://x.example",
        "github:owner/repo,workflow=a.yml,workflow=b.yml",
        "google:sa@p.iam.gserviceaccount.com,environment=pypi",
        "email:a@example.com,issuer=http://insecure.example",
    ],
    ids=[
        "no-kind",
        "unknown-kind",
        "github-no-repo",
        "github-too-deep",
        "empty",
        "gitlab-flat",
        "google-not-email",
        "email-not-email",
        "option-no-value",
        "option-empty",
        "option-for-other-kind",
        "option-twice",
        "google-no-options",
        "issuer-not-https",
    ],
)
def test_parse_publisher_refuses(spec: str) -> None:
    with pytest.raises(ConfigError, match="invalid publisher"):
        parse_publisher(spec)


def test_import_does_not_load_sigstore() -> None:
    import secinstall

    code = (
        "import sys, secinstall.verify.attestations; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'sigstore', 'pypi_attestations', 'cryptography', 'pydantic'}))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(secinstall.__file__).resolve().parents[1])}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip() == "[]"
