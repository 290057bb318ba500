"""Hostile wheels, built here with `zipfile`, served by the local HTTPS index and pinned by
hash (so only the archive checks stand between them and the environment): each is refused
with a message naming the problem, nothing is written outside the environment, and the
environment is left exactly as it was."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from secinstall.verify import wheel as wheel_module
from tests.conftest import Venv, run_in
from tests.support.cli import Run, Secinstall, sha256
from tests.support.snapshot import snapshot

NAME, VERSION = "evil", "1.0"
DIST_INFO = f"{NAME}-{VERSION}.dist-info"
DATA = f"{NAME}-{VERSION}.data"
FILE_MODE = stat.S_IFREG | 0o644


# -- building hostile wheels -----------------------------------------------------------------


@dataclass
class Member:
    """One archive member; `listed` puts a true line for it in the generated RECORD."""

    name: str
    data: bytes = b""
    mode: int = FILE_MODE
    listed: bool = True
    compress_type: int = zipfile.ZIP_DEFLATED


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


@dataclass
class Spec:
    """A wheel: its members, and the RECORD that goes with them."""

    members: list[Member]
    #: Where RECORD goes (None: no RECORD at all).
    record_path: str | None = f"{DIST_INFO}/RECORD"
    #: Lines added to RECORD as they are.
    extra_record: list[str] = field(default_factory=list)
    #: RECORD lines replaced: {member name: line}.
    lying_record: dict[str, str] = field(default_factory=dict)
    tag: str = "py3-none-any"

    def write(self, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        path = dest / f"{NAME}-{VERSION}-{self.tag}.whl"
        members = list(self.members)
        if self.record_path is not None:
            lines = [self.lying_record.get(m.name, record_line(m.name, m.data))
                     for m in members if m.listed]
            lines += [*self.extra_record, f"{self.record_path},,"]
            members.append(Member(self.record_path, "\n".join(lines).encode() + b"\n"))
        with zipfile.ZipFile(path, "w") as archive, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": on purpose
            for m in members:
                info = zipfile.ZipInfo(m.name, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = m.mode << 16
                info.compress_type = m.compress_type
                archive.writestr(info, m.data)
        return path


def metadata(name: str = NAME, version: str = VERSION) -> bytes:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()


def wheel_file(tag: str = "py3-none-any") -> bytes:
    purelib = "true" if tag.endswith("-any") else "false"
    return (f"Wheel-Version: 1.0\nGenerator: hostile\nRoot-Is-Purelib: {purelib}\n"
            f"Tag: {tag}\n").encode()


def dist_info(directory: str = DIST_INFO, *, meta: bytes | None = None,
              entry_points: str | None = None, tag: str = "py3-none-any") -> list[Member]:
    members = [Member(f"{directory}/METADATA", metadata() if meta is None else meta),
               Member(f"{directory}/WHEEL", wheel_file(tag))]
    if entry_points is not None:
        members.append(Member(f"{directory}/entry_points.txt", entry_points.encode()))
    return members


PACKAGE = [Member(f"{NAME}/__init__.py", b"def main():\n    pass\n")]


def spec(*extra: Member, **options: object) -> Spec:
    """The package, the given members, and a good dist-info."""
    return Spec([*PACKAGE, *extra, *dist_info()], **options)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Escape:
    """The sentinel outside the environment that a hostile path aims at, as each kind of
    member path spells it."""

    path: Path
    from_purelib: str
    from_scripts: str


@pytest.fixture
def escape(tmp_path: Path, venv: Venv) -> Escape:
    target = tmp_path / "escape"
    return Escape(target, os.path.relpath(target, venv.purelib),
                  os.path.relpath(target, venv.bin))


def _entry_points(section: str, name: str) -> str:
    return f"[{section}]\n{name} = {NAME}:main\n"


def _lie(*, hash_of: bytes | None = None, size: int | None = None) -> str:
    """A RECORD line for the package's `__init__.py` with a wrong hash or size."""
    real = PACKAGE[0]
    name, digest, _size = record_line(real.name, hash_of or real.data).split(",")
    return f"{name},{digest},{len(real.data) if size is None else size}"


def _weak(algorithm: str) -> str:
    """A RECORD line for the package's `__init__.py` with a true hash of a weak kind."""
    real = PACKAGE[0]
    digest = hashlib.new(algorithm, real.data).digest() if algorithm != "shake_128" \
        else hashlib.shake_128(real.data).digest(16)
    encoded = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return f"{real.name},{algorithm}={encoded},{len(real.data)}"


def _bomb() -> Spec:
    return spec(Member(f"{NAME}/bomb.bin", b"\0" * (wheel_module.MIN_BOMB_BYTES + 1024**2)))


# Each case: the wheel, and what the refusal must say.
CASES: dict[str, tuple[Callable[[Escape], Spec], str]] = {
    # member paths
    "dotdot": (lambda e: spec(Member(e.from_purelib, b"x")),
               "path escapes the target with '..'"),
    "dotdot-inside-package": (lambda e: spec(Member(f"{NAME}/../{e.from_purelib}", b"x")),
                              "path escapes the target with '..'"),
    "absolute": (lambda e: spec(Member(str(e.path), b"x")), "absolute path"),
    "drive-letter": (lambda e: spec(Member("C:/escape", b"x")), "C:/escape: absolute path"),
    "backslash": (lambda e: spec(Member(e.from_purelib.replace("/", "\\"), b"x")),
                  "backslash in path"),
    "symlink": (lambda e: spec(Member(f"{NAME}/link", str(e.path).encode(),
                                      mode=stat.S_IFLNK | 0o777)),
                f"{NAME}/link: symbolic link member"),
    # .data/ scheme directories
    "data-purelib-escape": (lambda e: spec(Member(f"{DATA}/purelib/{e.from_purelib}", b"x")),
                            "path escapes the target with '..'"),
    # normalises to a harmless-looking `escape`, yet lands two levels above bin/
    "data-scripts-escape": (lambda e: spec(Member(f"{DATA}/scripts/{e.from_scripts}", b"x")),
                            "path escapes the target with '..'"),
    "data-unknown-scheme": (lambda e: spec(Member(f"{DATA}/evil/x", b"x")),
                            f"{DATA}/evil/x: not inside a known .data scheme directory"),
    "data-no-scheme": (lambda e: spec(Member(f"{DATA}/x", b"x")),
                       f"{DATA}/x: not inside a known .data scheme directory"),
    # RECORD that lies
    "record-wrong-hash": (
        lambda e: spec(lying_record={PACKAGE[0].name: _lie(hash_of=b"def main(): 1\n")}),
        f"RECORD: hash / size of {NAME}/__init__.py didn't match RECORD"),
    "record-wrong-size": (
        lambda e: spec(lying_record={PACKAGE[0].name: _lie(size=1)}),
        f"RECORD: hash / size of {NAME}/__init__.py didn't match RECORD"),
    "record-no-hash": (
        lambda e: spec(lying_record={f"{NAME}/__init__.py": f"{NAME}/__init__.py,,"}),
        f"hash / size of {NAME}/__init__.py is not included in RECORD"),
    "record-md5": (
        lambda e: spec(lying_record={PACKAGE[0].name: _weak("md5")}),
        f"RECORD: {NAME}/__init__.py is hashed with 'md5'; a wheel's RECORD uses sha256"),
    # installer would fail with a TypeError hashing this one (shake digests need a length)
    "record-shake-128": (
        lambda e: spec(lying_record={PACKAGE[0].name: _weak("shake_128")}),
        f"RECORD: {NAME}/__init__.py is hashed with 'shake_128'"),
    "record-not-csv": (lambda e: spec(extra_record=['"' + "x" * 200_000]),
                       "RECORD: not a valid RECORD file"),
    "file-not-in-record": (lambda e: spec(Member(f"{NAME}/extra.py", b"X = 1\n", listed=False)),
                           f"RECORD: {NAME}/extra.py is not mentioned in RECORD"),
    "record-lists-missing-file": (
        lambda e: spec(extra_record=[record_line(f"{NAME}/gone.py", b"X = 1\n")]),
        f"RECORD: lists {NAME}/gone.py, which is not in the archive"),
    "no-record": (lambda e: spec(record_path=None), f"it has no {DIST_INFO}/RECORD"),
    "duplicate-member": (lambda e: spec(Member(f"{NAME}/__init__.py", b"import os\n")),
                         f"{NAME}/__init__.py: duplicate member"),
    # names and versions that disagree
    "dist-info-other-name": (lambda e: Spec([*PACKAGE, *dist_info("other-1.0.dist-info")],
                                            record_path="other-1.0.dist-info/RECORD"),
                             "its .dist-info directory other-1.0.dist-info names another "
                             "project than the file name (evil)"),
    "dist-info-other-version": (lambda e: Spec([*PACKAGE, *dist_info("evil-2.0.dist-info")],
                                               record_path="evil-2.0.dist-info/RECORD"),
                                "its .dist-info directory evil-2.0.dist-info names another "
                                "version than the file name (1.0)"),
    "metadata-other-name": (lambda e: Spec([*PACKAGE, *dist_info(meta=metadata(name="other"))]),
                            "METADATA names other, not evil"),
    "metadata-other-version": (
        lambda e: Spec([*PACKAGE, *dist_info(meta=metadata(version="2.0"))]),
        "METADATA says version 2.0, the file name 1.0"),
    "two-dist-infos": (lambda e: spec(*dist_info("other-1.0.dist-info")),
                       "it has 2 .dist-info directories (evil-1.0.dist-info, "
                       "other-1.0.dist-info); a wheel has exactly one"),
    "no-dist-info": (lambda e: Spec(list(PACKAGE), record_path=None),
                     "it has 0 .dist-info directories"),
    "no-metadata": (lambda e: Spec([*PACKAGE, *dist_info()[1:]]),
                    f"it has no {DIST_INFO}/METADATA"),
    # entry points whose names are paths, or that are not entry points
    "script-name-dotdot": (
        lambda e: Spec([*PACKAGE, *dist_info(entry_points=_entry_points(
            "console_scripts", e.from_scripts))]),
        f"script name '{os.path.join('..', '..', 'escape')}' is a path, not a name"),
    "script-name-slash": (
        lambda e: Spec([*PACKAGE, *dist_info(entry_points=_entry_points("console_scripts",
                                                                        "a/b"))]),
        "script name 'a/b' is a path, not a name"),
    "gui-script-name-dotdot": (
        lambda e: Spec([*PACKAGE, *dist_info(entry_points=_entry_points("gui_scripts",
                                                                        "../evil"))]),
        "script name '../evil' is a path, not a name"),
    "script-value-not-module-attr": (
        lambda e: Spec([*PACKAGE, *dist_info(
            entry_points="[console_scripts]\nevil = not a module!\n")]),
        "a console or GUI script is not 'module:attribute'"),
    "entry-points-not-ini": (
        lambda e: Spec([*PACKAGE, *dist_info(entry_points="evil = evil:main\n")]),
        "entry_points.txt: not a valid entry points file"),
    # size
    "decompression-bomb": (lambda e: _bomb(), f"{NAME}/bomb.bin: inflates"),
}


def _outside(tmp_path: Path) -> Callable[[str], bool]:
    """Snapshot filter for tmp_path: the download cache may change, nothing else."""
    return lambda rel: rel == "cache" or rel.startswith("cache/")


def _refused(secinstall: Secinstall, venv: Venv, escape: Escape, *args: str | Path) -> Run:
    """Install with `args`; assert it was refused and changed nothing anywhere."""
    ignore = _outside(secinstall.tmp)
    before_all = snapshot(secinstall.tmp, ignore)
    before = snapshot(venv.path)
    run = secinstall("--python", venv.path, *args)
    assert run.code == 1, run.out + run.err
    assert "Traceback" not in run.err
    assert not escape.path.exists() and not escape.path.is_symlink()
    assert snapshot(venv.path) == before
    assert snapshot(secinstall.tmp, ignore) == before_all
    return run


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_wheel_is_refused(
    secinstall: Secinstall, venv: Venv, escape: Escape, case: str
) -> None:
    build, message = CASES[case]
    wheel = build(escape).write(secinstall.tmp / "wheels")
    secinstall.index.add(wheel)
    args = secinstall.pinned(wheel)

    run = _refused(secinstall, venv, escape, *args)

    assert f"error: {wheel.name} is refused: " in run.err
    assert message in run.err


def test_wheel_larger_than_the_unpacked_limit_is_refused(
    secinstall: Secinstall, venv: Venv, escape: Escape, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wheel_module, "MAX_UNPACKED_BYTES", 1024**2)
    # Stored, not compressed: nothing looks like a bomb, the total alone is too much.
    big = Member(f"{NAME}/big.bin", os.urandom(1024**2), compress_type=zipfile.ZIP_STORED)
    wheel = spec(big).write(secinstall.tmp / "wheels")
    secinstall.index.add(wheel)

    run = _refused(secinstall, venv, escape, *secinstall.pinned(wheel))

    assert "more than the limit of 1048576" in run.err


# -- archives that are not (whole) zip files -------------------------------------------------


def _patch_member(data: bytes, name: str, *, local: int, central: int, value: bytes) -> bytes:
    """`data` with `value` written at offset `local` of the member's local header and at
    `central` of its central directory entry."""
    out = bytearray(data)
    encoded = name.encode()
    for signature, offset in ((b"PK\x03\x04", local), (b"PK\x01\x02", central)):
        start = 0
        while (start := out.find(signature, start)) != -1:
            name_at = start + (30 if signature == b"PK\x03\x04" else 46)
            if out[name_at:name_at + len(encoded)] == encoded:
                out[start + offset:start + offset + len(value)] = value
            start += 4
    return bytes(out)


def _good_wheel(dest: Path) -> Path:
    return spec(Member(f"{NAME}/data.py", b"DATA = %r\n" % os.urandom(4096).hex())).write(dest)


def _corrupt_deflate(data: bytes) -> bytes:
    """Flip bytes in the middle of the first member's compressed data."""
    start = 30 + len(f"{NAME}/__init__.py")
    out = bytearray(data)
    for i in range(start + 2, start + 12):
        out[i] ^= 0xFF
    return bytes(out)


BROKEN: dict[str, Callable[[bytes], bytes]] = {
    "random-bytes": lambda data: os.urandom(len(data)),
    "truncated-half": lambda data: data[: len(data) // 2],
    "truncated-tail": lambda data: data[:-10],
    "corrupt-deflate-stream": _corrupt_deflate,
    # local header offset 8 / central 10: compression method
    "unknown-compression": lambda data: _patch_member(
        data, f"{NAME}/data.py", local=8, central=10, value=(99).to_bytes(2, "little")),
    # local 6 / central 8: flag bits; bit 0 = encrypted
    "encrypted-member": lambda data: _patch_member(
        data, f"{NAME}/data.py", local=6, central=8, value=(1).to_bytes(2, "little")),
    # local 22 / central 24: uncompressed size, declared 100 bytes for 4 kB of data
    "lying-uncompressed-size": lambda data: _patch_member(
        data, f"{NAME}/data.py", local=22, central=24, value=(100).to_bytes(4, "little")),
}


@pytest.mark.parametrize("damage", list(BROKEN))
def test_damaged_archive_is_refused(
    secinstall: Secinstall, venv: Venv, escape: Escape, damage: str
) -> None:
    wheel = _good_wheel(secinstall.tmp / "wheels")
    wheel.write_bytes(BROKEN[damage](wheel.read_bytes()))
    secinstall.index.add(wheel)

    run = _refused(secinstall, venv, escape, *secinstall.pinned(wheel))

    assert (f"error: {wheel.name} is not a readable wheel" in run.err
            or f"error: {wheel.name} is refused: RECORD" in run.err), run.err


def test_lying_size_bomb_does_not_inflate(
    secinstall: Secinstall, venv: Venv, escape: Escape
) -> None:
    # 200 MB of zeros declared as 100 bytes: zipfile stops at the declared size and fails
    # the CRC, so checking it takes no time and no memory.
    bomb = Member(f"{NAME}/data.py", b"\0" * 200 * 1024**2)
    wheel = spec(bomb).write(secinstall.tmp / "wheels")
    wheel.write_bytes(_patch_member(wheel.read_bytes(), bomb.name, local=22, central=24,
                                    value=(100).to_bytes(4, "little")))
    secinstall.index.add(wheel)

    run = _refused(secinstall, venv, escape, *secinstall.pinned(wheel))

    assert f"error: {wheel.name} is not a readable wheel" in run.err
    assert "CRC" in run.err


# -- tags ------------------------------------------------------------------------------------

WINDOWS = "cp311-cp311-win_amd64"


def test_platform_wheel_for_another_os_is_not_chosen(
    secinstall: Secinstall, venv: Venv, escape: Escape
) -> None:
    wheel = Spec([*PACKAGE, *dist_info(tag=WINDOWS)], tag=WINDOWS).write(secinstall.tmp / "w")
    secinstall.index.add(wheel)

    run = _refused(secinstall, venv, escape, *secinstall.pinned(wheel))

    assert f"no wheel of {NAME}=={VERSION} fits the target" in run.err
    assert wheel.name in run.err


def test_platform_wheel_for_another_os_by_url_is_refused(
    secinstall: Secinstall, venv: Venv, escape: Escape
) -> None:
    wheel = Spec([*PACKAGE, *dist_info(tag=WINDOWS)], tag=WINDOWS).write(secinstall.tmp / "w")
    url = secinstall.index.add(wheel)
    requirements = secinstall.requirements(f"{NAME} @ {url} --hash=sha256:{sha256(wheel)}")

    run = _refused(secinstall, venv, escape, "-r", requirements)

    assert f"error: {wheel.name} is refused: its tags ({WINDOWS}) don't fit the target" \
        in run.err


# -- .pth files: installed, but said out loud ------------------------------------------------


@pytest.mark.parametrize("where", ["top-level", "data-purelib"])
def test_pth_file_is_installed_and_reported(
    secinstall: Secinstall, venv: Venv, where: str
) -> None:
    member = "evil.pth" if where == "top-level" else f"{DATA}/purelib/evil.pth"
    # A path line, not an `import` line: the check is that it is reported, not what it does.
    wheel = spec(Member(member, b"evil_extra_dir\n")).write(secinstall.tmp / "wheels")
    secinstall.index.add(wheel)

    run = secinstall("--python", venv.path, *secinstall.pinned(wheel))

    assert run.code == 0, run.err
    assert (venv.purelib / "evil.pth").read_bytes() == b"evil_extra_dir\n"
    assert "warning:" in run.err
    assert "evil.pth, which runs code at every interpreter start-up" in run.err
    assert run_in(venv, "import evil").returncode == 0
