"""The command line: argparse, one `_cmd_<name>` per subcommand. The only module that
prints or chooses an exit code; everything else raises `SecinstallError`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from . import __version__
from .errors import HashesRequiredError, SecinstallError

EPILOG = """\
pip's configuration files and PIP_* environment variables are honoured for the options
secinstall shares with pip (index URLs, find-links, --cert, --trusted-host, ...);
command-line values win, and list options (extra index URLs, find-links, trusted hosts)
add to what the configuration gives. Docs: README.md.
"""

INSTALL_DESCRIPTION = """\
Install wheels, verified before anything is written: every file's sha256 is checked
against the index and your pins, each wheel's RECORD is checked, and the whole install
is one transaction (on any failure the environment is put back exactly as it was).

A fully pinned input (every requirement name==version with --hash) is installed with
no resolver; anything else is resolved by pip's resolver (pip install --dry-run
--report), wheels only. TLS is verified against the operating system's trust store.
"""


class _Output:
    """Where human-readable messages go (stderr when the report takes stdout)."""

    def __init__(self, verbosity: int, stream: TextIO) -> None:
        self.verbosity = verbosity
        self.stream = stream

    def info(self, message: str) -> None:
        if self.verbosity >= 0:
            print(message, file=self.stream)

    def debug(self, message: str) -> None:
        if self.verbosity >= 1:
            print(message, file=self.stream)

    def warn(self, message: str) -> None:
        if self.verbosity >= -1:
            print(f"warning: {message}", file=sys.stderr)


def _add_install_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("requirements_args", nargs="*", metavar="REQ",
                   help="requirement specifiers, e.g. 'rich==14.0.0' or 'name @ URL'")
    g = p.add_argument_group("what to install")
    g.add_argument("-r", "--requirement", action="append", default=[], metavar="FILE",
                   help="install from a requirements file (pip's format; --hash supported)")
    g.add_argument("-c", "--constraint", action="append", default=[], metavar="FILE",
                   help="constrain versions with a constraints file")
    g.add_argument("--no-deps", action="store_true", default=None,
                   help="don't install dependencies (with a pinned input: don't check them)")
    g.add_argument("-U", "--upgrade", action="store_true", default=None,
                   help="upgrade requested packages to the newest available version")
    g.add_argument("--force-reinstall", action="store_true", default=None,
                   help="reinstall even when the same version is installed")
    g.add_argument("--pre", action="store_true", default=None,
                   help="include pre-release and development versions")
    g = p.add_argument_group("where from")
    g.add_argument("-i", "--index-url", metavar="URL",
                   help="base URL of the package index (default https://pypi.org/simple/)")
    g.add_argument("--extra-index-url", action="append", default=[], metavar="URL",
                   help="another index to look in (beware of dependency confusion)")
    g.add_argument("--no-index", action="store_true", default=None,
                   help="use no index, only --find-links locations")
    g.add_argument("-f", "--find-links", action="append", default=[], metavar="PATH_OR_URL",
                   help="a directory or HTML page of distribution files")
    g.add_argument("--trusted-host", action="append", default=[], metavar="HOST",
                   help="allow plain http:// for HOST (weakens security; reported)")
    g.add_argument("--cert", action="append", default=[], metavar="PATH",
                   help="also trust the CAs in this PEM bundle (added to the OS trust store)")
    g.add_argument("--proxy", metavar="URL", help="HTTPS proxy URL")
    g.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="socket timeout (default 15)")
    g.add_argument("--retries", type=int, metavar="N",
                   help="retries for transient network errors (default 5)")
    g = p.add_argument_group("verification")
    g.add_argument("--require-hashes", action="store_true", default=None,
                   help="require a pinned --hash for every distribution (on as soon as any "
                        "requirement pins a hash, as in pip)")
    g.add_argument("--attestations", choices=("require", "auto", "off"),
                   help="PEP 740 attestations: 'auto' (default) verifies every file that has "
                        "provenance and warns for the rest; 'require' refuses files without; "
                        "'off' doesn't check (weakens security; reported)")
    g.add_argument("--publisher", action="append", default=[], metavar="PROJECT=KIND:ID",
                   help="pin a project's trusted publisher, e.g. "
                        "sigstore=github:sigstore/sigstore-python (KIND: github, gitlab, "
                        "google, email; options ',workflow=F' ',environment=E')")
    g.add_argument("--accept-publisher-change", action="append", default=[],
                   metavar="PROJECT",
                   help="accept that PROJECT's publisher differs from the one trusted "
                        "before (trust on first use), and trust the new one")
    g.add_argument("--sigstore-instance", choices=("production", "staging"),
                   help="Sigstore trust root to verify against (default production)")
    g.add_argument("--provenance-dir", metavar="DIR",
                   help="look for <filename>.provenance files here first (air-gapped use)")
    g = p.add_argument_group("where to")
    g.add_argument("--python", metavar="PATH",
                   help="install into this interpreter's environment (a python executable "
                        "or a virtual environment directory)")
    g.add_argument("-t", "--target", metavar="DIR", help="install into DIR")
    g.add_argument("--prefix", metavar="DIR", help="install under this prefix")
    g.add_argument("--no-compile", action="store_true", default=None,
                   help="don't compile bytecode")
    g = p.add_argument_group("run")
    g.add_argument("--dry-run", action="store_true", default=None,
                   help="resolve, download and verify, but install nothing")
    g.add_argument("--report", metavar="FILE",
                   help="write pip's installation report (JSON) extended with what was "
                        "verified; '-' for stdout")
    g.add_argument("--cache-dir", metavar="DIR", help="cache directory")
    g.add_argument("--no-cache-dir", action="store_true", default=None,
                   help="use a temporary cache for this run only")
    g.add_argument("-j", "--jobs", type=int, default=8, metavar="N",
                   help="parallel downloads (default 8)")
    g.add_argument("--isolated", action="store_true",
                   help="ignore pip's configuration files and PIP_* environment variables")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="secinstall",
        description="A security-first installer for Python packages.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"secinstall {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0,
                        help="more output (repeatable)")
    common.add_argument("-q", "--quiet", action="count", default=0,
                        help="less output (repeatable)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("install", parents=[common], help="install verified wheels",
                       description=INSTALL_DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_install_options(p)
    p.set_defaults(func=_cmd_install)

    p = sub.add_parser(
        "verify", parents=[common], help="verify local distribution files' attestations",
        description="Verify local wheels and sdists against their PEP 740 provenance (or a "
                    "bare attestation) and a publisher policy, without installing anything. "
                    "Exit code 0 only when every file verified: usable as a CI gate. "
                    "Verification is offline, against the Sigstore trust root embedded in "
                    "the sigstore package.")
    p.add_argument("files", nargs="+", metavar="FILE", help="wheel or sdist files")
    p.add_argument("--provenance", metavar="FILE",
                   help="provenance object or bare attestation for the (single) FILE "
                        "(default: FILE.provenance next to each file)")
    p.add_argument("--publisher", action="append", default=[], metavar="KIND:ID",
                   help="require this publisher (repeatable: any one may match); needed "
                        "for a bare attestation, which names no publisher")
    p.add_argument("--sigstore-instance", choices=("production", "staging"),
                   default="production", help="Sigstore trust root (default production)")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser(
        "sbom", parents=[common], help="write an SBOM of an environment",
        description="Write one SBOM for a whole environment: the fragments secinstall wrote "
                    "at each install (with hashes and verification evidence), merged with "
                    "every other installed distribution (marked unverified) and the SBOMs "
                    "that packages ship under PEP 770.")
    _add_target_options(p)
    p.add_argument("--format", choices=("cyclonedx-json", "spdx-json"),
                   default="cyclonedx-json", help="output format (default cyclonedx-json)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    p.set_defaults(func=_cmd_sbom)

    p = sub.add_parser(
        "recover", parents=[common], help="finish or roll back an interrupted install",
        description="Finish or roll back a transaction that a killed secinstall process "
                    "left in the environment (every install does this first, too).")
    _add_target_options(p)
    p.set_defaults(func=_cmd_recover)
    return parser


def _add_target_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--python", metavar="PATH",
                   help="the environment of this interpreter (or virtual environment "
                        "directory); default: the one running secinstall")
    p.add_argument("-t", "--target", metavar="DIR", help="a --target directory")
    p.add_argument("--prefix", metavar="DIR", help="a --prefix directory")


def _cmd_sbom(args: argparse.Namespace, out: _Output) -> int:
    from .sbom import environment_sbom
    from .target import resolve_target

    target = resolve_target(args.python, target_dir=args.target, prefix=args.prefix)
    text = environment_sbom(target, fmt=args.format)
    if args.output and args.output != "-":
        Path(args.output).write_text(text, encoding="utf-8")
        out.info(f"wrote {args.format} SBOM of {target.root} to {args.output}")
    else:
        print(text)
    return 0


def _cmd_recover(args: argparse.Namespace, out: _Output) -> int:
    from .target import resolve_target
    from .transaction import environment_lock, recover

    target = resolve_target(args.python, target_dir=args.target, prefix=args.prefix)
    with environment_lock(target.state_dir):
        done = recover(target.state_dir)
    for line in done:
        out.info(line)
    if not done:
        out.info(f"nothing to recover in {target.root}")
    return 0


def _cmd_verify(args: argparse.Namespace, out: _Output) -> int:
    import hashlib

    from .errors import ConfigError
    from .verify.attestations import load_provenance, parse_publisher, verify_file

    if args.provenance and len(args.files) > 1:
        raise ConfigError("--provenance names the provenance of one file; give one FILE, "
                          "or put each file's provenance next to it as FILE.provenance")
    pins = [parse_publisher(p) for p in args.publisher]
    failures = 0
    for name in args.files:
        path = Path(name)
        prov_path = Path(args.provenance) if args.provenance else Path(f"{name}.provenance")
        try:
            digest = hashlib.sha256()
            with path.open("rb") as f:
                while chunk := f.read(1024 * 1024):
                    digest.update(chunk)
            try:
                data = prov_path.read_bytes()
            except FileNotFoundError:
                raise SecinstallError(f"{path.name}: no provenance at {prov_path} "
                                      "(give one with --provenance)") from None
            loaded = load_provenance(data, source=str(prov_path))
            evidence = verify_file(path.name, digest.hexdigest(), loaded,
                                   instance=args.sigstore_instance, publishers=pins)
        except OSError as exc:
            failures += 1
            print(f"FAILED {name}: can't read it: {exc.strerror or exc}", file=sys.stderr)
            continue
        except SecinstallError as exc:
            failures += 1
            print(f"FAILED {name}: {exc.message}", file=sys.stderr)
            for line in exc.details if out.verbosity >= 1 else ():
                print(f"    {line}", file=sys.stderr)
            continue
        out.info(f"OK {name}: sha256:{evidence.sha256}, published by "
                 f"{evidence.publisher or evidence.identity} (Rekor log index "
                 f"{evidence.rekor_log_index}, {evidence.instance})")
        out.debug(f"    certificate identity {evidence.identity}, issuer {evidence.issuer}")
    if failures:
        out.info(f"{failures} of {len(args.files)} file(s) failed verification")
        return 1
    return 0


def _setting(settings: dict[str, Any], key: str, cli: Any, default: Any = None) -> Any:
    if cli not in (None, [], ()):
        if isinstance(cli, list):
            return [*(_as_list(settings[key].value) if key in settings else []), *cli]
        return cli
    if key in settings:
        return settings[key].value
    return default


def _as_list(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return str(value).split()


def _install_options(args: argparse.Namespace) -> tuple[Any, Any, list[str]]:
    """(InstallOptions, Target, weakened) from the arguments merged with pip's config."""
    from .config import load_pip_settings
    from .models import InstallOptions, Sources
    from .requirements import parse_files
    from .target import resolve_target

    settings = load_pip_settings(os.environ, isolated=args.isolated)

    def s(key: str, cli: Any, default: Any = None) -> Any:
        return _setting(settings, key, cli, default)

    target = resolve_target(s("python", args.python), target_dir=s("target", args.target),
                            prefix=s("prefix", args.prefix))
    if target.kind == "environment":
        # pip's "site" configuration file lives in the target environment.
        settings = load_pip_settings(os.environ, isolated=args.isolated,
                                     site_prefix=target.root)
    reqs = parse_files(_as_list(s("requirement", args.requirement, [])),
                       _as_list(s("constraint", args.constraint, [])),
                       args=args.requirements_args)
    if not reqs.requirements:
        from .errors import RequirementsError

        raise RequirementsError("nothing to install: give requirements or -r FILE")
    default_index = Sources().index_url
    index_url = args.index_url or reqs.index_url or s("index-url", None, default_index)
    sources = Sources(
        index_url=str(index_url),
        extra_index_urls=tuple(dict.fromkeys(
            [*_as_list(s("extra-index-url", args.extra_index_url, [])),
             *reqs.extra_index_urls])),
        find_links=tuple(dict.fromkeys(
            [*_as_list(s("find-links", args.find_links, [])), *reqs.find_links])),
        no_index=bool(s("no-index", args.no_index, False) or reqs.no_index),
        trusted_hosts=tuple(dict.fromkeys(
            [*_as_list(s("trusted-host", args.trusted_host, [])), *reqs.trusted_hosts])),
        certs=tuple(_as_list(s("cert", args.cert, []))),
        timeout=float(s("timeout", args.timeout, 15.0)),
        retries=int(s("retries", args.retries, 5)),
        proxy=s("proxy", args.proxy),
    )
    cache_dir = s("cache-dir", args.cache_dir)
    options = InstallOptions(
        requirements=reqs.requirements,
        constraints=reqs.constraints,
        sources=sources,
        require_hashes=bool(s("require-hashes", args.require_hashes, False)
                            or reqs.require_hashes),
        no_deps=bool(s("no-deps", args.no_deps, False)),
        upgrade=bool(s("upgrade", args.upgrade, False)),
        force_reinstall=bool(s("force-reinstall", args.force_reinstall, False)),
        pre=bool(s("pre", args.pre, False) or reqs.pre),
        dry_run=bool(s("dry-run", args.dry_run, False)),
        compile_bytecode=not s("no-compile", args.no_compile, False),
        cache_dir=Path(cache_dir).expanduser() if cache_dir else None,
        no_cache=bool(s("no-cache-dir", args.no_cache_dir, False)),
        jobs=max(1, args.jobs),
    )
    weakened = [f"plain http:// allowed for {h} (--trusted-host)" for h in sources.trusted_hosts]
    policy = attestation_policy(args)
    if policy.mode == "off":
        weakened.append("attestations not checked (--attestations off)")
    options = dataclasses.replace(options, attestations=policy)
    return options, target, weakened


def attestation_policy(args: argparse.Namespace) -> Any:
    """The attestation policy from the command line and the project's config file."""
    from packaging.utils import canonicalize_name

    from .config import load_project_settings
    from .errors import ConfigError
    from .models import AttestationPolicy, Publisher
    from .verify.attestations import parse_publisher

    project = load_project_settings(Path.cwd())
    origins: dict[str, str] = {}

    def pick(key: str, cli: Any, default: Any) -> Any:
        if cli is not None:
            origins[key] = "command line"
            return cli
        if key in project:
            origins[key] = project[key].origin
            return project[key].value
        origins[key] = "default"
        return default

    pins: dict[Any, tuple[Publisher, ...]] = {}
    configured = project.get("publishers")
    specs: list[tuple[str, str, str]] = []
    if configured is not None and isinstance(configured.value, dict):
        specs += [(str(name), str(spec), configured.origin)
                  for name, spec in configured.value.items()]
    for item in args.publisher:
        name, eq, spec = item.partition("=")
        if not eq or not name.strip():
            raise ConfigError(f"--publisher {item!r}: expected PROJECT=KIND:ID, e.g. "
                              "sigstore=github:sigstore/sigstore-python")
        specs.append((name, spec, "command line"))
    for name, spec, origin in specs:
        key = canonicalize_name(name.strip())
        try:
            pub = parse_publisher(spec)
        except ConfigError as exc:
            raise ConfigError(f"{exc.message} (publisher of {name}, from {origin})") from exc
        # A pin on the command line replaces the config file's pins for that project.
        if origin == "command line" and origins.get(f"publisher:{key}") != "command line":
            pins[key] = ()
        pins[key] = (*pins.get(key, ()), pub)
        origins[f"publisher:{key}"] = origin
    provenance_dir = pick("provenance-dir", args.provenance_dir, None)
    return AttestationPolicy(
        mode=pick("attestations", args.attestations, "auto"),
        instance=pick("sigstore-instance", args.sigstore_instance, "production"),
        pins=pins,
        accept_change=frozenset(canonicalize_name(n) for n in args.accept_publisher_change),
        provenance_dir=Path(provenance_dir) if provenance_dir else None,
        origins=origins,
    )


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"  # pragma: no cover


def _attestation_summary(verified: Sequence[Any], out: _Output) -> None:
    attested = [v for v in verified if v.attestation is not None]
    if attested:
        out.info(f"Attestations verified for {len(attested)} file(s):")
        for v in attested:
            a = v.attestation
            out.info(f"  {a.filename}: published by {a.publisher or a.identity} "
                     f"(Rekor log index {a.rekor_log_index}, {a.instance})")
            out.debug(f"    certificate identity {a.identity}, issuer {a.issuer}, "
                      f"trust root {a.trust_root}")
    missing = [v for v in verified if v.attestation is None and v.attestation_note]
    if missing and missing[0].attestation_note != "attestations not checked (--attestations off)":
        out.warn(f"{len(missing)} file(s) have no PEP 740 provenance, so their publisher is "
                 "unverified: " + ", ".join(v.fetched.path.name for v in missing)
                 + " (--attestations require refuses such files)")


def _cmd_install(args: argparse.Namespace, out: _Output) -> int:
    from .pipeline import run_install
    from .progress import make_progress
    from .report import build_report

    options, target, weakened = _install_options(args)
    for w in weakened:
        out.warn(f"verification weakened: {w}")
    out.debug(f"target: {target.python} ({target.kind}, Python {target.python_version}) "
              f"at {target.root}")
    outcome = run_install(options, target, log=out.debug,
                          progress=make_progress(out.verbosity >= 0))
    for note in outcome.notes:
        out.warn(note)
    for have in outcome.unchanged:
        out.info(f"Already installed: {have.name} {have.version}")
    if outcome.verified:
        downloaded = sum(v.fetched.size for v in outcome.verified if not v.fetched.from_cache)
        cached = sum(1 for v in outcome.verified if v.fetched.from_cache)
        checked = sorted({s for v in outcome.verified for s in v.hash_sources})
        out.info(f"Verified {len(outcome.verified)} wheel(s): sha256 checked against "
                 f"{' and '.join(checked) or 'nothing known (no index hash, no pin)'}; "
                 f"RECORD checked ({_size(downloaded)} downloaded, {cached} from cache)")
        for v in outcome.verified:
            out.debug(f"  {v.fetched.path.name}  sha256:{v.fetched.sha256}  "
                      f"[{', '.join(v.hash_sources) or 'unpinned'}]")
        _attestation_summary(outcome.verified, out)
    names = ", ".join(f"{v.dist.name} {v.dist.version}" for v in outcome.verified)
    if outcome.result is None:
        out.info(f"Would install: {names}" if names else "Nothing to install")
    elif names:
        removed = ", ".join(f"{d.name} {d.version}" for d in outcome.result.removed)
        out.info(f"Installed: {names}" + (f" (replaced {removed})" if removed else ""))
        if outcome.sbom is not None:
            out.debug(f"SBOM fragment: {outcome.sbom}")
    if args.report:
        report = json.dumps(build_report(outcome, weakened=weakened), indent=2)
        if args.report == "-":
            print(report)
        else:
            Path(args.report).write_text(report + "\n", encoding="utf-8")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbosity = args.verbose - args.quiet
    stream = sys.stderr if getattr(args, "report", None) == "-" else sys.stdout
    out = _Output(verbosity, stream)
    try:
        code: int = args.func(args, out)
        return code
    except SecinstallError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.details and (verbosity >= 1 or isinstance(exc, HashesRequiredError)):
            for line in exc.details:
                print(f"    {line}", file=sys.stderr)
        elif exc.details:
            print("    (run with -v for details)", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted; every change was rolled back", file=sys.stderr)
        return 130
