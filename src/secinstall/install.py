"""Install verified wheels with pypa `installer`, inside a transaction: old versions are
moved aside by their RECORD; the files of each verified, unpacked wheel (`unpack`) and
their bytecode are linked into place, each journaled first; only then is the transaction
committed."""

from __future__ import annotations

import contextlib
import csv
import errno
import functools
import io
import json
import os
import posixpath
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

from packaging.utils import NormalizedName, canonicalize_name

from .errors import InstallError, SecinstallError
from .files import make_executable
from .models import InstalledDist, VerifiedDist
from .target import Target
from .transaction import Transaction
from .unpack import Unpacked
from .verify.wheel import Member

INSTALLER_NAME = b"secinstall\n"


def find_installed(target: Target, *, satisfying: bool = False,
                   ) -> dict[NormalizedName, InstalledDist]:
    """Distributions present in the target, by normalised name. With `satisfying`, those
    that satisfy a requirement as pip counts them (`Target.satisfying_dirs`: also the
    interpreter's own site-packages with `--user`; the final paths, not those under DIR,
    with `--root DIR`).

    A distribution that setup.py or an old pip installed has an `.egg-info` (a directory,
    or a file for distutils) instead, and no RECORD: it counts as installed, as in pip, and
    what would remove it (an upgrade, `uninstall`) refuses, knowing none of its files."""
    found: dict[NormalizedName, InstalledDist] = {}
    for site in target.satisfying_dirs if satisfying else target.site_dirs:
        try:
            entries = sorted(os.scandir(site), key=lambda e: e.name.endswith(".egg-info"))
        except OSError:
            continue
        for entry in entries:
            if entry.name.endswith(".dist-info") and entry.is_dir():
                # name-version.dist-info
                name, _, version = entry.name[: -len(".dist-info")].partition("-")
            elif entry.name.endswith(".egg-info"):
                # name-version[-pyX.Y].egg-info; without a version, a develop install's
                name, _, rest = entry.name[: -len(".egg-info")].partition("-")
                version = rest.partition("-")[0]
            else:
                continue
            if not version:
                continue
            installer = ""
            with contextlib.suppress(OSError):
                installer = (Path(entry.path) / "INSTALLER").read_text(encoding="utf-8").strip()
            key = canonicalize_name(name)
            found.setdefault(key, InstalledDist(key, version, Path(entry.path), installer))
    return found


def metadata_path(dist: InstalledDist) -> Path:
    """Where an installed distribution's core metadata is: `METADATA` in a `.dist-info`,
    `PKG-INFO` in an `.egg-info` directory, or the `.egg-info` file itself."""
    if dist.dist_info.suffix != ".egg-info":
        return dist.dist_info / "METADATA"
    return dist.dist_info / "PKG-INFO" if dist.dist_info.is_dir() else dist.dist_info


def installed_requires(dist: InstalledDist) -> tuple[str, ...]:
    """The Requires-Dist of an installed distribution (none if its METADATA can't be
    read)."""
    from packaging.metadata import parse_email

    try:
        raw, _ = parse_email(metadata_path(dist).read_bytes())
    except (OSError, ValueError):
        return ()
    return tuple(raw.get("requires_dist", ()))


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
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        if dist.dist_info.suffix == ".egg-info":
            why = ("installed by setup.py or an old pip, which keep no list of its files; "
                   f"remove it with the tool that installed it ({dist.installer or 'pip'} "
                   f"uninstall {dist.name}) first")
        raise InstallError(
            f"can't uninstall {dist.name} {dist.version}: no readable RECORD in "
            f"{dist.dist_info} ({why})",
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


@functools.cache  # made once, not for every wheel: making a dataclass takes a while
def _destination_class() -> type:
    from installer.destinations import SchemeDictionaryDestination
    from installer.records import Hash, RecordEntry
    from installer.utils import Scheme, copyfileobj_with_hashing

    @dataclass
    class JournaledDestination(SchemeDictionaryDestination):
        """installer's destination, journaling every file and directory it creates, and
        linking (or copying) files out of the unpacked cache instead of writing them."""

        txn: Transaction | None = None
        linker: Linker | None = None
        #: Files already put in place (the wheel's plain files): listed in RECORD too.
        placed: list[tuple[Scheme, RecordEntry]] = field(default_factory=list)
        #: The metadata this install wrote, by content, shared by the wheels' destinations:
        #: the same bytes again (every wheel's INSTALLER and REQUESTED) are a hard link to
        #: the first file. A new file costs far more than a link on some filesystems
        #: (measured here: 0.5 ms against 9 us, 6% of a warm install).
        written: dict[bytes, Path] = field(default_factory=dict)
        #: The scripts written, at their final paths (`--root`'s DIR left out).
        scripts: list[str] = field(default_factory=list)

        def write_to_fs(self, scheme: Scheme, path: str, stream: BinaryIO,
                        is_executable: bool) -> RecordEntry:
            assert self.txn is not None  # noqa: S101  # nosec B101 - set by the constructor
            assert self.linker is not None  # noqa: S101  # nosec B101 - likewise
            target_path = self._path_with_destdir(scheme, path)
            if scheme == "scripts":
                self.scripts.append(os.path.join(self.scheme_dict[scheme], path))
            _make_room(self.txn, target_path)
            if isinstance(stream, TreeFile) and not stream.opened:
                self.linker.place(stream.path, target_path, is_executable)
                algorithm, _, value = stream.member.hash.partition("=")
                return RecordEntry(path, Hash(algorithm, value), stream.member.size)
            if is_executable:  # a script: its own file, with its own mode
                return super().write_to_fs(scheme, path, stream, is_executable)
            data = stream.read()  # generated metadata, in memory already
            first = self.written.get(data)
            if first is not None and self.linker.mode == "hardlink":
                with contextlib.suppress(OSError):  # e.g. too many links: written instead
                    os.link(first, target_path)
                    digest, size = copyfileobj_with_hashing(io.BytesIO(data), io.BytesIO(),
                                                            self.hash_algorithm)
                    return RecordEntry(path, Hash(self.hash_algorithm, digest), size)
            entry = super().write_to_fs(scheme, path, io.BytesIO(data), is_executable)
            self.written.setdefault(data, target_path)
            return entry

        def finalize_installation(self, scheme: Scheme, record_file_path: str,
                                  records: Iterable[tuple[Scheme, RecordEntry]]) -> None:
            super().finalize_installation(scheme, record_file_path,
                                          [*self.placed, *records])

    return JournaledDestination


def _make_room(txn: Transaction, path: Path) -> None:
    """Journal the creation of `path`, moving aside what is there (restored on undo)."""
    if path.is_symlink() or path.exists():
        if path.is_dir():
            raise InstallError(f"can't write {path}: a directory is there")
        txn.move_aside(path)
    txn.make_dirs(path.parent)
    txn.will_create(path)


def _place_all(txn: Transaction, linker: Linker,
               files: Sequence[tuple[str, str, bool]]) -> None:
    """Put many files of the unpacked cache in place: (source, destination, executable).
    What is in the way is moved aside first, then every creation is journaled in one
    write (installer's file-by-file path costs ten times as much per file)."""
    for _source, dest, _executable in files:
        if os.path.lexists(dest):
            if os.path.isdir(dest) and not os.path.islink(dest):
                raise InstallError(f"can't write {dest}: a directory is there")
            txn.move_aside(dest)
    txn.make_dirs_many({Path(d) for d in {os.path.dirname(dest) for _s, dest, _e in files}})
    txn.will_create_many([dest for _s, dest, _e in files])
    for source, dest, executable in files:
        linker.place(source, dest, executable)


class TreeFile(io.RawIOBase):
    """A member of an unpacked wheel, opened only if installer reads it (to rewrite a
    script's `#!python` line); otherwise the destination links the file itself."""

    def __init__(self, path: Path, member: Member) -> None:
        super().__init__()
        self.path = path
        self.member = member
        self._file: BinaryIO | None = None

    @property
    def opened(self) -> bool:
        return self._file is not None

    def _open(self) -> BinaryIO:
        if self._file is None:
            self._file = self.path.open("rb")
        return self._file

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._open().read(-1 if size is None else size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._open().readline(-1 if size is None else size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._open().seek(offset, whence)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        super().close()


class Linker:
    """Puts a file of the unpacked cache into the environment: a hard link (the cache's
    files are read-only, so the link can't be edited by accident), or a copy where links
    can't be made (another filesystem) or `--link-mode copy` asks for one."""

    def __init__(self, mode: str = "hardlink") -> None:
        self.mode = mode

    def place(self, source: str | Path, dest: str | Path, executable: bool) -> None:
        if self.mode == "hardlink":
            try:
                os.link(source, dest)
                return
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EACCES,
                                     errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
                self.mode = "copy"  # this filesystem pair won't link: copy from now on
        shutil.copyfile(source, dest)
        st = os.stat(source)
        # The same modification time keeps the bytecode compiled in the tree valid.
        os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
        if executable:
            make_executable(dest)


@functools.cache
def _tree_source_class() -> type:
    from installer.sources import WheelSource

    class TreeSource(WheelSource):
        """installer's view of an unpacked, verified wheel, limited to `members`."""

        def __init__(self, unpacked: Unpacked, members: Sequence[Member]) -> None:
            info = unpacked.info
            name, _, version = info.dist_info_dir[: -len(".dist-info")].rpartition("-")
            super().__init__(name, version)
            self._unpacked = unpacked
            self._members = members
            prefix = info.dist_info_dir + "/"
            self._dist_info_files = [m.path[len(prefix):] for m in info.members
                                     if m.path.startswith(prefix)]

        @property
        def dist_info_dir(self) -> str:
            return self._unpacked.info.dist_info_dir

        @property
        def data_dir(self) -> str:
            return self._unpacked.info.data_dir

        @property
        def dist_info_filenames(self) -> list[str]:
            return list(self._dist_info_files)

        def read_dist_info(self, filename: str) -> str:
            return self._unpacked.path(f"{self.dist_info_dir}/{filename}").read_text("utf-8")

        def validate_record(self) -> None:
            """Done: the tree was checked against RECORD just before."""

        def get_contents(self) -> Iterator[tuple[tuple[str, str, str], BinaryIO, bool]]:
            for m in self._members:
                with TreeFile(self._unpacked.path(m.path), m) as stream:
                    yield (m.path, m.hash, str(m.size)), cast(BinaryIO, stream), m.executable

    return TreeSource


@dataclass(frozen=True)
class _Placement:
    """Where a member of a wheel goes: its scheme, its path there, the full path."""

    member: Member
    scheme: str
    path: str
    #: The full path, a string: pathlib costs more than linking, for thousands of files.
    dest: str


def _placements(target: Target, u: Unpacked) -> list[_Placement]:
    """Each member's place, as installer decides it (the archive's root goes to purelib or
    platlib as WHEEL says, `<name>.data/<scheme>/` to that scheme)."""
    wheel = u.path(f"{u.info.dist_info_dir}/WHEEL").read_text(encoding="utf-8",
                                                               errors="replace")
    root = "purelib" if re.search(r"(?mi)^Root-Is-Purelib:\s*true\s*$", wheel) else "platlib"
    data = u.info.data_dir + "/"
    dirs = _scheme_of(target.scheme, u.fetched.dist.name)
    found = []
    for m in u.info.members:
        scheme, rest = root, m.path
        if m.path.startswith(data):
            scheme, _, rest = m.path[len(data):].partition("/")
        # check_wheel refused names with '..', absolute ones and unknown schemes.
        found.append(_Placement(m, scheme, rest, os.path.join(dirs[scheme], rest)))
    return found


def _scheme_of(scheme: Mapping[str, str], name: str) -> dict[str, str]:
    """The scheme a distribution is installed with: its headers in a directory of its own
    under the target's (pip's `include/site/pythonX.Y/<name>` in a virtual environment),
    so that two distributions' `config.h` can't overwrite each other."""
    return {**scheme, "headers": os.path.join(scheme["headers"], name)}


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


@dataclass
class Installing:
    """An install under way: old versions moved aside and the wheels' plain files in
    place; `finish_install` adds their bytecode and what installer writes."""

    txn: Transaction
    target: Target
    wheels: Sequence[VerifiedDist]
    placements: list[list[_Placement]]
    linker: Linker
    placed: list[list[tuple[str, Any]]]
    warnings: list[str]


def begin_install(txn: Transaction, target: Target, wheels: Sequence[VerifiedDist],
                  unpacked: Sequence[Unpacked], replace: Sequence[InstalledDist], *,
                  link_mode: str = "hardlink") -> Installing:
    """Within `txn`: remove `replace` and link the plain files of `unpacked` (while their
    bytecode may still be compiling). One wheel after the other: installing them in
    threads was measured slower (the GIL), but all directories are made ahead, at once."""
    from installer.records import Hash, RecordEntry

    warnings: list[str] = []
    for old in replace:
        warnings += remove_distribution(txn, old, target)
    linker = Linker(link_mode)
    placements = [_placements(target, u) for u in unpacked]
    with contextlib.suppress(OSError):
        # All wheels' directories at once; a failure here is met again by the wheel
        # concerned (`_place_all`), which names it.
        txn.make_dirs_many({Path(d) for d in {os.path.dirname(p.dest) for wheel in placements
                                               for p in wheel}})
    placed: list[list[tuple[str, Any]]] = []
    for v, u, wheel in zip(wheels, unpacked, placements, strict=True):
        files: list[tuple[str, str, bool]] = []
        records: list[tuple[str, Any]] = []
        root = str(u.root)
        for p in wheel:
            if p.scheme == "scripts":
                continue  # installer rewrites their `#!python` line
            files.append((os.path.join(root, p.member.path), p.dest, p.member.executable))
            algorithm, _, value = p.member.hash.partition("=")
            records.append((p.scheme, RecordEntry(p.path, Hash(algorithm, value),
                                                  p.member.size)))
        with _naming(v):
            _place_all(txn, linker, files)
        placed.append(records)
    return Installing(txn, target, wheels, placements, linker, placed, warnings)


def finish_install(installing: Installing, unpacked: Sequence[Unpacked], *,
                   compile_bytecode: bool = True, warn_script_location: bool = True,
                   ) -> list[str]:
    """Link the bytecode compiled in `unpacked` (the same trees, now with it), and let
    installer write scripts, entry points, metadata and RECORD; returns warnings (with
    `warn_script_location`, pip's about scripts installed where PATH doesn't look)."""
    from installer import install
    from installer.records import RecordEntry

    txn, target, linker = installing.txn, installing.target, installing.linker
    written: dict[bytes, Path] = {}
    scripts: list[str] = []
    for v, u, wheel, records in zip(installing.wheels, unpacked, installing.placements,
                                    installing.placed, strict=True):
        bytecode = u.bytecode if compile_bytecode else {}
        files: list[tuple[str, str, bool]] = []
        placed = list(records)
        for p in wheel:
            if p.member.path not in bytecode or p.scheme not in ("purelib", "platlib"):
                continue
            pyc = bytecode[p.member.path][0].rpartition("/")[2]
            head = posixpath.dirname(p.path)
            files.append((os.path.join(str(u.root), bytecode[p.member.path][0]),
                          os.path.join(os.path.dirname(p.dest), "__pycache__", pyc), False))
            # pip lists the bytecode in RECORD too, so that uninstalling removes it.
            placed.append((p.scheme, RecordEntry(f"{head}/__pycache__/{pyc}" if head
                                                 else f"__pycache__/{pyc}", None, None)))
        # With --root, installer writes under `destdir` what it computes for the final
        # scheme (RECORD's paths outside site-packages, on Windows, are those).
        dest = _destination_class()(
            scheme_dict=_scheme_of(target.final_scheme, v.dist.name),
            interpreter=str(target.python),
            destdir=str(target.destdir) if target.destdir else None,
            script_kind=_script_kind(), txn=txn, linker=linker, placed=placed,
            written=written, scripts=scripts,
        )
        members = [p.member for p in wheel if p.scheme == "scripts"]
        with _naming(v):
            _place_all(txn, linker, files)
            install(_tree_source_class()(u, members), dest, _additional_metadata(v))
    off_path = scripts_off_path(scripts, target.python.parent) if warn_script_location else None
    return [*installing.warnings, *([off_path] if off_path else [])]


def scripts_off_path(scripts: Iterable[str], interpreter_dir: Path,
                     environ: Mapping[str, str] | None = None) -> str | None:
    """pip's warning (and its words) about scripts installed in a directory PATH doesn't
    name, e.g. `~/.local/bin` after `--user`: their commands won't be found. Not for the
    target interpreter's own directory (a virtual environment used without activating
    it)."""
    env = os.environ if environ is None else environ
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p]

    def norm(p: str | Path) -> str:
        return os.path.normcase(os.path.normpath(p)).rstrip(os.sep)

    quiet = {norm(p) for p in path} | {norm(interpreter_dir)}
    by_dir: dict[str, set[str]] = {}
    for script in scripts:
        by_dir.setdefault(os.path.dirname(script), set()).add(os.path.basename(script))
    lines = []
    for where, names in by_dir.items():
        if norm(where) in quiet:
            continue
        *most, last = sorted(names)
        what = f"scripts {', '.join(most)} and {last} are" if most else f"script {last} is"
        lines.append(f"The {what} installed in '{where}' which is not on PATH.")
    if not lines:
        return None
    lines.append(f"Consider adding {'this directory' if len(lines) == 1 else 'these directories'}"
                 " to PATH or, if you prefer to suppress this warning, use "
                 "--no-warn-script-location.")
    if any(p.startswith("~") for p in path):
        lines.append("NOTE: The current PATH contains path(s) starting with `~`, which may "
                     "not be expanded by all applications.")
    return "\n".join(lines)


@contextlib.contextmanager
def _naming(v: VerifiedDist) -> Iterator[None]:
    """A failure while installing `v` names its file."""
    from installer.exceptions import InstallerError

    try:
        yield
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
