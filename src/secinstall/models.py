"""Frozen dataclasses that the pipeline stages hand to each other.

resolve → `Plan` of `PlannedDist`; fetch → `FetchedFile`; verify → `VerifiedDist`;
install → `InstallResult`. No stage knows another; `pipeline` connects them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from packaging.requirements import Requirement
from packaging.utils import NormalizedName
from packaging.version import Version


@dataclass(frozen=True)
class UserRequirement:
    """One requirement as the user wrote it, with the hashes pinned for it."""

    req: Requirement
    #: Pinned hashes as {algorithm: {hexdigest, ...}} (pip's `--hash=algo:hex`).
    hashes: Mapping[str, frozenset[str]]
    #: Where it was written: "command line" or "requirements.txt:12".
    source: str
    is_constraint: bool = False

    @property
    def is_pinned(self) -> bool:
        """True for `name==version` (no wildcard) or `name===version`."""
        specs = list(self.req.specifier)
        return (
            len(specs) == 1
            and specs[0].operator in ("==", "===")
            and not specs[0].version.endswith(".*")
        )


@dataclass(frozen=True)
class IndexFile:
    """A distribution file as an index or find-links location lists it."""

    filename: str
    url: str
    #: Hashes the index gives for the file: {algorithm: hexdigest}.
    hashes: Mapping[str, str]
    requires_python: str | None = None
    #: None when not yanked, else the reason ("" when none was given).
    yanked: str | None = None
    upload_time: str | None = None
    size: int | None = None
    #: PEP 740 provenance URL, when the index gives one (PEP 691 api 1.3).
    provenance_url: str | None = None
    #: The index (or find-links location, or lock file) that listed the file.
    origin: str = ""
    #: Who vouches for `hashes`: "index", "resolver" (pip's report; pip may have computed
    #: the hash itself) or "lock" (a lock file).
    hashes_from: Literal["index", "resolver", "lock"] = "index"

    @property
    def name_and_version(self) -> tuple[NormalizedName, Version] | None:
        """Project and version from the file name (None for a name that is neither a
        wheel's nor an sdist's)."""
        from packaging.utils import (
            InvalidSdistFilename,
            InvalidWheelFilename,
            parse_sdist_filename,
            parse_wheel_filename,
        )
        from packaging.version import InvalidVersion

        try:
            if self.filename.endswith(".whl"):
                return parse_wheel_filename(self.filename)[:2]
            return parse_sdist_filename(self.filename)
        except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
            return None

    @property
    def version(self) -> Version | None:
        parsed = self.name_and_version
        return parsed[1] if parsed else None


@dataclass(frozen=True)
class PlannedDist:
    """One distribution the plan will install, before anything is downloaded."""

    name: NormalizedName
    version: str
    file: IndexFile
    #: Hashes the user pinned for it, {algorithm: {hexdigest, ...}} (may be empty).
    pinned: Mapping[str, frozenset[str]]
    requested: bool
    requested_extras: tuple[str, ...] = ()
    #: True for `name @ URL` requirements (PEP 610 direct_url.json is written).
    is_direct: bool = False
    #: Names of the distributions whose requirements pulled this one in.
    via: tuple[str, ...] = ()
    #: Core metadata as PEP 566 JSON, when the resolver already knows it.
    metadata: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Plan:
    """What resolution decided: the files to fetch, verify and install."""

    items: tuple[PlannedDist, ...]
    #: "pinned" (no resolver ran), "lock" (a pylock.toml, no resolver ran), "pip" (pip's
    #: resolver, through its report) or "command" (the one `secinstall run` ran: pip,
    #: uv, Poetry...).
    resolver: Literal["pinned", "lock", "pip", "command"]
    #: True when every distribution must have a pinned hash (pip's hash-checking mode).
    require_hashes: bool = False


@dataclass(frozen=True)
class FetchedFile:
    """A downloaded file in the content-addressed cache, hashed while it was written."""

    dist: PlannedDist
    path: Path
    #: Digests computed while the file was written: sha256 always, other algorithms
    #: where the index or a pin uses them.
    hashes: Mapping[str, str]
    size: int
    from_cache: bool
    #: The PEP 740 provenance found for the file (fetched alongside it), and where from.
    provenance: bytes | None = None
    provenance_source: str | None = None

    @property
    def sha256(self) -> str:
        return self.hashes["sha256"]


@dataclass(frozen=True)
class Publisher:
    """A Trusted Publisher identity (PEP 740), as claimed or as pinned."""

    kind: str
    repository: str
    workflow: str | None = None
    environment: str | None = None

    def __str__(self) -> str:
        extra = [f"{k} {v}" for k, v in (("workflow", self.workflow),
                                          ("environment", self.environment)) if v]
        return f"{self.kind}:{self.repository}" + (f" ({', '.join(extra)})" if extra else "")


@dataclass(frozen=True)
class AttestationEvidence:
    """What verifying one file's PEP 740 attestation established."""

    filename: str
    sha256: str
    publisher: Publisher | None
    #: The signing certificate's identity (SAN) and OIDC issuer.
    identity: str
    issuer: str
    predicate_type: str
    rekor_log_index: int
    #: Unix time the Rekor entry was integrated (or the signed timestamp).
    integrated_time: int
    #: "production" or "staging" Sigstore instance.
    instance: str
    #: "embedded" (the trust root shipped in sigstore) or "tuf" (refreshed online).
    trust_root: str


@dataclass(frozen=True)
class VerifiedDist:
    """A fetched file that passed every check; only these are ever installed."""

    fetched: FetchedFile
    #: Which sources the sha256 was checked against: "index", "pin", "lock".
    hash_sources: tuple[str, ...]
    attestation: AttestationEvidence | None = None
    #: Why no attestation was verified, when none was ("no provenance", "off").
    attestation_note: str | None = None

    @property
    def dist(self) -> PlannedDist:
        return self.fetched.dist


@dataclass(frozen=True)
class InstalledDist:
    """A distribution found in the target environment (a `.dist-info` directory)."""

    name: NormalizedName
    version: str
    dist_info: Path
    installer: str = ""


@dataclass(frozen=True)
class InstallResult:
    """What an install transaction changed."""

    installed: tuple[VerifiedDist, ...] = ()
    #: Distributions removed for an upgrade or reinstall.
    removed: tuple[InstalledDist, ...] = ()
    #: Requested distributions already present in the wanted version.
    unchanged: tuple[InstalledDist, ...] = ()
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Sources:
    """Where distributions come from (pip's index options, merged with its config)."""

    index_url: str = "https://pypi.org/simple/"
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    trusted_hosts: tuple[str, ...] = ()
    #: Extra CA bundles (`--cert`), added to the OS trust store, never replacing it.
    certs: tuple[str, ...] = ()
    #: A PEM file with a client certificate and its private key (`--client-cert`), for an
    #: index that asks for one (mutual TLS).
    client_cert: str | None = None
    timeout: float = 15.0
    retries: int = 5
    proxy: str | None = None

    @property
    def index_urls(self) -> tuple[str, ...]:
        return () if self.no_index else (self.index_url, *self.extra_index_urls)


@dataclass(frozen=True)
class AttestationPolicy:
    """How PEP 740 attestations are checked (`--attestations`, `--publisher`, ...)."""

    #: "require": refuse files without provenance; "auto": verify what has provenance,
    #: warn for the rest; "off": don't look (a weakening, reported as such).
    mode: Literal["require", "auto", "off"] = "auto"
    instance: Literal["production", "staging"] = "production"
    #: Publisher pins per project (any one of them must match).
    pins: Mapping[NormalizedName, tuple[Publisher, ...]] = field(default_factory=dict)
    #: Projects whose change of publisher the user accepts (trust on first use).
    accept_change: frozenset[NormalizedName] = frozenset()
    #: A local directory of `<filename>.provenance` files, for air-gapped use.
    provenance_dir: Path | None = None
    #: Where the policy values came from, for `-v` and the report.
    origins: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InstallOptions:
    """Everything `install` was asked to do, after config, environment and CLI merged."""

    requirements: tuple[UserRequirement, ...]
    constraints: tuple[UserRequirement, ...] = ()
    sources: Sources = field(default_factory=Sources)
    require_hashes: bool = False
    no_deps: bool = False
    upgrade: bool = False
    force_reinstall: bool = False
    #: `-I`: pip's resolver ignores what is installed; everything planned is reinstalled.
    ignore_installed: bool = False
    #: `--upgrade-strategy`: "only-if-needed" (pip's default) or "eager".
    upgrade_strategy: str = "only-if-needed"
    pre: bool = False
    dry_run: bool = False
    #: `--report FILE` ("-": stdout): where the command writes pip's installation report.
    report: str | None = None
    compile_bytecode: bool = True
    #: pip's warning after an install about requirements it leaves unmet in the
    #: environment (`conflicts.py`); `--no-warn-conflicts` turns it off.
    warn_conflicts: bool = True
    #: pip's warning about scripts installed in a directory PATH doesn't name;
    #: `--no-warn-script-location` turns it off.
    warn_script_location: bool = True
    #: How files get from the unpacked cache into the environment: "hardlink" (falls back
    #: to copying across filesystems) or "copy".
    link_mode: str = "hardlink"
    #: `--trust-cached-bytecode`: link bytecode an earlier install compiled into the cache
    #: instead of compiling it again from the verified sources.
    trust_cached_bytecode: bool = False
    cache_dir: Path | None = None
    #: `--no-cache-dir`: a temporary cache for this run only.
    no_cache: bool = False
    #: Parallel downloads.
    jobs: int = 8
    attestations: AttestationPolicy = field(default_factory=AttestationPolicy)
    #: A pylock.toml to install from (`-r pylock.toml`); no resolver runs.
    lock_file: Path | None = None
    #: Extras and dependency groups to select from the lock (None: its default groups).
    extras: tuple[str, ...] = ()
    groups: tuple[str, ...] | None = None
    #: `--require-lock FILE`: refuse anything this lock does not pin.
    require_lock: Path | None = None

    #: The usage policy (`secinstall.policy.UsagePolicy`), checked on the plan.
    usage_policy: Any = None
    #: The target's PEP 668 `EXTERNALLY-MANAGED` file, when `--break-system-packages`
    #: installs into that externally managed environment anyway (a weakening).
    externally_managed: Path | None = None

    @property
    def weakenings(self) -> list[str]:
        """Every way these options weaken verification, for the output, report and SBOM."""
        found = [f"plain http:// allowed for {h} (--trusted-host)"
                 for h in self.sources.trusted_hosts]
        if self.attestations.mode == "off":
            found.append("attestations not checked (--attestations off)")
        if self.trust_cached_bytecode and self.compile_bytecode:
            found.append("bytecode taken from the cache, not compiled from the verified "
                         "sources (--trust-cached-bytecode)")
        if self.externally_managed is not None:
            found.append("installing into an externally managed environment despite its "
                         f"PEP 668 marker {self.externally_managed} (--break-system-packages)")
        return found
