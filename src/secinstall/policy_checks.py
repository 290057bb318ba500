"""Installs checked against the usage policy (`policy.py`): the plan before anything is
downloaded (allow and deny lists, yanked releases, sdists, minimum release age, index
pinning, known vulnerabilities, licences where the plan has the metadata), the fetched
files (provenance for `require-attestations`), the licences read after download, and the
policy's part of `AttestationPolicy`. Every violation is listed in one `PolicyError`.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .client import Client, index_key, parallel_map, redact_url, without_credentials
from .errors import FetchError, NoVulnerabilityData, PolicyError, first_few
from .index import fetch_project
from .licenses import license_expression, license_problems
from .models import (
    AttestationPolicy,
    FetchedFile,
    IndexFile,
    Plan,
    PlannedDist,
    UserRequirement,
)
from .policy import UsagePolicy, _show, parse_time
from .vulnerabilities import (
    OsvDatabase,
    Query,
    ignored,
    index_of,
    json_api_url,
)
from .vulnerabilities import look_up as look_up_vulnerabilities

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


def _same_file(listed: IndexFile, planned: IndexFile) -> bool:
    sha = listed.hashes.get("sha256")
    return listed.url == planned.url or (
        listed.filename == planned.filename and sha is not None
        and sha == planned.hashes.get("sha256"))


def _check_indexes(dists: Sequence[PlannedDist], policy: UsagePolicy, client: Client,
                   index_urls: Sequence[str], jobs: int) -> list[str]:
    """Index pinning: an assigned project only from its index; with several indexes, a
    name on more than one of them (not serving the same file) is refused."""
    configured = list(dict.fromkeys(index_key(u) for u in index_urls))
    todo = [d for d in dists if not d.is_direct
            and (d.name in policy.indexes or len(configured) > 1)]
    pairs = sorted({(d.name, u) for d in todo for u in configured}
                   | {(d.name, index_key(policy.indexes[d.name])) for d in todo
                      if d.name in policy.indexes})
    if not pairs:
        return []

    def listing(pair: tuple[str, str]) -> list[IndexFile] | FetchError:
        try:
            return fetch_project(client, pair[1], pair[0])
        except FetchError as exc:
            return exc

    listed = dict(zip(pairs, parallel_map(client, listing, pairs, workers=jobs), strict=True))
    found = []
    for d in todo:
        failed = [f"{redact_url(u)}: {r.message}" for (n, u), r in listed.items()
                  if n == d.name and isinstance(r, FetchError)]
        if failed:
            found.append(f"can't check which index {d.name} comes from (fail closed): "
                         + "; ".join(failed) + "; fix the connection, or drop that index")
            continue
        files = {u: r for (n, u), r in listed.items() if n == d.name and isinstance(r, list)}
        serving = [u for u, fs in files.items() if any(_same_file(f, d.file) for f in fs)]
        assign = f"indexes.{d.name}"
        if d.name in policy.indexes:
            home = index_key(policy.indexes[d.name])
            if home in serving:
                continue
            versions = sorted({v for f in files[home] if (v := f.version)})
            where = ", ".join(map(redact_url, serving)) or redact_url(d.file.url)
            found.append(f"{d.name} {d.version} ({d.file.filename}) comes from {where}, but "
                         f"the policy allows {d.name} only from {redact_url(home)} ({assign}, "
                         f"from {policy.origin(assign)}),"
                         f" which has {', '.join(map(str, versions[-5:])) or 'no version of it'};"
                         " "
                         f"pin one of those, or change {assign}")
            continue
        on = [u for u in configured if files.get(u)]
        if len(on) > 1 and set(serving) != set(on):
            suggested = without_credentials((serving or on)[0])
            found.append(
                f"{d.name} is on several indexes ({', '.join(map(redact_url, on))}) and they "
                f"don't serve the same {d.file.filename}: taking the highest version from any "
                "of them is how dependency confusion works, so with several indexes each such "
                "name "
                "must be assigned to one; say where it comes from: "
                f"[tool.secinstall.policy.indexes] {d.name} = \"{suggested}\", or "
                f"--policy-set {assign}={suggested}")
    return found


def _reason(url: str, message: str) -> str:
    """`message` (a failure to ask `url`) without `url`, so that failures of one kind
    (HTTP 503, a refused connection) compare equal whichever distribution they were for."""
    for form in (redact_url(url), without_credentials(url), urllib.parse.urlsplit(url).path):
        message = message.replace(form, "")
    return message


def _unchecked(index: str, missing: Sequence[tuple[Query, FetchError]]) -> str:
    """One problem for every distribution whose vulnerabilities `index`'s JSON API did not
    give, all for one reason: it has no vulnerability data for them (`NoVulnerabilityData`:
    on a network whose PyPI serves no per-version JSON, that is every one of them), or it
    could not be asked (with the network down, that too is every one of them)."""
    (q, exc), *more = missing
    where = redact_url(index)
    if isinstance(exc, NoVulnerabilityData):
        one = f"{where} has no vulnerability data for it ({exc.message})"
        many = (f"{where} has no vulnerability data for them (HTTP {exc.status} from its "
                f"JSON API, e.g. {redact_url(exc.url)})")
    else:
        one = exc.message
        kinds: dict[str, str] = {}  # the first message of each kind of failure
        for failed, problem in missing:
            kinds.setdefault(_reason(failed.urls[0], problem.message), problem.message)
        many = (f"the JSON API of {where} could not be asked (e.g. "
                f"{first_few(list(kinds.values()), limit=2, sep='; ')})")
    if not more:
        return f"could not check {q.name} {q.version} for known vulnerabilities: {one}"
    names = [f"{q.name} {q.version}" for q, _ in missing]
    return (f"could not check {len(missing)} distributions for known vulnerabilities: {many}: "
            f"{first_few(names)}")


def _check_vulnerabilities(dists: Sequence[PlannedDist], policy: UsagePolicy,
                           client: Client, index_urls: Sequence[str], jobs: int,
                           log: Callable[[str], None]) -> tuple[list[str], list[str]]:
    if policy.vulnerabilities == "off":
        return [], []
    apis = {index_key(u) for u in policy.vulnerability_indexes}
    queries, homes = [], {}
    for d in dists:
        home = index_of(d.file, [*index_urls, *map(index_key, index_urls)])
        url = json_api_url(home, d.name, d.version) if home and index_key(home) in apis else None
        queries.append(Query(d.name, d.version, (url,) if url else ()))
        homes[queries[-1]] = home or ""
    db = OsvDatabase(policy.osv_dir) if policy.osv_dir is not None else None
    if db is None and not any(q.urls for q in queries):
        return [], []
    refuse = policy.vulnerabilities == "refuse"
    rule = f"vulnerabilities = \"{policy.vulnerabilities}\", from " \
           f"{policy.origin('vulnerabilities')}"
    problems, warnings = [], []
    # Distributions not checked, by index and why (HTTP 404 or 410; None: the JSON API could
    # not be asked): one problem or warning for each, not one per distribution.
    unchecked: dict[tuple[str, int | None], list[tuple[Query, FetchError]]] = {}
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
            if isinstance(problem, NoVulnerabilityData):
                log(f"{q.name} {q.version}: no vulnerability data ({problem.message})"
                    + ("; checked against osv-dir only" if db is not None else ""))
                if db is None:
                    unchecked.setdefault((homes[q], problem.status), []).append((q, problem))
                continue
            log(f"{q.name} {q.version}: not checked for known vulnerabilities "
                f"({problem.message})")
            if refuse:
                problems.append(f"{_unchecked(homes[q], [(q, problem)])} (fail closed; {rule}: "
                                "set it to \"warn\" to go on)")
            else:
                unchecked.setdefault((homes[q], None), []).append((q, problem))
    for (index, status), missing in unchecked.items():
        text = _unchecked(index, missing)
        if status is None:
            warnings.append(f"{text} ({rule})")
        elif refuse:
            problems.append(f"{text}; refused (fail closed; {rule}): set osv-dir to a directory "
                            "of OSV records to check offline, or vulnerabilities = \"warn\" to "
                            "install anyway, or use an index that serves its JSON API "
                            "(/pypi/<name>/<version>/json)")
        else:
            warnings.append(f"{text} ({rule}; osv-dir, a directory of OSV records, would check "
                            "them)")
    return problems, warnings


def check_plan(plan: Plan, policy: UsagePolicy, *, client: Client,
               index_urls: Sequence[str], requirements: Sequence[UserRequirement] = (),
               now: datetime | None = None, jobs: int = 8,
               log: Callable[[str], None] = lambda _m: None) -> list[str]:
    """Check every planned distribution against the policy, before anything is
    downloaded; return warnings, or raise one `PolicyError` listing every violation.

    `requirements` are the user's requirements and constraints (a yanked release is
    allowed when one of them pins it with ==). Licences are checked here where the plan
    has the metadata (pip's resolver); otherwise call `check_metadata` after download.
    `log` gets the details a shortened warning leaves out (-v).
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
    bad, warned = _check_vulnerabilities(plan.items, policy, client, index_urls, jobs, log)
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
