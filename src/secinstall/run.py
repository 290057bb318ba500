"""`secinstall run -- COMMAND`: run one command (pip, uv, a build frontend) with the
verifying index as its only package source, then find what it changed in the target
environment and record what was verified (SBOM fragment, trusted publishers)."""

from __future__ import annotations

import dataclasses
import os
import subprocess  # nosec B404 - runs the command the user asked for, no shell
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName

from .errors import ConfigError
from .install import find_installed, same_version
from .models import InstalledDist
from .serve import IndexServer, Log, Refusal, Served, ServeSettings
from .target import Target

#: Variables that would give the command another package source; replaced or removed.
SOURCE_VARIABLES = (
    "PIP_INDEX_URL", "PIP_PYPI_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX",
    "PIP_ISOLATED",  # pip would ignore PIP_INDEX_URL
    "UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS",
    "UV_NO_INDEX",
)


class CommandNotFoundError(ConfigError):
    """The command to run does not exist (the shell's exit code for that)."""

    exit_code = 127


@dataclass(frozen=True)
class Change:
    """A distribution the command installed, and what the verifying index served for it."""

    dist: InstalledDist
    served: Served | None


@dataclass
class RunResult:
    command: tuple[str, ...]
    exit_code: int
    index_url: str
    target: Target
    installed: list[Change] = field(default_factory=list)
    removed: list[InstalledDist] = field(default_factory=list)
    served: list[Served] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    interrupted: bool = False
    sbom: Path | None = None

    @property
    def unverified(self) -> list[InstalledDist]:
        """Installed, but not from a file this run verified (a tool's cache, a local path)."""
        return [c.dist for c in self.installed if c.served is None]


#: Settings of pip's configuration the command doesn't get: where packages come from (the
#: verifying index is its only source), `isolated` (pip would ignore PIP_INDEX_URL) and
#: the proxy (that index is on loopback; it asks upstream through the proxy itself).
NOT_CARRIED = frozenset({"index-url", "extra-index-url", "find-links", "no-index",
                         "isolated", "proxy"})
#: pip's commands, to know which section of its configuration files the command reads.
_PIP_COMMANDS = frozenset({"install", "download", "wheel", "uninstall", "freeze", "inspect",
                           "list", "show", "check", "config", "cache", "index", "hash",
                           "lock", "debug", "help", "completion", "search"})


def child_environment(environ: Mapping[str, str], url: str, *,
                      command: Sequence[str] = (),
                      site_prefix: Path | None = None) -> dict[str, str]:
    """`environ` for the command: the verifying index is its only source.

    pip: PIP_CONFIG_FILE=os.devnull, since a configuration file's extra-index-url or
    find-links can't be overridden by an empty variable (pip skips empty values); the
    files' other settings (require-virtualenv, no-deps, timeout...) for `command`'s pip
    command are given as PIP_* variables instead, under the user's own variables, as pip
    ranks them. uv: UV_NO_CONFIG, for the same reason with uv.toml and [tool.uv].
    Loopback http needs no trusted-host: pip and uv treat 127.0.0.1 as a secure origin; it
    is added to NO_PROXY, as a proxy can't reach it.
    """
    env = {k: v for k, v in environ.items() if k not in SOURCE_VARIABLES}
    for var, value in _carried_settings(environ, command, site_prefix).items():
        env.setdefault(var, value)
    env.update({
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": url,
        "UV_DEFAULT_INDEX": url,
        "UV_INDEX_URL": url,  # uv before 0.4.23 knows only this one
        "UV_NO_CONFIG": "1",
    })
    bypass = ",".join(filter(None, [env.get("no_proxy") or env.get("NO_PROXY"),
                                    "127.0.0.1", "localhost"]))
    env["no_proxy"] = env["NO_PROXY"] = bypass
    return env


def _carried_settings(environ: Mapping[str, str], command: Sequence[str],
                      site_prefix: Path | None) -> dict[str, str]:
    """The settings of pip's configuration files for `command` (its [global] section, and
    the section of its pip command, e.g. [install]), but `NOT_CARRIED`, as PIP_*
    variables. A file pip couldn't read either is left out."""
    from .config import pip_config_values

    name = next((arg for arg in command if arg in _PIP_COMMANDS), "")
    sections, _problems = pip_config_values(environ, site_prefix=site_prefix,
                                            command=name or "global")
    carried: dict[str, str] = {}
    for section in ("global", name):
        for key, (value, _origin) in sections.get(section, {}).items():
            if value and key not in NOT_CARRIED:
                carried["PIP_" + key.upper().replace("-", "_")] = value
    return carried


def _fingerprint(dist: InstalledDist) -> tuple[str, int, int]:
    """Changes when the distribution is (re)installed, even in the same version."""
    try:
        st = (dist.dist_info / "RECORD").stat()
    except OSError:
        return dist.version, 0, 0
    return dist.version, st.st_ino, st.st_mtime_ns


def diff(before: Mapping[NormalizedName, tuple[InstalledDist, tuple[str, int, int]]],
         after: Mapping[NormalizedName, tuple[InstalledDist, tuple[str, int, int]]],
         served: Sequence[Served]) -> tuple[list[Change], list[InstalledDist]]:
    """(installed, removed) between two states of an environment, each installed one
    matched with the verified file of the same name and version."""
    installed = []
    for name, (dist, mark) in sorted(after.items()):
        if name in before and before[name][1] == mark:
            continue
        match = [s for s in served if s.verified.dist.name == name
                 and same_version(s.verified.dist.version, dist.version)]
        installed.append(Change(dist, match[-1] if match else None))
    removed = [dist for name, (dist, _m) in sorted(before.items())
               if name not in after or not same_version(after[name][0].version, dist.version)]
    return installed, removed


def _state(target: Target) -> dict[NormalizedName, tuple[InstalledDist, tuple[str, int, int]]]:
    return {n: (d, _fingerprint(d)) for n, d in find_installed(target).items()}


def _wait(proc: subprocess.Popen[bytes]) -> tuple[int, bool]:
    """The command's exit code (128+N for signal N, as shells report it)."""
    interrupted = False
    while True:
        try:
            code = proc.wait()
            break
        except KeyboardInterrupt:
            # The terminal sent SIGINT to the command too: let it stop by itself.
            interrupted = True
    return (128 - code if code < 0 else code), interrupted


def run_command(command: Sequence[str], settings: ServeSettings, target: Target, *,
                log: Log = lambda _m: None, on_start: Log = lambda _m: None,
                environ: Mapping[str, str] | None = None) -> RunResult:
    """Run `command` behind a verifying index on a free loopback port."""
    if not command:
        raise ConfigError("nothing to run: give the command after --, e.g. "
                          "secinstall run -- pip install rich")
    before = _state(target)
    with IndexServer(dataclasses.replace(settings, record_trust=False), log=log) as server:
        on_start(server.url)
        env = child_environment(
            os.environ if environ is None else environ, server.url, command=command,
            site_prefix=target.pip_site_prefix)
        try:
            proc = subprocess.Popen(list(command), env=env)  # noqa: S603  # nosec B603
        except FileNotFoundError:
            raise CommandNotFoundError(f"{command[0]}: command not found") from None
        except OSError as exc:
            raise ConfigError(f"can't run {command[0]}: {exc.strerror or exc}") from exc
        code, interrupted = _wait(proc)
        served, refused = list(server.index.served), list(server.index.refused)
    installed, removed = diff(before, _state(target), served)
    return RunResult(command=tuple(command), exit_code=code, index_url=server.url,
                     target=target, installed=installed, removed=removed, served=served,
                     refused=refused, interrupted=interrupted)


def record(result: RunResult, *, indexes: Sequence[str], weakened: Sequence[str] = ()) -> None:
    """Write what the command installed from verified files into the environment: an SBOM
    fragment, and the publishers verified for the first time (trust on first use)."""
    verified = [c for c in result.installed if c.served is not None]
    if not verified:
        return
    from .models import InstallResult, Plan
    from .pipeline import Outcome
    from .sbom import write_fragment
    from .transaction import Transaction, environment_lock
    from .verify.publishers import TrustFile

    served = [c.served for c in verified if c.served is not None]
    outcome = Outcome(
        target=result.target,
        plan=Plan(items=tuple(s.verified.dist for s in served), resolver="command"),
        verified=[s.verified for s in served],
        wheel_info={s.verified.dist.name: s.info for s in served},
        result=InstallResult(installed=tuple(s.verified for s in served),
                             removed=tuple(result.removed)),
    )
    state_dir = result.target.state_dir
    with environment_lock(state_dir):
        with Transaction(state_dir) as txn:
            result.sbom = write_fragment(txn, outcome, indexes=indexes, weakened=weakened)
            txn.commit()
        TrustFile(state_dir).update({s.verified.dist.name: s.verified.attestation
                                     for s in served if s.verified.attestation is not None})


def summary(result: RunResult) -> dict[str, Any]:
    """The run as JSON: what was installed and the evidence for each file."""

    def evidence(s: Served | None) -> dict[str, Any]:
        if s is None:
            return {"verified": False}
        v = s.verified
        return {
            "verified": True,
            "file": v.fetched.dist.file.filename,
            "sha256": v.fetched.sha256,
            "hash_sources": list(v.hash_sources),
            "attestation": dataclasses.asdict(v.attestation) if v.attestation else None,
            "attestation_note": v.attestation_note,
        }

    return {
        "version": 1,
        "command": list(result.command),
        "exit_code": result.exit_code,
        "interrupted": result.interrupted,
        "index_url": result.index_url,
        "environment": str(result.target.root),
        "installed": [{"name": c.dist.name, "version": c.dist.version,
                       "dist_info": str(c.dist.dist_info), **evidence(c.served)}
                      for c in result.installed],
        "removed": [{"name": d.name, "version": d.version} for d in result.removed],
        "served": [{"file": s.verified.fetched.dist.file.filename,
                    "sha256": s.verified.fetched.sha256} for s in result.served],
        "refused": [{"project": r.project, "file": r.filename, "reason": r.reason}
                    for r in result.refused],
        "sbom": str(result.sbom) if result.sbom else None,
    }
