"""A distribution as a CycloneDX component: built from its core metadata (name, purl,
licence, people, links), given properties, and holding the components of the SBOMs that
the distribution bundles (PEP 770: `.dist-info/sboms/`). Both documents of `sbom.py`, an
install's fragment and an environment's SBOM, are made of these. cyclonedx-python-lib is
imported only when a component is made."""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterable, Iterator, Mapping
from email.utils import getaddresses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.utils import NormalizedName

from .licenses import classifier_spdx

if TYPE_CHECKING:
    from cyclonedx.model.component import Component
    from cyclonedx.model.contact import OrganizationalContact
    from cyclonedx.model.license import License, LicenseAcknowledgement

#: A free-text License field longer than this is the licence's full text, not its name.
MAX_LICENSE_NAME = 200
#: Bundled (PEP 770) SBOMs are third-party data; a larger one is not read.
MAX_BUNDLED_BYTES = 16 * 1024**2
#: What a distribution's bundled SBOMs hold: their components (CycloneDX 1.6 JSON), and
#: the properties that say which files were read.
Bundled = tuple[list[Any], list[tuple[str, str]]]

# Project-URL labels, normalised as PEP 753 does, by the reference type they are.
_URL_LABELS = {
    "homepage": "website",
    "source": "vcs", "repository": "vcs", "sourcecode": "vcs", "github": "vcs",
    "documentation": "documentation", "docs": "documentation",
    "issues": "issue-tracker", "bugs": "issue-tracker", "issue": "issue-tracker",
    "tracker": "issue-tracker", "issuetracker": "issue-tracker", "bugtracker": "issue-tracker",
    "changelog": "release-notes", "changes": "release-notes", "releasenotes": "release-notes",
    "history": "release-notes", "whatsnew": "release-notes",
}


def component(meta: Mapping[str, Any], name: NormalizedName, version: str, *,
               file_name: str | None) -> Component:
    """A library component from core metadata (PEP 566 JSON): name, purl, licence, people,
    links. Evidence is added by the caller."""
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.contact import OrganizationalEntity
    from packageurl import PackageURL

    purl = PackageURL(type="pypi", name=name, version=version,
                      qualifiers={"file_name": file_name} if file_name else None)
    authors = _contacts(meta.get("author"), meta.get("author_email"))
    maintainers = _contacts(meta.get("maintainer"), meta.get("maintainer_email"))
    supplier_contacts = maintainers or authors
    supplier = None
    if supplier_contacts:
        names = ", ".join(c.name for c in supplier_contacts if c.name)
        supplier = OrganizationalEntity(name=names or None, contacts=supplier_contacts)
    summary = str(meta.get("summary") or "").strip()
    comp = Component(type=ComponentType.LIBRARY, name=str(meta.get("name") or name),
                     version=version, bom_ref=purl.to_string(), purl=purl,
                     description=summary or None, licenses=licenses(meta),
                     authors=authors, supplier=supplier)
    add_refs(comp, _metadata_links(meta))
    return comp


def licenses(meta: Mapping[str, Any]) -> list[License]:
    """The declared licence: the PEP 639 License-Expression, else the licence classifiers
    as SPDX ids (or names), else the free-text License field."""
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
    from cyclonedx.spdx import fixup_id
    from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

    expression = str(meta.get("license_expression") or "").strip()
    if expression:
        try:
            expression = canonicalize_license_expression(expression)
        except InvalidLicenseExpression:
            return [_named_license(expression)]
        spdx_id = fixup_id(expression)
        if spdx_id is not None:
            return [DisjunctiveLicense(id=spdx_id, acknowledgement=_declared())]
        return [LicenseExpression(expression, acknowledgement=_declared())]
    found: list[License] = []
    for classifier in meta.get("classifier", ()):
        if not classifier.startswith("License :: ") or classifier == "License :: OSI Approved":
            continue
        spdx = classifier_spdx(classifier)
        if spdx is not None:
            found.append(DisjunctiveLicense(id=spdx, acknowledgement=_declared()))
        else:
            found.append(_named_license(classifier.rpartition(" :: ")[2]))
    if found:
        return found
    text = " ".join(str(meta.get("license") or "").split())
    if not text or text.upper() == "UNKNOWN":
        return []
    if len(text) > MAX_LICENSE_NAME:
        return [_named_license(text)]
    # Before PEP 639 many projects wrote an SPDX id ("MIT") here: keep it as one.
    return [LicenseFactory().make_from_string(text, license_acknowledgement=_declared())]


def _declared() -> LicenseAcknowledgement:
    from cyclonedx.model.license import LicenseAcknowledgement

    return LicenseAcknowledgement.DECLARED


def _named_license(text: str) -> License:
    from cyclonedx.model.license import DisjunctiveLicense

    if len(text) > MAX_LICENSE_NAME:  # the licence's full text, not its name
        text = text[:MAX_LICENSE_NAME - 3] + "..."
    return DisjunctiveLicense(name=text, acknowledgement=_declared())


def _contacts(names: Any, emails: Any) -> list[OrganizationalContact]:
    """People from an Author (or Maintainer) field and its -email field."""
    from cyclonedx.model.contact import OrganizationalContact

    text = str(names or "").strip()
    text = "" if text.upper() == "UNKNOWN" else text
    pairs: list[tuple[str, str]] = []
    loose: list[str] = []
    for name, address in getaddresses([str(emails or "")]):
        name, address = name.strip(), address.strip()
        if "@" in address:
            pairs.append((name, address))
        elif (name or address) and (name or address).upper() != "UNKNOWN":
            loose.append(name or address)  # not an address (the schema checks): a name
    # `Author: A, B` with `Author-email: a@x, b@y` names the addresses in order.
    split = [n.strip() for n in text.split(",")] if text else []
    if len(pairs) == 1 and text:
        pairs = [(pairs[0][0] or text, pairs[0][1])]
    elif pairs and len(split) == len(pairs):
        pairs = [(n or name, a) for (n, a), name in zip(pairs, split, strict=True)]
    if not pairs and (text or loose):
        pairs = [(text or ", ".join(loose), "")]
    return [OrganizationalContact(name=n or None, email=a or None) for n, a in pairs]


def _metadata_links(meta: Mapping[str, Any]) -> list[tuple[str, str, str | None]]:
    links: list[tuple[str, str, str | None]] = []
    home = str(meta.get("home_page") or "").strip()
    if home and home.upper() != "UNKNOWN":
        links.append(("website", home, None))
    for entry in meta.get("project_url", ()):
        label, _, url = str(entry).partition(",")
        key = "".join(c for c in label.lower() if c not in string.punctuation
                      and not c.isspace())
        if key in _URL_LABELS and url.strip():
            links.append((_URL_LABELS[key], url.strip(), f"Project-URL {label.strip()}"))
    return links


def add_refs(comp: Component, links: Iterable[tuple[str, str, str | None]]) -> None:
    from cyclonedx.exception.model import InvalidUriException
    from cyclonedx.model import ExternalReference, ExternalReferenceType, XsUri

    for kind, url, comment in links:
        if not re.match(r"(?i)(https?|file)://", url):
            continue  # not a link a consumer could follow
        try:
            uri = XsUri(url)
        except InvalidUriException:
            continue
        comp.external_references.add(ExternalReference(
            type=ExternalReferenceType(kind), url=uri, comment=comment))


def add_props(comp: Component, props: Iterable[tuple[str, str]]) -> None:
    from cyclonedx.model import Property

    for name, value in props:
        comp.properties.add(Property(name=name, value=value))


# --- bundled SBOMs (PEP 770) ----------------------------------------------------------

def add_bundled(comp: Component, dist_info: Path) -> None:
    """Nest the components of the distribution's own SBOMs (PEP 770: `.dist-info/sboms/`)."""
    for found, props in _read_bundled(dist_info):
        if found is not None:
            comp.components.update(found)
        add_props(comp, props)


def _read_bundled(dist_info: Path,
                  ) -> Iterator[tuple[list[Component] | None, list[tuple[str, str]]]]:
    """The components of each bundled SBOM of `dist_info` (None: unreadable) and the
    properties saying so."""
    from cyclonedx.model.component import Component

    folder = dist_info / "sboms"
    if not folder.is_dir():
        return
    for path in sorted(p for p in folder.rglob("*.json") if p.is_file()):
        rel = path.relative_to(dist_info).as_posix()
        try:
            if path.stat().st_size > MAX_BUNDLED_BYTES:
                raise ValueError(f"larger than {MAX_BUNDLED_BYTES} bytes")
            document = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(document, dict) or document.get("bomFormat") != "CycloneDX":
                raise ValueError("not a CycloneDX JSON document")
            items = document.get("components", [])
            if not isinstance(items, list):
                raise ValueError("its components are not a list")
            # Only the components are used (the rest, its metadata's tools above all, can
            # take longer to read than they do), each read on its own: a whole Bom would
            # first sort them all, comparing every field (a third of the time).
            found = [Component.from_json(item)  # type: ignore[attr-defined]
                     for item in items]
        except Exception as exc:  # third-party data: noted, never fatal
            yield None, [("secinstall:bundled-sbom:unreadable",
                          f"{rel}: {type(exc).__name__}: {exc}"[:300])]
            continue
        yield found, [("secinstall:bundled-sbom", rel)]


def bundled(dist_info: Path) -> Bundled:
    """The components of a distribution's bundled SBOMs (PEP 770), as CycloneDX 1.6 JSON,
    and the properties that say which files were read. Read again at every install, not
    cached: an SBOM says what is installed, and must not take that from a cache."""
    from cyclonedx.schema.schema import SchemaVersion1Dot6

    # By their text: the same component twice (in two of its SBOMs, say) is listed once.
    texts: dict[str, None] = {}
    props: list[tuple[str, str]] = []
    for found, said in _read_bundled(dist_info):
        for c in found or ():
            texts[c.as_json(view_=SchemaVersion1Dot6)] = None  # type: ignore[attr-defined]
        props += said
    return [json.loads(text) for text in texts], props
