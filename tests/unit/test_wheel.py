"""Tests of secinstall.verify.wheel: a good wheel passes, a hostile or broken one is refused."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from tests.support.wheels import WheelMaker

from secinstall.errors import WheelError
from secinstall.models import FetchedFile, IndexFile, PlannedDist
from secinstall.target import resolve_target
from secinstall.verify.wheel import check_wheel

Members = Sequence[tuple[str, bytes]]


@pytest.fixture(scope="module")
def tags() -> tuple[str, ...]:
    return resolve_target().tags


def _record(members: Members, record_path: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for name, data in members:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        writer.writerow([name, f"sha256={digest}", len(data)])
    writer.writerow([record_path, "", ""])
    return out.getvalue().encode()


def hostile_wheel(
    dest: Path,
    extra: Members = (),
    *,
    name: str = "demo",
    version: str = "1.0",
    tag: str = "py3-none-any",
    record: bytes | None = None,
    unrecorded: Members = (),
    symlinks: Sequence[str] = (),
    metadata: bytes | None = None,
) -> Path:
    """Write a wheel with `zipfile` directly: the usual package, METADATA and WHEEL, then
    `extra` members (duplicates allowed), all in a true RECORD unless `record` replaces it;
    `unrecorded` members are added but left out of RECORD; `symlinks` names members
    written with a symbolic-link mode; `metadata` replaces METADATA."""
    dist_info = f"{name}-{version}.dist-info"
    members: list[tuple[str, bytes]] = [
        (f"{name}/__init__.py", b"VALUE = 1\n"),
        (f"{dist_info}/METADATA", metadata or
         f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
         "Requires-Dist: lib>=1\n".encode()),
        (f"{dist_info}/WHEEL",
         f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n".encode()),
        *extra,
    ]
    record_path = f"{dist_info}/RECORD"
    everything = [*members, *unrecorded,
                  (record_path, record if record is not None else _record(members, record_path))]
    path = dest / f"{name}-{version}-{tag}.whl"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicates we ask for
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for member, data in everything:
                info = zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                mode = 0o120777 if member in symlinks else 0o100644
                info.external_attr = mode << 16
                zf.writestr(info, data)
    return path


def _fetched(path: Path, name: str = "demo", version: str = "1.0") -> FetchedFile:
    file = IndexFile(path.name, f"https://files.example/{path.name}", hashes={})
    dist = PlannedDist(canonicalize_name(name), version, file, {}, requested=True)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return FetchedFile(dist, path, {"sha256": digest}, path.stat().st_size, from_cache=False)


def _refusal(path: Path, tags: tuple[str, ...], **plan: str) -> WheelError:
    with pytest.raises(WheelError) as info:
        check_wheel(_fetched(path, **plan), tags)
    assert info.value.message.startswith(f"{path.name} is refused: ")
    return info.value


# -- accepted ---------------------------------------------------------------------------------


def test_good_wheel(make_wheel: WheelMaker, tags: tuple[str, ...]) -> None:
    wheel = make_wheel("Demo.Pkg", "1.0", requires=["lib>=1", 'extra-dep; extra == "x"'],
                       console_scripts={"demo": "demo_pkg:main"})
    info = check_wheel(_fetched(wheel, "demo-pkg"), tags)
    assert info.metadata["name"] == "Demo.Pkg"
    assert info.metadata["version"] == "1.0"
    assert info.metadata["requires_dist"] == ["lib>=1", 'extra-dep; extra == "x"']
    assert info.requires_dist == ("lib>=1", 'extra-dep; extra == "x"')
    assert info.pth_files == ()


def test_hand_built_wheel_passes(tmp_path: Path, tags: tuple[str, ...]) -> None:
    # The helper's baseline is valid: each refusal below is caused by its one defect.
    info = check_wheel(_fetched(hostile_wheel(tmp_path)), tags)
    assert info.requires_dist == ("lib>=1",)


def test_pth_files_are_reported(tmp_path: Path, tags: tuple[str, ...]) -> None:
    wheel = hostile_wheel(tmp_path, [
        ("demo-hook.pth", b"import demo\n"),
        ("demo-1.0.data/purelib/other.pth", b"import os\n"),
        ("demo/not-at-the-top.pth", b"ignored by site\n"),
    ])
    info = check_wheel(_fetched(wheel), tags)
    assert sorted(info.pth_files) == ["demo-1.0.data/purelib/other.pth", "demo-hook.pth"]


# -- refused --------------------------------------------------------------------------------


def test_file_name_differs_from_plan(tmp_path: Path, tags: tuple[str, ...]) -> None:
    error = _refusal(hostile_wheel(tmp_path), tags, name="other", version="1.0")
    assert "file name says demo 1.0, the plan says other 1.0" in error.message
    error = _refusal(hostile_wheel(tmp_path), tags, version="2.0")
    assert "the plan says demo 2.0" in error.message


def test_tags_do_not_fit(tmp_path: Path, tags: tuple[str, ...]) -> None:
    error = _refusal(hostile_wheel(tmp_path, tag="cp27-cp27m-win32"), tags)
    assert "its tags (cp27-cp27m-win32) don't fit the target" in error.message


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        ("../evil.py", "path escapes the target with '..'"),
        ("demo/../../evil.py", "path escapes the target with '..'"),
        ("demo-1.0.data/scripts/../../evil", "path escapes the target with '..'"),
        ("/etc/evil.py", "absolute path"),
        ("C:/evil.py", "absolute path"),
        ("demo\\..\\..\\evil.py", "backslash in path"),
    ],
    ids=["dotdot", "nested-dotdot", "data-dotdot", "absolute", "drive", "backslash"],
)
def test_member_paths(tmp_path: Path, tags: tuple[str, ...], member: str, problem: str) -> None:
    error = _refusal(hostile_wheel(tmp_path, [(member, b"print('owned')\n")]), tags)
    assert f"{member}: {problem}" in error.details


def test_duplicate_member(tmp_path: Path, tags: tuple[str, ...]) -> None:
    wheel = hostile_wheel(tmp_path, [("demo/util.py", b"A = 1\n"), ("demo/util.py", b"A = 2\n")])
    assert "demo/util.py: duplicate member" in _refusal(wheel, tags).details


def test_symlink_member(tmp_path: Path, tags: tuple[str, ...]) -> None:
    wheel = hostile_wheel(tmp_path, [("demo/link", b"/etc/passwd")], symlinks=["demo/link"])
    assert "demo/link: symbolic link member" in _refusal(wheel, tags).details


def test_every_problem_is_reported_at_once(tmp_path: Path, tags: tuple[str, ...]) -> None:
    wheel = hostile_wheel(tmp_path, [("../a.py", b""), ("/b.py", b""), ("demo/c", b"x")],
                          symlinks=["demo/c"])
    details = _refusal(wheel, tags, name="other").details
    assert len(details) == 4
    assert details[0].startswith("file name says demo 1.0")


def test_record_hash_lie(tmp_path: Path, tags: tuple[str, ...]) -> None:
    honest = [("demo/__init__.py", b"VALUE = 1\n")]
    record = _record(honest, "demo-1.0.dist-info/RECORD").replace(b"demo/__init__.py,sha256=",
                                                                  b"demo/__init__.py,sha256=AA")
    wheel = hostile_wheel(tmp_path, record=record)
    error = _refusal(wheel, tags)
    assert any("RECORD" in d and "demo/__init__.py" in d for d in error.details), error.details


def test_contents_pass_is_what_checked_before_skips(tmp_path: Path,
                                                    tags: tuple[str, ...]) -> None:
    """Only the member hashing is skipped for bytes that passed before; the rest of the
    archive checks still run."""
    for sub in ("honest", "lying", "escaping"):
        (tmp_path / sub).mkdir()
    with zipfile.ZipFile(hostile_wheel(tmp_path / "honest")) as zf:
        true_record = zf.read("demo-1.0.dist-info/RECORD")
    record = true_record.replace(b"demo/__init__.py,sha256=", b"demo/__init__.py,sha256=AA")
    lying = hostile_wheel(tmp_path / "lying", record=record)
    with pytest.raises(WheelError, match="RECORD"):
        check_wheel(_fetched(lying), tags)
    assert check_wheel(_fetched(lying), tags, contents=False).metadata["name"] == "demo"
    escaping = hostile_wheel(tmp_path / "escaping", extra=[("../evil.py", b"x = 1\n")])
    with pytest.raises(WheelError, match="escapes"):
        check_wheel(_fetched(escaping), tags, contents=False)


def test_record_size_lie(tmp_path: Path, tags: tuple[str, ...]) -> None:
    members = [("demo/__init__.py", b"VALUE = 1\n")]
    record = _record(members, "demo-1.0.dist-info/RECORD").replace(b",10\n", b",11\n")
    error = _refusal(hostile_wheel(tmp_path, record=record), tags)
    assert any("RECORD" in d and "demo/__init__.py" in d for d in error.details), error.details


def test_file_missing_from_record(tmp_path: Path, tags: tuple[str, ...]) -> None:
    wheel = hostile_wheel(tmp_path, unrecorded=[("demo/sneaky.py", b"import os\n")])
    error = _refusal(wheel, tags)
    assert any("RECORD" in d and "demo/sneaky.py" in d for d in error.details), error.details


def test_record_lists_a_missing_file(tmp_path: Path, tags: tuple[str, ...]) -> None:
    members = [("demo/__init__.py", b"VALUE = 1\n"), ("demo/gone.py", b"")]
    wheel = hostile_wheel(tmp_path, record=_record(members, "demo-1.0.dist-info/RECORD"))
    problem = "RECORD: lists demo/gone.py, which is not in the archive"
    assert problem in _refusal(wheel, tags).details


def test_dist_info_names_another_project(tmp_path: Path, tags: tuple[str, ...]) -> None:
    wheel = hostile_wheel(tmp_path, name="other")
    named = wheel.rename(tmp_path / "demo-1.0-py3-none-any.whl")
    assert "names another project" in _refusal(named, tags).message


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [(b"Metadata-Version: 2.1\nName: other\nVersion: 1.0\n", "METADATA names other, not demo"),
     (b"Metadata-Version: 2.1\nName: demo\nVersion: 6.6\n",
      "METADATA says version 6.6, the file name 1.0")],
    ids=["name", "version"],
)
def test_metadata_differs_from_file_name(
    tmp_path: Path, tags: tuple[str, ...], metadata: bytes, problem: str
) -> None:
    assert problem in _refusal(hostile_wheel(tmp_path, metadata=metadata), tags).details


def test_decompression_bomb(tmp_path: Path, tags: tuple[str, ...]) -> None:
    wheel = hostile_wheel(tmp_path, [("demo/zeros.bin", bytes(16 * 1024**2))])
    assert "a decompression bomb?" in _refusal(wheel, tags).message


def test_not_a_zip(tmp_path: Path, tags: tuple[str, ...]) -> None:
    path = tmp_path / "demo-1.0-py3-none-any.whl"
    path.write_bytes(b"<html>an error page, not a wheel</html>")
    with pytest.raises(WheelError, match=r"demo-1\.0-py3-none-any\.whl is not a readable wheel"):
        check_wheel(_fetched(path), tags)
