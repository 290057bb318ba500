"""pip's options to install wheels for another platform or Python than the target
interpreter's (--platform, --python-version, --implementation, --abi): the wheel tags
they select, as pip computes them, and the `Target` that carries them."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import TargetError
from .target import Target


@dataclass(frozen=True)
class CrossPlatform:
    """pip's options for installing for another platform or Python than the target
    interpreter's, as given (empty: not given)."""

    platforms: tuple[str, ...] = ()
    #: As pip parses it: (3,), (3, 12) or (3, 12, 1).
    python_version: tuple[int, ...] | None = None
    implementation: str | None = None
    abis: tuple[str, ...] = ()
    #: The interpreter's own version (it still runs pip's resolver).
    interpreter_version: tuple[int, int, int] = (0, 0, 0)
    #: True when the interpreter can't use bytecode compiled for these files (another
    #: Python version or implementation): none is compiled.
    other_python: bool = False

    def pip_arguments(self) -> list[str]:
        """The same options, for pip's resolver."""
        args = [arg for p in self.platforms for arg in ("--platform", p)]
        if self.python_version is not None:
            args += ["--python-version", ".".join(map(str, self.python_version))]
        if self.implementation is not None:
            args += ["--implementation", self.implementation]
        return args + [arg for abi in self.abis for arg in ("--abi", abi)]


def parse_python_version(value: str) -> tuple[int, ...]:
    """--python-version as pip reads it (cli/cmdoptions.py, _convert_python_version):
    "3", "312" (3, 12), "3.12" or "3.12.1"."""
    parts = value.split(".")
    if len(parts) == 1 and len(value) > 1:
        parts = [value[0], value[1:]]
    try:
        version = tuple(int(part) for part in parts)
    except ValueError:
        version = ()
    if not version or len(parts) > 3:
        raise TargetError(f"--python-version {value!r}: expected a version such as 3, 3.12, "
                          "312 or 3.12.1")
    return version


def _expand_platforms(platforms: Sequence[str]) -> list[str]:
    """Each --platform with those it implies, as pip's `_expand_allowed_platforms` and
    `_get_custom_platforms` (pip/_internal/utils/compatibility_tags.py) expand them: a
    macOS, iOS or Android platform's earlier versions (`macosx_11_0_arm64` also takes
    `macosx_10_16_universal2`...), and manylinux2014 (i686, x86_64) and manylinux2010 the
    older manylinux they include (PEP 599, PEP 571)."""
    from packaging import tags

    apple = re.compile(r"(.+)_(\d+)_(\d+)_(.+)")
    result: list[str] = []
    for platform in dict.fromkeys(platforms):
        prefix, _, arch = platform.partition("_")
        expanded = [platform]
        if (platform.startswith(("macosx", "ios"))
                and (match := apple.match(platform)) is not None):
            name, major, minor, actual = match.groups()
            ios = platform.startswith("ios")
            versions = (tags.ios_platforms if ios else tags.mac_platforms)(
                (int(major), int(minor)), actual)
            # pip keeps the prefix as given ("macosxcustom_..."): the text after it is
            # packaging's platform without its own "macosx_" or "ios_".
            cut = len("ios_" if ios else "macosx_")
            expanded = [f"{name}_{p[cut:]}" for p in versions]
        elif prefix == "android" and (match := re.fullmatch(r"android_(\d+)_(.+)",
                                                             platform)):
            expanded = list(tags.android_platforms(int(match[1]), match[2]))
        elif prefix == "manylinux2014" and arch in ("i686", "x86_64"):
            expanded += [f"manylinux2010_{arch}", f"manylinux1_{arch}"]
        elif prefix == "manylinux2010":
            expanded.append(f"manylinux1_{arch}")
        result += [p for p in expanded if p not in result]
    return result


def supported_tags(python_version: tuple[int, ...], implementation: str,
                   abis: Sequence[str], platforms: Sequence[str]) -> list[str]:
    """The wheel tags pip accepts, most preferred first, for its --python-version (here
    as pip parses it), --implementation, --abi and --platform (expanded by
    `_expand_platforms`), each given explicitly (see `for_platform` for pip's defaults):
    pip's `get_supported` (pip/_internal/utils/compatibility_tags.py), with packaging's
    tag functions as pip calls them."""
    from packaging import tags

    interpreter = implementation + "".join(map(str, python_version[:2]))
    version = python_version[:2]
    if implementation == "cp":
        found = list(tags.cpython_tags(version, abis, platforms))
    else:
        found = list(tags.generic_tags(interpreter, abis, platforms))
    found += tags.compatible_tags(version, interpreter, platforms)
    return [str(tag) for tag in found]


def for_platform(target: Target, platforms: Sequence[str] = (),
                 python_version: str | None = None, implementation: str | None = None,
                 abis: Sequence[str] = ()) -> Target:
    """`target` for pip's --platform, --python-version, --implementation and --abi: the
    tags are pip's for them (`supported_tags`), and the version (Requires-Python is
    checked against it, as pip's TargetPython does) is the one given. The markers stay
    the interpreter's: pip evaluates them in the interpreter that runs it.

    What is not given is the interpreter's, as pip (which runs in the target interpreter)
    takes it: its platforms, implementation and version from its probe, and its ABIs:
    those of its own tags, with the version given (pip's `_cpython_abis`: "cp311d" for
    3.12 is "cp312d"; none for a version "3"), or for another implementation than
    CPython its first one (packaging's `_generic_abi`). Python < 3.8's "m" ABI flag is
    not added for such an older --python-version."""
    from packaging.tags import INTERPRETER_SHORT_NAMES, parse_tag

    if not (platforms or python_version or implementation or abis):
        return target
    given = CrossPlatform(
        platforms=tuple(platforms),
        python_version=parse_python_version(python_version) if python_version else None,
        implementation=implementation, abis=tuple(abis), interpreter_version=target.version)
    own = [tag for text in target.tags for tag in sorted(parse_tag(text), key=str)]
    own_impl = INTERPRETER_SHORT_NAMES.get(target.implementation, target.implementation)
    impl = implementation or own_impl
    version = given.python_version or target.version[:2]
    # Not given: the interpreter's own, unexpanded (as packaging's platform_tags are).
    platforms = (_expand_platforms(platforms) if platforms else
                 list(dict.fromkeys(t.platform for t in own if t.platform != "any")))
    if not abis:
        own_abis = list(dict.fromkeys(
            t.abi for t in own if t.interpreter == own[0].interpreter
            and t.abi not in ("abi3", "abi3t", "none")))
        if impl != "cp":
            abis = own_abis[:1]
        elif len(version) == 1:
            abis = []
        else:
            old, new = ("cp" + "".join(map(str, v[:2])) for v in (target.version, version))
            abis = [new + abi.removeprefix(old) for abi in own_abis]
    # pip's normalize_version_info: (3,) is 3.0.0, (3, 12) is 3.12.0.
    major, minor, micro = (*version, 0, 0)[:3] if given.python_version else target.version
    return dataclasses.replace(
        target, tags=tuple(supported_tags(version, impl, abis, platforms)),
        version=(major, minor, micro),
        cross=dataclasses.replace(given, other_python=(
            impl != own_impl or (major, minor) != target.version[:2])))
