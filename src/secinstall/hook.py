"""`secinstall hook`: point one of pip's configuration files at the verifying index
(`secinstall serve`), after saving it, and put it back byte for byte.

The hooked file keeps everything but its index settings (commented out, not deleted);
index settings that pip reads from files loaded before it are overridden in it, so pip
has no other source. What pip used before is saved as the upstream `serve` fetches from.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .config import Setting, config_files, load_pip_settings
from .errors import ConfigError
from .files import write_atomic

Scope = Literal["user", "site", "global"]

#: pip's option names (in files) that choose where distributions come from.
INDEX_KEYS = ("index-url", "pypi-url", "extra-index-url", "find-links", "no-index")
BACKUP_SUFFIX = ".secinstall-backup"
STATE_SUFFIX = ".secinstall-hook.json"
#: What the hooked file's replaced files are kept as when it was edited while hooked.
EDITED_SUFFIX = ".secinstall-edited"
MARK = "# (secinstall hook) "
_SECTION = re.compile(r"\[(?P<header>.+)\]")


@dataclass(frozen=True)
class HookState:
    """What `enable` saved next to the file it hooked."""

    file: Path
    existed: bool
    url: str
    written_sha256: str
    #: pip's index settings before the hook: index-url, extra-index-url, find-links, no-index.
    upstream: Mapping[str, Any]
    created_dirs: tuple[str, ...] = ()


@dataclass(frozen=True)
class HookResult:
    file: Path
    url: str
    #: The saved previous file (None when there was none).
    backup: Path | None = None
    #: True when `disable` restored a previous file, False when it removed the hook's file.
    restored: bool = False
    #: Where the hooked file went when it had been edited while hooked.
    kept_edited: Path | None = None
    warnings: list[str] = field(default_factory=list)


def hook_file(scope: Scope, environ: Mapping[str, str] | None = None, *,
              site_prefix: Path | None = None) -> Path:
    """The file `pip config --<scope> set` would edit: the last of its kind."""
    files = config_files(environ, site_prefix=site_prefix)
    kinds = {"user": files.user_files, "site": files.site_files, "global": files.global_files}
    return kinds[scope][-1]


def index_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/simple/"


def _state_path(file: Path) -> Path:
    return file.with_name(file.name + STATE_SUFFIX)


def _backup_path(file: Path) -> Path:
    return file.with_name(file.name + BACKUP_SUFFIX)


def read_state(file: Path) -> HookState | None:
    path = _state_path(file)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return HookState(file=file, existed=bool(data["existed"]), url=str(data["url"]),
                         written_sha256=str(data["written_sha256"]),
                         upstream=dict(data["upstream"]),
                         created_dirs=tuple(data.get("created_dirs", ())))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the hook's record {path} is unreadable ({exc}); the file it "
                          f"saved is {_backup_path(file)}") from exc


def _pip_env(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without PIP_* variables (but with PIP_CONFIG_FILE): what files say."""
    return {k: v for k, v in environ.items()
            if not k.startswith("PIP_") or k == "PIP_CONFIG_FILE"}


def _loaded_files(environ: Mapping[str, str], site_prefix: Path | None) -> list[Path]:
    """pip's configuration files in the order it loads them (later wins)."""
    env_file = environ.get("PIP_CONFIG_FILE")
    if env_file == os.devnull:
        return []
    files = config_files(environ, site_prefix=site_prefix)
    user = () if env_file and Path(env_file).exists() else files.user_files
    return [*files.global_files, *user, *files.site_files,
            *((Path(env_file),) if env_file else ())]


def _index_entries(path: Path) -> list[tuple[str, str]]:
    """(section, key) of every index setting in the file at `path`."""
    from .config import read_config_file

    try:
        items = read_config_file(str(path))
    except ConfigError:
        return []
    return [(s, k) for s, k, _v in items if k in INDEX_KEYS]


def enabled_hooks(environ: Mapping[str, str] | None = None, *,
                  site_prefix: Path | None = None) -> list[HookState]:
    env = os.environ if environ is None else environ
    files = config_files(env, site_prefix=site_prefix)
    found = []
    for path in dict.fromkeys([*files.global_files, *files.user_files, *files.site_files]):
        state = read_state(path)
        if state is not None:
            found.append(state)
    return found


def unhooked_settings(settings: dict[str, Setting], environ: Mapping[str, str] | None = None,
                      *, site_prefix: Path | None = None) -> dict[str, Setting]:
    """pip's `settings` with the hook's own URL taken out of the index settings and
    replaced by what pip used before the hook (for `serve`, whose upstream it is)."""
    hooks = enabled_hooks(environ, site_prefix=site_prefix)
    urls = {h.url for h in hooks}
    if not urls:
        return settings
    result = dict(settings)
    for key in ("extra-index-url", "find-links"):
        if key in result:
            kept = tuple(u for u in _words(result[key].value) if u not in urls)
            result[key] = Setting(kept, result[key].origin)
    current = result.get("index-url")
    if current is None or str(current.value) not in urls:
        return result
    hook = next(h for h in hooks if h.url == current.value)
    origin = f"{hook.file} (as it was before `secinstall hook enable`)"
    del result["index-url"]
    result.pop("no-index", None)
    up = hook.upstream
    if up.get("index-url"):
        result["index-url"] = Setting(str(up["index-url"]), origin)
    for key in ("extra-index-url", "find-links"):
        values = tuple(dict.fromkeys([*_words(result[key].value if key in result else ()),
                                      *map(str, up.get(key, ()))]))
        result[key] = Setting(values, origin)
    if up.get("no-index"):
        result["no-index"] = Setting(True, origin)
    return result


def _words(value: object) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return tuple(str(value).split())


def _hooked_text(old: str, overrides: Mapping[str, Mapping[str, str]], header: str) -> str:
    """`old` with its index settings commented out and `overrides` written into their
    sections (a section is never repeated: pip's parser refuses duplicates)."""
    out = [header]
    pending = {s: dict(v) for s, v in overrides.items()}
    commenting = False
    for line in old.splitlines(keepends=True):
        stripped = line.strip()
        if stripped and line[0] in " \t":  # a continuation of the option above
            out.append(MARK + line if commenting else line)
            continue
        if not stripped or stripped[0] in "#;":
            out.append(line)
            continue
        commenting = False
        if not line.endswith("\n"):
            line += "\n"
        match = _SECTION.fullmatch(stripped)
        if match:
            out.append(line)
            out += [f"{k} = {v}\n" for k, v in pending.pop(match["header"], {}).items()]
            continue
        key = re.split(r"[=:]", stripped, maxsplit=1)[0].strip()
        if key.lower().replace("_", "-").removeprefix("--") in INDEX_KEYS:
            out.append(MARK + line)
            commenting = True
        else:
            out.append(line)
    if out and not out[-1].endswith("\n"):
        out[-1] += "\n"
    for section, items in pending.items():
        out.append(f"[{section}]\n")
        out += [f"{k} = {v}\n" for k, v in items.items()]
    return "".join(out)


def _upstream(environ: Mapping[str, str], site_prefix: Path | None) -> dict[str, Any]:
    settings = unhooked_settings(load_pip_settings(_pip_env(environ), site_prefix=site_prefix),
                                 environ, site_prefix=site_prefix)
    return {
        "index-url": str(settings["index-url"].value) if "index-url" in settings else None,
        "extra-index-url": list(_words(settings["extra-index-url"].value))
        if "extra-index-url" in settings else [],
        "find-links": list(_words(settings["find-links"].value))
        if "find-links" in settings else [],
        "no-index": bool(settings["no-index"].value) if "no-index" in settings else False,
        "origins": {k: settings[k].origin for k in ("index-url", "extra-index-url",
                                                    "find-links", "no-index") if k in settings},
    }


def enable(scope: Scope, port: int, environ: Mapping[str, str] | None = None, *,
           site_prefix: Path | None = None) -> HookResult:
    """Hook pip's `scope` configuration file; enabling again changes only the port."""
    env = os.environ if environ is None else environ
    file = hook_file(scope, env, site_prefix=site_prefix)
    url = index_url(port)
    state = read_state(file)
    backup = _backup_path(file)
    try:
        if state is None:
            existed = file.exists()
            original = file.read_bytes() if existed else b""
            upstream = _upstream(env, site_prefix)
            created: list[str] = []
            missing = file.parent
            while not missing.exists():
                created.append(str(missing))
                missing = missing.parent
            file.parent.mkdir(parents=True, exist_ok=True)
            if existed:
                shutil.copy2(file, backup)
        else:
            existed, upstream, created = state.existed, dict(state.upstream), \
                list(state.created_dirs)
            original = backup.read_bytes() if existed else b""
        mode = (backup.stat().st_mode & 0o777) if existed else 0o644
        try:
            text = original.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{file} is not UTF-8 text; the hook can't edit it") from None
        overrides = _overrides(file, url, env, site_prefix)
        header = (f"# Hooked by `secinstall hook enable`: pip installs through the verifying "
                  f"index at {url},\n# which `secinstall serve --port {port}` must be "
                  f"serving. `secinstall hook disable` puts back\n# "
                  + (f"the previous file (saved as {backup.name})."
                     if existed else "no file (there was none).") + "\n")
        written = _hooked_text(text, overrides, header).encode("utf-8")
        record = {"version": 1, "existed": existed, "url": url,
                  "written_sha256": hashlib.sha256(written).hexdigest(),
                  "upstream": upstream, "created_dirs": created}
        write_atomic(_state_path(file), (json.dumps(record, indent=2) + "\n").encode(),
                     mode=0o644)
        write_atomic(file, written, mode=mode)
    except OSError as exc:
        raise ConfigError(f"can't write pip's {scope} configuration {file}: "
                          f"{exc.strerror or exc}"
                          + ("; try --user" if scope != "user" else "")) from exc
    return HookResult(file=file, url=url, backup=backup if existed else None,
                      warnings=_check(file, url, env, site_prefix))


def _overrides(file: Path, url: str, environ: Mapping[str, str],
               site_prefix: Path | None) -> dict[str, dict[str, str]]:
    """Settings for the hooked file: its index-url, and the index settings of files pip
    loads before it, replaced (a later file wins, key by key and section by section)."""
    overrides: dict[str, dict[str, str]] = {"global": {"index-url": url}}
    values = {"index-url": url, "pypi-url": url, "extra-index-url": url,
              "find-links": url, "no-index": "false"}
    for other in _loaded_files(environ, site_prefix):
        if other == file:
            break
        for section, key in _index_entries(other):
            overrides.setdefault(section, {})[key] = values[key]
    return overrides


def _check(file: Path, url: str, environ: Mapping[str, str],
           site_prefix: Path | None) -> list[str]:
    """What would still let pip bypass the verifying index."""
    warnings = []
    if environ.get("PIP_CONFIG_FILE") == os.devnull:
        warnings.append(f"PIP_CONFIG_FILE={os.devnull} is set here: pip reads no "
                        "configuration file while it is set, so the hook has no effect")
        return warnings
    files = _loaded_files(environ, site_prefix)
    if file not in files:
        warnings.append(f"pip does not read {file} while PIP_CONFIG_FILE is set to an "
                        "existing file: the hook has no effect while it is")
    else:
        for later in files[files.index(file) + 1:]:
            keys = sorted({k for _s, k in _index_entries(later)})
            if keys:
                warnings.append(f"{later} also sets {', '.join(keys)} and pip reads it after "
                                f"{file}: it wins, and pip bypasses the verifying index")
    for var in ("PIP_INDEX_URL", "PIP_PYPI_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS",
                "PIP_NO_INDEX"):
        if environ.get(var):
            warnings.append(f"{var} is set in this environment and wins over every "
                            "configuration file: unset it, or pip bypasses the verifying index")
    return warnings


def disable(scope: Scope, environ: Mapping[str, str] | None = None, *,
            site_prefix: Path | None = None) -> HookResult:
    """Put back the file `enable` replaced, byte for byte (or remove the hook's file)."""
    env = os.environ if environ is None else environ
    file = hook_file(scope, env, site_prefix=site_prefix)
    state = read_state(file)
    if state is None:
        raise ConfigError(f"no secinstall hook is enabled in pip's {scope} configuration "
                          f"{file}")
    backup = _backup_path(file)
    kept: Path | None = None
    try:
        try:
            current = file.read_bytes()
        except FileNotFoundError:
            current = None
        if current is not None and hashlib.sha256(current).hexdigest() != state.written_sha256:
            # Edited while hooked: keep the edits where the user can find them.
            kept = file.with_name(file.name + EDITED_SUFFIX)
            shutil.copy2(file, kept)
        if state.existed:
            if not backup.exists():
                raise ConfigError(f"the saved copy {backup} of {file} is missing; "
                                  f"{_state_path(file)} records the hook")
            os.replace(backup, file)
        elif current is not None:
            file.unlink()
        _state_path(file).unlink()
        if not state.existed and kept is None:
            for directory in state.created_dirs:
                with contextlib.suppress(OSError):
                    Path(directory).rmdir()  # only if empty
    except OSError as exc:
        raise ConfigError(f"can't restore pip's {scope} configuration {file}: "
                          f"{exc.strerror or exc}") from exc
    return HookResult(file=file, url=state.url, backup=None, restored=state.existed,
                      kept_edited=kept)
