"""pip's check after an install (`conflicts.find_conflicts`), on dist-info directories."""

from __future__ import annotations

from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name

from secinstall.conflicts import find_conflicts
from secinstall.models import InstalledDist

MARKERS = {"python_version": "3.11", "sys_platform": "linux", "platform_system": "Linux",
           "implementation_name": "cpython", "os_name": "posix"}


def environment(tmp_path: Path, *dists: tuple[str, str, list[str]]) -> \
        dict[NormalizedName, InstalledDist]:
    """Installed distributions, each a dist-info with METADATA naming its requirements."""
    found = {}
    for name, version, requires in dists:
        info = tmp_path / f"{name}-{version}.dist-info"
        info.mkdir()
        lines = [f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
                 *(f"Requires-Dist: {r}\n" for r in requires)]
        (info / "METADATA").write_text("".join(lines), encoding="utf-8")
        key = canonicalize_name(name)
        found[key] = InstalledDist(key, version, info, "secinstall")
    return found


def test_what_the_install_touched_and_what_requires_it(tmp_path: Path) -> None:
    installed = environment(
        tmp_path,
        ("app", "1.0", ["lib>=2", "helper", "win-only; sys_platform == 'win32'",
                        "tests-only; extra == 'test'"]),
        ("lib", "1.0", ["gone>=1"]),
        ("untouched", "3.0", ["absent"]),  # broken already, but not by this install
    )

    lines = find_conflicts(installed, {NormalizedName("lib"): ["gone>=1"]}, MARKERS)

    # app requires lib (which changed): all of app's requirements are judged, for the
    # target's markers and without extras; untouched is none of this install's business.
    assert lines == [
        "app 1.0 requires lib>=2, but you have lib 1.0 which is incompatible.",
        "app 1.0 requires helper, which is not installed.",
        "lib 1.0 requires gone>=1, which is not installed.",
    ]


def test_nothing_to_say_when_every_requirement_holds(tmp_path: Path) -> None:
    installed = environment(tmp_path, ("app", "1.0", ["lib>=2,<3", "lib[extra]"]),
                            ("lib", "2.5rc1", []))
    # A pre-release satisfies a requirement that names no pre-release, as in pip's check.
    assert find_conflicts(installed, {NormalizedName("lib"): []}, MARKERS) == []


def test_unreadable_metadata_and_invalid_requirements_are_passed_over(tmp_path: Path) -> None:
    installed = environment(tmp_path, ("app", "1.0", ["lib>=2"]), ("lib", "1.0", []),
                            ("odd", "1.0", ["not a requirement!", "lib>=3"]))
    (installed[NormalizedName("app")].dist_info / "METADATA").unlink()

    lines = find_conflicts(installed, {NormalizedName("lib"): []}, MARKERS)

    assert lines == ["odd 1.0 requires lib>=3, but you have lib 1.0 which is incompatible."]


def test_a_marker_the_target_cant_evaluate_is_passed_over(tmp_path: Path) -> None:
    # After the install is committed: another tool's odd metadata must not fail it.
    installed = environment(tmp_path, ("app", "1.0", ['lib>=2; python_version ~= "abc"']),
                            ("lib", "1.0", []))
    assert find_conflicts(installed, {NormalizedName("lib"): []}, MARKERS) == []
