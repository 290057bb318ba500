"""Builds small, valid, byte-for-byte reproducible wheels and sdists for tests."""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from packaging.tags import parse_tag
from packaging.utils import canonicalize_name
from packaging.version import Version

# Zip can't store dates before 1980; a fixed one makes the archive reproducible.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _escaped(name: str) -> str:
    """The distribution name as wheel and sdist file names spell it (binary distribution format)."""
    return canonicalize_name(name).replace("-", "_")


def _as_bytes(content: str | bytes) -> bytes:
    return content.encode() if isinstance(content, str) else content


def build_wheel(
    dest: Path,
    name: str,
    version: str,
    *,
    files: dict[str, str | bytes] | None = None,
    requires: Sequence[str] = (),
    console_scripts: dict[str, str] | None = None,
    tag: str = "py3-none-any",
    extra_dist_info: dict[str, str | bytes] | None = None,
    requires_python: str | None = None,
) -> Path:
    """Write `<name>-<version>-<tag>.whl` into `dest` and return its path.

    `files` maps archive paths to contents (default: a package `<name>/__init__.py` holding
    `__version__`). `extra_dist_info` maps paths inside `.dist-info/` to contents; it is
    written last and replaces the generated METADATA, WHEEL or entry_points.txt of the same
    name, and a given RECORD is used verbatim (to build wheels with a broken RECORD).
    """
    escaped = _escaped(name)
    version = str(Version(version))
    dist_info = f"{escaped}-{version}.dist-info"
    if files is None:
        files = {f"{escaped}/__init__.py": f'__version__ = "{version}"\n'}

    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    if requires_python is not None:
        metadata += f"Requires-Python: {requires_python}\n"
    metadata += "".join(f"Requires-Dist: {req}\n" for req in requires)
    purelib = "true" if tag.endswith("-none-any") else "false"
    wheel = f"Wheel-Version: 1.0\nGenerator: secinstall-tests\nRoot-Is-Purelib: {purelib}\n"
    wheel += "".join(f"Tag: {t}\n" for t in sorted(str(t) for t in parse_tag(tag)))
    meta_files: dict[str, str | bytes] = {"METADATA": metadata, "WHEEL": wheel}
    if console_scripts:
        lines = "".join(f"{k} = {v}\n" for k, v in console_scripts.items())
        meta_files["entry_points.txt"] = "[console_scripts]\n" + lines
    meta_files.update(extra_dist_info or {})
    record_override = meta_files.pop("RECORD", None)

    contents = {path: _as_bytes(data) for path, data in files.items()}
    contents.update({f"{dist_info}/{path}": _as_bytes(data) for path, data in meta_files.items()})
    record_path = f"{dist_info}/RECORD"
    if record_override is not None:
        contents[record_path] = _as_bytes(record_override)
    else:
        contents[record_path] = _record(contents, record_path)

    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{escaped}-{version}-{tag}.whl"
    with zipfile.ZipFile(target, "w") as archive:
        for path, data in contents.items():
            info = zipfile.ZipInfo(path, date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return target


def _record(contents: dict[str, bytes], record_path: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for path, data in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        writer.writerow([path, f"sha256={digest}", len(data)])
    writer.writerow([record_path, "", ""])
    return out.getvalue().encode()


def build_sdist(dest: Path, name: str, version: str) -> Path:
    """Write a minimal, reproducible `<name>-<version>.tar.gz` (PKG-INFO, pyproject.toml)."""
    escaped = _escaped(name)
    version = str(Version(version))
    base = f"{escaped}-{version}"
    members = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        "pyproject.toml": '[build-system]\nrequires = ["flit_core"]\n',
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{base}/{member}")
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{base}.tar.gz"
    with target.open("wb") as out, gzip.GzipFile("", "wb", fileobj=out, mtime=0) as gz:
        gz.write(raw.getvalue())
    return target


class WheelMaker(Protocol):
    """The `make_wheel` fixture: `build_wheel` with the destination chosen for you."""

    def __call__(
        self,
        name: str,
        version: str,
        *,
        files: dict[str, str | bytes] | None = None,
        requires: Sequence[str] = (),
        console_scripts: dict[str, str] | None = None,
        tag: str = "py3-none-any",
        extra_dist_info: dict[str, str | bytes] | None = None,
        requires_python: str | None = None,
    ) -> Path: ...
