"""The environment being installed into: its interpreter, install scheme and tags.

`--python` points at another interpreter (or a virtual environment's directory), as in
pip and uv; its facts are asked from it in a subprocess, since its version, platform
and paths may differ from the interpreter running secinstall.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess  # nosec B404 - runs the user's chosen interpreter, no shell
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import packaging

from .errors import TargetError

if TYPE_CHECKING:
    from packaging.requirements import Requirement

    from .platforms import CrossPlatform

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
user = user_scheme()
# A virtual environment that sees the system's site-packages (pyvenv.cfg's
# include-system-site-packages): what is installed there satisfies a requirement, for pip.
base = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix,
        "installed_base": sys.base_prefix, "installed_platbase": sys.base_exec_prefix}
system_site = ([sysconfig.get_paths(vars=base)[k] for k in ("purelib", "platlib")]
               if sys.prefix != sys.base_prefix and not user["no_global"] else [])
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
    "user": user,
    "system_site": system_site,
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
    #: `--user`: the interpreter's own site-packages; in a virtual environment that sees
    #: the system's (include-system-site-packages), the base interpreter's. What is
    #: installed there satisfies a requirement, as pip counts it, but is never replaced
    #: (what is installed here shadows it).
    base_site_dirs: tuple[Path, ...] = ()
    #: pip's `--root DIR`: `scheme` and `root` are then the final paths re-rooted under DIR
    #: (where every file, and secinstall's own state, is written), as pip's get_scheme(root=)
    #: makes them; `final_path` gives the paths the installed files will have.
    destdir: Path | None = None
    #: pip's --platform, --python-version, --implementation and --abi, when given: `tags`
    #: and `version` are then theirs, not the interpreter's (see `platforms.for_platform`).
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
    def satisfying_dirs(self) -> tuple[Path, ...]:
        """Where an installed distribution satisfies a requirement, as pip counts it: the
        site directories, then `base_site_dirs`. With `--root`, the final ones, not those
        under the root: pip looks in the real environment (so packagers pass
        --ignore-installed)."""
        return (*(self.final_path(d) for d in self.site_dirs), *self.base_site_dirs)

    def final_path(self, path: str | Path) -> Path:
        """`path` (under `destdir` with `--root`) where it will be once installed."""
        if self.destdir is None:
            return Path(path)
        # The interpreter's path is absolute: its anchor is "/" (or its drive on Windows,
        # which pip's change_root drops too).
        return Path(self.python.anchor, Path(path).relative_to(self.destdir))

    @property
    def final_scheme(self) -> dict[str, str]:
        return {key: str(self.final_path(path)) for key, path in self.scheme.items()}

    @property
    def state_dir(self) -> Path:
        return self.root / ".secinstall"

    @property
    def pip_site_prefix(self) -> Path | None:
        """Where pip's "site" configuration file (`<sys.prefix>/pip.conf`) is, for pip's
        settings of an install here: the interpreter's environment when installing into it
        or its user scheme; none for --target or --prefix."""
        return self.sys_prefix if self.kind in ("environment", "user") else None

    @property
    def python_version(self) -> str:
        return ".".join(map(str, self.version))


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
    path = Path(os.path.expanduser(spec))
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
                   prefix: str | None = None, user: bool = False,
                   root: str | None = None) -> Target:
    """Describe the install target from `--python`, `--target`, `--prefix`, `--user` and
    `--root`."""
    return begin_target(python, target_dir=target_dir, prefix=prefix, user=user, root=root)()


def begin_target(python: str | None = None, *, target_dir: str | None = None,
                 prefix: str | None = None, user: bool = False,
                 root: str | None = None) -> Callable[[], Target]:
    """`resolve_target`, in two steps: this one starts the target interpreter, the
    function it returns waits for its answer."""
    if target_dir and prefix:
        raise TargetError("--target and --prefix can't be used together")
    if target_dir and root:
        # pip accepts both, but installs into DIR/<its temporary --target directory> and
        # then moves nothing into the --target directory: refused rather than followed.
        raise TargetError("--target and --root can't be used together (pip accepts both "
                          "but installs nothing into the --target directory): to install "
                          "into PATH under DIR, give --target DIR/PATH")
    # pip's refusals (commands/install.py: run, decide_user_install).
    if user and target_dir:
        raise TargetError("Can not combine '--user' and '--target'")
    if user and prefix:
        raise TargetError("Can not combine '--user' and '--prefix' as they imply different "
                          "installation locations")
    interpreter = find_interpreter(python)
    prefix_path = Path(os.path.expanduser(prefix)).absolute() if prefix else None
    destdir = Path(os.path.expanduser(root)).absolute() if root else None
    pending = _probe(interpreter, prefix_path)
    return lambda: _target(interpreter, pending(), target_dir, prefix_path, user, destdir)


def _user_scheme(interpreter: Path, user: dict[str, Any]) -> tuple[Path, dict[str, str]]:
    """The user base and scheme of `--user`, or pip's reason why there is none."""
    if user["no_global"]:
        raise TargetError(f"{interpreter}: Can not perform a '--user' install. User "
                          "site-packages are not visible in this virtualenv.")
    if not user["enabled"] or not user["paths"]:
        raise TargetError(f"{interpreter}: Can not perform a '--user' install. User "
                          "site-packages are disabled for this Python.")
    return Path(user["base"]), user["paths"]


def _headers(info: dict[str, Any], root: Path, include: str) -> str:
    """Where a wheel's headers (`<name>.data/headers/`) go, as pip puts them, less the
    distribution's name, which each install adds: in a virtual environment
    `<root>/include/site/pythonX.Y` (pip's own header path there, uv's too), elsewhere the
    scheme's `include` directory (`--target`: pip's home scheme, `<dir>/include/python`)."""
    if info["prefix"] != info["base_prefix"]:
        return str(root / "include" / "site" / f"python{info['version'][0]}.{info['version'][1]}")
    return include


def applies(req: Requirement, markers: Mapping[str, str],
            extras: Iterable[str] = ("",)) -> bool:
    """Whether `req` applies where `markers` (a target's) hold, for one of `extras` (""
    for none). A marker that can't be evaluated there (a comparison that isn't defined,
    an unknown variable) doesn't apply: it is another tool's metadata, not an error."""
    if req.marker is None:
        return True
    for extra in extras:
        try:
            if req.marker.evaluate({**markers, "extra": extra}):
                return True
        except (ValueError, KeyError):
            return False
    return False


def change_root(destdir: Path, path: str | Path) -> Path:
    """pip's change_root (and installer's destdir): an absolute `path` under `destdir`."""
    p = Path(path)
    return destdir / p.relative_to(p.anchor)


def _target(interpreter: Path, info: dict[str, Any], target_dir: str | None,
            prefix_path: Path | None, user: bool = False,
            destdir: Path | None = None) -> Target:
    kind: Literal["environment", "target", "prefix", "user"] = "environment"
    root, scheme = Path(info["prefix"]), info["paths"]
    if user:
        kind = "user"
        root, scheme = _user_scheme(interpreter, info["user"])
    paths: dict[str, str] = {k: scheme[k] for k in (*SCHEME_KEYS, "include") if k in scheme}
    if target_dir:
        kind = "target"
        root = Path(os.path.expanduser(target_dir)).absolute()
        paths = {"purelib": str(root), "platlib": str(root), "scripts": str(root / "bin"),
                 "data": str(root), "include": str(root / "include" / "python")}
    elif prefix_path:
        kind, root = "prefix", prefix_path
    include = paths.pop("include", None) or os.path.join(paths["data"], "include")
    paths["headers"] = _headers(info, root, include)
    # pip checks PEP 668 only when installing into the current environment: not --root.
    marker = None if destdir else externally_managed_marker(
        kind, info["prefix"], info["base_prefix"], info["stdlib"])
    if destdir:
        root = change_root(destdir, root)
        paths = {key: str(change_root(destdir, path)) for key, path in paths.items()}
    base = info["paths"]
    base_site_dirs: tuple[Path, ...] = ()
    if kind == "user":
        base_site_dirs = tuple(dict.fromkeys(Path(base[k]) for k in ("purelib", "platlib")))
    elif kind == "environment":
        base_site_dirs = tuple(dict.fromkeys(Path(p) for p in info.get("system_site", ())))
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
        destdir=destdir,
    )
