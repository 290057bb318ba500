"""Tests of secinstall.platforms: pip's --platform, --python-version, --implementation and
--abi, their tags compared with pip's own."""

from __future__ import annotations

import dataclasses

import pytest

from secinstall.errors import TargetError
from secinstall.platforms import for_platform, parse_python_version, supported_tags
from secinstall.target import resolve_target

# pip's --platform, --python-version, --implementation and --abi: (platforms, version,
# implementation, abis), compared with pip's own computation, in the same order.
PLATFORM_OPTIONS = [
    (["manylinux2014_aarch64"], "3.12", "cp", ["cp312"]),
    (["manylinux2014_x86_64"], "312", None, []),
    (["manylinux2010_i686", "linux_i686", "manylinux2010_i686"], None, "pp",
     ["pypy310_pp73"]),
    ([], "3.12", None, []),
    ([], "3", None, []),
    ([], "3.9", "py", []),
    ([], None, "pp", []),
    (["macosx_11_0_arm64"], "3.10.4", "cp", []),
    (["macosxcustom_10_9_x86_64"], None, None, []),
    (["ios_13_0_arm64_iphoneos"], "3.13", None, []),
    (["android_27_arm64_v8a"], "3.13", None, []),
    (["win_amd64"], None, None, ["cp311", "abi3"]),
    ([], None, None, ["none"]),
]


@pytest.mark.parametrize("current", [True, False], ids=["running", "other-interpreter"])
@pytest.mark.parametrize(("platforms", "version", "impl", "abis"), PLATFORM_OPTIONS)
def test_for_platform_tags_are_pips(current: bool, platforms: list[str], version: str | None,
                                    impl: str | None, abis: list[str]) -> None:
    """The tags (and the version Requires-Python is checked against) are pip's own for
    these options. `current` False: the defaults come from the probe's answer (what an
    interpreter other than the running one says), not from the running interpreter."""
    from pip._internal.cli.cmdoptions import _convert_python_version
    from pip._internal.models.target_python import TargetPython

    version_info = _convert_python_version(version)[0] if version else None
    pip = TargetPython(platforms=platforms or None, py_version_info=version_info,
                       abis=abis or None, implementation=impl)
    target = dataclasses.replace(resolve_target(), is_current=current)
    got = for_platform(target, platforms, version, impl, abis)
    assert list(got.tags) == [str(tag) for tag in pip.get_sorted_tags()]
    assert got.version == pip.py_version_info
    assert got.markers == target.markers  # pip evaluates markers in its interpreter


def test_supported_tags_is_get_supported() -> None:
    from pip._internal.utils.compatibility_tags import get_supported

    want = get_supported("312", ["manylinux_2_17_aarch64"], "cp", ["cp312"])
    assert supported_tags((3, 12), "cp", ["cp312"], ["manylinux_2_17_aarch64"]) == [
        str(tag) for tag in want]


def test_for_platform_without_options_is_the_target() -> None:
    target = resolve_target()
    assert for_platform(target) is target


@pytest.mark.parametrize(("value", "expected"), [
    ("3", (3,)), ("312", (3, 12)), ("3.12", (3, 12)), ("3.12.1", (3, 12, 1))])
def test_python_version_as_pip_reads_it(value: str, expected: tuple[int, ...]) -> None:
    assert parse_python_version(value) == expected


@pytest.mark.parametrize("value", ["3.x", "3.12.1.0", "", "three"])
def test_python_version_refused(value: str) -> None:
    with pytest.raises(TargetError, match="--python-version"):
        parse_python_version(value)


def test_bytecode_only_for_the_interpreters_python() -> None:
    target = resolve_target()
    same = ".".join(map(str, target.version[:2]))
    cross = for_platform(target, ["manylinux2014_aarch64"], same).cross
    assert cross is not None and not cross.other_python
    for other in (for_platform(target, [], "3.1"), for_platform(target, [], None, "pp")):
        assert other.cross is not None and other.cross.other_python
