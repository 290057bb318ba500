"""Tampered copies of the real PEP 740 data (`tests.support.pep740`), each named and paired
with the check that must catch it: TAMPERINGS edit a provenance document in place, TAMPERED
make the (wheel, provenance) bytes a client would be served."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from tests.support.pep740 import SDIST, WHEEL, Json, fixture_bytes, provenance_json

# --- edits of a provenance document --------------------------------------------------------


def flip(b64: str, position: float = 0.5) -> str:
    """Flip the low bit of one byte (at `position` of the length) in base64-encoded data."""
    raw = bytearray(base64.b64decode(b64))
    raw[int(len(raw) * position)] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def attestation_of(document: Json) -> Json:
    attestation: Json = document["attestation_bundles"][0]["attestations"][0]
    return attestation


def entry_of(document: Json) -> Json:
    entry: Json = attestation_of(document)["verification_material"]["transparency_entries"][0]
    return entry


def edit_statement(document: Json, change: Callable[[Json], None]) -> None:
    envelope = attestation_of(document)["envelope"]
    statement = json.loads(base64.b64decode(envelope["statement"]))
    change(statement)
    envelope["statement"] = base64.b64encode(json.dumps(statement).encode()).decode()


def set_subject_digest(statement: Json) -> None:
    statement["subject"][0]["digest"]["sha256"] = "0" * 64


def set_predicate_type(statement: Json) -> None:
    statement["predicateType"] = "https://slsa.dev/provenance/v1"


def flip_proof_hash(document: Json) -> None:
    hashes = entry_of(document)["inclusionProof"]["hashes"]
    hashes[3] = flip(hashes[3])


def other_certificate(document: Json) -> None:
    attestation_of(document)["verification_material"]["certificate"] = attestation_of(
        provenance_json(SDIST)
    )["verification_material"]["certificate"]


def set_entry(key: str, value: Any, proof: bool = False) -> Callable[[Json], None]:
    def change(document: Json) -> None:
        (entry_of(document)["inclusionProof"] if proof else entry_of(document))[key] = value

    return change


def set_publisher(key: str, value: str) -> Callable[[Json], None]:
    def change(document: Json) -> None:
        document["attestation_bundles"][0]["publisher"][key] = value

    return change


def change_field(path: tuple[str, ...], change: Callable[[str], str]) -> Callable[[Json], None]:
    def apply(document: Json) -> None:
        holder = attestation_of(document)
        for key in path[:-1]:
            holder = holder[key]
        holder[path[-1]] = change(holder[path[-1]])

    return apply


# Each change, and (loosely, as sigstore words it) the check that must catch it.
TAMPERINGS: dict[str, tuple[Callable[[Json], None], str]] = {
    "statement-byte": (change_field(("envelope", "statement"), flip), "signature"),
    "statement-subject-digest": (lambda d: edit_statement(d, set_subject_digest), "signature"),
    "statement-predicate-type": (lambda d: edit_statement(d, set_predicate_type), "signature"),
    "signature-byte": (change_field(("envelope", "signature"), flip), "signature"),
    "certificate-byte-in-signature": (
        change_field(("verification_material", "certificate"), lambda c: flip(c, 0.99)),
        "certificate",
    ),
    "certificate-byte-in-extensions": (
        change_field(("verification_material", "certificate"), flip),
        "certificate",
    ),
    "certificate-of-another-release": (other_certificate, "certificate"),
    "inclusion-proof-hash": (flip_proof_hash, "inclusion proof"),
    "inclusion-proof-root-hash": (
        lambda d: entry_of(d)["inclusionProof"].update(
            rootHash=flip(entry_of(d)["inclusionProof"]["rootHash"])
        ),
        "inclusion proof",
    ),
    "inclusion-proof-log-index": (
        set_entry("logIndex", "2150870800", proof=True),
        "inclusion proof",
    ),
    "log-index": (set_entry("logIndex", "2272775064"), "inclusion promise"),
    "integrated-time": (set_entry("integratedTime", "1785247713"), "inclusion promise"),
    "signed-entry-timestamp": (
        lambda d: entry_of(d)["inclusionPromise"].update(
            signedEntryTimestamp=flip(entry_of(d)["inclusionPromise"]["signedEntryTimestamp"])
        ),
        "inclusion promise",
    ),
    "log-entry-body": (
        set_entry(
            "canonicalizedBody", flip(entry_of(provenance_json(WHEEL))["canonicalizedBody"], 0.3)
        ),
        "log entry",
    ),
    "log-entry-garbage": (
        lambda d: attestation_of(d)["verification_material"].update(
            transparency_entries=[{"logIndex": "1"}]
        ),
        "log entry",
    ),
    "publisher-repository": (
        set_publisher("repository", "pypi/pypi-attestations-fork"),
        "repository",
    ),
    "publisher-workflow": (set_publisher("workflow", "other.yml"), "build config"),
}


# --- tampered bytes of the real wheel and its provenance -----------------------------------


def flip_middle_byte(data: bytes) -> bytes:
    """`data` with the low bit of its middle byte flipped."""
    changed = bytearray(data)
    changed[len(changed) // 2] ^= 0x01
    return bytes(changed)


def tampered_provenance(name: str) -> bytes:
    """The real wheel's provenance, edited by `TAMPERINGS[name]`."""
    document: Json = provenance_json(WHEEL)
    TAMPERINGS[name][0](document)
    assert document != provenance_json(WHEEL)
    return json.dumps(document).encode()


def replace_in_statement(old: str, new: str) -> bytes:
    """The real provenance with the signed statement's text edited (signature left as is)."""
    document: Json = provenance_json(WHEEL)
    envelope = document["attestation_bundles"][0]["attestations"][0]["envelope"]
    statement = base64.b64decode(envelope["statement"])
    assert old.encode() in statement
    envelope["statement"] = base64.b64encode(statement.replace(old.encode(), new.encode())).decode()
    return json.dumps(document).encode()


# Each tampering of the real 0.0.30 wheel or its provenance: (wheel bytes, provenance bytes,
# the part of the refusal that names the check which caught it), for `install` and `verify`.
TAMPERED: dict[str, tuple[Callable[[], tuple[bytes, bytes]], str]] = {
    "wheel-byte": (
        lambda: (flip_middle_byte(fixture_bytes(WHEEL)), fixture_bytes(WHEEL + ".provenance")),
        "sha256 mismatch: the statement attests",
    ),
    "statement-byte": (
        lambda: (fixture_bytes(WHEEL), tampered_provenance("statement-byte")),
        "signature",
    ),
    "statement-subject-name": (
        lambda: (fixture_bytes(WHEEL), replace_in_statement("0.0.30", "0.0.31")),
        "signature",
    ),
    "statement-subject-digest": (
        lambda: (fixture_bytes(WHEEL), tampered_provenance("statement-subject-digest")),
        "signature",
    ),
    "signature-byte": (
        lambda: (fixture_bytes(WHEEL), tampered_provenance("signature-byte")),
        "signature",
    ),
    "certificate-byte": (
        lambda: (fixture_bytes(WHEEL), tampered_provenance("certificate-byte-in-extensions")),
        "certificate",
    ),
    "certificate-of-another-release": (
        lambda: (fixture_bytes(WHEEL), tampered_provenance("certificate-of-another-release")),
        "certificate",
    ),
    "inclusion-proof-hash": (
        lambda: (fixture_bytes(WHEEL), tampered_provenance("inclusion-proof-hash")),
        "inclusion proof",
    ),
    "inclusion-proof-root-hash": (
        lambda: (fixture_bytes(WHEEL), tampered_provenance("inclusion-proof-root-hash")),
        "inclusion proof",
    ),
    "signed-entry-timestamp": (
        lambda: (fixture_bytes(WHEEL), tampered_provenance("signed-entry-timestamp")),
        "inclusion promise",
    ),
    "claimed-publisher-repository": (
        lambda: (fixture_bytes(WHEEL), tampered_provenance("publisher-repository")),
        "repository",
    ),
    "provenance-of-another-file": (
        lambda: (fixture_bytes(WHEEL), fixture_bytes(SDIST + ".provenance")),
        f"the statement is for '{SDIST}', not {WHEEL}",
    ),
}
