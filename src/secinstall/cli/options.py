"""Options shared by several commands, and their merging with pip's configuration, the
project's `[tool.secinstall]` and the usage policy (command line wins)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # kept out of start-up: `--version` and `--help` import this module
    from ..models import AttestationPolicy, InstallOptions, Sources
    from ..target import Target

#: pip's --upgrade-strategy values; the first is its default.
UPGRADE_STRATEGIES = ("only-if-needed", "eager")

EPILOG = """\
pip's configuration files and PIP_* environment variables are honoured for the options
secinstall shares with pip (index URLs, find-links, --cert, --trusted-host, ...);
command-line values win, and list options (extra index URLs, find-links, trusted hosts)
add to what the configuration gives. Docs: README.md.
"""


def add_source_options(p: argparse.ArgumentParser, title: str = "where from") -> None:
    g = p.add_argument_group(title)
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
    g.add_argument("--client-cert", metavar="PATH",
                   help="a PEM file with the client certificate and its private key, for an "
                        "index that asks for one (mutual TLS)")
    g.add_argument("--proxy", metavar="URL", help="HTTPS proxy URL")
    g.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="socket timeout (default 15); a body slower than 1 kB/s over "
                        "this long is retried as stalled")
    g.add_argument("--retries", type=int, metavar="N",
                   help="retries for transient network errors (default 5)")


def add_attestation_options(g: Any) -> None:
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


def add_cache_options(g: Any) -> None:
    g.add_argument("--cache-dir", metavar="DIR", help="cache directory")
    g.add_argument("--no-cache-dir", action="store_true", default=None,
                   help="use a temporary cache for this run only")
    g.add_argument("--isolated", action="store_true",
                   help="ignore pip's user configuration and PIP_* environment variables")


def add_policy_options(g: Any) -> None:
    g.add_argument("--policy", metavar="FILE", type=Path,
                   help="read the usage policy from FILE ([policy] table), over the user's "
                        "and the project's")
    g.add_argument("--policy-set", action="append", default=[], metavar="KEY=VALUE",
                   help="set one policy key for this run; KEY+=VALUE adds to a list, "
                        "e.g. cooldown-exempt+=mylib")


def add_target_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--python", metavar="PATH",
                   help="the environment of this interpreter (or virtual environment "
                        "directory); default: the one running secinstall")
    p.add_argument("-t", "--target", metavar="DIR", help="a --target directory")
    p.add_argument("--prefix", metavar="DIR", help="a --prefix directory")
    p.add_argument("--user", action="store_true",
                   help="the interpreter's user scheme (where `install --user` installs)")


def target_of(args: argparse.Namespace) -> Target:
    """The target that `add_target_options`' arguments name."""
    from ..target import resolve_target

    return resolve_target(args.python, target_dir=args.target, prefix=args.prefix,
                          user=args.user)


def add_install_options(p: argparse.ArgumentParser, *, installs: bool = True) -> None:
    """The options of `install` (and `lock`, which resolves and verifies the same way but,
    `installs` false, writes to no environment)."""
    p.add_argument("requirements_args", nargs="*", metavar="REQ",
                   help="requirement specifiers, e.g. 'rich==14.0.0', 'name @ URL' or a "
                        "wheel file")
    g = p.add_argument_group("what to install")
    g.add_argument("-r", "--requirement", action="append", default=[], metavar="FILE",
                   help="install from a requirements file (pip's format; --hash supported) "
                        "or a pylock.toml")
    g.add_argument("-c", "--constraint", action="append", default=[], metavar="FILE",
                   help="constrain versions with a constraints file")
    g.add_argument("--no-deps", action="store_true", default=None,
                   help="don't install dependencies (with a pinned input: don't check them)")
    g.add_argument("-U", "--upgrade", action="store_true", default=None,
                   help="upgrade requested packages to the newest available version")
    g.add_argument("--force-reinstall", action="store_true", default=None,
                   help="reinstall even when the same version is installed")
    g.add_argument("-I", "--ignore-installed", action="store_true", default=None,
                   help="plan as if nothing were installed, and reinstall everything the "
                        "plan names (the versions installed now are replaced, as with "
                        "--force-reinstall, not left beside the new ones as pip leaves them)")
    g.add_argument("--upgrade-strategy", choices=UPGRADE_STRATEGIES, default=None,
                   help="with -U, what pip's resolver upgrades: only-if-needed (the "
                        "default: dependencies only where the requirements need it) or eager "
                        "(every dependency as well)")
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
    add_source_options(p)
    g = p.add_argument_group("verification")
    g.add_argument("--require-hashes", action="store_true", default=None,
                   help="require a pinned --hash for every distribution (on as soon as any "
                        "requirement pins a hash, as in pip)")
    add_attestation_options(g)
    g = p.add_argument_group("usage policy")
    add_policy_options(g)
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
    g.add_argument("--compile", dest="no_compile", action="store_false",
                   help="compile bytecode (the default; over a configured no-compile)")
    g.add_argument("--no-warn-conflicts", action="store_true", default=False,
                   help="don't warn, after installing, about distributions of the "
                        "environment whose requirements the install left unmet (pip's "
                        "option)")
    g.add_argument("--no-warn-script-location", action="store_true", default=False,
                   help="don't warn about scripts installed in a directory that PATH "
                        "doesn't name (pip's option)")
    g.add_argument("--trust-cached-bytecode", action="store_true", default=None,
                   help="link the bytecode an earlier install compiled into secinstall's "
                        "cache instead of compiling it again from the verified sources: "
                        "faster, but it trusts whoever can write to the cache (a weakening, "
                        "reported)")
    g.add_argument("--link-mode", choices=("hardlink", "copy"), default=None,
                   help="how files get from secinstall's unpacked cache into the "
                        "environment: hard links (the default except on Windows, where a "
                        "read-only file can't be deleted; the cache's files are read-only, "
                        "and copied where links can't be made) or copies")
    if installs:
        g.add_argument("--user", action="store_true", default=None,
                       help="install into the user scheme of the interpreter (its user base, "
                            "e.g. ~/.local, or PYTHONUSERBASE), as pip does")
        g.add_argument("--no-user", dest="user", action="store_false",
                       help="don't (overrides PIP_USER or the configuration's user = true)")
        g.add_argument("--root", metavar="DIR",
                       help="install everything relative to this alternate root directory, "
                            "as pip does (a packager's build root): each file goes to its "
                            "final path under DIR; what is already installed is looked up "
                            "at the final paths, as in pip (hence --ignore-installed)")
        g.add_argument("--break-system-packages", action="store_true", default=None,
                       help="install even into an externally managed environment (PEP "
                            "668: a Python its distributor manages, e.g. the operating "
                            "system's), as pip does with this flag (a weakening, reported)")
    g = p.add_argument_group(
        "for another platform",
        "pip's options to install wheels for another platform or Python than the target "
        "interpreter's (e.g. --platform manylinux2014_aarch64 --python-version 3.12 for "
        "an AWS Lambda package): the wheels are chosen by pip's tags for them; markers "
        "are still evaluated for the interpreter, as pip does. Only with --target or "
        "--dry-run" + (", as in pip" if installs else " for install; lock takes them "
                       "always") + ".")
    g.add_argument("--platform", action="append", default=[], metavar="PLATFORM",
                   help="only wheels for this platform tag, e.g. manylinux2014_aarch64, "
                        "macosx_11_0_arm64, win_amd64 (repeatable; default: the "
                        "interpreter's)")
    g.add_argument("--abi", action="append", default=[], metavar="ABI",
                   help="only wheels for this ABI, e.g. cp312 (repeatable; default: the "
                        "interpreter's, for the --python-version given)")
    g.add_argument("--python-version", metavar="VERSION",
                   help="only wheels for this Python version: 3, 3.12, 312 or 3.12.1 "
                        "(Requires-Python is checked against it; no bytecode is compiled "
                        "when it differs from the interpreter's)")
    g.add_argument("--implementation", metavar="IMPL",
                   help="only wheels for this implementation: cp (CPython), pp (PyPy), "
                        "py (any)...")
    g = p.add_argument_group("run")
    g.add_argument("--dry-run", action="store_true", default=None,
                   help="resolve, download and verify, but install nothing")
    g.add_argument("--report", metavar="FILE",
                   help="write pip's installation report (JSON) extended with what was "
                        "verified; '-' for stdout")
    add_cache_options(g)
    g.add_argument("-j", "--jobs", type=int, default=8, metavar="N",
                   help="parallel downloads (default 8)")
    g.add_argument("--progress-bar", choices=("on", "off", "raw"), default=None,
                   help="off: no progress bar (there is one only on a terminal)")
    # pip's install options that scripts pass and that change nothing here: accepted, so
    # that `pip install` can become `secinstall install` without editing the rest. Those
    # on wheels and builds change nothing because secinstall takes wheels only, always;
    # --no-binary, which asks for a build, is refused (`wheels_only`).
    g.add_argument("--root-user-action", choices=("warn", "ignore"), help=argparse.SUPPRESS)
    for flag in ("--prefer-binary", "--no-build-isolation",
                 "--use-pep517", "--no-use-pep517", "--check-build-dependencies",
                 "--no-clean"):
        g.add_argument(flag, action="store_true", help=argparse.SUPPRESS)
    for flag in ("--only-binary", "--no-binary"):
        g.add_argument(flag, action="append", default=[], metavar="FORMATS",
                       help=argparse.SUPPRESS)
    g.add_argument("-e", "--editable", action="append", default=[], help=argparse.SUPPRESS)
    # ...and those on source checkouts and builds (VCS requirements, -e, sdists), never
    # made here.
    g.add_argument("--exists-action", action="append", choices=("s", "i", "w", "b", "a"),
                   help=argparse.SUPPRESS)
    g.add_argument("--src", metavar="DIR", help=argparse.SUPPRESS)
    g.add_argument("-C", "--config-settings", action="append", metavar="KEY=VALUE",
                   help=argparse.SUPPRESS)


def add_pip_global_options(p: argparse.ArgumentParser) -> None:
    """pip's global options that scripts pass: accepted, so that `pip install ...` can
    become `secinstall install ...` unchanged. Only --no-color does something (the
    progress bar's colours); secinstall never prompts and checks no version of itself
    online."""
    p.add_argument("--no-color", action="store_true", help="no colours in the progress bar")
    p.add_argument("--log", metavar="FILE",
                   help="append every message to FILE, -v's included, each with its time "
                        "(pip's --log)")
    p.add_argument("--require-virtualenv", action="store_true", default=None,
                   help="refuse to install into (or uninstall from) an interpreter that "
                        "is not in a virtual environment, as pip does (also "
                        "PIP_REQUIRE_VIRTUALENV)")
    for flag in ("--disable-pip-version-check", "--no-input", "--no-python-version-warning"):
        p.add_argument(flag, action="store_true", help=argparse.SUPPRESS)
    # pip's feature switches: none changes what secinstall does (`truststore` is always
    # on; the others are about pip's own resolver, certificates and builds). pip's
    # download resumption: secinstall retries a download whole.
    for flag in ("--use-feature", "--use-deprecated"):
        p.add_argument(flag, action="append", metavar="FEATURE", help=argparse.SUPPRESS)
    p.add_argument("--resume-retries", type=int, metavar="N", help=argparse.SUPPRESS)
    p.add_argument("--keyring-provider", choices=("auto", "disabled", "import", "subprocess"),
                   help=argparse.SUPPRESS)


# -- merging ---------------------------------------------------------------------------------


def as_list(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return str(value).split()


class Settings:
    """pip's settings (config files, PIP_* variables) under the command line's values."""

    def __init__(self, args: argparse.Namespace, site_prefix: Path | None = None) -> None:
        from ..config import load_pip_settings
        from ..hook import unhooked_settings

        # With `secinstall hook enable`, pip's index is our own verifying index: secinstall
        # itself goes to what pip used before.
        self.values = unhooked_settings(
            load_pip_settings(os.environ, isolated=args.isolated, site_prefix=site_prefix),
            os.environ, site_prefix=site_prefix)

    def __call__(self, key: str, cli: Any, default: Any = None) -> Any:
        """The command line's value, else pip's, else `default`; lists add up, as in pip."""
        if cli not in (None, [], ()):
            if isinstance(cli, list) and key in self.values:
                return [*as_list(self.values[key].value), *cli]
            return cli
        if key in self.values:
            return self.values[key].value
        return default


def sources_from(args: argparse.Namespace, s: Settings, reqs: Any = None) -> Sources:
    """The index options, from the command line, pip's settings and requirements files."""
    from ..models import Sources

    def merged(key: str, cli: list[str], more: tuple[str, ...] = ()) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*as_list(s(key, cli, [])), *more]))

    client_cert = s("client-cert", args.client_cert)
    if client_cert:
        import ssl

        from ..tls import load_client_cert

        # Checked now: pip's resolver, run first, would ask for a key's passphrase on the
        # terminal, or fail with its own words.
        load_client_cert(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), client_cert)
    return Sources(
        index_url=str(args.index_url or (reqs and reqs.index_url)
                      or s("index-url", None, Sources().index_url)),
        extra_index_urls=merged("extra-index-url", args.extra_index_url,
                                reqs.extra_index_urls if reqs else ()),
        find_links=merged("find-links", args.find_links, reqs.find_links if reqs else ()),
        no_index=bool(s("no-index", args.no_index, False) or (reqs and reqs.no_index)),
        trusted_hosts=merged("trusted-host", args.trusted_host,
                             reqs.trusted_hosts if reqs else ()),
        certs=tuple(as_list(s("cert", args.cert, []))),
        client_cert=client_cert,
        timeout=float(s("timeout", args.timeout, 15.0)),
        retries=int(s("retries", args.retries, 5)),
        proxy=s("proxy", args.proxy),
    )


def link_mode(value: Any) -> str:
    from ..errors import ConfigError

    if value not in ("hardlink", "copy"):
        raise ConfigError(f"link-mode must be 'hardlink' or 'copy', not {value!r}")
    return str(value)


def cache_dir_from(s: Settings, args: argparse.Namespace) -> Path | None:
    cache_dir = s("cache-dir", args.cache_dir)
    return Path(os.path.expanduser(cache_dir)) if cache_dir else None


def _is_lock(path: str) -> bool:
    if not os.path.basename(path).startswith("pylock."):
        return False  # without loading the lock-file module (and packaging.pylock)
    from ..lockfiles.pylock import is_lock_path

    return is_lock_path(path)


def install_options(args: argparse.Namespace, *,
                    installs: bool = True) -> tuple[InstallOptions, Target]:
    """`install`'s options and target, from the arguments merged with every configuration;
    `installs` (false for `lock`): refused, before any work, where PEP 668 forbids it."""
    from ..target import begin_target

    wheels_only(args.no_binary, args.editable)
    no_keyring(args.keyring_provider)
    s = Settings(args)
    pending = begin_target(s("python", args.python), target_dir=s("target", args.target),
                           prefix=s("prefix", args.prefix),
                           user=installs and bool(s("user", args.user, False)),
                           root=s("root", args.root) if installs else None)
    # Imported while the target interpreter starts up and answers (about as long).
    from .. import pipeline  # noqa: F401
    from ..errors import RequirementsError
    from ..models import InstallOptions
    from ..policy_checks import attestation_policy as with_usage_policy
    from ..requirements import parse_files

    target = pending()
    if target.pip_site_prefix is not None:
        s = Settings(args, site_prefix=target.pip_site_prefix)
    target = cross_platform(args, s, target, installs)
    if installs:
        require_virtualenv(s, args, target)  # first, as in pip
    report = s("report", args.report)
    overridden = externally_managed(args, s, target, report) if installs else None

    req_files = as_list(s("requirement", args.requirement, []))
    locks = [f for f in req_files if _is_lock(f)]
    if locks and target.cross is not None:
        raise RequirementsError(
            f"a lock file ({locks[0]}) is installed for the interpreter it is selected for: "
            "--platform, --python-version, --implementation and --abi don't apply to it, "
            "as in pip (lock for that platform instead: secinstall lock --platform ...)")
    if locks and (len(locks) > 1 or len(req_files) > 1 or args.requirements_args):
        raise RequirementsError(
            "a lock file is installed as a whole: give one pylock.toml and no other "
            "requirements (use --require-lock FILE to check other requirements against it)")
    if (args.extra or args.group) and not locks:
        from ..errors import ConfigError

        raise ConfigError("--extra and --group select from a lock file: give -r pylock.toml "
                          "(for requirements, write the extras: 'name[extra]')")
    reqs = parse_files([] if locks else req_files, as_list(s("constraint", args.constraint, [])),
                       args=args.requirements_args)
    if not reqs.requirements and not locks:
        raise RequirementsError("nothing to install: give requirements, -r FILE or "
                                "-r pylock.toml")
    usage = usage_policy(args)
    options = InstallOptions(
        requirements=reqs.requirements,
        constraints=reqs.constraints,
        sources=sources_from(args, s, reqs),
        require_hashes=bool(s("require-hashes", args.require_hashes, False)
                            or reqs.require_hashes),
        no_deps=bool(s("no-deps", args.no_deps, False)),
        upgrade=bool(s("upgrade", args.upgrade, False)),
        force_reinstall=bool(s("force-reinstall", args.force_reinstall, False)),
        ignore_installed=bool(s("ignore-installed", args.ignore_installed, False)),
        upgrade_strategy=upgrade_strategy(s, args),
        pre=bool(s("pre", args.pre, False) or reqs.pre),
        dry_run=bool(s("dry-run", args.dry_run, False)),
        report=report,
        # Bytecode of another Python than the interpreter's can't be written here.
        compile_bytecode=(not s("no-compile", args.no_compile, False)
                          and not (target.cross and target.cross.other_python)),
        warn_conflicts=bool(s("warn-conflicts", False if args.no_warn_conflicts else None,
                              True)),
        warn_script_location=bool(s("warn-script-location",
                                    False if args.no_warn_script_location else None, True)),
        trust_cached_bytecode=bool(s("trust-cached-bytecode", args.trust_cached_bytecode,
                                     False)),
        link_mode=link_mode(s("link-mode", args.link_mode,
                              "copy" if os.name == "nt" else "hardlink")),
        cache_dir=cache_dir_from(s, args),
        no_cache=bool(s("no-cache-dir", args.no_cache_dir, False)),
        jobs=max(1, args.jobs),
        attestations=with_usage_policy(usage, attestation_policy(args)),
        lock_file=Path(locks[0]) if locks else None,
        extras=tuple(args.extra),
        groups=tuple(args.group) if args.group else None,
        require_lock=Path(args.require_lock) if args.require_lock else None,
        usage_policy=usage,
        externally_managed=overridden,
    )
    return options, target


def cross_platform(args: argparse.Namespace, s: Settings, target: Target,
                   installs: bool) -> Target:
    """`target` for pip's --platform, --python-version, --implementation and --abi (also
    from pip's configuration), which pip takes only for an install into --target or a
    --dry-run (the wheels may not run on this machine); `lock` writes no environment."""
    platforms = as_list(s("platform", args.platform, []))
    abis = as_list(s("abi", args.abi, []))
    version = s("python-version", args.python_version)
    implementation = s("implementation", args.implementation)
    if not (platforms or abis or version or implementation):
        return target
    if installs and target.kind != "target" and not s("dry-run", args.dry_run, False):
        from ..errors import ConfigError

        raise ConfigError(
            "Can not use any platform or abi specific options unless installing via "
            "'--target' or using '--dry-run' (as pip): --platform, --python-version, "
            "--implementation and --abi choose wheels that may not run here. Add --target "
            "DIR, or --dry-run, or use `secinstall lock`. Nothing was installed.")
    from ..platforms import for_platform

    return for_platform(target, platforms, str(version) if version else None,
                        str(implementation) if implementation else None, abis)


def require_virtualenv(s: Settings, args: argparse.Namespace, target: Target,
                       doing: str = "install") -> None:
    """pip's --require-virtualenv (PIP_REQUIRE_VIRTUALENV, `require-virtualenv = true`): no
    install (or uninstall, `doing`) outside a virtual environment, whatever --target or
    --prefix say."""
    if not s("require-virtualenv", args.require_virtualenv, False):
        return
    if target.sys_prefix is not None and target.sys_prefix != target.base_prefix:
        return
    from ..errors import VirtualenvRequiredError

    raise VirtualenvRequiredError(
        f"Could not find an activated virtualenv (required): {target.python} is not in a "
        "virtual environment, and --require-virtualenv (or PIP_REQUIRE_VIRTUALENV, or "
        f"require-virtualenv in pip's configuration) asks for one. Nothing was {doing}ed.")


def wheels_only(no_binary: Sequence[str], editable: Sequence[str]) -> None:
    """Refuse pip's --no-binary where it asks for a build (read as pip's FormatControl
    reads it: names separated by commas, `:all:`, and `:none:`, which clears them), and
    -e, an editable install, which is a build."""
    asked: set[str] = set()
    for value in no_binary:
        for name in value.split(","):
            if name == ":none:":
                asked.clear()
            elif name:
                asked.add(name)
    if not editable and not asked:
        return
    # Only now: resolve.py takes a while to import, and the target interpreter waits.
    from ..errors import ConfigError
    from ..resolve import SDIST_HINT

    if editable:
        raise ConfigError(f"-e {editable[0]} asks for an editable install, which builds the "
                          f"project; {SDIST_HINT}. Nothing was installed.")
    raise ConfigError(f"--no-binary {','.join(sorted(asked))} asks for source builds; "
                      f"{SDIST_HINT}. Nothing was installed.")


def no_keyring(provider: str | None) -> None:
    """Refuse pip's --keyring-provider where it asks for credentials from keyring, which
    secinstall doesn't read (`auto` and `disabled` ask for nothing certain)."""
    if provider in ("import", "subprocess"):
        from ..errors import ConfigError

        raise ConfigError(
            f"--keyring-provider {provider}: secinstall doesn't read credentials from "
            "keyring; give them in the index URL (https://USER:TOKEN@host/simple/, e.g. "
            "from a variable in PIP_INDEX_URL) or in ~/.netrc")


def upgrade_strategy(s: Settings, args: argparse.Namespace) -> str:
    value = str(s("upgrade-strategy", args.upgrade_strategy, "only-if-needed"))
    if value not in UPGRADE_STRATEGIES:
        from ..errors import ConfigError

        raise ConfigError(f"upgrade-strategy {value!r} (pip's configuration): use one of "
                          f"{', '.join(UPGRADE_STRATEGIES)}")
    return value


def externally_managed(args: argparse.Namespace, s: Settings, target: Target,
                       report: str | None, doing: str = "install") -> Path | None:
    """PEP 668, checked as pip checks it: an install (or uninstall, `doing`) in an
    externally managed environment is refused, unless `--break-system-packages` (pip's
    flag, configuration key and PIP_BREAK_SYSTEM_PACKAGES) overrides it, or it is
    `--dry-run --report` (which pip exempts). Returns the marker overridden, a weakening;
    None when none applies."""
    marker = target.externally_managed
    if marker is None or (report and s("dry-run", args.dry_run, False)):
        return None
    if s("break-system-packages", args.break_system_packages, False):
        return marker
    import textwrap

    from ..errors import ExternallyManagedError
    from ..target import externally_managed_text

    said = externally_managed_text(marker, target.sys_prefix or target.root)
    said = textwrap.indent(said.strip(), "    ")
    raise ExternallyManagedError(
        f"{target.python} is the interpreter of an externally managed environment (PEP "
        "668): what is installed in it is its distributor's tools' to manage, not pip's or "
        "secinstall's. "
        f"{marker} says:\n{said}\n"
        + (f"Install into a virtual environment instead (`{target.python} -m venv .venv`, "
           "then `secinstall install --python .venv ...`), or pass "
           "--break-system-packages to install into this one anyway"
           if doing == "install" else
           f"Use its distributor's tools to {doing}, or pass --break-system-packages to "
           f"{doing} with secinstall anyway")
        + f", at the risk of breaking the system's Python (reported as a weakening). "
        f"Nothing was {doing}ed.")


def attestation_policy(args: argparse.Namespace) -> AttestationPolicy:
    """The attestation policy from the command line and the project's config file."""
    from packaging.utils import NormalizedName, canonicalize_name

    from ..config import load_project_settings
    from ..errors import ConfigError
    from ..models import AttestationPolicy, Publisher
    from ..verify.attestations import parse_publisher

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

    pins: dict[NormalizedName, tuple[Publisher, ...]] = {}
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


def usage_policy(args: argparse.Namespace) -> Any:
    from ..policy import load_policy

    settings = list(args.policy_set)
    if getattr(args, "uploaded_prior_to", None):
        settings.append(f"uploaded-prior-to={args.uploaded_prior_to}")
    return load_policy(Path.cwd(), os.environ, args.policy, settings)

