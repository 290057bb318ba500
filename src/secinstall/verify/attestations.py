"""PEP 740 attestations: parse provenance and verify a downloaded file against it, offline."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from secinstall.errors import AttestationError, ConfigError
from secinstall.models import AttestationEvidence, Publisher

if TYPE_CHECKING:
    from cryptography.x509 import Certificate
    from pydantic import ValidationError
    from pypi_attestations import Attestation
    from pypi_attestations import Publisher as ClaimedPublisher
    from sigstore.verify import Verifier
    from sigstore.verify.policy import VerificationPolicy

__all__ = [
    "EmailIdentity",
    "LoadedProvenance",
    "ProvenanceBundle",
    "load_provenance",
    "parse_publisher",
    "verify_file",
]

# The sigstore package embeds a trusted root per TUF repository, in
# sigstore/_store/<quoted URL>/. We build the verifier from that file directly:
# `Verifier.production(offline=True)` would instead read (and first seed) the
# user's TUF cache, which may hold a different root and logs a warning per call.
_TUF_URLS = {
    "production": "https://tuf-repo-cdn.sigstore.dev",
    "staging": "https://tuf-repo-cdn.sigstage.dev",
}
_INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
_INTOTO_STATEMENT_V1 = "https://in-toto.io/Statement/v1"
_GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
_GITLAB_ISSUER = "https://gitlab.com"
_GOOGLE_ISSUER = "https://accounts.google.com"
# Fulcio's OIDC issuer extensions: v2 is a DER UTF8String, v1 (deprecated) raw bytes.
_OID_ISSUER_V2 = "1.3.6.1.4.1.57264.1.8"
_OID_ISSUER_V1 = "1.3.6.1.4.1.57264.1.1"

_PIN_OPTIONS = {
    "github": frozenset({"workflow", "environment"}),
    "gitlab": frozenset({"workflow", "environment"}),
    "google": frozenset(),
    "email": frozenset({"issuer"}),
}
_NAME = r"[A-Za-z0-9_.-]+"
_EMAIL = re.compile(r"[^@\s,]+@[^@\s,]+\.[^@\s,]+")
_PIN_IDENTITY = {
    "github": re.compile(rf"{_NAME}/{_NAME}"),
    "gitlab": re.compile(rf"{_NAME}(?:/{_NAME})+"),
    "google": _EMAIL,
    "email": _EMAIL,
}
_PIN_EXAMPLES = (
    "github:owner/repo[,workflow=release.yml][,environment=pypi], gitlab:group/project, "
    "google:SA@PROJECT.iam.gserviceaccount.com, email:ADDRESS[,issuer=URL]"
)


@dataclass(frozen=True)
class EmailIdentity(Publisher):
    """A pinned e-mail signer (not a Trusted Publisher): `email:ADDRESS[,issuer=URL]`.

    Without an issuer any OIDC issuer Fulcio accepts for e-mail identities will do,
    since Fulcio only certifies addresses the issuer has verified.
    """

    issuer: str | None = None

    def __str__(self) -> str:
        return f"email:{self.repository}" + (f" (issuer {self.issuer})" if self.issuer else "")


@dataclass(frozen=True)
class ProvenanceBundle:
    """Attestations from one signer: a PEP 740 attestation bundle, or one bare attestation."""

    #: The publisher the index claims (None for a bare attestation, which claims none).
    publisher: Publisher | None
    attestations: tuple[Attestation, ...]
    #: The claim as pypi-attestations parsed it; it becomes the Sigstore policy.
    claimed: ClaimedPublisher | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class LoadedProvenance:
    """A parsed provenance object (or bare attestation), not yet verified."""

    #: Where it came from (URL or path), for messages.
    source: str
    bundles: tuple[ProvenanceBundle, ...]


def parse_publisher(spec: str) -> Publisher:
    """Parse a publisher pin such as `github:owner/repo,workflow=release.yml`."""
    kind, colon, rest = spec.strip().partition(":")
    kind = kind.strip().lower()
    if not colon or kind not in _PIN_OPTIONS:
        raise ConfigError(f"invalid publisher {spec!r}: expected one of {_PIN_EXAMPLES}")
    identity, *options = rest.split(",")
    identity = identity.strip()
    if not _PIN_IDENTITY[kind].fullmatch(identity):
        raise ConfigError(f"invalid publisher {spec!r}: {identity!r} is not a {kind} identity "
                          f"(expected one of {_PIN_EXAMPLES})")
    values: dict[str, str] = {}
    for option in options:
        key, equals, value = option.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not equals or not value or key not in _PIN_OPTIONS[kind] or key in values:
            allowed = ", ".join(sorted(_PIN_OPTIONS[kind])) or "none"
            raise ConfigError(f"invalid publisher {spec!r}: bad option {option.strip()!r} "
                              f"(options for {kind}: {allowed}, each once, as KEY=VALUE)")
        values[key] = value
    if kind == "email":
        issuer = values.get("issuer")
        if issuer is not None and not issuer.startswith("https://"):
            raise ConfigError(f"invalid publisher {spec!r}: issuer must be an https:// URL")
        return EmailIdentity(kind, identity, issuer=issuer)
    return Publisher(kind, identity, workflow=values.get("workflow"),
                     environment=values.get("environment"))


def load_provenance(data: bytes, *, source: str) -> LoadedProvenance:
    """Parse a PEP 740 provenance object or one bare attestation object."""
    try:
        document = json.loads(data)
    # ValueError covers JSONDecodeError and UnicodeDecodeError; RecursionError, hostile nesting
    except (ValueError, RecursionError) as exc:
        raise AttestationError(f"{source}: not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise AttestationError(f"{source}: expected a JSON object (PEP 740 provenance or "
                               f"attestation), got {type(document).__name__}")

    from pydantic import ValidationError
    from pypi_attestations import Attestation, Provenance

    if "attestation_bundles" in document:
        try:
            provenance = Provenance.model_validate(document)
        except ValidationError as exc:
            raise AttestationError(f"{source}: malformed PEP 740 provenance object: "
                                   f"{_summary(exc)}") from exc
        bundles = tuple(
            ProvenanceBundle(_as_publisher(b.publisher), tuple(b.attestations), b.publisher)
            for b in provenance.attestation_bundles
        )
    elif "envelope" in document or "verification_material" in document:
        try:
            attestation = Attestation.model_validate(document)
        except ValidationError as exc:
            raise AttestationError(f"{source}: malformed PEP 740 attestation: "
                                   f"{_summary(exc)}") from exc
        bundles = (ProvenanceBundle(None, (attestation,)),)
    else:
        raise AttestationError(f"{source}: neither a PEP 740 provenance object (no "
                               f"'attestation_bundles') nor an attestation (no 'envelope')")
    if not bundles or not all(b.attestations for b in bundles):
        raise AttestationError(f"{source}: the provenance object holds no attestations "
                               f"(or an empty attestation bundle)")
    return LoadedProvenance(source=source, bundles=bundles)


def verify_file(
    filename: str,
    sha256: str,
    provenance: LoadedProvenance,
    *,
    instance: str = "production",
    publishers: Sequence[Publisher] = (),
) -> AttestationEvidence:
    """Verify every attestation in `provenance` for the downloaded file (filename, sha256).

    Each must carry a valid Sigstore signature, certificate chain and transparency log
    proof (checked offline against the trust root embedded in sigstore), be signed by
    its bundle's claimed publisher, and attest exactly this file with a PEP 740
    predicate. With `publishers`, the signer must also be one of these pins.
    Returns the evidence of the first attestation; raises `AttestationError`.
    """
    if instance not in _TUF_URLS:
        raise ConfigError(f"unknown Sigstore instance {instance!r} (use production or staging)")
    where = f"{filename} (provenance from {provenance.source})"
    digest = sha256.lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise AttestationError(f"{where}: {sha256!r} is not a sha256 hex digest")
    file_key = _dist_key(filename)
    if file_key is None:
        raise AttestationError(f"{where}: not a wheel or sdist filename, so no PEP 740 "
                               f"attestation can name it")
    target = _Target(filename, digest, file_key, where, instance, _verifier(instance))

    evidence: list[AttestationEvidence] = []
    for bundle in provenance.bundles:
        if bundle.claimed is None or bundle.publisher is None:
            evidence.extend(_verify_bare(target, bundle.attestations, publishers))
            continue
        _check_pins(target, bundle.publisher, publishers)
        policy = bundle.claimed._as_policy()
        for number, attestation in enumerate(bundle.attestations, 1):
            evidence.append(_verify_one(target, attestation, policy, bundle.publisher, number))
    if not evidence:
        raise AttestationError(f"{where}: the provenance object holds no attestations")
    return evidence[0]


@dataclass(frozen=True)
class _Target:
    """The downloaded file being verified, and how."""

    filename: str
    sha256: str
    key: tuple[object, ...]
    where: str
    instance: str
    verifier: Verifier


def _verify_bare(
    target: _Target, attestations: tuple[Attestation, ...], pins: Sequence[Publisher]
) -> list[AttestationEvidence]:
    if not pins:
        raise AttestationError(
            f"{target.where}: a bare attestation names no publisher, so it can only be "
            f"verified against a pinned one (e.g. github:owner/repo or email:ADDRESS)")
    evidence = []
    for number, attestation in enumerate(attestations, 1):
        failures: list[str] = []
        for pin in pins:
            try:
                evidence.append(_verify_one(target, attestation, _pin_policy(target, pin),
                                            pin, number))
                break
            except AttestationError as exc:
                failures.append(exc.message)
        else:
            if len(failures) == 1:
                raise AttestationError(failures[0])
            raise AttestationError(
                f"{target.where}: attestation {number} verifies for none of the pinned "
                f"publishers ({', '.join(map(str, pins))})", details=failures)
    return evidence


def _verify_one(
    target: _Target,
    attestation: Attestation,
    policy: VerificationPolicy,
    publisher: Publisher,
    number: int,
) -> AttestationEvidence:
    what = f"{target.where}: attestation {number}"
    try:
        bundle = attestation.to_bundle()
        payload_type, payload = target.verifier.verify_dsse(bundle, policy)
    except Exception as exc:  # fail closed: hostile input may raise anything in there
        raise AttestationError(
            f"{what} did not verify on Sigstore {target.instance} for publisher {publisher}: "
            f"{_describe(exc)}") from exc

    predicate_type = _check_statement(target, what, payload_type, payload)
    try:
        cert = bundle.signing_certificate
        entry = attestation.verification_material.transparency_entries[0]
        return AttestationEvidence(
            filename=target.filename,
            sha256=target.sha256,
            publisher=publisher,
            identity=_cert_identity(cert),
            issuer=_cert_issuer(cert),
            predicate_type=predicate_type,
            rekor_log_index=int(entry["logIndex"]),
            integrated_time=int(entry.get("integratedTime", 0)),
            instance=target.instance,
            trust_root="embedded",
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise AttestationError(f"{what}: verified, but its certificate or log entry "
                               f"could not be read: {_describe(exc)}") from exc


def _check_statement(target: _Target, what: str, payload_type: str, payload: bytes) -> str:
    """Check the signed in-toto statement names exactly this file (as pypi-attestations does)."""
    from pypi_attestations import AttestationType

    if payload_type != _INTOTO_PAYLOAD_TYPE:
        raise AttestationError(f"{what}: payload type is {payload_type!r}, "
                               f"expected {_INTOTO_PAYLOAD_TYPE}")
    try:
        statement = json.loads(payload)
    except ValueError as exc:
        raise AttestationError(f"{what}: the signed statement is not JSON: {exc}") from exc
    if not isinstance(statement, dict) or statement.get("_type") != _INTOTO_STATEMENT_V1:
        raise AttestationError(f"{what}: the signed statement is not an in-toto v1 statement")
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise AttestationError(f"{what}: the statement must name exactly one subject")
    name, digests = subjects[0].get("name"), subjects[0].get("digest")
    if not isinstance(name, str) or _dist_key(name) != target.key:
        raise AttestationError(f"{what}: the statement is for {name!r}, not {target.filename}")
    attested = digests.get("sha256") if isinstance(digests, dict) else None
    if attested != target.sha256:
        raise AttestationError(f"{what}: sha256 mismatch: the statement attests {attested}, "
                               f"the downloaded file is {target.sha256}")
    predicate_type = statement.get("predicateType")
    known = sorted(t.value for t in AttestationType)
    if predicate_type not in known:
        raise AttestationError(f"{what}: predicate type {predicate_type!r} is not a PEP 740 "
                               f"one ({', '.join(known)})")
    return str(predicate_type)


def _check_pins(target: _Target, claimed: Publisher, pins: Sequence[Publisher]) -> None:
    if not pins or any(_pin_matches(pin, claimed) for pin in pins):
        return
    expected = " or ".join(map(str, pins))
    raise AttestationError(f"{target.where}: publisher mismatch: expected {expected}, "
                           f"provenance says {claimed}")


def _pin_matches(pin: Publisher, claimed: Publisher) -> bool:
    """Compare a pin to a claim. The policy built from the claim then checks the
    certificate for repository and workflow; the environment is only the index's word
    (Fulcio certificates don't carry it)."""
    if pin.kind != claimed.kind:
        return False
    # GitHub owner/repo and environment names, and e-mail addresses, ignore case.
    fold = pin.kind in ("github", "google")

    def same(a: str, b: str | None) -> bool:
        return b is not None and (a.casefold() == b.casefold() if fold else a == b)

    return (
        same(pin.repository, claimed.repository)
        and (pin.workflow is None or same(pin.workflow, claimed.workflow))
        and (pin.environment is None or same(pin.environment, claimed.environment))
    )


def _pin_policy(target: _Target, pin: Publisher) -> VerificationPolicy:
    """The Sigstore policy for a pin, when no publisher is claimed (a bare attestation)."""
    from pypi_attestations import GitHubPublisher, GitLabPublisher
    from sigstore.verify import policy

    if isinstance(pin, EmailIdentity) or pin.kind == "email":
        return _EmailPolicy(pin.repository, getattr(pin, "issuer", None))
    if pin.environment is not None:
        raise AttestationError(
            f"{target.where}: the pin {pin} names an environment, which only a provenance "
            f"object's publisher claim can show, not a bare attestation")
    if pin.kind == "google":
        return policy.Identity(identity=pin.repository, issuer=_GOOGLE_ISSUER)
    if pin.kind == "github":
        if pin.workflow:
            return GitHubPublisher(repository=pin.repository, workflow=pin.workflow)._as_policy()
        issuer, url = _GITHUB_ISSUER, f"https://github.com/{pin.repository}"
    elif pin.kind == "gitlab":
        if pin.workflow:
            return GitLabPublisher(repository=pin.repository,
                                   workflow_filepath=pin.workflow)._as_policy()
        issuer, url = _GITLAB_ISSUER, f"https://gitlab.com/{pin.repository}"
    else:
        raise AttestationError(f"{target.where}: can't verify against a {pin.kind} publisher")
    return policy.AllOf([policy.OIDCIssuerV2(issuer), policy.OIDCSourceRepositoryURI(url)])


class _EmailPolicy:
    """Sigstore policy: an e-mail SAN equal to `address`, and the OIDC issuer if given."""

    def __init__(self, address: str, issuer: str | None) -> None:
        self._address = address
        self._issuer = issuer

    def verify(self, cert: Certificate) -> None:
        from cryptography.x509 import RFC822Name, SubjectAlternativeName
        from sigstore.errors import VerificationError

        sans = cert.extensions.get_extension_for_class(SubjectAlternativeName).value
        emails = sans.get_values_for_type(RFC822Name)
        if self._address not in emails:
            raise VerificationError(f"certificate is for {', '.join(emails) or 'no e-mail'}, "
                                    f"not {self._address}")
        issuer = _cert_issuer(cert)
        if self._issuer is not None and issuer != self._issuer:
            raise VerificationError(f"certificate was issued for {issuer or 'no issuer'}, "
                                    f"not {self._issuer}")


@functools.cache
def _verifier(instance: str) -> Verifier:
    from importlib import resources
    from urllib.parse import quote

    from sigstore.models import TrustedRoot
    from sigstore.verify import Verifier

    resource = resources.files("sigstore._store") / quote(_TUF_URLS[instance], safe="")
    try:
        with resources.as_file(resource / "trusted_root.json") as path:
            return Verifier(trusted_root=TrustedRoot.from_file(str(path)))
    except Exception as exc:  # any failure here means no usable trust root
        raise AttestationError(f"the installed sigstore package has no usable trust root "
                               f"for Sigstore {instance}: {_describe(exc)}") from exc


def _as_publisher(claimed: ClaimedPublisher) -> Publisher:
    """Map pypi-attestations' publisher kinds (GitHub, GitLab, Google, ...) to ours."""
    data: dict[str, Any] = claimed.model_dump()

    def first(*keys: str) -> str | None:
        return next((str(data[k]) for k in keys if data.get(k)), None)

    return Publisher(
        kind=str(data["kind"]).lower(),
        repository=first("repository", "email", "project_id") or "",
        workflow=first("workflow", "workflow_filepath", "pipeline_definition_id"),
        environment=first("environment"),
    )


def _dist_key(filename: str) -> tuple[object, ...] | None:
    """A filename parsed like pypi-attestations does, so spellings of one name compare equal."""
    from packaging.utils import (
        InvalidSdistFilename,
        InvalidWheelFilename,
        parse_sdist_filename,
        parse_wheel_filename,
    )

    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)
        if filename.endswith((".tar.gz", ".zip")):
            return parse_sdist_filename(filename)
    except (InvalidSdistFilename, InvalidWheelFilename):
        return None
    return None


def _cert_identity(cert: Certificate) -> str:
    from cryptography.x509 import RFC822Name, SubjectAlternativeName, UniformResourceIdentifier

    sans = cert.extensions.get_extension_for_class(SubjectAlternativeName).value
    values = sans.get_values_for_type(RFC822Name) + sans.get_values_for_type(
        UniformResourceIdentifier)
    return ", ".join(values)


def _cert_issuer(cert: Certificate) -> str:
    from cryptography import x509

    for oid in (_OID_ISSUER_V2, _OID_ISSUER_V1):
        try:
            value = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid)).value
        except x509.ExtensionNotFound:
            continue
        if isinstance(value, x509.UnrecognizedExtension):
            return _der_utf8(value.value) if oid == _OID_ISSUER_V2 else value.value.decode()
    return ""


def _der_utf8(der: bytes) -> str:
    """Decode a DER UTF8String (tag 0x0C), as Fulcio's v2 extensions are encoded."""
    if len(der) < 2 or der[0] != 0x0C:
        raise ValueError("not a DER UTF8String")
    length, start = der[1], 2
    if length & 0x80:
        start = 2 + (length & 0x7F)
        length = int.from_bytes(der[2:start], "big")
    if start + length != len(der):
        raise ValueError("bad DER UTF8String length")
    return der[start:].decode()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _summary(exc: ValidationError) -> str:
    errors = exc.errors()
    parts = [f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in errors[:3]]
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more
