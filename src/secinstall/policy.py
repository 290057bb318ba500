"""The usage policy: which distributions may be installed (allow and deny lists, minimum
release age, yanked releases, sdists, index pinning against dependency confusion, required
attestations, known vulnerabilities, licences), loaded with the origin of every value and
checked on the plan before anything is downloaded.

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

import dataclasses
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidName,
    NormalizedName,
    canonicalize_name,
)

from .client import Client
from .config import load_toml
from .errors import ConfigError, FetchError, PolicyError
from .index import fetch_project
from .licenses import license_expression, license_problems
from .models import (
    AttestationPolicy,
    FetchedFile,
    IndexFile,
    Plan,
    PlannedDist,
    Publisher,
    UserRequirement,
)
from .vulnerabilities import PYPI_INDEXES, OsvDatabase, Query, ignored, index_of, json_api_url
from .vulnerabilities import look_up as look_up_vulnerabilities

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


# -- attestations: the policy's part of `AttestationPolicy` --------------------------------


def attestation_policy(policy: UsagePolicy, base: AttestationPolicy) -> AttestationPolicy:
    """`base` (from `--attestations`, `--publisher` and `[tool.secinstall]`) with the usage
    policy's demands added: `--attestations` on the command line wins; otherwise
    `require-attestations = true` makes the mode "require", and a list of projects makes
    an "off" mode "auto" (so their provenance is fetched; `check_fetched` refuses files
    without). A publisher pinned in `base` wins over the policy's for the same project."""
    mode, origins = base.mode, dict(base.origins)
    if origins.get("attestations") != "command line" and policy.require_attestations:
        wanted: Literal["require", "auto"] = \
            "require" if policy.require_attestations is True else "auto"
        if mode != "require" and (wanted == "require" or mode == "off"):
            mode, origins["attestations"] = wanted, policy.origin("require-attestations")
    pins = dict(base.pins)
    for name, publishers in policy.publishers.items():
        if name not in pins:
            pins[name] = publishers
            origins[f"publisher:{name}"] = policy.origin(f"publishers.{name}")
    return dataclasses.replace(base, mode=mode, pins=pins, origins=origins)


def check_fetched(fetched: Sequence[FetchedFile], policy: UsagePolicy,
                  attestations: AttestationPolicy) -> None:
    """Refuse files of projects in `require-attestations` that have no provenance."""
    required = policy.require_attestations
    if isinstance(required, bool) or attestations.mode == "off":
        return  # all or nothing: the mode handles it; "off" is the command line's weakening
    _raise([f"{f.dist.file.filename}: no PEP 740 provenance found, and the policy requires "
            f"attestations for {f.dist.name} (require-attestations, from "
            f"{policy.origin('require-attestations')}); to install it without, remove it "
            "there, or pass --attestations off (a weakening)"
            for f in fetched if f.dist.name in required and f.provenance is None])


# -- the plan ------------------------------------------------------------------------------


def _raise(problems: Sequence[str]) -> None:
    if len(problems) == 1:
        raise PolicyError(problems[0])
    if problems:
        raise PolicyError(f"the usage policy refuses this install: {problems[0]} (and "
                          f"{len(problems) - 1} more problem(s))", details=problems)


def parse_time(text: str) -> datetime | None:
    """An ISO 8601 time such as an index's `upload-time` (naive when it has no offset)."""
    text = re.sub(r"\.(\d+)", lambda m: "." + m.group(1)[:6].ljust(6, "0"), text.strip())
    try:
        return datetime.fromisoformat(text.removesuffix("Z") + ("+00:00" * text.endswith("Z")))
    except ValueError:
        return None


def cooldown_cutoff(policy: UsagePolicy, now: datetime) -> tuple[datetime, str] | None:
    """The latest upload time allowed, and the rule that sets it (the stricter of
    `min-release-age` and `uploaded-prior-to`); pip's `--uploaded-prior-to` takes it too."""
    rules = []
    if policy.min_release_age:
        rules.append((now - timedelta(days=policy.min_release_age),
                      f"min-release-age = {_show(policy.min_release_age)} days, from "
                      f"{policy.origin('min-release-age')}"))
    limit = policy.uploaded_prior_to
    if limit is not None:
        rules.append((now - limit if isinstance(limit, timedelta) else limit,
                      f"uploaded-prior-to = {_show(limit)}, from "
                      f"{policy.origin('uploaded-prior-to')}"))
    return min(rules) if rules else None


def _check_lists(dist: PlannedDist, policy: UsagePolicy) -> list[str]:
    def matches(req: Requirement) -> bool:
        return canonicalize_name(req.name) == dist.name and \
            req.specifier.contains(dist.version, prereleases=True)

    found = []
    for req in policy.deny:
        if matches(req):
            found.append(f"{dist.name} {dist.version} is denied by the entry \"{req}\" of deny "
                         f"(from {policy.origin('deny')}); remove it there to install this")
    if policy.allow and not any(matches(r) for r in policy.allow):
        entries = [str(r) for r in policy.allow if canonicalize_name(r.name) == dist.name]
        why = (f"allow has only {', '.join(entries)} for it" if entries
               else "it is not in allow")
        found.append(f"{dist.name} {dist.version} is not allowed: {why} (from "
                     f"{policy.origin('allow')}); add it there, or for this run pass "
                     f"--policy-set allow+={dist.name}=={dist.version}")
    return found


def _check_file(dist: PlannedDist, policy: UsagePolicy, pinned: bool,
                cutoff: tuple[datetime, str] | None, now: datetime) -> list[str]:
    from .resolve import SDIST_HINT

    file, found = dist.file, []
    if not file.filename.endswith(".whl"):
        found.append(f"{file.filename} is a source distribution; {SDIST_HINT} "
                     f"(sdists = \"refuse\", from {policy.origin('sdists')})")
    if file.yanked is not None and (policy.yanked == "refuse" or not pinned):
        why = f" ({file.yanked})" if file.yanked else ""
        how = ("set yanked = \"pinned-only\" and pin it" if policy.yanked == "refuse"
               else "PEP 592 allows a yanked release only when pinned exactly; require")
        found.append(f"{dist.name} {dist.version} is yanked{why}: {how} "
                     f"{dist.name}=={dist.version} to install it anyway (yanked = "
                     f"\"{policy.yanked}\", from {policy.origin('yanked')})")
    if cutoff is None or dist.name in policy.cooldown_exempt:
        return found
    exempt = (f"or exempt it: cooldown-exempt in the policy, or --policy-set "
              f"cooldown-exempt+={dist.name}")
    uploaded = parse_time(file.upload_time) if file.upload_time else None
    if uploaded is None:
        known = f"an unreadable upload time {file.upload_time!r}" if file.upload_time else \
            "no upload time (PEP 700 upload-time is in PEP 691 JSON pages only)"
        found.append(f"{file.filename}: its index gives {known}, so its age can't be "
                     f"checked against {cutoff[1]}; refused (fail closed); {exempt}")
    elif uploaded.astimezone(timezone.utc) >= cutoff[0]:
        age = (now - uploaded.astimezone(timezone.utc)).total_seconds() / 86400
        found.append(f"{dist.name} {dist.version} ({file.filename}) was uploaded "
                     f"{uploaded:%Y-%m-%d %H:%M} UTC, {max(age, 0):.1f} days ago: too new "
                     f"for {cutoff[1]}; choose an older version, {exempt}")
    return found


def _norm(url: str) -> str:
    return url.rstrip("/") + "/"


def _same_file(listed: IndexFile, planned: IndexFile) -> bool:
    sha = listed.hashes.get("sha256")
    return listed.url == planned.url or (
        listed.filename == planned.filename and sha is not None
        and sha == planned.hashes.get("sha256"))


def _check_indexes(dists: Sequence[PlannedDist], policy: UsagePolicy, client: Client,
                   index_urls: Sequence[str], jobs: int) -> list[str]:
    """Index pinning: an assigned project only from its index; with several indexes, a
    name on more than one of them (not serving the same file) is refused."""
    configured = list(dict.fromkeys(_norm(u) for u in index_urls))
    todo = [d for d in dists if not d.is_direct
            and (d.name in policy.indexes or len(configured) > 1)]
    pairs = sorted({(d.name, u) for d in todo for u in configured}
                   | {(d.name, _norm(policy.indexes[d.name])) for d in todo
                      if d.name in policy.indexes})
    if not pairs:
        return []

    def listing(pair: tuple[str, str]) -> list[IndexFile] | FetchError:
        try:
            return fetch_project(client, pair[1], pair[0])
        except FetchError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(pairs)))) as pool:
        listed = dict(zip(pairs, pool.map(listing, pairs), strict=True))
    found = []
    for d in todo:
        failed = [f"{u}: {r.message}" for (n, u), r in listed.items()
                  if n == d.name and isinstance(r, FetchError)]
        if failed:
            found.append(f"can't check which index {d.name} comes from (fail closed): "
                         + "; ".join(failed) + "; fix the connection, or drop that index")
            continue
        files = {u: r for (n, u), r in listed.items() if n == d.name and isinstance(r, list)}
        serving = [u for u, fs in files.items() if any(_same_file(f, d.file) for f in fs)]
        assign = f"indexes.{d.name}"
        if d.name in policy.indexes:
            home = _norm(policy.indexes[d.name])
            if home in serving:
                continue
            versions = sorted({v for f in files[home] if (v := f.version)})
            found.append(f"{d.name} {d.version} ({d.file.filename}) comes from "
                         f"{', '.join(serving) or d.file.url}, but the policy allows "
                         f"{d.name} only from {home} ({assign}, from {policy.origin(assign)}),"
                         f" which has {', '.join(map(str, versions[-5:])) or 'no version of it'};"
                         " "
                         f"pin one of those, or change {assign}")
            continue
        on = [u for u in configured if files.get(u)]
        if len(on) > 1 and set(serving) != set(on):
            found.append(
                f"{d.name} is on several indexes ({', '.join(on)}) and they don't serve the "
                f"same {d.file.filename}: taking the highest version from any of them is "
                "how dependency confusion works, so with several indexes each such name "
                "must be assigned to one; say where it comes from: "
                f"[tool.secinstall.policy.indexes] {d.name} = \"{(serving or on)[0]}\", or "
                f"--policy-set {assign}={(serving or on)[0]}")
    return found


def _check_vulnerabilities(dists: Sequence[PlannedDist], policy: UsagePolicy,
                           client: Client, index_urls: Sequence[str],
                           jobs: int) -> tuple[list[str], list[str]]:
    if policy.vulnerabilities == "off":
        return [], []
    apis = {_norm(u) for u in policy.vulnerability_indexes}
    queries = []
    for d in dists:
        home = index_of(d.file, [*index_urls, *map(_norm, index_urls)])
        url = json_api_url(home, d.name, d.version) if home and _norm(home) in apis else None
        queries.append(Query(d.name, d.version, (url,) if url else ()))
    db = OsvDatabase(policy.osv_dir) if policy.osv_dir is not None else None
    if db is None and not any(q.urls for q in queries):
        return [], []
    refuse = policy.vulnerabilities == "refuse"
    rule = f"vulnerabilities = \"{policy.vulnerabilities}\", from " \
           f"{policy.origin('vulnerabilities')}"
    problems, warnings = [], []
    # Only a refusing policy waits for retries; a warning is best effort.
    asked = client if refuse else client.with_retries(0)
    for q, advisories, failed in look_up_vulnerabilities(queries, client=asked, db=db,
                                                         jobs=jobs):
        shown = [a for a in advisories if not ignored(a, policy.vulnerabilities_ignore)]
        if shown:
            text = (f"{q.name} {q.version} has {len(shown)} known vulnerabilit"
                    f"{'y' if len(shown) == 1 else 'ies'}: "
                    + "; ".join(a.describe() for a in shown))
            if refuse:
                problems.append(f"{text}; upgrade to a fixed version, or after checking "
                                "ignore it with --policy-set vulnerabilities-ignore+="
                                f"{shown[0].id}, or only warn with vulnerabilities = "
                                f"\"warn\" ({rule})")
            else:
                warnings.append(f"{text} ({rule})")
        for problem in failed:
            text = f"could not check {q.name} {q.version} for known vulnerabilities: {problem}"
            (problems if refuse else warnings).append(
                text + (f" (fail closed; {rule}: set it to \"warn\" to go on)" if refuse else ""))
    return problems, warnings


def check_plan(plan: Plan, policy: UsagePolicy, *, client: Client,
               index_urls: Sequence[str], requirements: Sequence[UserRequirement] = (),
               now: datetime | None = None, jobs: int = 8) -> list[str]:
    """Check every planned distribution against the policy, before anything is
    downloaded; return warnings, or raise one `PolicyError` listing every violation.

    `requirements` are the user's requirements and constraints (a yanked release is
    allowed when one of them pins it with ==). Licences are checked here where the plan
    has the metadata (pip's resolver); otherwise call `check_metadata` after download.
    """
    now = now or datetime.now(timezone.utc)
    cutoff = cooldown_cutoff(policy, now)
    problems: list[str] = []
    warnings: list[str] = []
    for d in plan.items:
        pinned = plan.resolver in ("pinned", "lock") or d.is_direct or any(
            ur.is_pinned and canonicalize_name(ur.req.name) == d.name
            and ur.req.specifier.contains(d.version, prereleases=True) for ur in requirements)
        problems += _check_lists(d, policy)
        problems += _check_file(d, policy, pinned, cutoff, now)
        if d.metadata is not None:
            bad, warned = _check_license(d.name, d.version, d.metadata, policy)
            problems, warnings = problems + bad, warnings + warned
    problems += _check_indexes(plan.items, policy, client, index_urls, jobs)
    bad, warned = _check_vulnerabilities(plan.items, policy, client, index_urls, jobs)
    _raise(problems + bad)
    return warnings + warned


# -- licences: the rules (what a licence is, and the SPDX parsing, are in licenses.py) -----


def _check_license(name: str, version: str, metadata: Mapping[str, Any],
                   policy: UsagePolicy) -> tuple[list[str], list[str]]:
    key = canonicalize_name(name)
    if not (policy.licenses_allow or policy.licenses_deny) or key in policy.licenses_exempt:
        return [], []
    expression, where = license_expression(metadata)
    exempt = f"after checking its licence, exempt it with --policy-set licenses-exempt+={key}"
    rules = ", ".join(f"{k} from {policy.origin(k)}" for k in ("licenses-allow",
                      "licenses-deny") if getattr(policy, k.replace("-", "_")))
    if expression is None:
        text = f"{key} {version}: its licence is unknown ({where})"
        if policy.licenses_allow:
            return [f"{text}, so it can't be shown to be allowed ({rules}); {exempt}"], []
        return [], [f"{text}, so licenses-deny could not be checked"]
    bad = license_problems(expression, policy.licenses_allow, policy.licenses_deny)
    if not bad:
        return [], []
    return [f"{key} {version} is licensed {expression} ({where}), which the policy does not "
            f"allow: {'; '.join(bad)} ({rules}); {exempt}"], []


def check_metadata(dists: Iterable[tuple[str, str, Mapping[str, Any]]],
                   policy: UsagePolicy) -> list[str]:
    """The licence rules on (name, version, core metadata as PEP 566 JSON) known only
    after download (the wheel's METADATA); warnings, or one `PolicyError` for all."""
    problems: list[str] = []
    warnings: list[str] = []
    for name, version, metadata in dists:
        bad, warned = _check_license(name, version, metadata, policy)
        problems, warnings = problems + bad, warnings + warned
    _raise(problems)
    return warnings
