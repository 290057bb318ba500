"""pip's configuration files and PIP_* variables, for the options secinstall shares with pip.

The rules are pip's (pip/_internal/configuration.py and cli/parser.py, pip 26): files in
order global < user < site < $PIP_CONFIG_FILE, and within them `[global]` < `[install]`,
then `PIP_<NAME>` variables; values are converted as pip's option parser does.
"""

from __future__ import annotations

import configparser
import locale
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from secinstall.errors import ConfigError

__all__ = ["ConfigFiles", "Setting", "config_files", "environment_warnings", "load_pip_settings",
           "pip_config_values"]


@dataclass(frozen=True)
class Setting:
    """One value and where it came from."""

    value: object
    #: e.g. "/etc/pip.conf [global]", "environment PIP_INDEX_URL", "command line".
    origin: str


@dataclass(frozen=True)
class ConfigFiles:
    """pip's configuration files of each kind, in pip's order (later wins)."""

    global_files: tuple[Path, ...]
    user_files: tuple[Path, ...]
    site_files: tuple[Path, ...]


def _home(environ: Mapping[str, str], platform: str) -> str:
    home = environ.get("USERPROFILE") if platform == "win32" else environ.get("HOME")
    # Like os.path.expanduser with HOME unset: the password database.
    return home or os.path.expanduser("~")


def _expanduser(path: str, environ: Mapping[str, str], platform: str = sys.platform) -> str:
    """os.path.expanduser, but reading HOME from `environ`."""
    if path == "~" or path.startswith(("~/", "~" + os.sep)):
        return _home(environ, platform) + path[1:]
    return os.path.expanduser(path)


def config_files(
    environ: Mapping[str, str] | None = None,
    *,
    site_prefix: Path | None = None,
    platform: str | None = None,
) -> ConfigFiles:
    """Where pip looks for its configuration (pip/_internal/utils/appdirs.py, platformdirs).

    `site_prefix` is the target environment's prefix (default: this interpreter's).
    """
    env = os.environ if environ is None else environ
    plat = sys.platform if platform is None else platform
    home = _home(env, plat)
    prefix = Path(sys.prefix if site_prefix is None else site_prefix)
    if plat == "win32":
        program_data = env.get("ProgramData") or env.get("PROGRAMDATA") or r"C:\ProgramData"
        appdata = env.get("APPDATA") or os.path.join(home, "AppData", "Roaming")
        return ConfigFiles(
            global_files=(Path(program_data, "pip", "pip.ini"),),
            user_files=(Path(home, "pip", "pip.ini"), Path(appdata, "pip", "pip.ini")),
            site_files=(prefix / "pip.ini",),
        )
    # platformdirs ignores relative XDG_* entries.
    xdg_dirs = [d.strip() for d in env.get("XDG_CONFIG_DIRS", "").split(os.pathsep)]
    xdg_dirs = [d for d in xdg_dirs if os.path.isabs(d)]
    if plat == "darwin":
        global_dirs = ["/Library/Application Support"]
        support = os.path.join(home, "Library", "Application Support", "pip")
        user_dir = support if os.path.isdir(support) else os.path.join(home, ".config", "pip")
    else:
        global_dirs = xdg_dirs or ["/etc/xdg"]
        config_home = env.get("XDG_CONFIG_HOME", "").strip()
        if not os.path.isabs(config_home):
            config_home = os.path.join(home, ".config")
        user_dir = os.path.join(config_home, "pip")
    return ConfigFiles(
        # pip adds /etc on every Unix-like system.
        global_files=(*(Path(d, "pip", "pip.conf") for d in global_dirs), Path("/etc/pip.conf")),
        user_files=(Path(home, ".pip", "pip.conf"), Path(user_dir, "pip.conf")),
        site_files=(prefix / "pip.conf",),
    )


def _strtobool(value: str) -> bool:
    """pip's strtobool (pip/_internal/utils/misc.py)."""
    if value.lower() in ("y", "yes", "t", "true", "on", "1"):
        return True
    if value.lower() in ("n", "no", "f", "false", "off", "0"):
        return False
    raise ValueError("not a boolean; use yes/no, true/false, on/off or 1/0")


def _no_compile(value: str) -> bool:
    # pip stores strtobool(value) into the option's dest, `compile`, even for the
    # store_false `--no-compile`: so `no-compile = no` disables compiling and
    # `no-compile = yes` enables it (pypa/pip#5011, #5735). Replicated, not fixed.
    return not _strtobool(value)


def _no_cache_dir(value: str) -> bool:
    # pip disables the cache for any valid boolean, even "false" or "no", for
    # backwards compatibility (pip/_internal/cli/cmdoptions.py: _handle_no_cache_dir).
    _strtobool(value)
    return True


def _count(value: str) -> int:
    """pip's rule for -q/-v counts: a boolean (1/0) or a non-negative integer."""
    try:
        return int(_strtobool(value))
    except ValueError:
        pass
    try:
        count = int(value)
    except ValueError:
        count = -1
    if count < 0:
        raise ValueError("not a non-negative integer or a boolean like yes/no")
    return count


def _int(value: str) -> int:
    """optparse's "int" type: 0x.. hexadecimal, 0b.. binary, 0.. octal."""
    text = value.lower()
    try:
        if text.startswith("0x"):
            return int(text, 16)
        if text.startswith("0b"):
            return int(text[2:] or "0", 2)
        return int(text, 8 if text.startswith("0") else 10)
    except ValueError:
        raise ValueError("not an integer") from None


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError("not a number") from None


def _words(value: str) -> tuple[str, ...]:
    return tuple(value.split())


def _text(value: str) -> str:
    return value


def _progress_bar(value: str) -> str:
    """pip's --progress-bar choices."""
    if value not in ("on", "off", "raw"):
        raise ValueError("not one of on, off, raw")
    return value


# pip's long option names (as used in files and PIP_* variables) -> (secinstall key, converter).
_OPTIONS: dict[str, tuple[str, Callable[[str], object]]] = {
    "index-url": ("index-url", _text),
    "pypi-url": ("index-url", _text),
    "extra-index-url": ("extra-index-url", _words),
    "find-links": ("find-links", _words),
    "no-index": ("no-index", _strtobool),
    "cert": ("cert", _text),
    "client-cert": ("client-cert", _text),
    "trusted-host": ("trusted-host", _words),
    "require-hashes": ("require-hashes", _strtobool),
    "pre": ("pre", _strtobool),
    "timeout": ("timeout", _float),
    "default-timeout": ("timeout", _float),
    "retries": ("retries", _int),
    "cache-dir": ("cache-dir", _text),
    "no-cache-dir": ("no-cache-dir", _no_cache_dir),
    "no-deps": ("no-deps", _strtobool),
    "no-dependencies": ("no-deps", _strtobool),
    "upgrade": ("upgrade", _strtobool),
    "force-reinstall": ("force-reinstall", _strtobool),
    "upgrade-strategy": ("upgrade-strategy", _text),
    "require-virtualenv": ("require-virtualenv", _strtobool),
    "ignore-installed": ("ignore-installed", _strtobool),
    "target": ("target", _text),
    "prefix": ("prefix", _text),
    "root": ("root", _text),
    "user": ("user", _strtobool),
    "python": ("python", _text),
    "dry-run": ("dry-run", _strtobool),
    "break-system-packages": ("break-system-packages", _strtobool),
    "report": ("report", _text),
    "quiet": ("quiet", _count),
    "verbose": ("verbose", _count),
    "log": ("log", _text),
    "log-file": ("log", _text),
    "local-log": ("log", _text),
    "progress-bar": ("progress-bar", _progress_bar),
    "no-color": ("no-color", _strtobool),
    "constraint": ("constraint", _words),
    "requirement": ("requirement", _words),
    "no-compile": ("no-compile", _no_compile),
    "compile": ("no-compile", _no_compile),
    # The store_false `--no-warn-conflicts` and `--no-warn-script-location`: strtobool of
    # the value goes to their dest, as for no-compile, so `... = no` turns the warning off.
    "no-warn-conflicts": ("warn-conflicts", _strtobool),
    "no-warn-script-location": ("warn-script-location", _strtobool),
    "proxy": ("proxy", _text),
    "disable-pip-version-check": ("disable-pip-version-check", _strtobool),
    "no-input": ("no-input", _strtobool),
    "platform": ("platform", _words),
    "python-version": ("python-version", _text),
    "implementation": ("implementation", _text),
    "abi": ("abi", _words),
}
# pip's "path" options: a leading `~` is expanded.
_PATH_KEYS = frozenset({"cert", "client-cert", "cache-dir", "log"})
# The sections pip's install command reads, in increasing priority; ":env:" holds PIP_*.
_SECTIONS = ("global", "install", ":env:")


def _normalize(name: str) -> str:
    """pip's _normalize_name: lower case, dashes, no leading "--"."""
    return name.lower().replace("_", "-").removeprefix("--")


class _RawConfigParser(configparser.RawConfigParser):
    def optionxform(self, optionstr: str) -> str:
        return _normalize(optionstr)


def read_config_file(fname: str) -> list[tuple[str, str, str]]:
    """(section, name, value) of every option in `fname`; nothing if it doesn't exist."""
    parser = _RawConfigParser()
    if Path(fname).exists():
        encoding = "utf-8" if sys.flags.utf8_mode else locale.getpreferredencoding(False)
        try:
            # Like pip, files that exist but can't be opened are skipped by read().
            parser.read(fname, encoding=encoding)
        except UnicodeDecodeError:
            raise ConfigError(
                f"{fname}: contains invalid {encoding} characters; save it as {encoding}"
            ) from None
        except configparser.Error as exc:
            raise ConfigError(f"{fname}: not a valid configuration file: {exc}") from exc
    return [(s, name, value) for s in parser.sections() for name, value in parser.items(s)]


def pip_config_values(
    environ: Mapping[str, str] | None = None,
    *,
    site_prefix: Path | None = None,
    isolated: bool = False,
    files: ConfigFiles | None = None,
    command: str = "install",
) -> tuple[dict[str, dict[str, tuple[str, str]]], list[str]]:
    """Every value pip's configuration gives its `command`, as pip reads them:
    {section: {name: (value, origin)}} for "global", `command` and ":env:" (the PIP_*
    variables), in increasing priority, and the problems of files that can't be read.
    `isolated` is pip's `--isolated`: user files and PIP_* variables are ignored (global,
    site and $PIP_CONFIG_FILE files still apply, as in pip). `files` overrides
    `config_files()`."""
    env = os.environ if environ is None else environ
    found = files if files is not None else config_files(env, site_prefix=site_prefix)
    env_file = env.get("PIP_CONFIG_FILE")
    problems: list[str] = []
    # One entry per file name, in pip's order (OVERRIDE_ORDER); like pip's dict, a
    # name listed twice keeps its first position.
    per_file: dict[str, list[tuple[str, str, str]]] = {}
    if env_file != os.devnull:
        skip_user = isolated or bool(env_file and Path(env_file).exists())
        names = [
            *map(str, found.global_files),
            *(() if skip_user else map(str, found.user_files)),
            *map(str, found.site_files),
            *(() if env_file is None else (env_file,)),
        ]
        for fname in names:
            try:
                per_file[fname] = read_config_file(fname)
            except ConfigError as exc:
                problems.append(exc.message)
    sections: dict[str, dict[str, tuple[str, str]]] = {
        s: {} for s in ("global", command, ":env:")}
    for fname, items in per_file.items():
        for section, name, file_value in items:
            if section in sections:
                sections[section][name] = (file_value, f"{fname} [{section}]")
    if not isolated:
        for var, env_value in env.items():
            name = var[4:].lower()
            if var.startswith("PIP_") and name not in ("version", "help"):
                sections[":env:"][_normalize(name)] = (env_value, f"environment {var}")
    return sections, problems


def load_pip_settings(
    environ: Mapping[str, str] | None = None,
    *,
    site_prefix: Path | None = None,
    isolated: bool = False,
    files: ConfigFiles | None = None,
) -> dict[str, Setting]:
    """pip's settings for the options secinstall shares, keyed by long option name.

    Keys are canonical names ("index-url", "no-deps"; aliases such as "default-timeout"
    map to theirs); list options are tuples of strings. `isolated` and `files` as in
    `pip_config_values`. Both "cache-dir" and "no-cache-dir" may be present: in pip the
    latter wins.
    """
    env = os.environ if environ is None else environ
    sections, problems = pip_config_values(env, site_prefix=site_prefix, isolated=isolated,
                                           files=files)
    settings: dict[str, Setting] = {}
    # pip's ConfigOptionParser._update_defaults: every value is checked, even one a
    # later source overrides; empty values are skipped; unknown names are ignored.
    for section in _SECTIONS:
        for name, (raw, origin) in sections[section].items():
            if not raw or name not in _OPTIONS:
                continue
            key, convert = _OPTIONS[name]
            try:
                value: object = _expanduser(raw, env) if key in _PATH_KEYS else convert(raw)
            except ValueError as exc:
                problems.append(f"{origin}: {name} = {raw!r} is {exc}")
                continue
            settings[key] = Setting(value, origin)
    if problems:
        more = len(problems) - 1
        raise ConfigError(
            problems[0] + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""),
            details=problems if more else (),
        )
    return settings


def environment_warnings(
    environ: Mapping[str, str] | None = None, *, platform: str | None = None
) -> list[str]:
    """Messages about variables that silently change how TLS is verified."""
    env = os.environ if environ is None else environ
    messages = []
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        if value := env.get(var):
            # requests applies these over a session's `verify`, i.e. over pip's --cert
            # (psf/requests#3829).
            messages.append(
                f"{var}={value} is set: pip and other requests-based tools trust only this "
                "CA bundle instead of the system trust store, even over pip's --cert; "
                "secinstall does not read it (use --cert to choose a bundle)"
            )
    if (sys.platform if platform is None else platform).startswith("linux"):
        for var in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
            if value := env.get(var):
                # truststore on Linux loads OpenSSL's default verify paths, which honour these.
                messages.append(
                    f"{var}={value} is set: on Linux it replaces the CA certificates "
                    "the system trust store provides, for secinstall too"
                )
    return messages


# -- [tool.secinstall] in pyproject.toml, or secinstall.toml ------------------------------

#: secinstall's own settings, with the type each value must have.
PROJECT_KEYS: dict[str, type] = {
    "attestations": str,
    "sigstore-instance": str,
    "provenance-dir": str,
    "publishers": dict,
}
PROJECT_CHOICES = {"attestations": ("require", "auto", "off"),
                   "sigstore-instance": ("production", "staging")}


def load_toml(path: Path) -> dict[str, object]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
    try:
        with path.open("rb") as f:
            data: dict[str, object] = tomllib.load(f)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"can't read {path}: {exc}") from exc
    return data


def load_project_settings(directory: Path) -> dict[str, Setting]:
    """secinstall's settings from `secinstall.toml` or `[tool.secinstall]` of the
    `pyproject.toml` in `directory`; `secinstall.toml` wins when both exist."""
    settings: dict[str, Setting] = {}
    sources: list[tuple[Path, str, dict[str, object]]] = []
    pyproject = directory / "pyproject.toml"
    if pyproject.is_file():
        tool = load_toml(pyproject).get("tool", {})
        table = tool.get("secinstall") if isinstance(tool, dict) else None
        if isinstance(table, dict):
            sources.append((pyproject, "[tool.secinstall]", table))
    own = directory / "secinstall.toml"
    if own.is_file():
        sources.append((own, "", load_toml(own)))
    for path, section, table in sources:
        where = f"{path} {section}".strip()
        for key, value in table.items():
            if key == "policy":
                continue  # the usage policy has its own reader
            if key not in PROJECT_KEYS:
                raise ConfigError(f"{where}: unknown setting {key!r} (known: "
                                  f"{', '.join(sorted(PROJECT_KEYS))})")
            if not isinstance(value, PROJECT_KEYS[key]):
                raise ConfigError(f"{where}: {key} has the wrong type "
                                  f"({type(value).__name__})")
            if key in PROJECT_CHOICES and value not in PROJECT_CHOICES[key]:
                raise ConfigError(f"{where}: {key} = {value!r}; expected one of "
                                  f"{', '.join(PROJECT_CHOICES[key])}")
            if isinstance(value, dict):
                value = {str(k): publisher_spec(v, f"{where} publishers.{k}")
                         for k, v in value.items()}
            elif key == "provenance-dir":
                value = str((path.parent / str(value)).resolve())
            settings[key] = Setting(value, where)
    return settings


def publisher_spec(value: object, where: str) -> str:
    """A publisher pin from the config file: a string, or a table of its parts."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "kind" in value and "repository" in value:
        extra = "".join(f",{k}={value[k]}" for k in ("workflow", "environment", "issuer")
                        if k in value)
        return f"{value['kind']}:{value['repository']}{extra}"
    raise ConfigError(f"{where}: expected \"KIND:ID\" or a table with kind and repository")
