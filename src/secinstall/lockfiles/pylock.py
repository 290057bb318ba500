"""PEP 751 lock files (`pylock.toml`): select a target's wheels from one into a `Plan` (no
resolver runs), and write one from a verified resolution."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import sys
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from packaging.markers import Environment
from packaging.pylock import (
    Package,
    PackageArchive,
    PackageDirectory,
    PackageSdist,
    PackageVcs,
    PackageWheel,
    Pylock,
    PylockSelectError,
    PylockValidationError,
    is_valid_pylock_path,
)
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, parse_tag
from packaging.utils import NormalizedName, canonicalize_name, parse_wheel_filename

from ..client import without_credentials
from ..errors import ConfigError, RequirementsError, ResolveError, SdistRefusedError
from ..files import write_file
from ..models import AttestationEvidence, IndexFile, Plan, PlannedDist, Publisher
from ..resolve import SDIST_HINT
from ..target import Target
from ._toml import toml_dumps
from .requirements import STRONG_HASHES, target_line, verified_dists

if TYPE_CHECKING:
    from ..pipeline import Outcome

__all__ = ["is_lock_path", "load_pylock", "plan_from_pylock", "pylock_text", "write_pylock"]

#: PEP 740 publisher kinds (spelt as pypi-attestations spells them) → our kind, and the
#: identity's keys → `Publisher` fields. The first key is the identity itself.
_KINDS: dict[str, tuple[str, dict[str, str]]] = {
    "github": ("GitHub", {"repository": "repository", "workflow": "workflow",
                          "environment": "environment"}),
    "gitlab": ("GitLab", {"repository": "repository", "workflow_filepath": "workflow",
                          "workflow-filepath": "workflow", "environment": "environment"}),
    "google": ("Google", {"email": "repository"}),
}


def is_lock_path(path: str | Path) -> bool:
    """True for the file names PEP 751 gives lock files: `pylock.toml`, `pylock.NAME.toml`."""
    return is_valid_pylock_path(Path(path))


# -- reading ---------------------------------------------------------------------------------


def load_pylock(path: Path) -> Pylock:
    """Read and validate a PEP 751 lock file."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
    try:
        raw = tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise RequirementsError(f"can't read the lock file {path}: {exc.strerror or exc}") \
            from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RequirementsError(f"{path} is not a valid TOML file: {exc}") from exc
    try:
        return Pylock.from_dict(raw)
    except PylockValidationError as exc:
        raise RequirementsError(
            f"{path} is not a valid PEP 751 lock file: {_located(exc, raw)}") from exc


def _located(exc: PylockValidationError, raw: Mapping[str, Any]) -> str:
    """The validation message, naming the package that `packages[N]` in its context is."""
    context = exc.context or ""
    found = re.match(r"packages\[(\d+)\]", context)
    name = None
    if found:
        packages = raw.get("packages")
        index = int(found.group(1))
        if isinstance(packages, list) and index < len(packages) \
                and isinstance(packages[index], dict):
            name = packages[index].get("name")
    where = f" at {context}" if context else ""
    return f"{exc.message}{where}" + (f" (package {name!r})" if isinstance(name, str) else "")


def plan_from_pylock(
    path: Path, target: Target, *, extras: Collection[str] = (),
    dependency_groups: Collection[str] | None = None,
) -> tuple[Plan, dict[NormalizedName, tuple[Publisher, ...]]]:
    """The wheels `path` locks for `target`, and the publishers its attestation identities pin.

    Packages are selected as PEP 751 says (markers with the target's environment and the
    requested extras and dependency groups, wheels by the target's tags); every selected
    package must be a wheel with a sha256, sha384 or sha512 hash, which becomes its pin.
    """
    where = str(path)
    lock = load_pylock(path)
    wanted_extras, groups = _requested(lock, extras, dependency_groups, where)
    env = cast(Environment, dict(target.markers))
    tags = [tag for text in target.tags for tag in sorted(parse_tag(text), key=str)]
    try:
        selected = list(lock.select(environment=env, tags=tags, extras=wanted_extras,
                                    dependency_groups=groups))
    except PylockSelectError as exc:
        raise _select_error(lock, exc, target, tags, wanted_extras, groups, where) from exc

    via = _via(selected)
    items, pins = [], {}
    problems: list[str] = []
    source_only: list[str] = []
    for package, source in selected:
        if not isinstance(source, PackageWheel):
            source_only.append(_not_a_wheel(package, source, target))
            continue
        hashes, bad = _strong_hashes(source.hashes)
        if bad:
            problems.append(f"{package.name}: {source.filename} {bad}")
        version = str(package.version or parse_wheel_filename(source.filename)[1])
        file = IndexFile(
            filename=source.filename,
            url=source.url or Path(os.path.abspath(path.parent / (source.path or ""))).as_uri(),
            hashes=hashes,
            requires_python=str(package.requires_python) if package.requires_python else None,
            upload_time=_iso(source.upload_time),
            size=source.size,
            origin=where,
            hashes_from="lock",
        )
        items.append(PlannedDist(
            name=package.name, version=version, file=file,
            pinned={algo: frozenset({digest}) for algo, digest in hashes.items()},
            requested=True, via=tuple(via.get(package.name, ())),
        ))
        publishers = []
        for number, identity in enumerate(package.attestation_identities or (), 1):
            try:
                publishers.append(_publisher(identity))
            except ValueError as exc:
                problems.append(f"{package.name}: attestation identity {number}: {exc}")
        if publishers:
            pins[package.name] = tuple(publishers)
    if source_only and not problems:
        raise SdistRefusedError(f"{where}: {'; '.join(source_only)}; {SDIST_HINT}",
                                details=source_only)
    problems += source_only
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise RequirementsError(f"{where} can't be installed from: {problems[0]}{more}",
                                details=problems)
    return Plan(items=tuple(items), resolver="lock", require_hashes=True), pins


def _requested(lock: Pylock, extras: Collection[str], groups: Collection[str] | None,
               where: str) -> tuple[list[str], list[str] | None]:
    """The extras and groups to select with, as the lock spells them; refuses unknown ones."""
    offered_extras = {canonicalize_name(e): e for e in lock.extras or ()}
    offered_groups = {canonicalize_name(g): g for g in lock.dependency_groups or ()}
    problems = []
    for kind, asked, offered in (("extra", extras, offered_extras),
                                 ("dependency group", groups or (), offered_groups)):
        unknown = sorted(a for a in asked if canonicalize_name(a) not in offered)
        if unknown:
            listed = ", ".join(sorted(offered.values())) or "none"
            problems.append(f"{where} has no {kind} {', '.join(unknown)} (it has: {listed})")
    if problems:
        raise RequirementsError("; ".join(problems))
    chosen_groups = None if groups is None else \
        [offered_groups[canonicalize_name(g)] for g in groups]
    return [offered_extras[canonicalize_name(e)] for e in extras], chosen_groups


def _describe(target: Target) -> str:
    m = target.markers
    return f"Python {target.python_version} on {m.get('sys_platform')} " \
        f"{m.get('platform_machine')}, best tag {target.tags[0] if target.tags else 'none'}"


def _select_error(lock: Pylock, exc: PylockSelectError, target: Target, tags: Sequence[Tag],
                  extras: Sequence[str], groups: Sequence[str] | None,
                  where: str) -> ResolveError:
    """A message for why the lock can't serve the target, naming every unfit package."""
    env = {**target.markers, "extras": frozenset(extras),
           "dependency_groups": frozenset((lock.default_groups or ()) if groups is None
                                          else groups)}
    wanted = set(tags)
    unfit = [
        f"{p.name} {p.version or ''}: {', '.join(w.filename for w in p.wheels or ())}".strip()
        for p in lock.packages
        if (p.marker is None or p.marker.evaluate(env, context="lock_file"))  # type: ignore[arg-type]
        and p.wheels and p.sdist is None
        and not any(parse_wheel_filename(w.filename)[3] & wanted for w in p.wheels)
    ]
    if unfit:
        names = ", ".join(line.split(":", 1)[0] for line in unfit)
        return ResolveError(f"{where}: no wheel in the lock fits the target "
                            f"({_describe(target)}) for {names}; the lock has "
                            + "; ".join(unfit), details=unfit)
    text = str(exc)
    if lock.environments and "environments" in text:
        text += ": " + " or ".join(f"'{m}'" for m in lock.environments)
    return ResolveError(f"{where} can't be used for the target ({_describe(target)}): {text}")


def _not_a_wheel(package: Package, source: object, target: Target) -> str:
    name = f"{package.name} {package.version or ''}".strip()
    if isinstance(source, PackageSdist):
        fit = ""
        if package.wheels:
            fit = (f" (none of its wheels fits the target, {_describe(target)}: "
                   + ", ".join(w.filename for w in package.wheels) + ")")
        return f"{name} is locked only as a source distribution, {source.filename}{fit}"
    if isinstance(source, PackageVcs):
        return f"{name} comes from a VCS checkout ({source.url or source.path})"
    if isinstance(source, PackageDirectory):
        return f"{name} comes from a local directory ({source.path})"
    if isinstance(source, PackageArchive):
        return f"{name} is a direct archive reference ({source.url or source.path}), " \
            "which secinstall does not install from a lock file"
    return f"{name}: unsupported source {type(source).__name__}"


def _strong_hashes(hashes: Mapping[str, str]) -> tuple[dict[str, str], str | None]:
    """The sha256/sha384/sha512 hashes (lower-case hex), or why there are none usable."""
    lengths = {"sha256": 64, "sha384": 96, "sha512": 128}
    found = {}
    for algo, value in hashes.items():
        name = algo.lower()
        if name not in STRONG_HASHES:
            continue  # md5, sha1 and others can't be relied on to pin a file
        digest = value.lower()
        if len(digest) != lengths[name] or not re.fullmatch(r"[0-9a-f]+", digest):
            return {}, (f"has a malformed {algo} hash {value!r} (expected "
                        f"{lengths[name]} hexadecimal characters)")
        found[name] = digest
    if not found:
        return {}, (f"has no sha256, sha384 or sha512 hash (only {', '.join(hashes)}), so "
                    "it can't be checked")
    return found, None


def _iso(when: dt.datetime | None) -> str | None:
    if when is None:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc)
    return when.isoformat().replace("+00:00", "Z")


def _via(selected: Sequence[tuple[Package, object]]) -> dict[str, list[str]]:
    """For each package, the selected packages whose `dependencies` name it."""
    parents: dict[str, list[str]] = {}
    for package, _ in selected:
        for dep in package.dependencies or ():
            name = dep.get("name")
            if isinstance(name, str):
                parents.setdefault(canonicalize_name(name), []).append(
                    f"{package.name}=={package.version}" if package.version else package.name)
    return parents


def _publisher(identity: Mapping[str, Any]) -> Publisher:
    """A PEP 751 attestation identity (a PEP 740 publisher object) as a publisher pin."""
    from ..verify.attestations import parse_publisher

    kind = str(identity["kind"])
    if kind.lower() not in _KINDS:
        known = ", ".join(spelt for spelt, _ in _KINDS.values())
        raise ValueError(f"unsupported kind {kind!r} (secinstall knows {known})")
    fields = _KINDS[kind.lower()][1]
    values: dict[str, str] = {}
    for key, value in identity.items():
        if key == "kind":
            continue
        if key not in fields:
            # An unknown key may narrow who may publish; ignoring it would widen the pin.
            raise ValueError(f"unknown key {key!r} for kind {kind} (known: "
                             f"{', '.join(fields)})")
        if not isinstance(value, str) or not value or "," in value:
            raise ValueError(f"{key} must be a non-empty string without commas, got {value!r}")
        values[fields[key]] = value
    if "repository" not in values:
        raise ValueError(f"a {kind} identity needs {next(iter(fields))!r}")
    spec = f"{kind.lower()}:{values.pop('repository')}" + "".join(
        f",{k}={v}" for k, v in values.items())
    try:
        return parse_publisher(spec)
    except ConfigError as exc:
        raise ValueError(exc.message) from exc


# -- writing ---------------------------------------------------------------------------------


def pylock_text(outcome: Outcome, *, requires_python: str | None = None,
                created_by: str = "secinstall", indexes: Collection[str] = ()) -> str:
    """The PEP 751 lock file for `outcome` (a verified run, usually `--dry-run`).

    Each distribution is locked to the one wheel that was verified, with the hashes
    computed while downloading it; `indexes` are the index URLs a file's origin must be
    among to be recorded as the package's `index`.
    """
    target = outcome.target
    packages = []
    names = {v.dist.name for v in outcome.verified}
    for v in verified_dists(outcome, "a lock file"):
        dist, fetched = v.dist, v.fetched
        entry: dict[str, Any] = {"name": dist.name, "version": dist.version}
        if dist.file.requires_python:
            # An index's invalid data-requires-python is not worth failing the lock for.
            with contextlib.suppress(InvalidSpecifier):
                entry["requires-python"] = str(SpecifierSet(dist.file.requires_python))
        info = outcome.wheel_info.get(dist.name)
        deps = _dependencies(info.requires_dist if info else (), dist, target, names)
        if deps:
            entry["dependencies"] = [{"name": n} for n in deps]
        if dist.file.origin in indexes:
            entry["index"] = without_credentials(dist.file.origin)
        wheel: dict[str, Any] = {"name": dist.file.filename,
                                 "url": without_credentials(dist.file.url),
                                 "size": fetched.size}
        uploaded = _parse_time(dist.file.upload_time)
        if uploaded is not None:
            wheel["upload-time"] = uploaded
        wheel["hashes"] = {a: h for a, h in sorted(fetched.hashes.items())
                           if a in STRONG_HASHES}
        entry["wheels"] = [wheel]
        identity = _identity(v.attestation)
        if identity:
            entry["attestation-identities"] = [identity]
        packages.append(entry)
    lock = {
        "lock-version": "1.0",
        "created-by": created_by,
        "requires-python": requires_python or ">={}.{}".format(*target.version[:2]),
        "packages": packages,
    }
    header = (f"# Written by {created_by} from a verified resolution for "
              f"{target_line(outcome)}.\n")
    return header + toml_dumps(lock)


def write_pylock(outcome: Outcome, path: Path, *, requires_python: str | None = None,
                 created_by: str = "secinstall", indexes: Collection[str] = ()) -> None:
    """Write `pylock_text(outcome, ...)` to `path` (replacing it in one step)."""
    write_file(path, pylock_text(outcome, requires_python=requires_python,
                                 created_by=created_by, indexes=indexes), RequirementsError)


def _dependencies(requires: Sequence[str], dist: PlannedDist, target: Target,
                  locked: Collection[str]) -> list[str]:
    """The locked packages among `dist`'s requirements that apply to the target."""
    env = dict(target.markers)
    found = set()
    for text in requires:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        name = canonicalize_name(req.name)
        if name in locked and (req.marker is None or any(
                req.marker.evaluate({**env, "extra": e})
                for e in ("", *dist.requested_extras))):
            found.add(name)
    return sorted(found)


def _parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None  # the upload time is informative only
    return when.replace(tzinfo=dt.timezone.utc) if when.tzinfo is None else when


def _identity(evidence: AttestationEvidence | None) -> dict[str, str] | None:
    """The verified publisher as a PEP 751 attestation identity (None: none, or not a kind
    PEP 740 defines, such as a pinned e-mail signer)."""
    publisher = evidence.publisher if evidence else None
    if publisher is None or publisher.kind not in _KINDS:
        return None
    spelt, fields = _KINDS[publisher.kind]
    identity, written = {"kind": spelt}, set()
    for key, attr in fields.items():  # the first spelling of each field is pypi-attestations'
        value = getattr(publisher, attr)
        if value and attr not in written:
            identity[key] = value
            written.add(attr)
    return identity
