"""Known vulnerabilities of a project version: from a local OSV database directory and from
an index's JSON API (PyPI's `/pypi/<name>/<version>/json`), merged by id and alias; and
`audit`, which reports those of every distribution installed in an environment."""

from __future__ import annotations

import dataclasses
import json
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from .client import Client, index_key, parallel_map, redact_url
from .errors import ConfigError, FetchError, NoVulnerabilityData
from .models import IndexFile, InstalledDist

#: Index URLs whose Warehouse JSON API is asked by default.
PYPI_INDEXES = ("https://pypi.org/simple/", "https://test.pypi.org/simple/")
#: Where each PyPI instance serves its files, so a file tells which JSON API knows it.
_FILE_HOSTS = {"files.pythonhosted.org": PYPI_INDEXES[0],
               "test-files.pythonhosted.org": PYPI_INDEXES[1]}
MAX_JSON_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Advisory:
    """One known vulnerability, as a source describes it."""

    id: str
    aliases: tuple[str, ...] = ()
    fixed_in: tuple[str, ...] = ()
    summary: str = ""
    link: str = ""
    #: Where it was found: an OSV file, or a JSON API URL.
    sources: tuple[str, ...] = ()

    @property
    def names(self) -> frozenset[str]:
        return frozenset(n.casefold() for n in (self.id, *self.aliases))

    def describe(self) -> str:
        aliases = f" ({', '.join(self.aliases)})" if self.aliases else ""
        fixed = f"fixed in {', '.join(self.fixed_in)}" if self.fixed_in else "no fix known"
        return f"{self.id}{aliases}, {fixed}"


@dataclass(frozen=True)
class Finding:
    """A known vulnerability of an installed distribution (`secinstall audit`)."""

    name: NormalizedName
    version: str
    advisory: Advisory


def _combine(first: Advisory, other: Advisory) -> Advisory:
    return Advisory(
        id=first.id,
        aliases=tuple(sorted({*first.aliases, other.id, *other.aliases} - {first.id})),
        fixed_in=tuple(dict.fromkeys((*first.fixed_in, *other.fixed_in))),
        summary=first.summary or other.summary,
        link=first.link or other.link,
        sources=tuple(dict.fromkeys((*first.sources, *other.sources))),
    )


def merge(advisories: Iterable[Advisory]) -> list[Advisory]:
    """One advisory per vulnerability: records whose ids or aliases meet are merged (the
    same vulnerability is often both a PYSEC and a GHSA record)."""
    merged: list[Advisory] = []
    for adv in advisories:
        same = [m for m in merged if m.names & adv.names]
        combined = adv
        if same:
            combined = same[0]
            for other in (*same[1:], adv):
                combined = _combine(combined, other)
        merged = [m for m in merged if m not in same] + [combined]
    return merged


def ignored(advisory: Advisory, ignore: Iterable[str]) -> bool:
    """True when the advisory's id or one of its aliases is in `ignore`."""
    return bool(advisory.names & {i.casefold() for i in ignore})


# -- OSV records (https://ossf.github.io/osv-schema/) -------------------------------------


def _summary(record: Mapping[str, Any]) -> str:
    text = record.get("summary") or (record.get("details") or "").strip().split("\n")[0]
    return str(text)[:200]


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _in_range(version: Version, events: Sequence[Mapping[str, str]]) -> bool:
    """The OSV evaluation of one ECOSYSTEM range (introduced / fixed / last_affected)."""
    def key(event: Mapping[str, str]) -> Version:
        value = next(iter(event.values()), "0")
        return Version("0") if value == "0" else (_version(value) or Version("0"))

    affected = False
    for event in sorted(events, key=key):
        if "introduced" in event:
            if event["introduced"] == "0" or version >= key(event):
                affected = True
        elif "fixed" in event:
            if version >= key(event):
                affected = False
        elif "last_affected" in event and version > key(event):
            affected = False
    return affected


def osv_affects(entry: Mapping[str, Any], version: str) -> bool:
    """Whether one `affected[]` entry of an OSV record covers `version`."""
    wanted = _version(version)
    for listed in entry.get("versions") or ():
        if listed == version or (wanted is not None and _version(str(listed)) == wanted):
            return True
    if wanted is None:
        return False
    return any(_in_range(wanted, r.get("events") or ()) for r in entry.get("ranges") or ()
               if r.get("type") == "ECOSYSTEM")


class OsvDatabase:
    """A directory of OSV JSON records (e.g. the unpacked PyPI export of osv.dev),
    read once and indexed by normalised project name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._by_name: dict[str, list[tuple[Mapping[str, Any], Mapping[str, Any], str]]] = {}
        if not path.is_dir():
            raise ConfigError(f"osv-dir {path} is not a directory of OSV JSON records")
        for file in sorted(path.rglob("*.json")):
            try:
                record = json.loads(file.read_bytes())
                if record.get("withdrawn"):
                    continue
                for entry in record.get("affected") or ():
                    package = entry.get("package") or {}
                    if package.get("ecosystem") == "PyPI" and package.get("name"):
                        key = canonicalize_name(str(package["name"]))
                        self._by_name.setdefault(key, []).append((record, entry, str(file)))
            except (OSError, ValueError, AttributeError, TypeError) as exc:
                # A damaged database must not look like "no known vulnerabilities".
                raise ConfigError(f"{file} is not a readable OSV record ({exc}); fix or "
                                  "remove it, or update the database") from exc

    def advisories(self, name: str, version: str) -> list[Advisory]:
        found = []
        for record, entry, file in self._by_name.get(canonicalize_name(name), ()):
            if not osv_affects(entry, version):
                continue
            fixed = [e["fixed"] for r in entry.get("ranges") or ()
                     for e in r.get("events") or () if "fixed" in e]
            refs = [r.get("url", "") for r in record.get("references") or ()
                    if r.get("type") == "ADVISORY"]
            found.append(Advisory(
                id=str(record["id"]), aliases=tuple(map(str, record.get("aliases") or ())),
                fixed_in=tuple(map(str, fixed)), summary=_summary(record),
                link=refs[0] if refs else f"https://osv.dev/vulnerability/{record['id']}",
                sources=(file,),
            ))
        return found


# -- an index's JSON API (Warehouse: PyPI, TestPyPI and compatible mirrors) ----------------


def json_api_url(index_url: str, name: str, version: str) -> str | None:
    """`<root>/pypi/<name>/<version>/json` for an index at `<root>/simple/`."""
    base = index_url.rstrip("/")
    if not base.endswith("/simple"):
        return None
    return (f"{base.removesuffix('/simple')}/pypi/{urllib.parse.quote(canonicalize_name(name))}"
            f"/{urllib.parse.quote(version)}/json")


def index_of(file: IndexFile, index_urls: Sequence[str]) -> str | None:
    """The index a planned file was listed by, when that is known."""
    if file.origin in index_urls:
        return file.origin
    host = (urllib.parse.urlsplit(file.url).hostname or "").lower()
    return _FILE_HOSTS.get(host)


def parse_json_api(data: Mapping[str, Any], source: str) -> list[Advisory]:
    """The `vulnerabilities` of a Warehouse JSON API answer (withdrawn ones left out)."""
    found = []
    for item in data.get("vulnerabilities") or ():
        if item.get("withdrawn"):
            continue
        found.append(Advisory(
            id=str(item["id"]), aliases=tuple(map(str, item.get("aliases") or ())),
            fixed_in=tuple(map(str, item.get("fixed_in") or ())),
            summary=_summary(item), link=str(item.get("link") or ""), sources=(source,),
        ))
    return found


def from_json_api(client: Client, url: str) -> list[Advisory]:
    """Advisories the JSON API gives at `url`; `NoVulnerabilityData` when it answers 404
    or 410. That is no "none known": PyPI answers an empty list for a version without
    advisories, while a mirror or proxy that doesn't pass the JSON API through (and some
    networks' PyPI) answers 404 for every version, even those its index lists."""
    resp = client.get(url, accept="application/json", max_bytes=MAX_JSON_BYTES)
    if resp.status in (404, 410):
        raise NoVulnerabilityData(f"HTTP {resp.status} from {redact_url(url)}", url=url,
                                  status=resp.status)
    try:
        data = json.loads(resp.body)
        return parse_json_api(data, url)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FetchError(f"{redact_url(url)} is not a valid JSON API answer: {exc}") from exc


@dataclass(frozen=True)
class Query:
    """What to look up: a version, and the JSON API URLs that may know it."""

    name: NormalizedName
    version: str
    urls: tuple[str, ...] = ()


def look_up(queries: Sequence[Query], *, client: Client | None, db: OsvDatabase | None,
            jobs: int = 8) -> list[tuple[Query, list[Advisory], list[FetchError]]]:
    """(query, merged advisories, problems) for each query; a problem is a source that
    could not be asked (`NoVulnerabilityData`: one that has nothing to say about the
    version), which the caller must not take for "nothing known"."""
    def one(query: Query) -> tuple[Query, list[Advisory], list[FetchError]]:
        found = db.advisories(query.name, query.version) if db is not None else []
        problems: list[FetchError] = []
        for url in query.urls:
            try:
                if client is None:
                    raise FetchError("no HTTP client")
                found += from_json_api(client, url)
            except NoVulnerabilityData as exc:
                problems.append(exc)
            except FetchError as exc:
                where = redact_url(url)  # most of the client's messages name it already
                problems.append(FetchError(exc.message if where in exc.message
                                           else f"{where}: {exc.message}"))
        return query, merge(found), problems

    return parallel_map(client, one, queries, workers=jobs)


def audited_index(recorded: IndexFile | None,
                  api_indexes: Sequence[str]) -> tuple[str | None, str]:
    """The one of `api_indexes` whose JSON API `audit` asks about an installed
    distribution (None: none), and why, in words. `recorded` is the file secinstall
    installed it from, as its SBOM fragment records it (None when another tool installed
    it, or changed it since). The rule is the install path's (`index_of`):

    - installed by secinstall: the index that listed the file, else the PyPI instance
      whose file host served it (files.pythonhosted.org: PyPI; test-files.pythonhosted.org:
      TestPyPI). Asked only if that index is in `api_indexes`; if not (a private index, a
      find-links directory, a lock file pointing elsewhere) no JSON API is asked;
    - installed by another tool (pip, uv, ...), so where it came from is unknown: the
      first of `api_indexes` (PyPI by default), as pip-audit asks PyPI.

    Never more than one index: each is a namespace of its own (anyone can register a name
    on TestPyPI), so another index's advisories for the same name are about another
    project, and asking it would tell it what is installed for nothing.
    """
    if recorded is None:
        if not api_indexes:
            return None, "not installed by secinstall"
        return api_indexes[0], ("not installed by secinstall, so where it came from is "
                                "unknown (taken to be the first of vulnerability-indexes, "
                                "as pip-audit takes PyPI)")
    configured = {index_key(u): u for u in api_indexes}
    listed = dataclasses.replace(recorded, origin=index_key(recorded.origin)) \
        if recorded.origin else recorded
    home = index_of(listed, list(configured))
    # The index that listed the file, else (a lock file, "pip report") the file itself.
    came = recorded.origin if "://" in recorded.origin else recorded.url
    where = f"installed by secinstall from {redact_url(came)}"
    if home is not None and index_key(home) in configured:
        return configured[index_key(home)], where
    return None, f"{where}, which is not in vulnerability-indexes"


@dataclass(frozen=True)
class Audited:
    """How `audit` checked one installed distribution."""

    name: NormalizedName
    version: str
    #: The JSON API asked, if any.
    api_url: str | None
    #: Which sources were asked, and why those.
    why: str
    #: False when no source could be asked (no JSON API, and no osv-dir), or the one asked
    #: had nothing to say (see `no_data`).
    checked: bool
    #: The index whose JSON API answered 404 or 410 for this version, when that is why it
    #: is not checked.
    no_data: str | None = None


@dataclass(frozen=True)
class AuditResult:
    """What `audit` found, and how it checked each distribution."""

    findings: list[Finding]
    audited: list[Audited]

    @property
    def unchecked(self) -> list[Audited]:
        return [a for a in self.audited if not a.checked]


def audit(installed: Mapping[NormalizedName, InstalledDist], *, client: Client | None,
          osv_dir: Path | None, api_indexes: Sequence[str],
          recorded: Mapping[NormalizedName, IndexFile] | None = None,
          ignore: Iterable[str] = (), jobs: int = 8) -> AuditResult:
    """Known vulnerabilities of the installed distributions (`find_installed(target)`),
    from `osv_dir` and from the JSON API of the one index of `api_indexes` that
    `audited_index` chooses for each; `recorded`: the file each distribution installed by
    secinstall came from (`sbom.recorded_files`). A distribution no source can check is
    in `AuditResult.unchecked`, not taken for one without known vulnerabilities; so is one
    whose index has no vulnerability data for its version (HTTP 404 or 410: for what
    another tool installed, it may not even come from that index, as pip-audit says "could
    not be audited"). Raises `FetchError` when a source could not be asked otherwise (a
    network error, an answer that is not JSON), and `ConfigError` when there is no source
    at all."""
    if osv_dir is None and not api_indexes:
        raise ConfigError("no vulnerability data to audit against: set osv-dir in the policy "
                          "(a directory of OSV records), or use an index with a JSON API "
                          f"(vulnerability-indexes, default {', '.join(PYPI_INDEXES)})")
    db = OsvDatabase(osv_dir) if osv_dir is not None else None
    audited, asked = [], []
    for name, dist in sorted(installed.items()):
        index, why = audited_index((recorded or {}).get(name), api_indexes)
        asked.append(index)
        url = json_api_url(index, name, dist.version) if index is not None else None
        if url is not None:
            why += f"; asked {redact_url(url)}"
        elif index is not None:
            why += f"; {redact_url(index)} has no JSON API (it is not a .../simple/ URL)"
        if db is not None:
            why += f"; looked up in {osv_dir}"
        audited.append(Audited(name, dist.version, url, why, url is not None or db is not None))
    queries = [Query(a.name, a.version, (a.api_url,) if a.api_url else ()) for a in audited]
    results = look_up(queries, client=client, db=db, jobs=jobs)
    problems = [p.message for _, _, ps in results for p in ps
                if not isinstance(p, NoVulnerabilityData)]
    if problems:
        raise FetchError(f"could not check {len(problems)} source(s) for known vulnerabilities, "
                         "so the audit is incomplete", details=problems)
    for i, (_, _, ps) in enumerate(results):
        index = asked[i]
        if db is None and index is not None and ps:  # with osv-dir, that one checked it
            audited[i] = dataclasses.replace(
                audited[i], checked=False, no_data=index,
                why=f"{audited[i].why}: {ps[0].message}, so {redact_url(index)} has no "
                    "vulnerability data for it")
    skip = list(ignore)
    return AuditResult([Finding(q.name, q.version, a) for q, advisories, _ in results
                        for a in advisories if not ignored(a, skip)], audited)
