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
from .errors import HashesRequiredError, PolicyError, SecinstallError

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


#: Top-level modules of the dependencies imported lazily (absent in a core-only install).
OPTIONAL_MODULES = frozenset({"sigstore", "pypi_attestations", "pydantic", "cryptography",
                              "cyclonedx", "packageurl", "license_expression", "rich",
                              "sigstore_models", "rfc8785", "pip"})


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
    g.add_argument("--extra", action="append", default=[], metavar="NAME",
                   help="with -r pylock.toml: select this extra from the lock (repeatable)")
    g.add_argument("--group", action="append", default=[], metavar="NAME",
                   help="with -r pylock.toml: select this dependency group instead of the "
                        "lock's default groups (repeatable)")
    g.add_argument("--require-lock", metavar="PYLOCK",
                   help="refuse to install anything this pylock.toml doesn't pin (same "
                        "version, and a hash the lock lists)")
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
    g = p.add_argument_group("usage policy")
    _add_policy_options(g)
    g.add_argument("--uploaded-prior-to", metavar="DATETIME",
                   help="only files uploaded before this ISO 8601 date or datetime, or "
                        "P<n>D for n days ago (pip's option; policy key uploaded-prior-to)")
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


def _add_policy_options(g: Any) -> None:
    g.add_argument("--policy", metavar="FILE", type=Path,
                   help="read the usage policy from FILE ([policy] table), over the user's "
                        "and the project's")
    g.add_argument("--policy-set", action="append", default=[], metavar="KEY=VALUE",
                   help="set one policy key for this run; KEY+=VALUE adds to a list, "
                        "e.g. cooldown-exempt+=mylib")


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

    p = sub.add_parser("policy", parents=[common], help="show the effective usage policy")
    p.add_argument("action", choices=("show",))
    _add_policy_options(p)
    p.set_defaults(func=_cmd_policy)

    p = sub.add_parser("audit", parents=[common],
                       help="report known vulnerabilities of an installed environment")
    _add_target_options(p)
    _add_policy_options(p)
    p.add_argument("--cert", action="append", default=[], metavar="PATH",
                   help="also trust the CAs in this PEM bundle")
    p.set_defaults(func=_cmd_audit)

    p = sub.add_parser(
        "lock", parents=[common], help="resolve, verify and write a lock file",
        description="Resolve the requirements exactly as install would, download and "
                    "verify every file (hashes, attestations, wheel checks), and write a "
                    "pylock.toml (PEP 751) with each wheel's URL, size, upload time and "
                    "hashes and each package's verified publisher (attestation-identities), "
                    "or a hashed requirements file. Nothing is installed.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_install_options(p)
    p.add_argument("-o", "--output", metavar="FILE",
                   help="where to write (default: pylock.toml, or stdout for "
                        "--format requirements)")
    p.add_argument("--format", choices=("pylock", "requirements"), default="pylock",
                   help="pylock (PEP 751, default) or a hashed requirements file")
    p.set_defaults(func=_cmd_lock)

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

    p = sub.add_parser(
        "serve", parents=[common], help="serve a local index of verified wheels",
        description="A local package index (PEP 503/691) in front of the upstream index: "
                    "it lists the upstream's wheels, and serves a file only after it passed "
                    "the checks of `install` (sha256 against the index, PEP 740 attestations "
                    "and publisher policy, the archive); a refused file is answered with "
                    "HTTP 403 and the reason, which pip shows. Source distributions are not "
                    "listed. Plain http, on a loopback address only. Point pip at it with "
                    "`secinstall hook enable` or --index-url http://127.0.0.1:PORT/simple/.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_serve_options(p)
    p.add_argument("--python", metavar="PATH",
                   help="check (and record) trusted publishers in this environment's "
                        ".secinstall/publishers.json (trust on first use); default: pins only")
    p.add_argument("--host", default="127.0.0.1",
                   help="loopback address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, metavar="N",
                   help="port to listen on (default 8740, the one `hook enable` uses; 0: any)")
    p.add_argument("--unsafe-listen-on-network", action="store_true",
                   help="allow a --host that is not a loopback address: clients then fetch "
                        "over plain http across the network, where answers can be changed")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser(
        "hook", parents=[common], help="point pip's configuration at `secinstall serve`",
        description="enable: set index-url = http://127.0.0.1:PORT/simple/ in one of pip's "
                    "configuration files (other index settings are commented out, or "
                    "overridden when another file sets them), after saving the file; pip "
                    "then installs only through `secinstall serve`, which must be running. "
                    "disable: put the saved file back byte for byte (or remove the file "
                    "when there was none).")
    p.add_argument("action", choices=("enable", "disable"))
    scope = p.add_mutually_exclusive_group()
    for kind, text in (("user", "the user's file (default)"),
                       ("site", "the environment's file (of --python, default this one)"),
                       ("global", "the machine's file")):
        scope.add_argument(f"--{kind}", dest="scope", action="store_const", const=kind,
                           help=f"pip's {kind} configuration: {text}")
    p.add_argument("--port", type=int, metavar="N",
                   help="port of `secinstall serve` (default 8740)")
    p.add_argument("--python", metavar="PATH", help="with --site: the environment")
    p.set_defaults(func=_cmd_hook, scope="user")

    p = sub.add_parser(
        "run", parents=[common], help="run a command (pip, uv, build) behind the verifying index",
        description="Run one command with a verifying index (as `secinstall serve`) on a free "
                    "loopback port as its only package source (PIP_INDEX_URL, "
                    "UV_DEFAULT_INDEX; pip's and uv's configuration files are not read, so "
                    "they can't add another). Afterwards, what the command installed into "
                    "the environment is compared with what was verified, and recorded (SBOM "
                    "fragment, trusted publishers). Exits with the command's exit code.",
        epilog="example: secinstall run -- pip install rich",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_serve_options(p)
    p.add_argument("--python", metavar="PATH",
                   help="the environment the command installs into (default: $VIRTUAL_ENV, "
                        "else the one running secinstall)")
    p.add_argument("--report", metavar="FILE",
                   help="write what was installed and verified as JSON; '-' for stdout")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...",
                   help="the command and its arguments")
    p.set_defaults(func=_cmd_run)
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
        from .lockfiles.requirements import write_atomic

        write_atomic(Path(args.output), text + "\n")
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


def _cmd_lock(args: argparse.Namespace, out: _Output) -> int:
    from .lockfiles.pylock import pylock_text
    from .lockfiles.requirements import requirements_text
    from .pipeline import run_install

    options, target, weakened = _install_options(args)
    # Every file is verified, also those already installed in the target.
    options = dataclasses.replace(options, dry_run=True, force_reinstall=True)
    for w in weakened:
        out.warn(f"verification weakened: {w}")
    outcome = run_install(options, target, log=out.debug)
    _attestation_summary(outcome.verified, out)
    output = args.output or ("pylock.toml" if args.format == "pylock" else "-")
    if args.format == "pylock":
        text = pylock_text(outcome, indexes=options.sources.index_urls)
    else:
        text = requirements_text(outcome, filename=output)
    if output == "-":
        print(text, end="")
    else:
        from .lockfiles.requirements import write_atomic

        write_atomic(Path(output), text)
        out.info(f"Locked {len(outcome.verified)} distribution(s), each verified, in {output}")
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
    from .errors import RequirementsError
    from .hook import unhooked_settings
    from .lockfiles.pylock import is_lock_path
    from .models import InstallOptions, Sources
    from .requirements import parse_files
    from .target import resolve_target

    # With `secinstall hook enable`, pip's index is our own verifying index: secinstall
    # itself goes to what pip used before.
    settings = unhooked_settings(load_pip_settings(os.environ, isolated=args.isolated),
                                 os.environ)

    def s(key: str, cli: Any, default: Any = None) -> Any:
        return _setting(settings, key, cli, default)

    target = resolve_target(s("python", args.python), target_dir=s("target", args.target),
                            prefix=s("prefix", args.prefix))
    if target.kind == "environment":
        # pip's "site" configuration file lives in the target environment.
        settings = unhooked_settings(
            load_pip_settings(os.environ, isolated=args.isolated, site_prefix=target.root),
            os.environ, site_prefix=target.root)

    req_files = _as_list(s("requirement", args.requirement, []))
    locks = [f for f in req_files if is_lock_path(f)]
    if locks and (len(locks) > 1 or len(req_files) > 1 or args.requirements_args):
        raise RequirementsError(
            "a lock file is installed as a whole: give one pylock.toml and no other "
            "requirements (use --require-lock FILE to check other requirements against it)")
    reqs = parse_files([] if locks else req_files,
                       _as_list(s("constraint", args.constraint, [])),
                       args=args.requirements_args)
    if not reqs.requirements and not locks:
        raise RequirementsError("nothing to install: give requirements, -r FILE or "
                                "-r pylock.toml")
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
        lock_file=Path(locks[0]) if locks else None,
        extras=tuple(args.extra),
        groups=tuple(args.group) if args.group else None,
        require_lock=Path(args.require_lock) if args.require_lock else None,
    )
    from .policy import attestation_policy as with_policy

    usage = _usage_policy(args)
    options = dataclasses.replace(options, usage_policy=usage,
                                  attestations=with_policy(usage, attestation_policy(args)))
    return options, target, options.weakenings


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


def _usage_policy(args: argparse.Namespace) -> Any:
    from .policy import load_policy

    settings = list(args.policy_set)
    if getattr(args, "uploaded_prior_to", None):
        settings.append(f"uploaded-prior-to={args.uploaded_prior_to}")
    return load_policy(Path.cwd(), os.environ, args.policy, settings)


def _cmd_policy(args: argparse.Namespace, out: _Output) -> int:
    from .policy import describe

    for line in describe(_usage_policy(args)):
        print(line)
    return 0


def _cmd_audit(args: argparse.Namespace, out: _Output) -> int:
    from . import tls
    from .client import Client
    from .install import find_installed
    from .target import resolve_target
    from .vulnerabilities import audit

    policy = _usage_policy(args)
    target = resolve_target(args.python, target_dir=args.target, prefix=args.prefix)
    with Client(ssl_context=tls.create_context(args.cert)) as client:
        findings = audit(find_installed(target), client=client, osv_dir=policy.osv_dir,
                         api_indexes=policy.vulnerability_indexes,
                         ignore=policy.vulnerabilities_ignore)
    for f in findings:
        out.info(f"{f.name} {f.version}: {f.advisory.describe()}"
                 + (f" {f.advisory.link}" if f.advisory.link else ""))
    out.info(f"{len(findings)} known vulnerabilit{'y' if len(findings) == 1 else 'ies'} found")
    return 1 if findings else 0


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
        if exc.details and (verbosity >= 1
                            or isinstance(exc, (HashesRequiredError, PolicyError))):
            for line in exc.details:
                print(f"    {line}", file=sys.stderr)
        elif exc.details:
            print("    (run with -v for details)", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted; every change was rolled back", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:
        # The heavy dependencies are imported lazily; a core-only install (the bootstrap)
        # lacks them. Anything else missing is a bug worth its traceback.
        if exc.name is None or exc.name.split(".")[0] not in OPTIONAL_MODULES:
            raise
        print(f"error: this needs the Python package {exc.name!r}, which is not installed; "
              "install secinstall with its dependencies (python -m pip install secinstall)",
              file=sys.stderr)
        return 1


# --- serve, hook, run: the verifying index -------------------------------------------------


def _add_serve_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("upstream (default: pip's configuration, as for install)")
    g.add_argument("-i", "--index-url", metavar="URL",
                   help="base URL of the upstream index (default https://pypi.org/simple/)")
    g.add_argument("--extra-index-url", action="append", default=[], metavar="URL",
                   help="another upstream index (beware of dependency confusion)")
    g.add_argument("--no-index", action="store_true", default=None,
                   help="use no index, only --find-links locations")
    g.add_argument("-f", "--find-links", action="append", default=[], metavar="PATH_OR_URL",
                   help="a directory or HTML page of distribution files")
    g.add_argument("--trusted-host", action="append", default=[], metavar="HOST",
                   help="allow plain http:// for HOST upstream (weakens security; reported)")
    g.add_argument("--cert", action="append", default=[], metavar="PATH",
                   help="also trust the CAs in this PEM bundle (added to the OS trust store)")
    g.add_argument("--proxy", metavar="URL", help="HTTPS proxy URL")
    g.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="socket timeout (default 15)")
    g.add_argument("--retries", type=int, metavar="N",
                   help="retries for transient network errors (default 5)")
    g = p.add_argument_group("verification (as for install)")
    g.add_argument("--attestations", choices=("require", "auto", "off"),
                   help="PEP 740 attestations: 'auto' (default), 'require' or 'off' (weakens "
                        "security; reported)")
    g.add_argument("--publisher", action="append", default=[], metavar="PROJECT=KIND:ID",
                   help="pin a project's trusted publisher, e.g. "
                        "sigstore=github:sigstore/sigstore-python")
    g.add_argument("--accept-publisher-change", action="append", default=[],
                   metavar="PROJECT", help="accept that PROJECT's publisher changed")
    g.add_argument("--sigstore-instance", choices=("production", "staging"),
                   help="Sigstore trust root to verify against (default production)")
    g.add_argument("--provenance-dir", metavar="DIR",
                   help="look for <filename>.provenance files here first")
    g = p.add_argument_group("run")
    g.add_argument("--cache-dir", metavar="DIR", help="cache directory")
    g.add_argument("--no-cache-dir", action="store_true", default=None,
                   help="use a temporary cache")
    g.add_argument("--isolated", action="store_true",
                   help="ignore pip's configuration files and PIP_* environment variables")


def _serve_settings(args: argparse.Namespace) -> tuple[Any, list[str]]:
    """(ServeSettings, weakened) from the arguments merged with pip's configuration, in
    which the hook's own index URL stands for the index pip used before the hook."""
    from .config import load_pip_settings
    from .hook import unhooked_settings
    from .models import InstallOptions, Sources
    from .serve import ServeSettings

    settings = unhooked_settings(load_pip_settings(os.environ, isolated=args.isolated),
                                 os.environ)

    def s(key: str, cli: Any, default: Any = None) -> Any:
        return _setting(settings, key, cli, default)

    sources = Sources(
        index_url=str(args.index_url or s("index-url", None, Sources().index_url)),
        extra_index_urls=tuple(dict.fromkeys(_as_list(s("extra-index-url",
                                                        args.extra_index_url, [])))),
        find_links=tuple(dict.fromkeys(_as_list(s("find-links", args.find_links, [])))),
        no_index=bool(s("no-index", args.no_index, False)),
        trusted_hosts=tuple(dict.fromkeys(_as_list(s("trusted-host", args.trusted_host, [])))),
        certs=tuple(_as_list(s("cert", args.cert, []))),
        timeout=float(s("timeout", args.timeout, 15.0)),
        retries=int(s("retries", args.retries, 5)),
        proxy=s("proxy", args.proxy),
    )
    policy = attestation_policy(args)
    # The same options weaken verification the same way as for install.
    weakened = InstallOptions(requirements=(), sources=sources, attestations=policy).weakenings
    cache_dir = s("cache-dir", args.cache_dir)
    return ServeSettings(
        sources=sources, policy=policy,
        cache_dir=Path(cache_dir).expanduser() if cache_dir else None,
        no_cache=bool(s("no-cache-dir", args.no_cache_dir, False)),
    ), weakened


def _redacted(url: str) -> str:
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@")[-1]))


def _cmd_serve(args: argparse.Namespace, out: _Output) -> int:
    from .serve import DEFAULT_PORT, IndexServer
    from .target import resolve_target

    settings, weakened = _serve_settings(args)
    if args.python:
        settings = dataclasses.replace(settings,
                                       trust_dir=resolve_target(args.python).state_dir)
    for w in weakened:
        out.warn(f"verification weakened: {w}")
    if args.unsafe_listen_on_network:
        out.warn(f"listening on {args.host}: clients reach this index over plain http, and "
                 "anyone on the network path can change what they receive")

    def log(message: str) -> None:
        out.info(message)
        out.stream.flush()

    server = IndexServer(settings, host=args.host,
                         port=DEFAULT_PORT if args.port is None else args.port, log=log,
                         allow_remote=args.unsafe_listen_on_network)
    try:
        server.start()
        upstream = settings.sources.index_urls or settings.sources.find_links
        log(f"Serving verified wheels at {server.url} from "
            f"{', '.join(map(_redacted, upstream))} (Ctrl-C stops)")
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    log(f"Stopped: {len(server.index.served)} file(s) served, "
        f"{len(server.index.refused)} refused")
    return 0


def _cmd_hook(args: argparse.Namespace, out: _Output) -> int:
    from . import hook
    from .serve import DEFAULT_PORT

    site_prefix = None
    if args.python:
        from .target import resolve_target

        site_prefix = resolve_target(args.python).root
    if args.action == "disable":
        result = hook.disable(args.scope, site_prefix=site_prefix)
        if result.restored:
            out.info(f"Restored pip's {args.scope} configuration {result.file} as it was "
                     "before `secinstall hook enable`")
        else:
            out.info(f"Removed {result.file} (there was no such file before "
                     "`secinstall hook enable`)")
        if result.kept_edited is not None:
            out.warn(f"{result.file} was edited while hooked; that version is kept as "
                     f"{result.kept_edited}")
        return 0
    port = DEFAULT_PORT if args.port is None else args.port
    result = hook.enable(args.scope, port, site_prefix=site_prefix)
    saved = (f"the previous file is saved as {result.backup}" if result.backup
             else "there was no such file before")
    out.info(f"pip's {args.scope} configuration {result.file} now points at the verifying "
             f"index {result.url} ({saved}).")
    out.info(f"pip now needs `secinstall serve --port {port}` running: without it, every pip "
             "install fails to connect. Undo with "
             f"`secinstall hook disable{'' if args.scope == 'user' else ' --' + args.scope}`.")
    out.debug(f"uv: UV_DEFAULT_INDEX={result.url} (or in uv.toml: [[index]] url = "
              f"\"{result.url}\", default = true); Poetry: poetry source add --priority "
              f"primary secinstall {result.url}")
    for w in result.warnings:
        out.warn(w)
    return 0


def _cmd_run(args: argparse.Namespace, out: _Output) -> int:
    from .run import record, run_command, summary
    from .target import resolve_target

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    settings, weakened = _serve_settings(args)
    target = resolve_target(args.python or os.environ.get("VIRTUAL_ENV") or None)
    settings = dataclasses.replace(settings, trust_dir=target.state_dir)
    for w in weakened:
        out.warn(f"verification weakened: {w}")

    def log(message: str) -> None:
        if out.verbosity >= 0:
            print(f"secinstall: {message}", file=sys.stderr, flush=True)

    out.debug(f"watching {target.root} for what the command installs")
    result = run_command(command, settings, target, log=log,
                         on_start=lambda url: log(f"verifying index at {url}"))
    try:
        record(result, indexes=settings.sources.index_urls, weakened=weakened)
    except SecinstallError as exc:
        out.warn(f"could not record what was installed: {exc.message}")
    for change in result.installed:
        if change.served is None:
            continue
        v = change.served.verified
        who = (f"published by {v.attestation.publisher or v.attestation.identity}"
               if v.attestation else (v.attestation_note or "no attestation"))
        out.info(f"Verified and installed: {change.dist.name} {change.dist.version} "
                 f"({v.fetched.dist.file.filename}, sha256 checked against "
                 f"{' and '.join(v.hash_sources) or 'nothing known'}; {who})")
    if result.unverified:
        out.warn("installed without passing through the verifying index (from the tool's "
                 "cache, a local file or a direct URL?): "
                 + ", ".join(f"{d.name} {d.version}" for d in result.unverified))
    if result.sbom is not None:
        out.debug(f"SBOM fragment: {result.sbom}")
    if args.report:
        text = json.dumps(summary(result), indent=2)
        if args.report == "-":
            print(text)
        else:
            Path(args.report).write_text(text + "\n", encoding="utf-8")
    return result.exit_code
