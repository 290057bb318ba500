"""Decide what to install: fully pinned input needs no resolver; anything else asks
pip's resolver through its stable installation report (`pip install --dry-run --report`).

Either way the result is a `Plan` of exact files with the hashes known for them, and
nothing else is ever installed: there is no second resolution after verification.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess  # nosec B404 - runs pip with an argument list, no shell
import sys
import tempfile
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from .cache import Cache
from .client import (
    PROXY_REFUSED,
    proxy_for,
    proxy_refusal,
    redact_text,
    redact_url,
    without_credentials,
)
from .errors import FetchError, HashesRequiredError, ResolveError, SdistRefusedError, TLSError
from .index import Finder
from .models import IndexFile, InstallOptions, Plan, PlannedDist, UserRequirement
from .target import Target, applies

#: pip from this version on verifies TLS with truststore (the OS trust store) by default.
MIN_PIP = Version("24.2")
#: ... but until this one it crashed on an HTTPS index at an IP address, saying this.
FIXED_IP_HOSTS = Version("26.1")
_IP_HOST_CRASH = "check_hostname requires server_hostname"

SDIST_HINT = (
    "secinstall installs wheels only, because building a source distribution runs "
    "arbitrary code; building in an isolated, verified environment is planned "
    "(--allow-build), it is not available yet"
)


def merged_pins(reqs: Iterable[UserRequirement]) -> dict[str, dict[str, frozenset[str]]]:
    """Pinned hashes per project name, from requirements and constraints together."""
    pins: dict[str, dict[str, frozenset[str]]] = {}
    for ur in reqs:
        if not ur.hashes:
            continue
        slot = pins.setdefault(canonicalize_name(ur.req.name), {})
        for algo, values in ur.hashes.items():
            slot[algo] = slot.get(algo, frozenset()) | values
    return pins


def is_fully_pinned(options: InstallOptions) -> bool:
    """True when every requirement names one exact version and pins its hashes."""
    return bool(options.requirements) and all(
        ur.hashes and (ur.is_pinned or ur.req.url) for ur in options.requirements
    )


def resolve(options: InstallOptions, target: Target, finder: Finder,
            cache: Cache | None = None) -> Plan:
    """The plan for `options`, for `target`."""
    if is_fully_pinned(options):
        return resolve_pinned(options, target, finder, cache)
    return resolve_with_pip(options, target, finder)


# -- pinned input: no resolver -------------------------------------------------------------


def _tag_rank(filename: str, target: Target) -> int | None:
    """Position of the wheel's best tag in the target's preference list (None: unfit)."""
    ranks = target.tag_ranks
    try:
        tags = parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        return None
    found = [ranks[str(t)] for t in tags if str(t) in ranks]
    return min(found) if found else None


def _python_ok(requires_python: str | None, target: Target) -> bool:
    if not requires_python:
        return True
    try:
        return SpecifierSet(requires_python).contains(target.python_version, prereleases=True)
    except ValueError:
        return True  # pip ignores an invalid data-requires-python too


def _pin_matches(file: IndexFile, pins: Mapping[str, frozenset[str]]) -> bool | None:
    """Whether the index's hash is among the pins (None: the index gives no usable hash)."""
    common = [a for a in file.hashes if a in pins]
    if not common:
        return None
    return any(file.hashes[a] in pins[a] for a in common)


def choose_file(name: str, version: str, files: Sequence[IndexFile], target: Target,
                pins: Mapping[str, frozenset[str]], where: str) -> IndexFile:
    """The best wheel of `name==version` for `target` whose hash fits the pins."""
    try:
        wanted = Version(version)
    except InvalidVersion as exc:  # `name===anything` is a valid pin, but not findable
        raise ResolveError(
            f"{name} {version!r} ({where}) is not a PEP 440 version, so no index file can "
            "be matched to it; pin a released version",
        ) from exc
    same = [f for f in files if f.version == wanted]
    if not same:
        versions = sorted({v for f in files if (v := f.version) is not None})
        listed = ", ".join(map(str, versions[-8:])) or "none"
        raise ResolveError(
            f"{name}=={version} ({where}) was not found on the configured indexes; "
            f"versions there: {listed}",
        )
    wheels = [(rank, f) for f in same if f.filename.endswith(".whl")
              and (rank := _tag_rank(f.filename, target)) is not None
              and _python_ok(f.requires_python, target)]
    if not wheels:
        if all(not f.filename.endswith(".whl") for f in same):
            raise SdistRefusedError(
                f"{name}=={version} is only available as a source distribution "
                f"({same[0].filename}); {SDIST_HINT}",
            )
        raise ResolveError(
            f"no wheel of {name}=={version} fits the target (Python "
            f"{target.python_version}, {target.tags[0]}); files: "
            + ", ".join(f.filename for f in same),
        )
    if pins:
        matching = [(r, f) for r, f in wheels if _pin_matches(f, pins) is not False]
        if not matching:
            listed = "; ".join(
                f"{f.filename} {a}:{h}" for _, f in wheels for a, h in f.hashes.items())
            pinned = ", ".join(f"{a}:{h}" for a, hs in pins.items() for h in sorted(hs))
            raise ResolveError(
                f"no file of {name}=={version} matches the hashes pinned in {where}: "
                f"pinned {pinned}; the index lists {listed}",
            )
        wheels = matching
    wheels.sort(key=lambda rf: (rf[0], rf[1].yanked is not None))
    return wheels[0][1]


def _direct_file(ur: UserRequirement) -> IndexFile:
    url = ur.req.url or ""
    filename = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    if not filename.endswith(".whl"):
        raise SdistRefusedError(f"{ur.req.name} @ {redact_url(url)} ({ur.source}) is not a wheel; "
                                + SDIST_HINT)
    return IndexFile(filename=filename, url=url.split("#", 1)[0], hashes={}, origin=url)


def _cached_choice(ur: UserRequirement, pins: Mapping[str, frozenset[str]], target: Target,
                   cache: Cache | None) -> IndexFile | None:
    """A cached, earlier verified file that fits a pinned requirement: no index needed."""
    if cache is None:
        return None
    version = next(iter(ur.req.specifier)).version
    for digest in sorted(pins.get("sha256", ())):
        found = cache.recall(digest)
        if found is None:
            continue
        file = found[0]
        if (file.version == _parse_version(version)
                and _tag_rank(file.filename, target) is not None
                and _python_ok(file.requires_python, target)):
            return file
    return None


def _parse_version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def resolve_pinned(options: InstallOptions, target: Target, finder: Finder,
                   cache: Cache | None = None) -> Plan:
    """Look each pinned file up in the cache (files verified before, with the index's
    listing of them) or else in the indexes; no resolver runs."""
    pins = merged_pins([*options.requirements, *options.constraints])
    wanted = [ur for ur in options.requirements if applies(ur.req, target.markers)]
    _check_constraints(wanted, options.constraints, target)
    cached = {ur.req.name: f for ur in wanted if not ur.req.url and (
        f := _cached_choice(ur, pins.get(canonicalize_name(ur.req.name), {}), target, cache))}
    names = [ur.req.name for ur in wanted if not ur.req.url and ur.req.name not in cached]
    listing = finder.files_many(names, workers=options.jobs) if names else {}
    items = []
    seen: dict[str, str] = {}
    for ur in wanted:
        key = canonicalize_name(ur.req.name)
        if key in seen:
            raise ResolveError(f"{ur.req.name} is required twice: {seen[key]} and {ur.source}")
        seen[key] = ur.source
        if ur.req.url:
            file = _direct_file(ur)
            version = str(parse_wheel_filename(file.filename)[1])
        else:
            version = next(iter(ur.req.specifier)).version
            file = cached.get(ur.req.name) or choose_file(
                ur.req.name, version, listing[ur.req.name], target, pins.get(key, {}),
                ur.source)
        items.append(PlannedDist(
            name=key, version=version, file=file, pinned=pins.get(key, {}),
            requested=True, requested_extras=tuple(sorted(ur.req.extras)),
            is_direct=bool(ur.req.url),
        ))
    return Plan(items=tuple(items), resolver="pinned", require_hashes=True)


def _check_constraints(reqs: Sequence[UserRequirement], constraints: Sequence[UserRequirement],
                       target: Target) -> None:
    for c in constraints:
        if not applies(c.req, target.markers):
            continue
        for ur in reqs:
            if canonicalize_name(ur.req.name) != canonicalize_name(c.req.name) or ur.req.url:
                continue
            version = next(iter(ur.req.specifier)).version
            if not c.req.specifier.contains(version, prereleases=True):
                raise ResolveError(
                    f"{ur.req.name}=={version} ({ur.source}) conflicts with the constraint "
                    f"{c.req} ({c.source})",
                )


# -- anything else: pip's resolver, through its report ---------------------------------------


def _pip_version() -> Version | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return Version(version("pip"))
    except (PackageNotFoundError, InvalidVersion):
        return None


def pip_command(options: InstallOptions, target: Target, req_file: Path,
                constraint_file: Path | None, cert_file: str | None) -> list[str]:
    src = options.sources
    # --progress-bar off: pip 24.2 (the one Python 3.13.0 comes with) draws its bar on
    # stdout, which holds the report, when --log is given, even with --quiet.
    cmd = [sys.executable, "-m", "pip", "--isolated", "--disable-pip-version-check",
           "--no-input", "--quiet"]
    if not target.is_current:
        cmd += ["--python", str(target.python)]
    cmd += ["install", "--dry-run", "--report", "-", "--progress-bar", "off",
            "--only-binary", ":all:",
            "--timeout", str(src.timeout), "--retries", str(src.retries),
            "-r", str(req_file)]
    if constraint_file:
        cmd += ["-c", str(constraint_file)]
    # The index URLs are in `req_file` (`source_lines`): not here, where any local user
    # could read a token in them (ps, /proc/PID/cmdline) while pip runs.
    for host in src.trusted_hosts:
        cmd += ["--trusted-host", host]
    if cert_file:
        cmd += ["--cert", cert_file]
    if src.client_cert:
        cmd += ["--client-cert", src.client_cert]
    # The proxy, whose URL may carry a token too, is in pip's environment (`pip_environment`).
    if target.kind == "user":
        # pip's own --user plan: it sees what the interpreter sees, user site and system
        # site-packages, so a requirement the system already satisfies is not installed
        # again into the user site (as `pip install --user` does); --ignore-installed, as
        # for --target, would put a second copy of every dependency there.
        cmd.append("--user")
    # `--root DIR` is not passed: it only re-roots where files go, and pip counts what is
    # installed at the final paths, the real environment's, either way.
    if target.kind not in ("environment", "user") or options.ignore_installed:
        # pip can't see what is installed there; every file is planned, and the install
        # stage skips what is already present (unless -I asked for this).
        cmd.append("--ignore-installed")
    for flag, on in (("--no-deps", options.no_deps), ("--upgrade", options.upgrade),
                     ("--force-reinstall", options.force_reinstall), ("--pre", options.pre)):
        if on:
            cmd.append(flag)
    if options.upgrade_strategy != "only-if-needed":
        cmd += ["--upgrade-strategy", options.upgrade_strategy]
    if target.cross is not None:
        # pip takes them with --only-binary :all: and --dry-run, both given above.
        cmd += target.cross.pip_arguments()
    return cmd


def source_lines(options: InstallOptions) -> list[str]:
    """Where pip's resolver looks, as requirements-file lines (pip reads these options
    there too): written to a file only this user can read, they keep the credentials an
    index URL may carry off pip's command line."""
    import shlex  # pip splits an option line as a shell would

    src = options.sources
    lines = (["--no-index"] if src.no_index else
             [f"--index-url {shlex.quote(src.index_url)}",
              *(f"--extra-index-url {shlex.quote(url)}" for url in src.extra_index_urls)])
    return lines + [f"--find-links {shlex.quote(link)}" for link in src.find_links]


#: How requests (so pip) finds a proxy and the hosts that bypass it, in either case.
_PROXY_VARIABLES = ("https_proxy", "http_proxy", "no_proxy")


def pip_environment(options: InstallOptions) -> dict[str, str]:
    """The environment of pip's resolver: it reads no configuration file at all
    (PIP_CONFIG_FILE=os.devnull; --isolated alone leaves the machine's and the
    environment's files, e.g. /etc/pip.conf, and a constraint or index set there would
    apply to pip's plan and not to secinstall's), no PIP_* variable, and neither
    REQUESTS_CA_BUNDLE nor CURL_CA_BUNDLE, which would silently replace --cert: pip gets
    what secinstall merged, and only that. The proxy, whose URL may carry credentials,
    goes here, where only its owner can read it (not on pip's command line; pip takes no
    --proxy in a requirements file): as --proxy does in pip, for every host."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PIP_") and k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PYTHONWARNINGS"] = "ignore"
    if options.sources.proxy:
        for key in [k for k in env if k.lower() in _PROXY_VARIABLES]:
            del env[key]
        for key in ("https_proxy", "http_proxy"):
            env[key] = env[key.upper()] = options.sources.proxy
    return env


def resolve_with_pip(options: InstallOptions, target: Target,
                     finder: Finder | None = None) -> Plan:
    """pip's plan for `options`, from its `--dry-run --report`. When pip finds no
    version of a requirement, `finder` (the same indexes) helps to say why."""
    version = _pip_version()
    if version is None or version < MIN_PIP:
        raise ResolveError(
            f"resolving unpinned requirements needs pip >= {MIN_PIP} (found "
            f"{version or 'none'}), which verifies TLS with the OS trust store; upgrade "
            "pip, or give every requirement as name==version with --hash",
        )
    # The interpreter's own version, whatever --python-version says.
    python = target.cross.interpreter_version if target.cross else target.version
    if python < (3, 10) and not target.is_current:
        raise ResolveError(
            f"pip's resolver would run under the target interpreter (Python "
            f"{'.'.join(map(str, python))}), where it can't use the OS trust store; give a fully "
            "pinned input (name==version --hash=...) for this target",
        )
    with tempfile.TemporaryDirectory(prefix="secinstall-resolve-") as tmp:
        req_file = Path(tmp, "requirements.txt")
        # In a directory only this user can read (mkdtemp makes it 0700).
        req_file.write_text("".join(f"{line}\n" for line in [
            *source_lines(options), *(str(ur.req) for ur in options.requirements)]),
            encoding="utf-8")
        constraint_file = None
        if options.constraints:
            constraint_file = Path(tmp, "constraints.txt")
            constraint_file.write_text("".join(f"{c.req}\n" for c in options.constraints),
                                       encoding="utf-8")
        cert_file = None
        if options.sources.certs:
            cert_file = str(Path(tmp, "ca.pem"))
            with open(cert_file, "wb") as out:
                for cert in options.sources.certs:
                    out.write(Path(cert).read_bytes() + b"\n")
        # pip logs why it skipped an index page (a refused certificate, ...) only at info
        # level, which --quiet hides and which would go to stdout with the report: its
        # --log file keeps every level.
        log_file = Path(tmp, "pip.log")
        cmd = [*pip_command(options, target, req_file, constraint_file, cert_file),
               "--log", str(log_file)]
        env = pip_environment(options)
        try:
            proc = subprocess.run(  # noqa: S603  # nosec B603 - argument list, no shell
                cmd, capture_output=True, text=True, check=False, env=env,
                stdin=subprocess.DEVNULL,
            )
        except OSError as exc:
            raise ResolveError(f"can't run pip's resolver: {exc}") from exc
        log = ""
        if proc.returncode != 0:
            with contextlib.suppress(OSError):
                log = log_file.read_text(encoding="utf-8", errors="replace")
            _raise_tls_failure(log)
            _raise_proxy_failure(log, options.sources.proxy)
    if proc.returncode != 0:
        # pip masks the credentials it prints in most places, not all.
        lines = [redact_text(ln) for ln in proc.stderr.strip().splitlines() if ln.strip()]
        summary = next((ln for ln in reversed(lines) if ln.startswith("ERROR:")),
                       lines[-1] if lines else "no output")
        found = _NO_VERSION.search(proc.stderr)
        if found is not None and found[2] == "none":
            _raise_unreadable_page(log, found[1], lines)
        if found is not None:
            raise _no_version(found[1], found[2].split(", "), finder, target, details=lines)
        if _IP_HOST_CRASH in proc.stderr:
            raise ResolveError(
                f"pip {version} can't reach an index on an IP address over HTTPS with the OS "
                f"trust store (it fails with {_IP_HOST_CRASH!r}; pip {FIXED_IP_HOSTS} and "
                "later don't): upgrade pip where secinstall runs (python -m pip install -U "
                "pip), or give the index by its host name", details=lines)
        raise ResolveError(f"pip's resolver failed: {summary.removeprefix('ERROR: ')}",
                           details=lines)
    try:
        report = json.loads(proc.stdout)
    except ValueError as exc:
        excerpt = [redact_text(ln) for ln in proc.stdout.splitlines()[:20]]
        raise ResolveError("pip's resolver gave no readable report", details=excerpt) from exc
    return plan_from_report(report, options, target)


#: pip's words when no candidate of a requirement is left (secinstall has it take wheels
#: only, for the target's tags and Python): the requirement, and the versions it saw.
_NO_VERSION = re.compile(r"^ERROR: Could not find a version that satisfies the requirement "
                         r"(.+?) \(from versions: (.*)\)$", re.MULTILINE)


def _project_name(requirement: str) -> str:
    """The project's name at the start of a requirement as pip prints it."""
    return re.split(r"[\s\[(<>=!~;@]", requirement, maxsplit=1)[0]


def _no_version(requirement: str, versions: list[str], finder: Finder | None, target: Target,
                details: Sequence[str]) -> ResolveError:
    """Why pip found no version for `requirement`, in words a user can act on: the versions
    it could use, else what the indexes hold of the project (nothing, only source
    distributions, or wheels for other platforms)."""
    if versions != ["none"]:
        shown = ", ".join(versions[-8:])
        earlier = f" (and {len(versions) - 8} earlier)" if len(versions) > 8 else ""
        return ResolveError(f"no version of {requirement} is available: the versions with "
                            f"a wheel for this target are {shown}{earlier}", details=details)
    name = _project_name(requirement)
    generic = ResolveError(
        f"no version of {requirement} is available: secinstall asks for wheels only "
        f"(if the project has only source distributions, that is why; {SDIST_HINT})",
        details=details)
    if finder is None:
        return generic
    try:
        files = finder.files(name)
    except FetchError:
        return generic  # pip did reach the index; its failure message stands
    where = ", ".join(map(redact_url, [*finder.index_urls, *finder.find_links]))
    wheels = [f for f in files if f.filename.endswith(".whl")]
    if not files:
        return ResolveError(f"no project named {name!r} is on {where or 'any index'}: is the "
                            "name spelled right?", details=details)
    if not wheels:
        return SdistRefusedError(f"{name} has only source distributions (e.g. "
                                 f"{files[-1].filename}); {SDIST_HINT}", details=details)
    return ResolveError(
        f"none of the {len(wheels)} wheel(s) of {name} fits the target (Python "
        f"{target.python_version}, {target.tags[0]}, or a requirement on the Python "
        f"version): e.g. {', '.join(f.filename for f in wheels[-3:])}", details=details)


#: An index page pip couldn't read, as it logs it (at info level, which --quiet hides):
#: the page and why. pip then says only that it found no version, as for a project
#: without wheels.
_PAGE_FAILURE = re.compile(r"Could not fetch URL (\S+): (.*?)(?: - skipping)?$", re.MULTILINE)
#: ... why: a refused certificate,
_TLS_REASON = "There was a problem confirming the ssl certificate: "
#: ... the proxy (it refused, or can't be reached),
_PROXY_REASON = re.compile(r"proxy connection error|ProxyError|Unable to connect to proxy|"
                           r"Tunnel connection failed")
#: ... or the project isn't on that index (normal where there are several): not a failure.
_NOT_THERE = ("404 ", "410 ")


def _page_failures(log: str, reason: Callable[[str], bool]) -> list[re.Match[str]]:
    """pip's log lines about index pages it couldn't read, for the reasons `reason` takes."""
    return [m for m in _PAGE_FAILURE.finditer(log) if reason(m[2])]


def _raise_unreadable_page(log: str, requirement: str, pip_lines: Sequence[str]) -> None:
    """Raise a `FetchError` if pip's log shows that it couldn't read an index page (no
    connection, a timeout, too many 5xx answers, an HTTP error other than 404 and 410),
    when it then found no version of `requirement`: that page first, if it is the
    project's."""
    pages = _page_failures(log, lambda why: not why.startswith(_NOT_THERE))
    if not pages:
        return
    name = canonicalize_name(_project_name(requirement))
    own = [m for m in pages if canonicalize_name(m[1].rstrip("/").rsplit("/", 1)[-1]) == name]
    url, reason = (own or pages)[0].groups()
    raise FetchError(
        f"pip's resolver could not read {redact_url(url)} ({redact_text(reason)}), so it "
        f"found no version of {requirement}: check that the index is reachable from here "
        "(--index-url, --proxy, --cert, --timeout)",
        details=[*(redact_text(m.group(0)) for m in pages), *pip_lines])


def _raise_tls_failure(log: str) -> None:
    """Raise a `TLSError` if pip's log shows an index page refused for its certificate."""
    pages = _page_failures(log, lambda why: why.startswith(_TLS_REASON))
    if not pages:
        return
    url, reason = pages[0][1], pages[0][2].removeprefix(_TLS_REASON)
    host = urllib.parse.urlsplit(url).hostname or url
    url = redact_url(url)
    raise TLSError(
        f"TLS verification failed for {host} (pip's resolver, reading {url}): {reason}. "
        "For a private index, give its CA bundle with --cert (and, if it asks for a client "
        "certificate, that with --client-cert)",
        details=[redact_text(m.group(0)) for m in pages],
    )


def _raise_proxy_failure(log: str, configured_proxy: str | None) -> None:
    """Raise a `FetchError` if pip's log shows an index page it couldn't read for the
    proxy: pip then says only that it found no version, as for a project without wheels."""
    pages = _page_failures(log, lambda why: _PROXY_REASON.search(why) is not None)
    if not pages:
        return
    url, reason = pages[0].groups()
    proxy = proxy_for(url, configured_proxy)
    details = [redact_text(m.group(0)) for m in pages]
    refused = PROXY_REFUSED.search(reason)
    if proxy is not None and refused and refused.group(1).startswith("407"):
        raise FetchError("pip's resolver: " + proxy_refusal(
            proxy, f"HTTP {refused.group(1)}", url), details=details)
    through = f"the proxy {without_credentials(proxy)}" if proxy else "a proxy"
    raise FetchError(f"pip's resolver could not read {redact_url(url)} through {through}: "
                     f"{redact_text(reason)}", details=details)


def _via(items: Sequence[Mapping[str, Any]], target: Target) -> dict[str, list[str]]:
    """For each resolved name, the resolved projects whose requirements name it."""
    parents: dict[str, list[str]] = {}
    for item in items:
        meta = item.get("metadata", {})
        extras = ["", *item.get("requested_extras", [])]
        for text in meta.get("requires_dist", []) or []:
            try:
                req = Requirement(text)
            except ValueError:
                continue
            if applies(req, target.markers, extras):
                parents.setdefault(canonicalize_name(req.name), []).append(
                    f"{meta.get('name')}=={meta.get('version')}")
    return parents


def plan_from_report(report: Mapping[str, Any], options: InstallOptions,
                     target: Target) -> Plan:
    """Turn pip's installation report into a plan, checking hash pins on the way."""
    pins = merged_pins([*options.requirements, *options.constraints])
    require_hashes = options.require_hashes or bool(pins)
    items = list(report.get("install", []))
    parents = _via(items, target)
    plan, missing = [], []
    for item in items:
        meta = item["metadata"]
        name = canonicalize_name(meta["name"])
        info = item["download_info"]
        url = info["url"]
        archive = info.get("archive_info")
        if archive is None:
            kind = "a directory" if "dir_info" in info else "a VCS checkout"
            raise SdistRefusedError(f"{meta['name']} comes from {kind} ({redact_url(url)}); "
                                     f"{SDIST_HINT}")
        hashes = {a: h.lower() for a, h in (archive.get("hashes") or {}).items()}
        if not hashes and archive.get("hash"):
            algo, _, digest = archive["hash"].partition("=")
            hashes = {algo: digest.lower()}
        filename = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
        if not filename.endswith(".whl"):
            raise SdistRefusedError(f"{meta['name']} {meta['version']}: {filename}; "
                                    + SDIST_HINT)
        via = tuple(parents.get(name, ()))
        if require_hashes and name not in pins:
            pin = " ".join(f"--hash={a}:{h}" for a, h in sorted(hashes.items())) or \
                "--hash=sha256:<unknown>"
            why = f"    # via {', '.join(via)}" if via else "    # requested"
            missing.append(f"{meta['name']}=={meta['version']} {pin}{why}")
        plan.append(PlannedDist(
            name=name, version=str(meta["version"]),
            file=IndexFile(filename=filename, url=url, hashes=hashes, origin="pip report",
                           hashes_from="resolver"),
            pinned=pins.get(name, {}), requested=bool(item.get("requested")),
            requested_extras=tuple(item.get("requested_extras") or ()),
            is_direct=bool(item.get("is_direct")), via=via, metadata=meta,
        ))
    if missing:
        raise HashesRequiredError(
            f"hashes are required (--require-hashes, or a requirement pins a hash) but "
            f"{len(missing)} distribution(s) have none; add these lines to your "
            "requirements after checking them:",
            details=missing,
        )
    return Plan(items=tuple(plan), resolver="pip", require_hashes=require_hashes)


@dataclass(frozen=True)
class MissingDependency:
    """A requirement of a planned distribution that the plan does not satisfy."""

    req: Requirement
    via: str
    #: The version the plan has, when it has one that doesn't fit.
    have: str | None = None


def missing_dependencies(plan: Plan, requires: Mapping[NormalizedName, Sequence[str]],
                         target: Target) -> list[MissingDependency]:
    """Requirements of planned distributions that the (pinned) plan does not satisfy."""
    versions = {d.name: d.version for d in plan.items}
    missing = []
    for dist in plan.items:
        extras = ["", *dist.requested_extras]
        for text in requires.get(dist.name, ()):
            try:
                req = Requirement(text)
            except InvalidRequirement as exc:
                raise ResolveError(
                    f"{dist.name}=={dist.version} has an invalid requirement {text!r} in "
                    f"its metadata: {exc}",
                ) from exc
            if not applies(req, target.markers, extras):
                continue
            have = versions.get(canonicalize_name(req.name))
            if have is None or not req.specifier.contains(have, prereleases=True):
                missing.append(MissingDependency(req, f"{dist.name}=={dist.version}", have))
    return missing


def suggest_pins(missing: Sequence[MissingDependency], finder: Finder, target: Target,
                 *, pre: bool = False) -> list[str]:
    """A pin ready to paste for each missing dependency: the newest version the index
    has that fits, with the hash the index gives for its best wheel."""
    names = sorted({m.req.name for m in missing})
    listing = finder.files_many(names) if names else {}
    lines = []
    for m in missing:
        files = listing.get(m.req.name, [])
        versions = sorted({v for f in files if (v := f.version) is not None
                           and m.req.specifier.contains(v, prereleases=pre or None)},
                          reverse=True)
        why = f"    # via {m.via}" + (f" (the plan has {m.have})" if m.have else "")
        for version in versions:
            try:
                best = choose_file(m.req.name, str(version), files, target, {}, m.via)
            except ResolveError:
                continue
            pins = " ".join(f"--hash={a}:{h}" for a, h in sorted(best.hashes.items()))
            lines.append(f"{canonicalize_name(m.req.name)}=={version} "
                         f"{pins or '--hash=sha256:<the index gives none>'}{why}")
            break
        else:
            lines.append(f"{m.req}{why}    (no fitting wheel found on the indexes)")
    return lines
