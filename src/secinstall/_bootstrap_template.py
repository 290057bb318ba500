"""get-secinstall.py: install secinstall, or fully pinned requirements, with nothing but
Python >= 3.10, verified the way `python -m secinstall install` verifies.

    python get-secinstall.py [OPTIONS]                   secinstall, with all its dependencies
    python get-secinstall.py --core-only [OPTIONS]       secinstall, with its core only
    python get-secinstall.py NAME==VERSION --hash=sha256:HEX [...] [OPTIONS]
    python get-secinstall.py -r requirements.txt [OPTIONS]   (every line pinned, hashed)

OPTIONS, as for `secinstall install`: -i/--index-url URL, -f/--find-links PATH_OR_URL,
--no-index, --cert PEM (added to the OS trust store), --proxy URL, --timeout SECONDS,
--retries N, --python PATH, -t/--target DIR, --prefix DIR, --break-system-packages,
--cache-dir DIR, --no-cache-dir, -c/--constraint FILE, --no-deps, --force-reinstall,
--no-compile, --dry-run, --report FILE, --attestations MODE, --isolated (ignore pip's
configuration files and PIP_* variables, which are honoured otherwise), -v, -q.

How it works. PAYLOAD, at the end of this file, is a zip (base85) of secinstall's wheel
and of the pure-Python distributions secinstall needs to run (truststore, packaging,
installer, urllib3, tomli), unpacked unchanged from the wheels whose sha256 secinstall's
vendor/vendor.txt pins. Its sha256 must equal PAYLOAD_SHA256 before anything in it is
used. It is unpacked into a temporary directory, put first on sys.path, and secinstall
runs in this process: TLS is verified against the operating system's trust store
(truststore, also injected into `ssl`), and every file is checked against its sha256 pin
(WHEEL_SHA256 for secinstall's own wheel, RUNTIME_PINS or CORE_PINS for its
dependencies, or the pins you give) before anything is installed, as one transaction.
Only pinned input is accepted: there is no resolver here. PEP 740 attestations need
their verifier, sigstore, whose compiled dependencies can't be embedded; the pins in this
file are the trust anchor. So by default the install has two phases: secinstall and its
runtime pins are first staged into a temporary directory for this interpreter, each file
checked against its pin (attestations off: the verifier is what is being staged), then
that staged secinstall installs what was asked for (secinstall and its runtime pins, or
your requirements) where it was asked for, attestations checked as `secinstall install`
checks them (--attestations passes a mode on, e.g. require), from the same cache; the
temporary directory is removed. --core-only (which installs no verifier) and
--attestations off have one phase, without checking attestations (reported as a
weakening).

Without requirements, secinstall is installed with all its runtime dependencies
(RUNTIME_PINS: secinstall's requirements/runtime.txt, a lock for every platform and
Python >= 3.10 with the hashes of every file; the lines whose markers apply to the target
interpreter are installed, each as the wheel that fits it, and secinstall checks that
every dependency is pinned). With --core-only it is installed with its core only
(CORE_PINS, no dependency check): enough to install fully pinned requirements with
`--attestations off`, but not to verify attestations (sigstore, pypi-attestations),
resolve unpinned requirements (pip) or write SBOMs (cyclonedx-python-lib).

Built by `nox -s bootstrap` from secinstall's sources (src/secinstall/bootstrap.py);
do not edit: rebuild.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import subprocess  # nosec B404 - runs this interpreter, no shell
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

# Filled in by the build; empty in the template (src/secinstall/_bootstrap_template.py).
SECINSTALL_VERSION = ""
WHEEL_NAME = ""
WHEEL_SHA256 = ""
PAYLOAD_SHA256 = ""
CORE_PINS = ""
RUNTIME_PINS = ""

USAGE = "%(prog)s [--core-only | REQ [--hash=sha256:HEX ...] ... | -r FILE] [OPTIONS]"

#: The options passed on to `secinstall install`: (flags, how, help), where how is
#: "value", "append" (a repeatable value), "flag" or "count".
OPTIONS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("-r", "--requirement"), "append", "a requirements file; every line pinned with --hash"),
    (("-c", "--constraint"), "append", "a constraints file"),
    (("-i", "--index-url"), "value", "the package index (default https://pypi.org/simple/)"),
    (("-f", "--find-links"), "append", "a directory or HTML page of wheels"),
    (("--no-index",), "flag", "use no index, only --find-links"),
    (("--cert",), "append", "also trust the CAs in this PEM bundle (added to the OS "
                            "trust store)"),
    (("--proxy",), "value", "HTTPS proxy URL"),
    (("--timeout",), "value", "socket timeout in seconds (default 15)"),
    (("--retries",), "value", "retries for transient network errors (default 5)"),
    (("--python",), "value", "install into this interpreter's environment"),
    (("-t", "--target"), "value", "install into this directory"),
    (("--prefix",), "value", "install under this prefix"),
    (("--break-system-packages",), "flag", "install even into an externally managed "
                                           "environment (PEP 668), as pip does (a weakening, "
                                           "reported)"),
    (("--cache-dir",), "value", "secinstall's download cache"),
    (("--no-cache-dir",), "flag", "use a temporary cache"),
    (("--no-deps",), "flag", "with requirements: don't check that their dependencies are "
                             "pinned too"),
    (("--force-reinstall",), "flag", "reinstall even when the same version is installed"),
    (("--no-compile",), "flag", "don't compile bytecode"),
    (("--dry-run",), "flag", "download and verify, install nothing"),
    (("--attestations",), "value", "as for secinstall install (default: checked by a "
                                  "secinstall staged first); 'off' installs in one phase "
                                  "without checking them (weakens security; reported)"),
    (("--report",), "value", "write the installation report (JSON) here; '-' for stdout"),
    (("--isolated",), "flag", "ignore pip's configuration files and PIP_* variables"),
    (("-v", "--verbose"), "count", "more output"),
    (("-q", "--quiet"), "count", "less output"),
)
_TAKES_VALUE = frozenset(flag for flags, how, _ in OPTIONS if how in ("value", "append")
                         for flag in flags)


class UsageError(Exception):
    """The command line can't be used (exit code 2)."""


def split_requirements(argv: Sequence[str]) -> tuple[list[list[str]], list[str]]:
    """(requirements, options): each requirement with the `--hash` options that follow
    it (pip's requirements-file syntax; pip's own command line has no --hash)."""
    requirements: list[list[str]] = []
    options: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--hash" or arg.startswith("--hash="):
            value = arg.partition("=")[2] if "=" in arg else next(args, "")
            if not requirements:
                raise UsageError(f"--hash={value} must follow the requirement it pins, "
                                 "e.g. pip==25.1 --hash=sha256:HEX")
            requirements[-1].append(f"--hash={value}")
        elif arg in _TAKES_VALUE:
            options.append(arg)
            following = next(args, None)
            if following is not None:
                options.append(following)
        elif arg.startswith("-"):
            options.append(arg)
        else:
            requirements.append([arg])
    return requirements, options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="get-secinstall.py", usage=USAGE,
        description=f"Install secinstall {SECINSTALL_VERSION} (or fully pinned "
                    "requirements) with nothing but Python >= 3.10. Every file is checked "
                    "against a sha256 pin before anything is installed.",
        epilog="Read the top of this file for how it works.")
    # The script's own option: not passed on to `secinstall install`.
    parser.add_argument("--core-only", action="store_true",
                        help="without requirements: install secinstall with its core "
                             "dependencies only (CORE_PINS), not all of them (RUNTIME_PINS)")
    for flags, how, text in OPTIONS:
        if how == "append":
            parser.add_argument(*flags, action="append", default=[], help=text)
        elif how == "flag":
            parser.add_argument(*flags, action="store_true", help=text)
        elif how == "count":
            parser.add_argument(*flags, action="count", default=0, help=text)
        else:
            parser.add_argument(*flags, help=text)
    return parser


def forwarded(args: argparse.Namespace) -> list[str]:
    """The options of `args` as `secinstall install` arguments."""
    argv: list[str] = []
    for flags, how, _ in OPTIONS:
        option = flags[-1]
        value = getattr(args, option.lstrip("-").replace("-", "_"))
        if how == "append":
            for item in value:
                argv += [option, item]
        elif how == "count":
            argv += [option] * value
        elif how == "flag" and value:
            argv.append(option)
        elif how == "value" and value is not None:
            argv += [option, value]
    return argv


def unpack(payload: str, dest: Path) -> tuple[Path, Path]:
    """Check the payload against PAYLOAD_SHA256 and unpack it: (secinstall's wheel, the
    directory of vendored distributions)."""
    try:
        data = base64.b85decode("".join(payload.split()))
    except ValueError:
        data = b""
    digest = hashlib.sha256(data).hexdigest()
    if digest != PAYLOAD_SHA256:
        raise UsageError(f"this file is damaged: its payload has sha256 {digest}, expected "
                         f"{PAYLOAD_SHA256}; download get-secinstall.py again")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(dest)  # our own archive, its hash checked just above
    return dest / "wheels" / WHEEL_NAME, dest / "lib"


def _unpinned(arguments: Path, requirement_files: Sequence[str],
              constraint_files: Sequence[str]) -> list[str]:
    """Requirements that aren't `name==version` (or `name @ URL`) with a `--hash`; those
    of the command line are in the file `arguments`."""
    from secinstall.lockfiles.pylock import is_lock_path
    from secinstall.requirements import parse_files

    files = [str(arguments), *(f for f in requirement_files if not is_lock_path(f))]
    found = parse_files(files, constraint_files)
    return [str(ur.req) if ur.source.startswith(str(arguments)) else f"{ur.req} ({ur.source})"
            for ur in found.requirements if not (ur.hashes and (ur.is_pinned or ur.req.url))]


def install_argv(requirements: list[list[str]], args: argparse.Namespace,
                 wheel: Path, tmp: Path) -> list[str]:
    """The `secinstall install` command line: secinstall with all its dependencies or
    its core (no requirements given), or the given requirements; raises UsageError for
    unpinned ones. Attestations are the caller's to choose."""
    given = bool(requirements or args.requirement)
    # pip's requirements-file syntax carries the hashes; the file is ours, in `tmp`, and
    # named for where its lines come from (secinstall's messages name it).
    argv = ["install", "--require-hashes"]
    name = "command-line" if given else "CORE_PINS" if args.core_only else "RUNTIME_PINS"
    pins = tmp / "pins" / name
    pins.parent.mkdir()
    if given:
        pins.write_text("".join(" ".join(r) + "\n" for r in requirements), encoding="utf-8")
        unpinned = _unpinned(pins, args.requirement, args.constraint)
        if unpinned:
            raise UsageError(
                "get-secinstall.py installs pinned requirements only (it has no resolver); "
                "give each as NAME==VERSION --hash=sha256:HEX. Not pinned: "
                + ", ".join(unpinned))
        return [*argv, "-r", str(pins), *forwarded(args)]
    own = _own_pin(wheel)
    if args.core_only:
        pins.write_text(own + CORE_PINS, encoding="utf-8")
        # secinstall's other dependencies are not installed, so not checked either.
        argv.append("--no-deps")
    else:
        # The lock is complete for every platform: secinstall keeps the lines whose
        # markers apply and refuses the install if a dependency is left unpinned.
        pins.write_text(own + RUNTIME_PINS, encoding="utf-8")
    return [*argv, "-r", str(pins), *forwarded(args)]


def _own_pin(wheel: Path) -> str:
    return f"secinstall @ {wheel.as_uri()} --hash=sha256:{WHEEL_SHA256}\n"


#: Without sigstore, which can't be embedded (compiled dependencies), attestations
#: can't be checked: the pins are the trust anchor (secinstall reports the weakening).
ATTESTATIONS_OFF = ("--attestations", "off")
#: Runs the staged secinstall: its directory first on the path, then `install ARGS`.
_STAGED = ("import sys\n"
           "sys.path.insert(0, sys.argv[1])\n"
           "from secinstall.cli import main\n"
           "sys.exit(main(sys.argv[2:]))\n")
#: The options the staging install is not given: where and how the real install goes,
#: what it reports and checks, and what the user's requirements are.
_NOT_STAGED = frozenset({"--python", "--target", "--prefix", "--break-system-packages",
                         "--force-reinstall", "--no-compile", "--dry-run", "--report",
                         "--verbose", "--quiet", "--requirement", "--constraint",
                         "--attestations", "--no-cache-dir"})


def install_in_two_phases(argv: list[str], args: argparse.Namespace, wheel: Path, tmp: Path,
                          secinstall_main: Callable[[list[str]], int]) -> int:
    """`argv` (secinstall, or the given requirements), attestations checked: secinstall
    and its runtime pins are staged first, each file checked against its pin (the
    verifier, sigstore, is among what is staged: it can't check itself), into a temporary
    directory for this interpreter; then that staged secinstall runs `argv`."""
    # The real install's own refusals (PEP 668, --require-virtualenv, options that don't
    # go together) come before the staging install downloads anything.
    from secinstall.cli import build_parser
    from secinstall.cli.options import install_options
    from secinstall.errors import SecinstallError

    try:
        install_options(build_parser().parse_args(argv))
    except SecinstallError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    shared: list[str] = []
    if args.no_cache_dir:  # one temporary cache for both phases: one download a file
        shared = ["--cache-dir", str(tmp / "cache")]
        argv = [a for a in argv if a != "--no-cache-dir"]
    runtime = tmp / "pins" / "RUNTIME_PINS"
    if not runtime.exists():  # given requirements: the runtime pins aren't written yet
        runtime.write_text(_own_pin(wheel) + RUNTIME_PINS, encoding="utf-8")
    staging = ["install", "--require-hashes", "-r", str(runtime)]
    options = iter(forwarded(args))
    for option in options:
        if option in _NOT_STAGED:
            if option in _TAKES_VALUE:
                next(options, None)
            continue
        staging.append(option)
    staging += [*ATTESTATIONS_OFF, "--target", str(tmp / "stage"), "--no-compile", "-qq",
                *shared]
    if not args.quiet:
        print("Staging the verifier (secinstall's runtime pins, each checked against its "
              "sha256 pin) in a temporary directory, to check attestations with it...",
              file=sys.stderr)
    code = secinstall_main(staging)
    if code != 0:
        return code
    child = subprocess.Popen(  # noqa: S603  # nosec B603 - this interpreter, no shell
        [sys.executable, "-I", "-c", _STAGED, str(tmp / "stage"), *argv, *shared])
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            # Ctrl-C reached the child too: it rolls back and says so. subprocess.run
            # would kill it mid-rollback and leave a traceback here.
            continue


def run(argv: Sequence[str], payload: str) -> int:
    requirements, options = split_requirements(argv)
    parser = build_parser()
    args = parser.parse_args(options)
    if args.core_only and (requirements or args.requirement):
        raise UsageError("--core-only chooses what is installed with secinstall; it can't "
                         "be combined with requirements")
    if args.core_only and args.attestations not in (None, "off"):
        raise UsageError("--core-only installs no verifier for attestations (sigstore): it "
                         "can't be combined with --attestations " + args.attestations)
    with tempfile.TemporaryDirectory(prefix="get-secinstall-",
                                     ignore_cleanup_errors=True) as tmp:
        wheel, lib = unpack(payload, Path(tmp, "payload"))
        # First on the path: the vendored distributions, then secinstall's wheel itself
        # (zipimport), so the code that runs is the code that gets installed.
        sys.path[:0] = [str(lib), str(wheel)]
        import truststore

        # Anything else in this process that opens a TLS connection uses the OS trust
        # store too.
        truststore.inject_into_ssl()
        try:
            from secinstall.cli import main as secinstall_main
            from secinstall.errors import SecinstallError

            try:
                argv = install_argv(requirements, args, wheel, Path(tmp))
            except SecinstallError as exc:  # a requirements file that can't be read
                print(f"error: {exc.message}", file=sys.stderr)
                return 1
            if args.core_only or args.attestations == "off":
                code = secinstall_main([*argv, *ATTESTATIONS_OFF])
            else:
                code = install_in_two_phases(argv, args, wheel, Path(tmp), secinstall_main)
        finally:
            truststore.extract_from_ssl()
    if code == 0 and not (requirements or args.requirement or args.dry_run or args.quiet):
        print(done_message(args.core_only), file=sys.stderr)
    return code


def done_message(core_only: bool) -> str:
    """What was installed, said once the install succeeded."""
    if core_only:
        return (f"secinstall {SECINSTALL_VERSION} was installed with its core dependencies "
                "only (--core-only): it installs fully pinned requirements with "
                "--attestations off. Its other dependencies (pip, sigstore, "
                "pypi-attestations, cyclonedx-python-lib, rich) are not installed.")
    return (f"secinstall {SECINSTALL_VERSION} was installed with all its runtime "
            "dependencies (RUNTIME_PINS), each checked against its sha256 pin and, where "
            "it has PEP 740 provenance, its attestations (by the secinstall staged first).")


def main(argv: Sequence[str] | None = None, payload: str | None = None) -> int:
    # This file may be run by any python: say so plainly, before anything fails.
    if sys.version_info < (3, 10):  # noqa: UP036
        print("error: get-secinstall.py needs Python >= 3.10, this is "
              f"{sys.version.split()[0]}", file=sys.stderr)
        return 1
    try:
        return run(sys.argv[1:] if argv is None else argv,
                   PAYLOAD if payload is None else payload)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


# The payload, base85 of a zip; the build replaces this line, the last of the template.
PAYLOAD = ""
