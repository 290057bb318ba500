"""CycloneDX SBOMs: a fragment per install transaction (what was installed and how it was
verified), and one SBOM of a whole environment, merged from the fragments and what is
installed now: the documents, their dependency graph and metadata. Their components (one
per distribution, with the SBOMs it bundles) are made in `component.py`, and the
environment's SBOM is converted to SPDX in `spdx.py`. Built with cyclonedx-python-lib,
imported only when an SBOM is made."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from . import __version__
from .client import redact_url
from .component import Bundled, add_bundled, add_props, add_refs, bundled, component
from .errors import ConfigError, InstallError
from .models import IndexFile, InstalledDist, VerifiedDist
from .target import Target, applies
from .transaction import Transaction

if TYPE_CHECKING:
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component

    from .pipeline import Outcome

#: Where the fragments live, inside the environment's `.secinstall/`.
SBOM_DIR = "sbom"
FORMATS = ("cyclonedx-json", "spdx-json")
_PUBLISHER_HOSTS = {"github": "https://github.com/", "gitlab": "https://gitlab.com/"}


# --- writing a fragment ----------------------------------------------------------------

def write_fragment(txn: Transaction, outcome: Outcome, *, indexes: Sequence[str],
                   weakened: Sequence[str] = (),
                   built: tuple[str, datetime] | None = None) -> Path | None:
    """Write the fragment of this install to `<state_dir>/sbom/<UTC time>-<id>.cdx.json`,
    journaled in `txn` (a rollback deletes it) and written atomically. `built`: its text
    and time, if made already (`fragment.FragmentBuilder`).

    Without cyclonedx-python-lib (the core install path, e.g. get-secinstall.py, runs
    without the heavy dependencies) no fragment is written and `outcome.notes` says so.
    """
    if built is None and not _can_write(outcome.notes, "install"):
        return None
    text, when = built or _fragment_text(outcome, indexes=indexes, weakened=weakened)
    return _write(txn, outcome.target, text, when)


def write_removal_fragment(txn: Transaction, target: Target,
                           removed: Sequence[InstalledDist], *, weakened: Sequence[str],
                           notes: list[str]) -> Path | None:
    """The fragment of an uninstall, written as `write_fragment` writes an install's: no
    components, a `secinstall:removed` property per distribution removed, so that the
    fragments tell every change secinstall made to the environment. Without
    cyclonedx-python-lib, none, and `notes` says so."""
    if not _can_write(notes, "uninstall"):
        return None
    text, when = fragment_document([], Install(target, (), weakened, None, removed))
    return _write(txn, target, text, when)


def _can_write(notes: list[str], what: str) -> bool:
    """Whether cyclonedx-python-lib is there to write the fragment of this `what`
    (install, uninstall); if not, `notes` says no fragment was written."""
    try:
        import cyclonedx  # noqa: F401
    except ImportError:
        notes.append(f"no SBOM fragment was written for this {what}: "
                     "cyclonedx-python-lib is not installed")
        return False
    return True


def _write(txn: Transaction, target: Target, text: str, when: datetime) -> Path:
    text += "\n"
    folder = target.state_dir / SBOM_DIR
    stamp = when.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"{stamp}-{txn.dir.name.removeprefix('txn-')}.cdx.json"
    part = folder / f".{path.name}.part"
    try:
        txn.make_dirs(folder)
        txn.will_create(part)
        txn.will_create(path)
        with part.open("x", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(part, path)
    except OSError as exc:
        raise InstallError(f"can't write the SBOM fragment {path}: "
                           f"{exc.strerror or exc}") from exc
    return path


def fragment_json(outcome: Outcome, *, indexes: Sequence[str],
                  weakened: Sequence[str] = ()) -> str:
    """The CycloneDX JSON of one install: the distributions it installed, with evidence."""
    return _fragment_text(outcome, indexes=indexes, weakened=weakened)[0]


@dataclass
class Part:
    """One installed distribution's part of a fragment: its component, the components
    of the SBOMs it bundles (as JSON, nested in it when the document is written), and
    what it requires (for the dependency graph)."""

    name: NormalizedName
    component: Component
    nested: list[Any]
    requires: Sequence[str]
    extras: Iterable[str]


@dataclass(frozen=True)
class Install:
    """What a fragment says of the install as a whole."""

    target: Target
    indexes: Sequence[str]
    weakened: Sequence[str]
    #: How the distributions were chosen; None for an uninstall (none are installed).
    resolver: str | None
    removed: Sequence[InstalledDist]


def part(v: VerifiedDist, meta: Mapping[str, Any], requires: Sequence[str],
         found: Bundled) -> Part:
    """`v`'s part, from its core metadata and its bundled SBOMs (`component.bundled`)."""
    from cyclonedx.model import HashAlgorithm, HashType

    dist = v.dist
    comp = component(meta, dist.name, dist.version, file_name=dist.file.filename)
    comp.hashes.add(HashType(alg=HashAlgorithm.SHA_256, content=v.fetched.sha256))
    add_refs(comp, [("distribution", redact_url(dist.file.url), None)])
    add_props(comp, _evidence(v))
    if v.attestation is not None and v.attestation.publisher is not None:
        publisher = v.attestation.publisher
        if publisher.kind in _PUBLISHER_HOSTS:
            add_refs(comp, [("vcs", _PUBLISHER_HOSTS[publisher.kind] + publisher.repository,
                              "source repository of the verified Trusted Publisher")])
    add_props(comp, found[1])
    return Part(dist.name, comp, found[0], requires, dist.requested_extras)


def _fragment_text(outcome: Outcome, *, indexes: Sequence[str], weakened: Sequence[str],
                   ) -> tuple[str, datetime]:
    """`fragment_json`, and the fragment's timestamp."""
    from .install import find_installed, same_version

    trees = {u.fetched.dist.name: u for u in outcome.unpacked}
    # What is installed is looked at only for a distribution without a tree (`run`).
    installed = (find_installed(outcome.target)
                 if any(v.dist.name not in trees for v in outcome.verified) else {})
    parts = []
    for v in outcome.verified:
        dist = v.dist
        info = outcome.wheel_info.get(dist.name)
        meta = info.metadata if info is not None else dict(dist.metadata or {})
        requires = meta.get("requires_dist") or (info.requires_dist if info else ())
        tree = trees.get(dist.name)
        have = installed.get(dist.name)
        if tree is not None:
            found = bundled(tree.root / tree.info.dist_info_dir)
        elif have is not None and same_version(have.version, dist.version):
            found = bundled(have.dist_info)
        else:
            found = ([], [])
        parts.append(part(v, meta, requires, found))
    removed = outcome.result.removed if outcome.result is not None else ()
    return fragment_document(parts, Install(outcome.target, indexes, weakened,
                                            outcome.plan.resolver, removed))


def fragment_document(parts: Sequence[Part], install: Install) -> tuple[str, datetime]:
    """The fragment's text, and its timestamp. Written without indentation: json's C
    encoder is not used for indented output, and a bundled SBOM can hold tens of
    thousands of values."""
    from cyclonedx.model.bom import Bom

    target = install.target
    components = {p.name: p.component for p in parts}
    bom = Bom(components=components.values())
    bom.metadata.timestamp = datetime.now(timezone.utc)
    props = _target_props(target)
    props += [("secinstall:index-url", redact_url(url)) for url in install.indexes]
    if install.resolver is not None:
        props.append(("secinstall:resolver", install.resolver))
    props += [("secinstall:removed", f"{d.name}=={d.version}") for d in install.removed]
    props += [("secinstall:weakened", w) for w in install.weakened]
    _start(bom, props)
    requires = {p.name: p.requires for p in parts}
    extras = {p.name: p.extras for p in parts}
    _register(bom, components, dependency_edges(requires, extras, target.markers))
    nested = {str(p.component.bom_ref.value): p.nested for p in parts if p.nested}
    return _nest(_dumps(bom, indent=None), nested), bom.metadata.timestamp


def _nest(text: str, nested: Mapping[str, list[Any]]) -> str:
    """`text` (a BOM's JSON) with `nested` put inside the components they belong to. A
    bom-ref already used gets the ref of the component it is nested in as a prefix, so
    that every bom-ref of the document stays unique, as CycloneDX requires."""
    if not nested:
        return text
    document = json.loads(text)
    seen: set[str] = set()

    def refs(items: Iterable[Any]) -> None:
        for c in items:
            seen.add(str(c.get("bom-ref", "")))
            refs(c.get("components", ()))

    refs(document.get("components", ()))

    def unique(items: list[Any], parent: str) -> list[Any]:
        out = []
        for c in items:
            c = dict(c)
            ref = c.get("bom-ref")
            if ref is not None:
                while ref in seen:
                    ref = f"{parent}#{ref}"
                seen.add(ref)
                c["bom-ref"] = ref
            if "components" in c:
                c["components"] = unique(c["components"], str(ref or parent))
            out.append(c)
        return out

    for comp in document.get("components", ()):
        found = nested.get(str(comp.get("bom-ref")))
        if found:
            comp["components"] = [*comp.get("components", ()), *unique(found, comp["bom-ref"])]
    return json.dumps(document)


def _evidence(v: VerifiedDist) -> list[tuple[str, str]]:
    props = [("secinstall:hash-sources", ",".join(v.hash_sources) or "none")]
    if v.dist.file.origin:
        props.append(("secinstall:index", redact_url(v.dist.file.origin)))
    att = v.attestation
    if att is None:
        return [*props, ("secinstall:attestation", v.attestation_note or "not verified")]
    props += [("secinstall:attestation", "verified"),
              ("secinstall:attestation:identity", att.identity),
              ("secinstall:attestation:issuer", att.issuer),
              ("secinstall:attestation:predicate-type", att.predicate_type),
              ("secinstall:attestation:rekor-log-index", str(att.rekor_log_index)),
              ("secinstall:attestation:instance", att.instance),
              ("secinstall:attestation:trust-root", att.trust_root)]
    if att.integrated_time > 0:
        when = datetime.fromtimestamp(att.integrated_time, timezone.utc)
        props.append(("secinstall:attestation:integrated-time",
                      when.isoformat().replace("+00:00", "Z")))
    if att.publisher is not None:
        pub = att.publisher
        props.append(("secinstall:attestation:publisher", f"{pub.kind}:{pub.repository}"))
        props += [(f"secinstall:attestation:publisher:{key}", value)
                  for key, value in (("workflow", pub.workflow),
                                     ("environment", pub.environment)) if value]
    return props


# --- the environment SBOM --------------------------------------------------------------

@dataclass
class _Recorded:
    component: Component
    fragment: str
    depends_on: set[NormalizedName]


def environment_sbom(target: Target, *, fmt: str = "cyclonedx-json") -> str:
    """One SBOM of everything installed in `target` (`environment_bom`), as CycloneDX 1.6
    JSON or (with spdx-tools, the extra `secinstall[spdx]`) SPDX 2.3 JSON."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown SBOM format {fmt!r} (supported: {', '.join(FORMATS)})")
    if fmt == "spdx-json":
        from .spdx import spdx_json  # refused here, before any work, without spdx-tools

        return spdx_json(environment_bom(target),
                         name=f"secinstall environment {target.final_path(target.root)}")
    return _dumps(environment_bom(target))


def environment_bom(target: Target) -> Bom:
    """The CycloneDX document of everything installed in `target`: what secinstall
    installed, with its evidence from the fragments, and everything else marked
    unverified; both formats of `environment_sbom` are made from it."""
    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom

    from .install import find_installed, metadata_path

    recorded, problems = _read_fragments(target.state_dir / SBOM_DIR)
    components: dict[NormalizedName, Component] = {}
    requires: dict[NormalizedName, Sequence[str]] = {}
    edges: dict[NormalizedName, set[NormalizedName]] = {}
    for name, have in sorted(find_installed(target).items()):
        meta, unreadable = _read_metadata(metadata_path(have))
        requires[name] = meta.get("requires_dist", ())
        rec = _current(recorded, have)
        if rec is not None:
            comp = rec.component
            add_props(comp, [("secinstall:verified", "true"),
                              ("secinstall:fragment", rec.fragment)])
            edges[name] = set(rec.depends_on)
        else:
            if have.installer != "secinstall":
                why = f"not installed by secinstall (INSTALLER: {have.installer or 'none'})"
            else:
                why = "installed by secinstall, but no SBOM fragment records this version"
            comp = component(meta, name, have.version, file_name=None)
            add_props(comp, [("secinstall:verified", "false"),
                              ("secinstall:installer", have.installer or "unknown"),
                              ("secinstall:file-hash", f"unknown: {why}")])
            if unreadable:
                comp.properties.add(Property(name="secinstall:metadata", value=unreadable))
            add_bundled(comp, have.dist_info)
        components[name] = comp

    bom = Bom(components=components.values())
    bom.metadata.timestamp = datetime.now(timezone.utc)
    _start(bom, [*_target_props(target),
                 *(("secinstall:unreadable-fragment", p) for p in problems)])
    for name, targets in dependency_edges(requires, {}, target.markers).items():
        edges.setdefault(name, set()).update(targets)
    _register(bom, components, edges)
    return bom


def _current(recorded: Mapping[NormalizedName, _Recorded],
             have: InstalledDist) -> _Recorded | None:
    """The fragments' record of `have` if it is what is installed now: installed by
    secinstall, in that version (not replaced by another tool since)."""
    from .install import same_version

    rec = recorded.get(have.name)
    if (rec is not None and have.installer == "secinstall"
            and same_version(str(rec.component.version), have.version)):
        return rec
    return None


def recorded_files(target: Target, installed: Mapping[NormalizedName, InstalledDist],
                   ) -> tuple[dict[NormalizedName, IndexFile], list[str]]:
    """The file each of `installed` that secinstall installed came from, as its fragment
    records it (the `distribution` reference and the `secinstall:index` that listed it;
    for `secinstall audit`), and the fragments that could not be read (all of them
    without cyclonedx-python-lib)."""
    folder = target.state_dir / SBOM_DIR
    try:
        from cyclonedx.model import ExternalReferenceType
    except ImportError:
        return {}, [f"{folder}: cyclonedx-python-lib is not installed"]

    recorded, problems = _read_fragments(folder)
    found = {}
    for name, have in installed.items():
        rec = _current(recorded, have)
        if rec is None:
            continue
        comp = rec.component
        url = next((str(r.url) for r in comp.external_references
                    if r.type == ExternalReferenceType.DISTRIBUTION), "")
        index = next((p.value for p in comp.properties if p.name == "secinstall:index"), "")
        found[name] = IndexFile(filename=url.rpartition("/")[2], url=url, hashes={},
                                origin=index or "")
    return found, problems


def _read_fragments(folder: Path) -> tuple[dict[NormalizedName, _Recorded], list[str]]:
    """The newest fragment's component of each distribution (none for one a later
    fragment says was removed and not installed again), and the unreadable ones."""
    from cyclonedx.model.bom import Bom

    from .install import same_version

    found: dict[NormalizedName, _Recorded] = {}
    problems: list[str] = []
    try:
        paths = sorted(p for p in folder.iterdir() if p.name.endswith(".cdx.json"))
    except OSError:
        return found, problems
    for path in paths:  # named by UTC time: later ones are newer
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            bom = Bom.from_json(document)  # type: ignore[attr-defined]
        except Exception as exc:  # a damaged fragment is reported, not fatal
            problems.append(f"{path.name}: {type(exc).__name__}: {exc}"[:300])
            continue
        for prop in bom.metadata.properties:
            if prop.name == "secinstall:removed":
                name, _, version = prop.value.partition("==")
                rec = found.get(canonicalize_name(name))
                if rec is not None and same_version(str(rec.component.version), version):
                    del found[canonicalize_name(name)]
        by_ref = {c.bom_ref.value: canonicalize_name(c.name) for c in bom.components}
        for comp in bom.components:
            key = canonicalize_name(comp.name)
            deps = next((d for d in bom.dependencies if d.ref.value == comp.bom_ref.value), None)
            targets = {by_ref[d.ref.value] for d in (deps.dependencies if deps else ())
                       if d.ref.value in by_ref}
            found[key] = _Recorded(comp, path.name, targets)
    return found, problems


def _read_metadata(path: Path) -> tuple[dict[str, Any], str | None]:
    from .verify.wheel import metadata_json

    try:
        return metadata_json(path.read_text(encoding="utf-8")), None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return {}, f"unreadable {path.name}: {exc}"


# --- building blocks -------------------------------------------------------------------



def dependency_edges(requires: Mapping[NormalizedName, Sequence[str]],
                     extras: Mapping[NormalizedName, Iterable[str]],
                     markers: Mapping[str, str]) -> dict[NormalizedName, set[NormalizedName]]:
    """Who depends on whom among `requires`' keys, by their Requires-Dist evaluated for
    the target's markers; extras count when requested or asked for by another's requirement."""
    active = {name: {canonicalize_name(e) for e in extras.get(name, ())} for name in requires}
    edges: dict[NormalizedName, set[NormalizedName]] = {name: set() for name in requires}
    parsed: dict[NormalizedName, list[tuple[NormalizedName, Requirement]]] = {}
    for name, texts in requires.items():
        for text in texts:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            dep = canonicalize_name(req.name)
            if dep in requires and dep != name:
                parsed.setdefault(name, []).append((dep, req))
    changed = True
    while changed:  # an extra found on one pass can enable requirements seen before it
        changed = False
        for name, reqs in parsed.items():
            for dep, req in reqs:
                if not applies(req, markers, ("", *sorted(active[name]))):
                    continue
                edges[name].add(dep)
                new = {canonicalize_name(e) for e in req.extras} - active[dep]
                if new:
                    active[dep] |= new
                    changed = True
    return edges


def _register(bom: Bom, components: Mapping[NormalizedName, Component],
              edges: Mapping[NormalizedName, set[NormalizedName]]) -> None:
    for name, comp in components.items():
        bom.register_dependency(comp, [components[d] for d in sorted(edges.get(name, ()))
                                       if d in components])


def _target_props(target: Target) -> list[tuple[str, str]]:
    """What the files were installed for: the interpreter, or what pip's --platform,
    --python-version, --implementation and --abi said instead (`target.version` is then
    the given one already)."""
    cross = target.cross
    props = [("secinstall:target:python", str(target.python)),
             ("secinstall:target:python-version", target.python_version),
             ("secinstall:target:implementation",
              cross.implementation if cross and cross.implementation else
              target.implementation),
             ("secinstall:target:kind", target.kind),
             ("secinstall:target:root", str(target.final_path(target.root)))]
    if target.destdir is not None:  # --root DIR: the files are under DIR until packaged
        props.append(("secinstall:target:destdir", str(target.destdir)))
    if cross is not None:
        props += [("secinstall:target:platform", p) for p in cross.platforms]
        props += [("secinstall:target:abi", a) for a in cross.abis]
    return props


def _start(bom: Bom, props: Iterable[tuple[str, str]]) -> None:
    from cyclonedx.model import Property
    from cyclonedx.model.component import Component, ComponentType

    bom.metadata.tools.components.add(Component(
        type=ComponentType.APPLICATION, name="secinstall", version=__version__))
    for name, value in props:
        bom.metadata.properties.add(Property(name=name, value=value))


def _dumps(bom: Bom, indent: int | None = 2) -> str:
    from cyclonedx.output.json import JsonV1Dot6

    return JsonV1Dot6(bom).output_as_string(indent=indent)
