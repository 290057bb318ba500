"""Check a wheel's archive before installing it: members that stay inside the target,
a RECORD that tells the truth, a dist-info that matches the plan, tags that fit, and a
size that is not a decompression bomb. Every problem is collected, then raised once."""

from __future__ import annotations

import configparser
import csv
import lzma
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.metadata import parse_email
from packaging.utils import canonicalize_name, parse_wheel_filename

from ..errors import WheelError
from ..models import FetchedFile

if TYPE_CHECKING:
    from installer.sources import WheelFile

#: Uncompressed size allowed for one wheel (`--max-unpacked-size` may come later). Read
#: when a wheel is checked, so tests may lower it. zipfile never inflates a member beyond
#: its declared size (it fails the CRC instead), so declared sizes bound the work.
MAX_UNPACKED_BYTES = 8 * 1024**3
#: A member larger than `MIN_BOMB_BYTES` that inflates more than `MAX_RATIO` times is a
#: decompression bomb (deflate tops out near 1030:1).
MAX_RATIO = 1000
MIN_BOMB_BYTES = 10 * 1024**2
#: Hash algorithms a RECORD may use (the wheel spec: sha256 or stronger; no md5, no sha1).
RECORD_HASHES = frozenset({"sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512",
                           "blake2b", "blake2s"})

#: What a damaged or hostile archive makes zipfile and installer raise while reading it.
UNREADABLE = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, OSError, EOFError, KeyError,
               ValueError, NotImplementedError, RuntimeError, csv.Error)

_RAW_TO_JSON = {"classifiers": "classifier", "platforms": "platform",
                "supported_platforms": "supported_platform", "license_files": "license_file"}


@dataclass(frozen=True)
class Member:
    """A file of the archive as its RECORD lists it (hash: `algorithm=urlsafe-b64`)."""

    path: str
    hash: str
    size: int
    executable: bool


@dataclass(frozen=True)
class WheelInfo:
    """What installing needs to know from a checked wheel."""

    metadata: Mapping[str, Any]
    requires_dist: tuple[str, ...]
    #: `.pth` files the wheel installs: they run code at every interpreter start-up.
    pth_files: tuple[str, ...]
    dist_info_dir: str = ""
    data_dir: str = ""
    #: Every file to install, with the hash and size RECORD gives it (RECORD itself, its
    #: signatures and `__pycache__` files are not installed).
    members: tuple[Member, ...] = ()


def metadata_json(text: str) -> dict[str, Any]:
    """Core metadata as PEP 566 JSON (the form pip's installation report uses)."""
    raw, _unparsed = parse_email(text)
    result: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "project_urls" and isinstance(value, dict):
            result["project_url"] = [f"{k}, {v}" for k, v in value.items()]
        else:
            result[_RAW_TO_JSON.get(key, key)] = value
    return result


def _member_problems(name: str) -> str | None:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return f"{name}: absolute path"
    if "\\" in name:
        return f"{name}: backslash in path"
    # Any '..' at all, not only one that survives normpath: `x.data/scripts/../../f`
    # normalises to `f`, yet installs two levels above the scripts directory.
    if ".." in name.split("/"):
        return f"{name}: path escapes the target with '..'"
    return None


def _same_version(a: str, b: str) -> bool | None:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return None if not a else a == b


def _data_problems(names: set[str], data_dir: str) -> list[str]:
    """Files under `<name>.data/` must sit in a known scheme directory (installer only
    finds out while writing, after other files were written)."""
    from installer.utils import SCHEME_NAMES

    problems = []
    for name in sorted(names):
        head, _, rest = name.partition("/")
        if head != data_dir or not rest or name.endswith("/"):
            continue
        scheme = rest.split("/", 1)[0]
        if scheme not in SCHEME_NAMES or "/" not in rest:
            problems.append(f"{name}: not inside a known .data scheme directory "
                            f"({', '.join(SCHEME_NAMES)})")
    return problems


def _entry_point_problems(text: str) -> list[str]:
    """Script names become file names in the scripts directory: no paths allowed."""
    from installer.utils import parse_entrypoints

    problems = []
    try:
        entries = list(parse_entrypoints(text))
    except (ValueError, configparser.Error) as exc:
        return [f"entry_points.txt: not a valid entry points file: {exc}"]
    except (AssertionError, AttributeError):
        # installer asserts (or, under -O, fails on) a script value that isn't module:attr
        return ["entry_points.txt: a console or GUI script is not 'module:attribute'"]
    for name, _module, _attr, _section in entries:
        if not name or "/" in name or "\\" in name or name.startswith(".") or ":" in name:
            problems.append(f"entry_points.txt: script name {name!r} is a path, not a name")
    return problems


def _dist_info_problems(names: set[str], name: str, version: str) -> tuple[str | None, list[str]]:
    """The one `.dist-info` directory, and what is wrong with it (installer would stop at
    the first problem with a less helpful message)."""
    found = sorted({n.split("/", 1)[0] for n in names
                    if n.split("/", 1)[0].endswith(".dist-info") and "/" in n})
    if len(found) != 1:
        return None, [f"it has {len(found)} .dist-info directories "
                      f"({', '.join(found) or 'none'}); a wheel has exactly one"]
    dist_info = found[0]
    dist_name, _, dist_version = dist_info[: -len(".dist-info")].rpartition("-")
    if canonicalize_name(dist_name) != canonicalize_name(name):
        return None, [f"its .dist-info directory {dist_info} names another project "
                      f"than the file name ({name})"]
    if _same_version(dist_version, version) is False:
        return dist_info, [f"its .dist-info directory {dist_info} names another version "
                           f"than the file name ({version})"]
    return dist_info, []


def _record_problems(source: WheelFile, names: set[str], dist_info: str,
                     path: Path, contents: bool = True) -> tuple[list[str], list[Any]]:
    """RECORD must list every file of the archive with its true hash and size, and
    nothing that isn't there (without `contents`, hashes and sizes aren't read). The
    problems, and RECORD's rows (for `_members`)."""
    from installer.exceptions import InstallerError
    from installer.records import InvalidRecordEntry, parse_record_file

    record = f"{dist_info}/RECORD"
    if record not in names:
        return [f"it has no {record}"], []
    try:
        rows = list(parse_record_file(source.read_dist_info("RECORD").splitlines()))
    except (InvalidRecordEntry, ValueError, csv.Error) as exc:
        return [f"RECORD: not a valid RECORD file: {exc}"], []
    # Checked first: installer would hash with whatever RECORD names (md5, or shake_128,
    # whose digest() then fails with a TypeError).
    problems = [f"RECORD: {row[0]} is hashed with {algorithm!r}; a wheel's RECORD uses "
                "sha256 or stronger" for row in rows
                if row[1] and (algorithm := row[1].partition("=")[0]) not in RECORD_HASHES]
    if problems:
        return problems, rows
    try:
        source.validate_record(validate_contents=contents)
    except (InstallerError, ValueError) as exc:
        prefix = f"In {path}, "  # installer names the full path: noise here
        issues = getattr(exc, "issues", None) or [str(exc)]
        problems += [f"RECORD: {str(i).removeprefix(prefix)}" for i in issues]
    files = {n for n in names if not n.endswith("/")}
    problems += [f"RECORD: lists {row[0]}, which is not in the archive"
                 for row in rows if row[0] not in files]
    return problems, rows


def _pth_files(names: set[str], data_dir: str) -> tuple[str, ...]:
    """`.pth` files that land at the top of site-packages, directly or through `.data/`."""
    tops = [f"{data_dir}/purelib/", f"{data_dir}/platlib/"]
    found = []
    for n in sorted(names):
        rest = next((n[len(t):] for t in tops if n.startswith(t)), n)
        if rest.endswith(".pth") and "/" not in rest:
            found.append(n)
    return tuple(found)


def check_wheel(fetched: FetchedFile, target_tags: tuple[str, ...], *,
                contents: bool = True) -> WheelInfo:
    """Refuse a wheel that can't be installed safely; return what install needs.

    `contents=False` skips hashing every member against RECORD (the one costly check),
    for bytes that already passed it: a cached file whose sha256 was checked again."""
    from installer.exceptions import InstallerError
    from installer.sources import WheelFile

    dist = fetched.dist
    path: Path = fetched.path
    problems: list[str] = []
    try:
        name, version, _build, tags = parse_wheel_filename(path.name)
    except ValueError as exc:
        raise WheelError(f"{path.name}: not a valid wheel file name: {exc}") from exc
    if canonicalize_name(name) != dist.name or str(version) != str(dist.version):
        problems.append(f"file name says {name} {version}, the plan says "
                        f"{dist.name} {dist.version}")
    if target_tags and not {str(t) for t in tags} & set(target_tags):
        problems.append(f"its tags ({', '.join(sorted(map(str, tags)))}) don't fit the target")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            seen: set[str] = set()
            total = 0
            for info in infos:
                if problem := _member_problems(info.filename):
                    problems.append(problem)
                if info.filename in seen:
                    problems.append(f"{info.filename}: duplicate member")
                seen.add(info.filename)
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    problems.append(f"{info.filename}: symbolic link member")
                total += info.file_size
                if info.compress_size and info.file_size / info.compress_size > MAX_RATIO \
                        and info.file_size > MIN_BOMB_BYTES:
                    problems.append(f"{info.filename}: inflates {info.file_size} bytes from "
                                    f"{info.compress_size} (a decompression bomb?)")
            if total > MAX_UNPACKED_BYTES:
                problems.append(f"unpacks to {total} bytes, more than the limit of "
                                f"{MAX_UNPACKED_BYTES}")
            dist_info, dist_info_problems = _dist_info_problems(seen, name, str(version))
            problems += dist_info_problems
            if problems or dist_info is None:
                raise WheelError(f"{path.name} is refused: {problems[0]}", details=problems)
            source = WheelFile(zf)
            problems += _data_problems(seen, source.data_dir)
            if f"{dist_info}/entry_points.txt" in seen:
                problems += _entry_point_problems(source.read_dist_info("entry_points.txt"))
            record_problems, rows = _record_problems(source, seen, dist_info, path, contents)
            problems += record_problems
            if f"{dist_info}/METADATA" not in seen:
                raise WheelError(f"{path.name} is refused: it has no {dist_info}/METADATA",
                                 details=[*problems, f"it has no {dist_info}/METADATA"])
            meta = metadata_json(source.read_dist_info("METADATA"))
            pth = _pth_files(seen, source.data_dir)
            members = () if problems else _members(rows, infos, dist_info)
            data_dir = source.data_dir
    except WheelError:
        raise
    except (*UNREADABLE, InstallerError) as exc:
        raise WheelError(f"{path.name} is not a readable wheel: {exc}") from exc
    if canonicalize_name(str(meta.get("name", ""))) != dist.name:
        problems.append(f"METADATA names {meta.get('name')}, not {dist.name}")
    if _same_version(str(meta.get("version", "")), str(version)) is False:
        problems.append(f"METADATA says version {meta.get('version')}, the file name {version}")
    if problems:
        raise WheelError(f"{path.name} is refused: {problems[0]}", details=problems)
    return WheelInfo(metadata=meta, requires_dist=tuple(meta.get("requires_dist", ())),
                     pth_files=pth, dist_info_dir=dist_info, data_dir=data_dir,
                     members=members)


def _members(record: list[Any], infos: list[zipfile.ZipInfo],
             dist_info: str) -> tuple[Member, ...]:
    """The files to install, from RECORD's rows, already found complete and well-formed."""
    rows = {row[0]: row for row in record}
    skip = {f"{dist_info}/RECORD", f"{dist_info}/RECORD.jws", f"{dist_info}/RECORD.p7s"}
    members = []
    for info in infos:
        name = info.filename
        if name.endswith("/") or name in skip or "__pycache__" in name.split("/")[:-1]:
            continue
        _path, hash_, size = rows[name]
        members.append(Member(name, hash_, int(size),
                              bool((info.external_attr >> 16) & 0o111)))
    return tuple(members)
