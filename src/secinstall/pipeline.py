"""The stage order, in one place: resolve → fetch → verify → unpack → install → record.

Each stage takes and returns the small frozen dataclasses of `models`; none knows about
another. Nothing is written to the environment until every file has been verified, and
what is installed is exactly the files that were verified (no second resolution).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import NormalizedName

from .bytecode import Bytecode
from .cache import Cache, default_cache_dir
from .client import Client
from .errors import HashesRequiredError, SecinstallError
from .fetch import fetch_each
from .fragment import FragmentBuilder
from .index import Finder
from .install import begin_install, find_installed, finish_install, installed_requires
from .models import (
    AttestationPolicy,
    FetchedFile,
    InstalledDist,
    InstallOptions,
    InstallResult,
    Plan,
    PlannedDist,
    Publisher,
    VerifiedDist,
)
from .progress import NoProgress, Progress
from .resolve import missing_dependencies, resolve, suggest_pins
from .target import Target
from .transaction import Transaction, environment_change, environment_lock, recover
from .unpack import Unpacked, unpack
from .verify.hashes import check_hashes
from .verify.publishers import TrustFile, check_attestation
from .verify.wheel import WheelInfo, check_wheel

if TYPE_CHECKING:
    import ssl

Log = Callable[[str], None]


@dataclass
class Outcome:
    """Everything a run established: the plan, the evidence, and what changed."""

    target: Target
    plan: Plan
    verified: list[VerifiedDist] = field(default_factory=list)
    wheel_info: dict[NormalizedName, WheelInfo] = field(default_factory=dict)
    #: The verified wheels' trees in the unpacked cache, in the order of `verified`.
    unpacked: list[Unpacked] = field(default_factory=list)
    unchanged: list[InstalledDist] = field(default_factory=list)
    result: InstallResult | None = None
    notes: list[str] = field(default_factory=list)
    #: The SBOM fragment written for this install.
    sbom: Path | None = None


def _split(plan: Plan, installed: dict[NormalizedName, InstalledDist],
           force: bool) -> tuple[list[PlannedDist], list[InstalledDist]]:
    todo, unchanged = [], []
    for dist in plan.items:
        have = installed.get(dist.name)
        if have is not None and have.version == dist.version and not force:
            unchanged.append(have)
        else:
            todo.append(dist)
    return todo, unchanged


def verify(fetched: FetchedFile, *, require_pin: bool, policy: AttestationPolicy,
           trust: TrustFile | None, tags: tuple[str, ...],
           contents: bool = True) -> tuple[VerifiedDist, WheelInfo]:
    """Every check a file must pass before it may be installed (or served): its hashes,
    its attestations against the publisher policy, then the archive itself (with `tags`,
    that it fits the target; empty: any platform). Without `contents`, each member's
    hash is left to `unpack`, which checks it while extracting (one read, not two)."""
    sources = check_hashes(fetched, require_pin=require_pin)
    evidence, note = check_attestation(fetched, policy, trust)
    info = check_wheel(fetched, tags, contents=contents)
    return VerifiedDist(fetched=fetched, hash_sources=sources, attestation=evidence,
                        attestation_note=note), info


def with_index_details(plan: Plan, finder: Finder, jobs: int, *,
                       provenance_only: bool = False) -> Plan:
    """Fill in what pip's report leaves out (provenance URL, upload time, yanked) from
    the index's own listing of the same files; with `provenance_only`, only where each
    file's provenance is (a lock's hashes and details stay the lock's)."""
    names = sorted({d.name for d in plan.items if not d.is_direct})
    listing = finder.files_many(names, workers=jobs) if names else {}
    by_name = {(n, f.filename): f for n, files in listing.items() for f in files}
    items = []
    for d in plan.items:
        found = by_name.get((d.name, d.file.filename))
        if found is not None and found.url == d.file.url:
            file = (dataclasses.replace(d.file, provenance_url=found.provenance_url)
                    if provenance_only else
                    dataclasses.replace(found, hashes={**found.hashes, **d.file.hashes}))
            d = dataclasses.replace(d, file=file)
        items.append(d)
    return dataclasses.replace(plan, items=tuple(items))


def _with_lock_pins(options: InstallOptions,
                    lock_pins: dict[NormalizedName, tuple[Publisher, ...]]) -> InstallOptions:
    """A lock's attestation identities become publisher pins; a pin the user gave for a
    project (command line or config) takes precedence over the lock's."""
    policy = options.attestations
    pins = {**lock_pins, **policy.pins}
    origins = {**{f"publisher:{n}": "lock file" for n in lock_pins}, **policy.origins}
    return dataclasses.replace(options, attestations=dataclasses.replace(
        policy, pins=pins, origins=origins))


def run_install(options: InstallOptions, target: Target, *, log: Log = lambda _m: None,
                progress: Progress | None = None,
                fragment: FragmentBuilder | None = None) -> Outcome:
    """resolve → fetch → verify → install → record, for `options` into `target`;
    `fragment`: one started early by the caller (it is closed here in any case)."""
    src = options.sources
    cache = Cache(None if options.no_cache else (options.cache_dir or default_cache_dir()))
    # Compiled as each wheel is unpacked, while the others are still on their way.
    bytecode = (Bytecode(target, reuse=options.trust_cached_bytecode)
                if options.compile_bytecode and not options.dry_run else None)
    recovered: list[str] = []
    outcome: Outcome | None = None
    try:
        # The TLS context is made at the first connection: none, when all is cached.
        with Client(ssl_context=lambda: _tls_context(src.certs, src.client_cert),
                    trusted_hosts=src.trusted_hosts, timeout=src.timeout,
                    retries=src.retries, proxy=src.proxy,
                    credential_urls=(*src.index_urls, *src.find_links)) as client:
            finder = Finder(client, src.index_urls, src.find_links)
            # A transaction a killed process left behind is finished or undone first, so
            # that what is installed is known before anything is decided.
            if any(target.state_dir.glob("txn-*")):
                with environment_lock(target.state_dir):
                    recovered = recover(target.state_dir)
            options, outcome, todo = _resolve(options, target, finder, cache, client, log)
            outcome.notes[:0] = recovered
            if fragment is None and todo and not options.dry_run:
                fragment = FragmentBuilder()  # gets ready while the files are verified
            _fetch_and_verify(options, outcome, todo, client, cache, finder, progress,
                              bytecode, fragment)
            if not options.dry_run:
                _install(options, outcome, log, bytecode, fragment)
            return outcome
    except SecinstallError as exc:
        exc.notes[:0] = outcome.notes if outcome is not None else recovered
        raise
    finally:
        if bytecode is not None:
            bytecode.close()
        if fragment is not None:
            fragment.close()
        cache.close()


def _resolve(options: InstallOptions, target: Target, finder: Finder, cache: Cache,
             client: Client, log: Log) -> tuple[InstallOptions, Outcome, list[PlannedDist]]:
    """The plan (a lock file needs no resolver), checked against the usage policy, and
    what of it is not installed yet."""
    if options.lock_file is not None:
        from .lockfiles.pylock import plan_from_pylock

        plan, lock_pins = plan_from_pylock(options.lock_file, target, extras=options.extras,
                                           dependency_groups=options.groups)
        options = _with_lock_pins(options, lock_pins)
    else:
        plan = resolve(options, target, finder, cache)
    if plan.resolver == "pip":
        plan = with_index_details(plan, finder, options.jobs)
    elif plan.resolver == "lock" and options.attestations.mode != "off":
        # A lock names files, not where their provenance is: the index says that.
        plan = with_index_details(plan, finder, options.jobs, provenance_only=True)
    if options.require_lock is not None:
        from .lockfiles.guard import restrict_to_lock

        plan = restrict_to_lock(plan, options.require_lock, target)
    outcome = Outcome(target=target, plan=plan)
    todo, outcome.unchanged = _split(plan, find_installed(target, satisfying=True),
                                     options.force_reinstall or options.ignore_installed)
    how = {"lock": "read from the lock file", "pinned": "pinned (no resolver ran)",
           "pip": "resolved by pip's resolver"}[plan.resolver]
    log(f"{len(plan.items)} distribution(s) {how}; {len(todo)} to install")
    if options.usage_policy is not None:
        from .policy_checks import check_plan

        outcome.notes += check_plan(
            dataclasses.replace(plan, items=tuple(todo)), options.usage_policy, client=client,
            index_urls=options.sources.index_urls,
            requirements=[*options.requirements, *options.constraints], jobs=options.jobs,
            log=log)
    return options, outcome, todo


def _fetch_and_verify(options: InstallOptions, outcome: Outcome, todo: list[PlannedDist],
                      client: Client, cache: Cache, finder: Finder,
                      progress: Progress | None, bytecode: Bytecode | None = None,
                      fragment: FragmentBuilder | None = None) -> None:
    """Download what the plan needs and check every file; nothing is written to the
    environment here."""
    plan, target, usage = outcome.plan, outcome.target, options.usage_policy
    trust = TrustFile(target.state_dir)

    def check(fetched: FetchedFile) -> tuple[VerifiedDist, WheelInfo, Unpacked]:
        # Each file as soon as it is there, while the others are still downloading.
        if usage is not None:
            from .policy_checks import check_fetched

            check_fetched([fetched], usage, options.attestations)
        verified, info = verify(fetched, require_pin=plan.require_hashes,
                                policy=options.attestations, trust=trust, tags=target.tags,
                                contents=False)
        # The members' hashes: checked as each is extracted, or again in the cached tree.
        tree = unpack(fetched, info, cache)
        if bytecode is not None:
            bytecode.add(tree)
        if fragment is not None:
            fragment.verified(verified, tree)
        return verified, info, tree

    checked = fetch_each(client, cache, todo, check, jobs=options.jobs,
                         progress=progress or NoProgress(), policy=options.attestations)
    if cache.note is not None:  # it couldn't be written: said once, however many files
        outcome.notes.append(cache.note)
    outcome.verified = [v for v, _, _ in checked]
    outcome.wheel_info = {v.dist.name: i for v, i, _ in checked}
    outcome.unpacked = [u for _, _, u in checked]
    if usage is not None:
        from .policy_checks import check_metadata

        outcome.notes += check_metadata(
            [(v.dist.name, v.dist.version, outcome.wheel_info[v.dist.name].metadata)
             for v in outcome.verified if v.dist.metadata is None], usage)
    if plan.resolver in ("pinned", "lock") and not options.no_deps:
        requires = {name: info.requires_dist for name, info in outcome.wheel_info.items()}
        # Already-installed distributions of the plan still bring their requirements.
        for have in outcome.unchanged:
            requires.setdefault(have.name, installed_requires(have))
        missing = missing_dependencies(plan, requires, target)
        if missing:
            raise HashesRequiredError(
                f"the pinned requirements are incomplete: {len(missing)} dependenc(ies) "
                "have no pin (or a pin that doesn't fit); add these lines after checking "
                "them, or pass --no-deps:",
                details=suggest_pins(missing, finder, target, pre=options.pre),
            )
    for v in outcome.verified:
        cache.remember(v)
    for info in outcome.wheel_info.values():
        outcome.notes += [f"{info.metadata.get('name')} installs {p}, which runs code at "
                          "every interpreter start-up" for p in info.pth_files]


def _install(options: InstallOptions, outcome: Outcome, log: Log,
             bytecode: Bytecode | None = None, fragment: FragmentBuilder | None = None,
             ) -> None:
    """Install the verified files and record them, under the environment's lock, as one
    transaction."""
    target = outcome.target
    with environment_change(target.state_dir, log) as recovered:
        outcome.notes += recovered
        installed = find_installed(target)
        replace = [installed[v.dist.name] for v in outcome.verified if v.dist.name in installed]
        if fragment is not None:
            # Everything the fragment says is known now; it is built while files are linked.
            fragment.send(dataclasses.replace(outcome, result=InstallResult(
                installed=tuple(outcome.verified), removed=tuple(replace),
                unchanged=tuple(outcome.unchanged))),
                indexes=options.sources.index_urls, weakened=options.weakenings)
        try:
            with Transaction(target.state_dir) as txn:
                installing = begin_install(txn, target, outcome.verified, outcome.unpacked,
                                           replace, link_mode=options.link_mode)
                if bytecode is not None:
                    # Compiling went on while the files above were linked.
                    outcome.unpacked = bytecode.finish(outcome.unpacked)
                warnings = finish_install(installing, outcome.unpacked,
                                          compile_bytecode=options.compile_bytecode,
                                          warn_script_location=options.warn_script_location)
                outcome.result = InstallResult(installed=tuple(outcome.verified),
                                               removed=tuple(replace),
                                               unchanged=tuple(outcome.unchanged),
                                               warnings=tuple(warnings))
                # record: the SBOM fragment is part of the transaction
                if outcome.verified:
                    from .sbom import write_fragment

                    built = fragment.result() if fragment is not None else None
                    if fragment is not None and built is None:
                        log("the SBOM fragment's process didn't make it; building it here")
                    outcome.sbom = write_fragment(
                        txn, outcome, indexes=options.sources.index_urls,
                        weakened=options.weakenings, built=built)
                txn.commit()
        except SecinstallError as exc:
            # Said only now that the transaction's undo has run.
            outcome.result = None
            raise type(exc)(f"{exc.message}; every change was rolled back",
                            details=exc.details) from exc
        TrustFile(target.state_dir).update(
            {v.dist.name: v.attestation for v in outcome.verified if v.attestation})
        if options.warn_conflicts and not options.no_deps and outcome.verified:
            outcome.notes += _conflicts(outcome)
    outcome.notes += warnings


def _conflicts(outcome: Outcome) -> list[str]:
    """pip's warning after an install (`conflicts.py`), in an environment: a --target or
    --prefix directory, or a --root, holds too little of what its distributions need to
    judge their requirements."""
    target = outcome.target
    if target.kind not in ("environment", "user") or target.destdir is not None:
        return []
    from .conflicts import HEADLINE, find_conflicts

    lines = find_conflicts(
        find_installed(target, satisfying=True),
        {v.dist.name: outcome.wheel_info[v.dist.name].requires_dist for v in outcome.verified},
        target.markers)
    return ["\n  ".join([HEADLINE, *lines])] if lines else []


def _tls_context(certs: Sequence[str], client_cert: str | None) -> ssl.SSLContext:
    from .tls import create_context

    return create_context(certs, client_cert)
