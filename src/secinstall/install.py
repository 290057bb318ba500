"""Install verified wheels with pypa `installer`, inside a transaction: old versions are
moved aside by their RECORD, new files are journaled as they are written, bytecode is
compiled, and only then is the transaction committed."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess  # nosec B404 - runs the target interpreter to compile bytecode
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from packaging.utils import NormalizedName, canonicalize_name

from .errors import InstallError, SecinstallError
from .models import InstalledDist, VerifiedDist
from .target import Target
from .transaction import Transaction

INSTALLER_NAME = b"secinstall\n"
#: Files per bytecode-compiling process: fewer are compiled in-process (a process costs
#: about as much to start as compiling 100 files).
PYC_PER_WORKER = 150
_COMPILE = ("import sys, py_compile\n"
            "for p in sys.stdin.buffer.read().decode('utf-8', 'surrogateescape').splitlines():\n"
            "    try: py_compile.compile(p, doraise=True, quiet=2)\n"
            "    except Exception: pass\n")


def find_installed(target: Target) -> dict[NormalizedName, InstalledDist]:
    """Distributions present in the target, by normalised name."""
    found: dict[NormalizedName, InstalledDist] = {}
    for site in target.site_dirs:
        try:
            entries = list(os.scandir(site))
        except OSError:
            continue
        for entry in entries:
            if not entry.name.endswith(".dist-info") or not entry.is_dir():
                continue
            stem = entry.name[: -len(".dist-info")]
            name, _, version = stem.partition("-")
            if not version:
                continue
            installer = ""
            with contextlib.suppress(OSError):
                installer = (Path(entry.path) / "INSTALLER").read_text(encoding="utf-8").strip()
            key = canonicalize_name(name)
            found.setdefault(key, InstalledDist(key, version, Path(entry.path), installer))
    return found


def same_version(a: str, b: str) -> bool:
    """Whether two version strings name one version (PEP 440 when both parse)."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def _record_paths(dist: InstalledDist) -> list[Path]:
    record = dist.dist_info / "RECORD"
    try:
        text = record.read_text(encoding="utf-8")
    except OSError as exc:
        raise InstallError(
            f"can't uninstall {dist.name} {dist.version}: no readable RECORD in "
            f"{dist.dist_info} ({exc.strerror or exc})",
        ) from exc
    site = dist.dist_info.parent
    paths = []
    for row in csv.reader(io.StringIO(text)):
        if row and row[0]:
            paths.append(Path(os.path.normpath(site / row[0])))
    return paths


def remove_distribution(txn: Transaction, dist: InstalledDist, target: Target) -> list[str]:
    """Move every file of `dist` (by its RECORD) aside; returns warnings."""
    warnings = []
    root = os.path.normpath(target.root)
    paths = _record_paths(dist)
    pyc: list[Path] = []
    for p in paths:
        if p.suffix == ".py":
            cache = p.parent / "__pycache__"
            if cache.is_dir():
                pyc.extend(cache.glob(f"{p.stem}.*.pyc"))
    dirs: set[Path] = set()
    for p in [*paths, *pyc, *sorted(dist.dist_info.rglob("*"))]:
        if os.path.commonpath([root, str(p)]) != root:
            warnings.append(f"{dist.name}: RECORD names {p}, outside the environment; left alone")
            continue
        if p.is_symlink() or p.is_file():
            txn.move_aside(p)
            dirs.add(p.parent)
    dirs.add(dist.dist_info)
    # Remove directories left empty, deepest first (never the scheme roots themselves).
    keep = {os.path.normpath(v) for v in target.scheme.values()} | {root}
    for d in sorted(dirs, key=lambda x: len(x.parts), reverse=True):
        while os.path.normpath(d) not in keep and d.is_dir() and not any(d.iterdir()):
            txn.remove_dir(d)
            d = d.parent
    return warnings


def _destination_class() -> type:
    from installer.destinations import SchemeDictionaryDestination
    from installer.records import RecordEntry
    from installer.utils import Scheme

    @dataclass
    class JournaledDestination(SchemeDictionaryDestination):
        """installer's destination, journaling every file and directory it creates."""

        txn: Transaction | None = None
        cache_tag: str | None = None
        compiled: list[Path] = field(default_factory=list)

        def write_to_fs(self, scheme: Scheme, path: str, stream: BinaryIO,
                        is_executable: bool) -> RecordEntry:
            assert self.txn is not None  # noqa: S101  # nosec B101 - set by the constructor
            target_path = self._path_with_destdir(scheme, path)
            if target_path.is_symlink() or target_path.exists():
                if target_path.is_dir():
                    raise InstallError(f"can't write {target_path}: a directory is there")
                self.txn.move_aside(target_path)
            self.txn.make_dirs(target_path.parent)
            self.txn.will_create(target_path)
            return super().write_to_fs(scheme, path, stream, is_executable)

        def finalize_installation(self, scheme: Scheme, record_file_path: str,
                                  records: Iterable[tuple[Scheme, RecordEntry]]) -> None:
            entries = list(records)
            if self.cache_tag:
                # pip lists the bytecode in RECORD too, so that uninstalling removes it.
                for file_scheme, rec in list(entries):
                    if file_scheme in ("purelib", "platlib") and rec.path.endswith(".py"):
                        head, _, tail = rec.path.rpartition("/")
                        pyc = f"{tail[:-3]}.{self.cache_tag}.pyc"
                        rel = f"{head}/__pycache__/{pyc}" if head else f"__pycache__/{pyc}"
                        entries.append((file_scheme, RecordEntry(rel, None, None)))
                        self.compiled.append(Path(self.scheme_dict[file_scheme], rec.path))
            super().finalize_installation(scheme, record_file_path, entries)

    return JournaledDestination


def _additional_metadata(v: VerifiedDist) -> dict[str, bytes]:
    extra = {"INSTALLER": INSTALLER_NAME}
    if v.dist.requested:
        extra["REQUESTED"] = b""
    if v.dist.is_direct:
        direct = {"url": v.dist.file.url,
                  "archive_info": {"hashes": {"sha256": v.fetched.sha256}}}
        extra["direct_url.json"] = json.dumps(direct, sort_keys=True).encode()
    return extra


def _script_kind() -> str:
    if os.name != "nt":
        return "posix"
    import platform

    machine = platform.machine().lower()
    return "win-arm64" if machine in ("arm64", "aarch64") else "win-amd64"


def compile_bytecode(txn: Transaction, target: Target, sources: Sequence[Path]) -> None:
    """Compile `sources` with the target's interpreter version (its magic number)."""
    if not sources or not target.cache_tag:
        return
    for src in sources:
        # py_compile would create a missing __pycache__ itself, unjournaled: a rollback
        # would then leave it behind.
        txn.make_dirs(src.parent / "__pycache__")
        txn.will_create(src.parent / "__pycache__" / f"{src.stem}.{target.cache_tag}.pyc")
    import importlib.util

    same = target.is_current or (target.cache_tag == sys.implementation.cache_tag
                                 and target.magic == importlib.util.MAGIC_NUMBER.hex())
    workers = min(os.cpu_count() or 1, 4, len(sources) // PYC_PER_WORKER)
    if same and workers <= 1:
        import py_compile

        for src in sources:
            # like pip: a file that doesn't compile is still installed
            with contextlib.suppress(py_compile.PyCompileError, SyntaxError, ValueError):
                py_compile.compile(str(src), doraise=True, quiet=2)
        return
    # In parallel, in processes of the target interpreter (its magic number; the GIL
    # makes threads useless here). compileall -j does this for directories only.
    chunks = [sources[i::max(1, workers)] for i in range(max(1, workers))]
    procs = [subprocess.Popen(  # noqa: S603  # nosec B603 - argument list, no shell
        [str(target.python), "-I", "-c", _COMPILE], stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in chunks]
    for proc, chunk in zip(procs, chunks, strict=True):
        assert proc.stdin is not None  # noqa: S101  # nosec B101 - PIPE above
        proc.stdin.write("\n".join(map(str, chunk)).encode("utf-8", "surrogateescape"))
        proc.stdin.close()
    failed = []
    for proc in procs:
        assert proc.stderr is not None  # noqa: S101  # nosec B101 - PIPE above
        err = proc.stderr.read().decode("utf-8", "replace")
        proc.stderr.close()
        if proc.wait() != 0:
            failed.append(err.strip()[-500:])
    if failed:
        raise InstallError(f"compiling bytecode with {target.python} failed: {failed[0]}")


def install_wheels(txn: Transaction, target: Target, wheels: Sequence[VerifiedDist],
                   replace: Sequence[InstalledDist], *,
                   compile_bytecode_: bool = True) -> list[str]:
    """Within `txn`: remove `replace`, install `wheels`, compile; returns warnings."""
    from installer import install
    from installer.exceptions import InstallerError
    from installer.sources import WheelFile

    warnings: list[str] = []
    for old in replace:
        warnings += remove_distribution(txn, old, target)
    destination_cls = _destination_class()
    compiled: list[Path] = []
    for v in wheels:
        dest = destination_cls(
            scheme_dict=dict(target.scheme), interpreter=str(target.python),
            script_kind=_script_kind(), txn=txn,
            cache_tag=target.cache_tag if compile_bytecode_ else None,
        )
        try:
            with WheelFile.open(v.fetched.path) as source:
                install(source, dest, _additional_metadata(v))
        except SecinstallError as exc:
            # Raised by our destination (e.g. a directory in the way): name the wheel too.
            raise InstallError(
                f"installing {v.fetched.path.name} failed: {exc.message}",
                details=exc.details,
            ) from exc
        except (InstallerError, ValueError, OSError) as exc:
            raise InstallError(
                f"installing {v.fetched.path.name} failed: {exc}",
            ) from exc
        compiled += dest.compiled
    if compile_bytecode_:
        compile_bytecode(txn, target, compiled)
    return warnings
