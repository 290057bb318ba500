"""An environment's SBOM as an SPDX 2.3 document, converted from the CycloneDX `Bom` that
`sbom.environment_bom` merges, so that both formats say the same of the same environment.
Built, checked and written with spdx-tools (the optional extra `secinstall[spdx]`): this
module is imported only for `sbom --format spdx-json`, and refuses to load without it.

Each component is one SPDX package; the components of the SBOMs a distribution bundles
(PEP 770) are packages it CONTAINS. A component's properties (secinstall's verification
evidence: `secinstall:verified`, `secinstall:hash-sources`, `secinstall:attestation...`)
are its package's comment, one `name=value` a line, as the document's properties (the
target) are the document's comment: SPDX 2.3 has no properties, and annotations would
each need a date of their own."""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone

from cyclonedx.model import ExternalReferenceType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.bom_ref import BomRef
from cyclonedx.model.component import Component
from cyclonedx.model.license import DisjunctiveLicense

from . import __version__
from .errors import ConfigError

try:
    from license_expression import ExpressionError, LicenseExpression
    from spdx_tools.common.spdx_licensing import spdx_licensing
    from spdx_tools.spdx.model.actor import Actor, ActorType
    from spdx_tools.spdx.model.checksum import Checksum, ChecksumAlgorithm
    from spdx_tools.spdx.model.document import CreationInfo, Document
    from spdx_tools.spdx.model.package import (
        ExternalPackageRef,
        ExternalPackageRefCategory,
        Package,
        PackagePurpose,
    )
    from spdx_tools.spdx.model.relationship import Relationship, RelationshipType
    from spdx_tools.spdx.model.spdx_no_assertion import SpdxNoAssertion
    from spdx_tools.spdx.model.spdx_none import SpdxNone
    from spdx_tools.spdx.validation.checksum_validator import validate_checksum
    from spdx_tools.spdx.validation.external_package_ref_validator import (
        validate_external_package_ref,
    )
    from spdx_tools.spdx.validation.uri_validators import validate_download_location, validate_url
    from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream
except ImportError as exc:  # the extra is not installed: said before any work or output
    raise ConfigError(
        "--format spdx-json needs spdx-tools, which is not installed: install secinstall's "
        "extra with `pip install 'secinstall[spdx]'` (or `pip install spdx-tools`), or use "
        "--format cyclonedx-json", details=[f"{type(exc).__name__}: {exc}"]) from exc

SPDX_VERSION = "SPDX-2.3"
DOCUMENT_ID = "SPDXRef-DOCUMENT"

# CycloneDX component types by the SPDX package purpose they are.
_PURPOSES = {"application": "APPLICATION", "framework": "FRAMEWORK", "library": "LIBRARY",
             "container": "CONTAINER", "platform": "OPERATING_SYSTEM",
             "operating-system": "OPERATING_SYSTEM", "device": "DEVICE",
             "device-driver": "DEVICE", "firmware": "FIRMWARE", "file": "FILE"}


def spdx_json(bom: Bom, *, name: str) -> str:
    """The SPDX 2.3 JSON of `bom`, named `name`. Every value that comes from metadata or a
    bundled SBOM is checked with spdx-tools' own validator for its field as it is
    converted (left out, or NOASSERTION, if refused); the IDs and relationships are
    valid by construction. The whole-document validator is the tests' (it is quadratic:
    about 10 s for an environment of 3,000 packages), not run on every SBOM."""
    out = io.StringIO()
    write_document_to_stream(_document(bom, name), out, validate=False)
    return out.getvalue()


def _document(bom: Bom, name: str) -> Document:
    info = CreationInfo(
        spdx_version=SPDX_VERSION, spdx_id=DOCUMENT_ID, name=name,
        # Unique per run, as the CycloneDX serial number is (the same UUID).
        document_namespace=f"urn:uuid:{bom.serial_number}",
        creators=[Actor(ActorType.TOOL, f"secinstall-{__version__}")],
        created=bom.metadata.timestamp or datetime.now(timezone.utc), data_license="CC0-1.0",
        document_comment=_lines(bom.metadata.properties) or None)
    packages: list[Package] = []
    relationships: list[Relationship] = []
    # By BomRef, not its value: a component without a bom-ref has None (no two are equal).
    by_ref: dict[BomRef, str] = {}
    taken: set[str] = set()

    def add(comp: Component, base: str, parent: str | None) -> None:
        label = re.sub(r"[^A-Za-z0-9.-]+", "-", f"{base}-{comp.name}-{comp.version or ''}")
        spdx_id = f"SPDXRef-{label.strip('-')}"
        count = 1
        # Names SPDX can't spell, or a bundled SBOM's duplicates, can read the same here.
        while spdx_id in taken:
            count += 1
            spdx_id = f"SPDXRef-{label.strip('-')}-{count}"
        taken.add(spdx_id)
        if parent is None:
            by_ref[comp.bom_ref] = spdx_id
            relationships.append(Relationship(DOCUMENT_ID, RelationshipType.DESCRIBES, spdx_id))
        else:
            relationships.append(Relationship(parent, RelationshipType.CONTAINS, spdx_id))
        packages.append(_package(comp, spdx_id))
        for nested in _sorted(comp.components):
            add(nested, spdx_id.removeprefix("SPDXRef-"), spdx_id)

    for comp in _sorted(bom.components):
        add(comp, "Package", None)
    if not packages:  # an empty environment: the document describes no package
        relationships.append(Relationship(DOCUMENT_ID, RelationshipType.DESCRIBES, SpdxNone()))
    for dep in sorted(bom.dependencies, key=lambda d: by_ref.get(d.ref, "")):
        source = by_ref.get(dep.ref)
        targets = sorted(t for d in dep.dependencies if (t := by_ref.get(d.ref)) is not None)
        relationships += [Relationship(source, RelationshipType.DEPENDS_ON, t)
                          for t in targets if source is not None]
    return Document(info, packages=packages, relationships=relationships)


def _sorted(components: Iterable[Component]) -> list[Component]:
    """In an order of their own values, not of bom-refs (a bundled SBOM's may be random)."""
    return sorted(components,
                  key=lambda c: (c.name.casefold(), c.name, c.version or "", str(c.purl or "")))


def _package(comp: Component, spdx_id: str) -> Package:
    notes = []
    urls = {t: [str(r.url) for r in comp.external_references if r.type == t]
            for t in (ExternalReferenceType.DISTRIBUTION, ExternalReferenceType.WEBSITE)}
    download: str | SpdxNoAssertion = SpdxNoAssertion()
    for url in urls[ExternalReferenceType.DISTRIBUTION][:1]:
        if validate_download_location(url):  # e.g. an index on an IP address, not a host name
            notes.append(f"distribution={url}")
        else:
            download = url
    homepage = next((u for u in urls[ExternalReferenceType.WEBSITE] if not validate_url(u)), None)
    refs: list[ExternalPackageRef] = []
    if comp.purl is not None:
        ref = ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl",
                                 comp.purl.to_string())
        if not validate_external_package_ref(ref, spdx_id, SPDX_VERSION):
            refs.append(ref)
    declared, license_comment = _license(comp)
    supplier = comp.supplier
    authors = comp.authors
    purpose = _PURPOSES.get(comp.type.value, "OTHER")
    comment = "\n".join([*notes, _lines(comp.properties)]).strip()
    return Package(
        spdx_id=spdx_id, name=comp.name, download_location=download, version=comp.version,
        supplier=_actor(ActorType.ORGANIZATION, [supplier.name] if supplier else [],
                        [c.email for c in supplier.contacts] if supplier else []),
        originator=_actor(ActorType.PERSON, [a.name for a in authors],
                          [a.email for a in authors]),
        files_analyzed=False, checksums=list(_checksums(comp, spdx_id)), homepage=homepage,
        license_concluded=SpdxNoAssertion(), license_declared=declared,
        license_comment=license_comment, summary=comp.description or None,
        comment=comment or None, external_references=refs,
        primary_package_purpose=PackagePurpose[purpose])


def _checksums(comp: Component, spdx_id: str) -> Iterator[Checksum]:
    """The component's hashes that SPDX knows and its validator accepts (a bundled SBOM's
    are third-party data: one it would refuse is left out, not the whole document)."""
    for h in sorted(comp.hashes, key=lambda h: (h.alg.name, h.content)):
        algorithm = ChecksumAlgorithm.__members__.get(h.alg.name.replace("SHA_", "SHA"))
        if algorithm is None:  # Streebog: not in SPDX 2.3
            continue
        checksum = Checksum(algorithm, h.content.lower())
        if not validate_checksum(checksum, spdx_id, SPDX_VERSION):
            yield checksum


def _license(comp: Component) -> tuple[LicenseExpression | SpdxNoAssertion, str | None]:
    """The declared licence as an SPDX expression, NOASSERTION when there is none or it is
    not valid SPDX (a licence's name, or an id not on the SPDX list), with the licence as
    it was declared in the licence comment."""
    ids: list[str] = []  # SPDX ids and expressions
    names: list[str] = []  # licences' names: not SPDX
    for lic in comp.licenses:
        if isinstance(lic, DisjunctiveLicense):
            (ids if lic.id else names).append(str(lic.id or lic.name or ""))
        else:
            ids.append(str(lic.value))
    if not ids and not names:
        return SpdxNoAssertion(), None
    if not names:
        # Several licences (classifiers) combine with AND, as `licenses.py` reads them.
        text = ids[0] if len(ids) == 1 else " AND ".join(f"({i})" for i in ids)
        try:
            return spdx_licensing.parse(text, validate=True, strict=True), None
        except ExpressionError:
            pass
    return SpdxNoAssertion(), f"declared, not valid SPDX: {'; '.join([*ids, *names])}"


def _actor(kind: ActorType, names: Iterable[str | None],
           emails: Iterable[str | None]) -> Actor | SpdxNoAssertion:
    text = ", ".join(n for n in names if n)
    addresses = [e for e in emails if e]
    if not text:
        return SpdxNoAssertion()
    # SPDX gives an actor one address: several people's, or none, are left out.
    return Actor(kind, text, str(addresses[0]) if len(addresses) == 1 else None)


def _lines(props: Iterable[Property]) -> str:
    # One property a line: a line break inside a value (third-party text) would split it.
    return "\n".join(f"{p.name}={' '.join(str(p.value).splitlines())}" for p in props)
