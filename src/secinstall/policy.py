"""The usage policy: which distributions may be installed (allow and deny lists, minimum
release age, yanked releases, sdists, index pinning against dependency confusion, required
attestations, known vulnerabilities, licences), loaded with the origin of every value.
Checking a plan and the downloaded files against it is `policy_checks.py`.

Where the policy comes from; a later source wins key by key:

1. the defaults (`DEFAULTS`);
2. the user's `$XDG_CONFIG_HOME/secinstall/secinstall.toml` (`~/.config/...`), `[policy]`;
3. `pyproject.toml` in the current directory, `[tool.secinstall.policy]`;
4. `secinstall.toml` in the current directory, `[policy]`;
5. `--policy FILE`, its `[policy]` (or `[tool.secinstall.policy]`) table;
6. the command line: `--policy-set KEY=VALUE` replaces a value, `--policy-set KEY+=VALUE`
   adds to a list (VALUE is read as TOML, or taken as a plain string).

A key set by a later source replaces the earlier value as a whole, lists included; the
per-project tables `indexes` and `publishers` merge project by project
(`--policy-set indexes.NAME=URL`).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidName,
    NormalizedName,
    canonicalize_name,
)

from .config import load_toml
from .errors import ConfigError
from .models import Publisher
from .vulnerabilities import PYPI_INDEXES

#: Every key of the policy table and its default.
DEFAULTS: dict[str, object] = {
    "allow": (), "deny": (), "yanked": "pinned-only", "sdists": "refuse",
    "min-release-age": 0.0, "uploaded-prior-to": None, "cooldown-exempt": (),
    "require-attestations": False, "vulnerabilities": "warn", "vulnerabilities-ignore": (),
    "vulnerability-indexes": PYPI_INDEXES, "osv-dir": None,
    "licenses-allow": (), "licenses-deny": (), "licenses-exempt": (),
}
#: Tables of per-project values, merged project by project.
TABLES = ("indexes", "publishers")
CHOICES = {"yanked": ("pinned-only", "refuse"), "sdists": ("refuse",),
           "vulnerabilities": ("refuse", "warn", "off")}


@dataclass(frozen=True)
class UsagePolicy:
    """The effective policy; `origins` says where each key's value came from."""

    allow: tuple[Requirement, ...] = ()
    deny: tuple[Requirement, ...] = ()
    #: "pinned-only": a yanked release only when pinned with == (PEP 592); "refuse": never.
    yanked: Literal["pinned-only", "refuse"] = "pinned-only"
    sdists: Literal["refuse"] = "refuse"
    #: Days a file must have been on its index before it may be installed.
    min_release_age: float = 0.0
    uploaded_prior_to: datetime | timedelta | None = None
    cooldown_exempt: frozenset[NormalizedName] = frozenset()
    #: The only index each of these projects may come from.
    indexes: Mapping[NormalizedName, str] = field(default_factory=dict)
    #: True: every file; a set: these projects' files.
    require_attestations: bool | frozenset[NormalizedName] = False
    publishers: Mapping[NormalizedName, tuple[Publisher, ...]] = field(default_factory=dict)
    vulnerabilities: Literal["refuse", "warn", "off"] = "warn"
    vulnerabilities_ignore: frozenset[str] = frozenset()
    #: Indexes whose JSON API (`/pypi/<name>/<version>/json`) is asked for advisories.
    vulnerability_indexes: tuple[str, ...] = PYPI_INDEXES
    osv_dir: Path | None = None
    licenses_allow: tuple[str, ...] = ()
    licenses_deny: tuple[str, ...] = ()
    licenses_exempt: frozenset[NormalizedName] = frozenset()
    origins: Mapping[str, str] = field(default_factory=dict)

    def origin(self, key: str) -> str:
        return self.origins.get(key, "default")


# -- loading -------------------------------------------------------------------------------


def _names(value: object, what: str, base: Path) -> tuple[NormalizedName, ...]:
    try:
        return tuple(canonicalize_name(str(v), validate=True) for v in _list(value, what))
    except InvalidName as exc:
        raise ConfigError(f"{what}: {exc}") from exc


def _list(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{what} must be a list of strings, not {value!r}")
    return value


def _requirements(value: object, what: str, base: Path) -> tuple[Requirement, ...]:
    result = []
    for text in _list(value, what):
        try:
            req = Requirement(text)
        except InvalidRequirement as exc:
            raise ConfigError(f"{what}: {text!r} is not a project name with an optional "
                              f"version range such as \"requests<2.32\": {exc}") from exc
        if req.url or req.marker or req.extras:
            raise ConfigError(f"{what}: {text!r}: only a name and a version range are allowed")
        result.append(req)
    return tuple(result)


def _licenses(value: object, what: str, base: Path) -> tuple[str, ...]:
    from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

    result = []
    for text in _list(value, what):
        try:
            canon = str(canonicalize_license_expression(text))
        except InvalidLicenseExpression as exc:
            raise ConfigError(f"{what}: {exc}; use SPDX identifiers such as \"MIT\"") from exc
        if re.search(r"\b(AND|OR)\b|[()]", canon):
            raise ConfigError(f"{what}: {text!r}: list single licence identifiers; "
                              "expressions are evaluated from them")
        result.append(canon)
    return tuple(result)


def _days(value: object, what: str, base: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{what} must be a number of days >= 0, not {value!r}")
    return float(value)


def _cutoff(value: object, what: str, base: Path) -> datetime | timedelta | None:
    """pip's `--uploaded-prior-to`: an ISO 8601 date or datetime (local time when it has
    no offset, as in pip), or `P<n>D` for n days ago."""
    if value in ("", None):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.astimezone()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day).astimezone()
    if isinstance(value, str):
        if match := re.fullmatch(r"P(\d+)D", value.strip()):
            return timedelta(days=int(match.group(1)))
        parsed = parse_time(value)
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.astimezone()
    raise ConfigError(f"{what} = {value!r}: expected an ISO 8601 date or datetime such as "
                      "\"2025-01-31\" or \"2025-01-31T12:00:00Z\", or \"P<n>D\" (n days ago)")


def parse_time(text: str) -> datetime | None:
    """An ISO 8601 time such as an index's `upload-time` (naive when it has no offset)."""
    text = re.sub(r"\.(\d+)", lambda m: "." + m.group(1)[:6].ljust(6, "0"), text.strip())
    try:
        return datetime.fromisoformat(text.removesuffix("Z") + ("+00:00" * text.endswith("Z")))
    except ValueError:
        return None




def _attestations(value: object, what: str, base: Path) -> bool | tuple[NormalizedName, ...]:
    return value if isinstance(value, bool) else _names(value, what, base)


def _path(value: object, what: str, base: Path) -> Path | None:
    if not isinstance(value, str):
        raise ConfigError(f"{what} must be a path, not {value!r}")
    return (base / value).resolve() if value else None


def _url(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.startswith(("https://", "http://", "file:")):
        raise ConfigError(f"{what} must be an index URL such as \"https://pypi.org/simple/\", "
                          f"not {value!r}")
    return value.rstrip("/") + "/"


def _urls(value: object, what: str, base: Path) -> tuple[str, ...]:
    return tuple(_url(v, what) for v in _list(value, what))


def _publishers(value: object, what: str) -> tuple[Publisher, ...]:
    from .config import publisher_spec
    from .verify.attestations import parse_publisher

    specs = value if isinstance(value, list) else [value]
    try:
        return tuple(parse_publisher(publisher_spec(s, what)) for s in specs)
    except ConfigError as exc:
        raise ConfigError(f"{what}: {exc.message}") from exc


def _choice(key: str) -> Any:
    def convert(value: object, what: str, base: Path) -> str:
        if value not in CHOICES[key]:
            extra = (" (building sdists, --allow-build, is not available yet)"
                     if key == "sdists" else "")
            raise ConfigError(f"{what} = {value!r}; expected one of "
                              f"{', '.join(map(repr, CHOICES[key]))}{extra}")
        return str(value)
    return convert


_CONVERT: dict[str, Any] = {
    "allow": _requirements, "deny": _requirements, "yanked": _choice("yanked"),
    "sdists": _choice("sdists"), "min-release-age": _days, "uploaded-prior-to": _cutoff,
    "cooldown-exempt": _names, "require-attestations": _attestations,
    "vulnerabilities": _choice("vulnerabilities"), "vulnerabilities-ignore": lambda v, w, b:
    tuple(_list(v, w)), "vulnerability-indexes": _urls, "osv-dir": _path,
    "licenses-allow": _licenses, "licenses-deny": _licenses, "licenses-exempt": _names,
}


def _set(values: dict[str, object], origins: dict[str, str], key: str, value: object,
         where: str, base: Path, *, append: bool = False) -> None:
    table, dot, project = key.partition(".")
    if key in TABLES:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key} must be a table of project = value")
        for name, entry in value.items():
            _set(values, origins, f"{key}.{name}", entry, where, base)
        return
    if dot and table in TABLES:
        if append:
            raise ConfigError(f"{where}: {key}+= adds to a list; {key} is one value (use =)")
        name = _names([project], f"{where}: {key}", base)[0]
        what = f"{where}: {table}.{name}"
        values[f"{table}.{name}"] = _url(value, what) if table == "indexes" \
            else _publishers(value, what)
        origins[f"{table}.{name}"] = where
        return
    if key not in DEFAULTS:
        raise ConfigError(f"{where}: unknown policy key {key!r} (known: "
                          f"{', '.join([*DEFAULTS, *TABLES])})")
    converted = _CONVERT[key](value, f"{where}: {key}", base)
    if append:
        old = values.get(key, DEFAULTS[key])
        if not isinstance(converted, tuple) or not isinstance(old, (tuple, bool)):
            raise ConfigError(f"{where}: {key}+= adds to a list, and {key} is not one")
        # Adding projects to `require-attestations = true` (all) keeps it all.
        converted = old if old is True else (*(old or ()), *converted)
        where = f"{origins[key]}, {where}" if key in origins else where
    values[key] = converted
    origins[key] = where


def _cli_value(key: str, text: str) -> object:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
    try:
        value: object = tomllib.loads(f"v = {text}")["v"]
    except ValueError:
        value = text
    if isinstance(value, str) and isinstance(DEFAULTS.get(key), tuple | bool):
        value = [value]
    return value


def policy_files(cwd: Path, environ: Mapping[str, str],
                 policy_file: Path | None = None) -> list[tuple[Path, tuple[str, ...]]]:
    """The files the policy is read from, in order (later wins), with their table."""
    config_home = environ.get("XDG_CONFIG_HOME", "")
    if not Path(config_home).is_absolute():
        config_home = str(Path(environ.get("HOME") or Path.home(), ".config"))
    files = [(Path(config_home, "secinstall", "secinstall.toml"), ("policy",)),
             (cwd / "pyproject.toml", ("tool", "secinstall", "policy")),
             (cwd / "secinstall.toml", ("policy",))]
    if policy_file is not None:
        files.append((policy_file, ("policy",)))
    return files


def load_policy(cwd: Path, environ: Mapping[str, str], policy_file: Path | None = None,
                settings: Sequence[str] = ()) -> UsagePolicy:
    """The effective policy (see the module docstring for the order of the sources);
    `settings` are the `--policy-set KEY=VALUE` / `KEY+=VALUE` arguments."""
    if policy_file is not None and not policy_file.is_file():
        raise ConfigError(f"--policy {policy_file}: no such file")
    values: dict[str, object] = dict(DEFAULTS)
    origins: dict[str, str] = {}
    for path, section in policy_files(cwd, environ, policy_file):
        if not path.is_file():
            continue
        data: object = load_toml(path)
        if path == policy_file and isinstance(data, dict) and "policy" not in data:
            section = ("tool", "secinstall", "policy")
        for part in section:
            data = data.get(part) if isinstance(data, dict) else None
        if data is None and path == policy_file:
            raise ConfigError(f"--policy {path}: no [policy] or [tool.secinstall.policy] table")
        if data is None:
            continue
        where = f"{path} [{'.'.join(section)}]"
        if not isinstance(data, dict):
            raise ConfigError(f"{where} must be a table")
        for key, value in data.items():
            _set(values, origins, key, value, where, path.parent)
    for item in settings:
        key, eq, text = item.partition("=")
        append = key.endswith("+")
        key = key.removesuffix("+").strip()
        if not eq or not key:
            raise ConfigError(f"--policy-set {item!r}: expected KEY=VALUE or KEY+=VALUE")
        _set(values, origins, key, _cli_value(key, text.strip()),
             f"command line (--policy-set {item})", cwd, append=append)
    return _build(values, origins)


def _build(values: Mapping[str, object], origins: Mapping[str, str]) -> UsagePolicy:
    kwargs: dict[str, Any] = {k.replace("-", "_"): v for k, v in values.items() if "." not in k}
    for key in ("cooldown_exempt", "licenses_exempt", "vulnerabilities_ignore"):
        kwargs[key] = frozenset(kwargs[key])
    if isinstance(kwargs["require_attestations"], tuple):
        kwargs["require_attestations"] = frozenset(kwargs["require_attestations"])
    for table in TABLES:
        kwargs[table] = {k.partition(".")[2]: v for k, v in values.items()
                         if k.startswith(f"{table}.")}
    return UsagePolicy(**kwargs, origins=dict(origins))


def _show(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, frozenset)):
        return "[" + ", ".join(_show(v) for v in sorted(value, key=str)) + "]"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, timedelta):
        return f'"P{value.days}D"'
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None:
        return "(not set)"
    return json.dumps(str(value))


def describe(policy: UsagePolicy) -> list[str]:
    """The effective policy as TOML-like lines, each with where its value came from."""
    rows = [(key, _show(getattr(policy, key.replace("-", "_"))), policy.origin(key))
            for key in DEFAULTS]
    rows += [(f"indexes.{n}", _show(u), policy.origin(f"indexes.{n}"))
             for n, u in sorted(policy.indexes.items())]
    rows += [(f"publishers.{n}", _show(tuple(map(str, p))), policy.origin(f"publishers.{n}"))
             for n, p in sorted(policy.publishers.items())]
    lines = [f"{f'{key} = {value}':<48} # {origin}" for key, value, origin in rows]
    return [line + ("; building them (--allow-build) is not available yet"
                    if line.startswith("sdists =") else "") for line in lines]
