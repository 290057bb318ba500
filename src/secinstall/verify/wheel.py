"""Check a wheel's archive before installing it: members that stay inside the target,
a RECORD that tells the truth, a dist-info that matches the plan, tags that fit, and a
size that is not a decompression bomb. Every problem is collected, then raised once."""

from __future__ import annotations

import posixpath
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.metadata import parse_email
from packaging.utils import canonicalize_name, parse_wheel_filename

from ..errors import WheelError
from ..models import FetchedFile

#: Uncompressed size allowed for one wheel (`--max-unpacked-size` may come later).
MAX_UNPACKED_BYTES = 8 * 1024**3
#: A member that inflates more than this much is a decompression bomb.
MAX_RATIO = 1000

_RAW_TO_JSON = {"classifiers": "classifier", "platforms": "platform",
                "supported_platforms": "supported_platform", "license_files": "license_file"}


@dataclass(frozen=True)
class WheelInfo:
    """What installing needs to know from a checked wheel."""

    metadata: Mapping[str, Any]
    requires_dist: tuple[str, ...]
    #: `.pth` files the wheel installs: they run code at every interpreter start-up.
    pth_files: tuple[str, ...]


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
    if ".." in posixpath.normpath(name).split("/") or name.split("/")[0] == "..":
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
    except ValueError as exc:
        return [f"entry_points.txt: {exc}"]
    for name, _module, _attr, _section in entries:
        if not name or "/" in name or "\\" in name or name.startswith(".") or ":" in name:
            problems.append(f"entry_points.txt: script name {name!r} is a path, not a name")
    return problems


def check_wheel(fetched: FetchedFile, target_tags: tuple[str, ...]) -> WheelInfo:
    """Refuse a wheel that can't be installed safely; return what install needs."""
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
                        and info.file_size > 10 * 1024**2:
                    problems.append(f"{info.filename}: inflates {info.file_size} bytes from "
                                    f"{info.compress_size} (a decompression bomb?)")
            if total > MAX_UNPACKED_BYTES:
                problems.append(f"unpacks to {total} bytes, more than the limit of "
                                f"{MAX_UNPACKED_BYTES}")
            if problems:
                raise WheelError(f"{path.name} is refused: {problems[0]}", details=problems)
            source = WheelFile(zf)
            dist_info = source.dist_info_dir
            dist_name, _, dist_version = dist_info[: -len(".dist-info")].rpartition("-")
            if canonicalize_name(dist_name) != dist.name:
                problems.append(f"its .dist-info directory {dist_info} names another project")
            if _same_version(dist_version, str(version)) is False:
                problems.append(f"its .dist-info directory {dist_info} names another version")
            problems += _data_problems(seen, source.data_dir)
            if "entry_points.txt" in source.dist_info_filenames:
                problems += _entry_point_problems(source.read_dist_info("entry_points.txt"))
            try:
                source.validate_record(validate_contents=True)
            except (InstallerError, ValueError) as exc:
                issues = getattr(exc, "issues", None) or [str(exc)]
                problems.extend(f"RECORD: {issue}" for issue in issues)
            meta = metadata_json(source.read_dist_info("METADATA"))
            pth = tuple(n for n in seen if n.endswith(".pth") and "/" not in n)
    except WheelError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, ValueError,
            InstallerError) as exc:
        raise WheelError(f"{path.name} is not a readable wheel: {exc}") from exc
    if canonicalize_name(str(meta.get("name", ""))) != dist.name:
        problems.append(f"METADATA names {meta.get('name')}, not {dist.name}")
    if _same_version(str(meta.get("version", "")), str(version)) is False:
        problems.append(f"METADATA says version {meta.get('version')}, the file name {version}")
    if problems:
        raise WheelError(f"{path.name} is refused: {problems[0]}", details=problems)
    return WheelInfo(metadata=meta, requires_dist=tuple(meta.get("requires_dist", ())),
                     pth_files=pth)
