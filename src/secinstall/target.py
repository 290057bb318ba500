"""The environment being installed into: its interpreter, install scheme and tags.

`--python` points at another interpreter (or a virtual environment's directory), as in
pip and uv; its facts are asked from it in a subprocess, since its version, platform
and paths may differ from the interpreter running secinstall.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import subprocess  # nosec B404 - runs the user's chosen interpreter, no shell
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import packaging

from .errors import TargetError

SCHEME_KEYS = ("purelib", "platlib", "headers", "scripts", "data")

# The user scheme (`--user`) as this interpreter sees it when run without -I (the probe runs
# with it, which hides PYTHONUSERBASE from `site` and turns the user site off): the user
# base from the environment, and site's own check_enableusersite and virtual-environment
# rules, as pip's decide_user_install reads them from `site` and pyvenv.cfg.
_USER_PROBE = r"""
def user_scheme():
    import re, site
    env = os.environ
    getbase = getattr(site, "_getuserbase", site.getuserbase)
    base = env.get("PYTHONUSERBASE") or getbase()
    if hasattr(sysconfig, "get_preferred_scheme"):
        name = sysconfig.get_preferred_scheme("user")
    elif os.name == "nt":
        name = "nt_user"
    else:
        name = ("osx_framework_user" if sys.platform == "darwin"
                and getattr(sys, "_framework", None) else "posix_user")
    if sys.flags.isolated:  # the probe's -I: site's check_enableusersite without it
        ids = [(getattr(os, a, None), getattr(os, "e" + a, None)) for a in ("getuid", "getgid")]
        enabled = not env.get("PYTHONNOUSERSITE") and all(
            f is None or e is None or f() == e() for f, e in ids)
    else:
        enabled = bool(site.ENABLE_USER_SITE)
    no_global = False  # pip's virtualenv_no_global
    if sys.prefix != sys.base_prefix:
        try:
            with open(os.path.join(sys.prefix, "pyvenv.cfg"), encoding="utf-8") as cfg:
                lines = cfg.read().splitlines()
        except OSError:
            lines = ["include-system-site-packages = false"]
        no_global = any(m and m.group(1) == "false" for m in (
            re.match(r"include-system-site-packages\s*=\s*(true|false)", x) for x in lines))
    return {"base": base, "enabled": enabled, "no_global": no_global,
            "paths": sysconfig.get_paths(name, vars={"userbase": base}) if base else None}
"""

# Runs inside the target interpreter, with our `packaging` put on its path (pure Python)
# so that tags and markers are computed by the target itself, exactly as it will see them.
_PROBE = _USER_PROBE + r"""
import importlib.util, json, os, sys, sysconfig
sys.path.insert(0, sys.argv[1])
from packaging import markers, tags
prefix = sys.argv[2] or None
scheme_name = "nt" if os.name == "nt" else "posix_prefix"
paths = (sysconfig.get_paths(scheme_name, vars={"base": prefix, "platbase": prefix,
         "installed_base": prefix, "installed_platbase": prefix})
         if prefix else sysconfig.get_paths())
print(json.dumps({
    "executable": sys.executable,
    "prefix": sys.prefix,
    "base_prefix": sys.base_prefix,
    "stdlib": sysconfig.get_path("stdlib"),
    "version": list(sys.version_info[:3]),
    "implementation": sys.implementation.name,
    "cache_tag": sys.implementation.cache_tag,
    "magic": importlib.util.MAGIC_NUMBER.hex(),
    "paths": paths,
    "tags": [str(t) for t in tags.sys_tags()],
    "markers": markers.default_environment(),
    "user": user_scheme(),
}))
"""


@dataclass(frozen=True)
class Target:
    """Where and for which interpreter wheels are installed."""

    python: Path
    #: "user": `--user`, the interpreter's user scheme under its user base (the `root`).
    kind: Literal["environment", "target", "prefix", "user"]
    #: Where secinstall keeps its lock, journal and records (`<root>/.secinstall`).
    root: Path
    scheme: Mapping[str, str]
    version: tuple[int, int, int]
    implementation: str
    cache_tag: str | None
    magic: str
    #: Supported wheel tags, most preferred first.
    tags: tuple[str, ...]
    markers: Mapping[str, str]
    #: True when the target interpreter is the one running secinstall.
    is_current: bool
    #: PEP 668's `EXTERNALLY-MANAGED` file, when it governs installing here (see
    #: `externally_managed_marker`); None otherwise.
    externally_managed: Path | None = None
    #: The interpreter's own `sys.prefix` (its environment, whatever `kind` is), and its
    #: `sys.base_prefix` (another one in a virtual environment).
    sys_prefix: Path | None = None
    base_prefix: Path | None = None
    #: `--user`: the interpreter's own site-packages. What is installed there satisfies a
    #: requirement, as pip counts it, but is never replaced (the user site shadows it).
    base_site_dirs: tuple[Path, ...] = ()
    #: pip's --platform, --python-version, --implementation and --abi, when given: `tags`
    #: and `version` are then theirs, not the interpreter's (see `for_platform`).
    cross: CrossPlatform | None = None

    @functools.cached_property
    def tag_ranks(self) -> dict[str, int]:
        """Each supported tag's place in `tags` (0: most preferred)."""
        return {tag: rank for rank, tag in enumerate(self.tags)}

    @property
    def site_dirs(self) -> tuple[Path, ...]:
        """Where installed distributions (`*.dist-info`) live."""
        dirs = dict.fromkeys([Path(self.scheme["purelib"]), Path(self.scheme["platlib"])])
        return tuple(dirs)

    @property
    def state_dir(self) -> Path:
        return self.root / ".secinstall"

    @property
    def python_version(self) -> str:
        return ".".join(map(str, self.version))


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


def externally_managed_marker(kind: str, prefix: str, base_prefix: str,
                              stdlib: str) -> Path | None:
    """PEP 668's marker, where it governs the install, by pip's rule (pip/_internal/utils/
    misc.py and commands/install.py): `<stdlib>/EXTERNALLY-MANAGED`, if it is a file, for
    an install into the interpreter's own environment (not `--target` or `--prefix`) that
    is not a virtual environment (sys.prefix == sys.base_prefix). pip checks `--user`
    installs too: they are not `--root`, `--target` or `--prefix`."""
    if kind not in ("environment", "user") or prefix != base_prefix:
        return None
    marker = Path(stdlib, "EXTERNALLY-MANAGED")
    return marker if marker.is_file() else None


def externally_managed_text(marker: Path, prefix: Path) -> str:
    """What the marker says, as pip shows it (pip's ExternallyManagedEnvironment
    .from_config): its `[externally-managed]` section's `Error-<lang>` for the language
    of the messages' locale, else `Error`, else (no such key, or an unreadable file) pip's
    own default text."""
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(marker, encoding="utf-8")
        section = parser["externally-managed"]
        for key in externally_managed_keys(_messages_language()):
            if key in section:
                return section[key]
    except (KeyError, OSError, UnicodeDecodeError, configparser.Error):
        pass
    return (f"The Python environment under {prefix} is managed externally, and may not be\n"
            "manipulated by the user. Please use specific tooling from the distributor of\n"
            "the Python installation to interact with this environment instead.")


def _messages_language() -> str | None:
    import locale

    try:
        return locale.getlocale(locale.LC_MESSAGES)[0]
    except (AttributeError, ValueError):  # no LC_MESSAGES (Windows), or an unknown locale
        return None


def externally_managed_keys(lang: str | None) -> list[str]:
    """The marker's keys to try, in pip's order: `Error-de_DE`, `Error-de`, `Error`."""
    keys = []
    if lang is not None:
        keys.append(f"Error-{lang}")
        for sep in ("-", "_"):
            before, found, _ = lang.partition(sep)
            if found:
                keys.append(f"Error-{before}")
    return [*keys, "Error"]


def find_interpreter(spec: str | None) -> Path:
    """The interpreter named by `--python` (a file or an environment directory)."""
    if not spec:
        return Path(sys.executable)
    path = Path(spec).expanduser()
    if path.is_dir():
        for candidate in (path / "bin" / "python", path / "Scripts" / "python.exe",
                          path / "bin" / "python3"):
            if candidate.is_file():
                return candidate.absolute()
        raise TargetError(f"--python {spec}: no interpreter found in that directory")
    if not path.exists():
        import shutil

        found = shutil.which(spec)
        if found is None:
            raise TargetError(f"--python {spec}: no such file or command")
        path = Path(found)
    return path.absolute()


def _probe(python: Path, prefix: Path | None) -> Callable[[], dict[str, Any]]:
    """Start asking `python` for its facts; the returned function waits for the answer
    (the caller can do other work while the interpreter starts)."""
    lib_dir = str(Path(packaging.__file__).parent.parent)
    if python == Path(sys.executable).absolute():
        import contextlib
        import io

        out = io.StringIO()
        argv = sys.argv
        try:
            sys.argv = ["-", lib_dir, str(prefix or "")]
            with contextlib.redirect_stdout(out):
                exec(compile(_PROBE, "<probe>", "exec"), {"__name__": "__probe__"})  # noqa: S102  # nosec B102 - our own constant code
        finally:
            sys.argv = argv
            if sys.path and sys.path[0] == lib_dir:
                sys.path.pop(0)
        result: dict[str, Any] = json.loads(out.getvalue())
        return lambda: result
    try:
        proc = subprocess.Popen(  # noqa: S603  # nosec B603 - argument list, no shell
            [str(python), "-I", "-c", _PROBE, lib_dir, str(prefix or "")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
    except OSError as exc:
        raise TargetError(f"can't run the target interpreter {python}: {exc}") from exc

    def answer() -> dict[str, Any]:
        try:
            stdout, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired as exc:
            proc.kill()
            proc.communicate()
            raise TargetError(f"the target interpreter {python} did not answer in 60 s") from exc
        if proc.returncode != 0:
            last = (stderr.strip().splitlines() or ["no output"])[-1]
            raise TargetError(f"the target interpreter {python} failed to describe itself: "
                              f"{last}")
        try:
            data: dict[str, Any] = json.loads(stdout)
        except ValueError as exc:
            raise TargetError(f"the target interpreter {python} gave unreadable output") from exc
        return data

    return answer


def resolve_target(python: str | None = None, *, target_dir: str | None = None,
                   prefix: str | None = None, user: bool = False) -> Target:
    """Describe the install target from `--python`, `--target`, `--prefix` and `--user`."""
    return begin_target(python, target_dir=target_dir, prefix=prefix, user=user)()


def begin_target(python: str | None = None, *, target_dir: str | None = None,
                 prefix: str | None = None, user: bool = False) -> Callable[[], Target]:
    """`resolve_target`, in two steps: this one starts the target interpreter, the
    function it returns waits for its answer."""
    if target_dir and prefix:
        raise TargetError("--target and --prefix can't be used together")
    # pip's refusals (commands/install.py: run, decide_user_install).
    if user and target_dir:
        raise TargetError("Can not combine '--user' and '--target'")
    if user and prefix:
        raise TargetError("Can not combine '--user' and '--prefix' as they imply different "
                          "installation locations")
    interpreter = find_interpreter(python)
    prefix_path = Path(prefix).expanduser().absolute() if prefix else None
    pending = _probe(interpreter, prefix_path)
    return lambda: _target(interpreter, pending(), target_dir, prefix_path, user)


def _user_scheme(interpreter: Path, user: dict[str, Any]) -> tuple[Path, dict[str, str]]:
    """The user base and scheme of `--user`, or pip's reason why there is none."""
    if user["no_global"]:
        raise TargetError(f"{interpreter}: Can not perform a '--user' install. User "
                          "site-packages are not visible in this virtualenv.")
    if not user["enabled"] or not user["paths"]:
        raise TargetError(f"{interpreter}: Can not perform a '--user' install. User "
                          "site-packages are disabled for this Python.")
    return Path(user["base"]), user["paths"]


def _target(interpreter: Path, info: dict[str, Any], target_dir: str | None,
            prefix_path: Path | None, user: bool = False) -> Target:
    kind: Literal["environment", "target", "prefix", "user"] = "environment"
    root, scheme = Path(info["prefix"]), info["paths"]
    if user:
        kind = "user"
        root, scheme = _user_scheme(interpreter, info["user"])
    paths: dict[str, str] = {k: scheme[k] for k in SCHEME_KEYS if k in scheme}
    paths.setdefault("headers", os.path.join(paths["data"], "include"))
    if target_dir:
        kind = "target"
        root = Path(target_dir).expanduser().absolute()
        paths = {"purelib": str(root), "platlib": str(root), "scripts": str(root / "bin"),
                 "data": str(root), "headers": str(root / "include")}
    elif prefix_path:
        kind, root = "prefix", prefix_path
    marker = externally_managed_marker(kind, info["prefix"], info["base_prefix"],
                                       info["stdlib"])
    base = info["paths"]
    base_site_dirs = (tuple(dict.fromkeys(Path(base[k]) for k in ("purelib", "platlib")))
                      if kind == "user" else ())
    return Target(
        python=interpreter,
        kind=kind,
        root=root,
        scheme=paths,
        version=(info["version"][0], info["version"][1], info["version"][2]),
        implementation=info["implementation"],
        cache_tag=info["cache_tag"],
        magic=info["magic"],
        tags=tuple(info["tags"]),
        markers=info["markers"],
        is_current=interpreter == Path(sys.executable).absolute(),
        externally_managed=marker,
        sys_prefix=Path(info["prefix"]),
        base_prefix=Path(info["base_prefix"]),
        base_site_dirs=base_site_dirs,
    )
