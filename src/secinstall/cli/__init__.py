"""The command line: argparse, a module per group of subcommands, each command one
`_cmd_<name>` function. The only part of secinstall that prints or chooses an exit code;
everything else raises `SecinstallError`."""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import HashesRequiredError, PolicyError, SecinstallError
from . import environment, install, integrations, verify
from .options import EPILOG, add_pip_global_options
from .output import Output

__all__ = ["build_parser", "main", "run"]

#: Top-level modules of the dependencies imported lazily (absent in a core-only install).
OPTIONAL_MODULES = frozenset({"sigstore", "pypi_attestations", "pydantic", "cryptography",
                              "cyclonedx", "packageurl", "license_expression", "rich",
                              "sigstore_models", "rfc8785"})


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
    add_pip_global_options(common)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in (install, verify, environment, integrations):
        module.register(sub, common)
    return parser


def _output_settings_from_pip(args: argparse.Namespace) -> None:
    """pip's configuration for the output options every command takes: the -v and -q
    given add to the configured counts (pip's count options start from them); --log,
    --no-color and --progress-bar come from it when not given. Read before the command
    knows its target, so a target environment's own pip.conf is not among the files."""
    import os

    from ..config import load_pip_settings

    settings = load_pip_settings(os.environ, isolated=getattr(args, "isolated", False))

    def configured(key: str, default: object) -> object:
        return settings[key].value if key in settings else default

    args.verbose += configured("verbose", 0)
    args.quiet += configured("quiet", 0)
    args.log = args.log or configured("log", None)
    args.no_color = args.no_color or configured("no-color", False)
    if getattr(args, "progress_bar", "") is None:
        args.progress_bar = configured("progress-bar", "on")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _output_settings_from_pip(args)
    except SecinstallError as exc:  # a bad value in pip's configuration
        verbosity = args.verbose - args.quiet
        Output(verbosity, sys.stdout).error(exc.message, exc.details,
                                            show_details=verbosity >= 1)
        return exc.exit_code
    verbosity = args.verbose - args.quiet
    stream = sys.stderr if getattr(args, "report", None) == "-" else sys.stdout
    if not args.log:
        return _run(args, Output(verbosity, stream))
    try:
        # Line-buffered: `serve` and `run` log for as long as they run.
        log = open(args.log, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed below
    except OSError as exc:
        print(f"error: --log {args.log}: can't append to it: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    with log:
        out = Output(verbosity, stream, log)
        from ..client import redact_text  # an index URL in the arguments may hold a token

        out.logged(redact_text(f"secinstall {__version__}: "
                               f"{' '.join(sys.argv[1:] if argv is None else argv)}"))
        code = _run(args, out)
        out.logged(f"exit code {code}")
        return code


def _run(args: argparse.Namespace, out: Output) -> int:
    """The command, with its errors said as the user should read them; the exit code."""
    try:
        code: int = args.func(args, out)
        return code
    except SecinstallError as exc:
        for note in exc.notes:
            out.warn(note)
        out.error(exc.message, exc.details, show_details=out.verbosity >= 1 or isinstance(
            exc, (HashesRequiredError, PolicyError)))
        return exc.exit_code
    except KeyboardInterrupt:
        out.error("interrupted; every change was rolled back")
        return 130
    except ModuleNotFoundError as exc:
        # The heavy dependencies are imported lazily; a core-only install (the bootstrap)
        # lacks them. Anything else missing is a bug worth its traceback.
        if exc.name is None or exc.name.split(".")[0] not in OPTIONAL_MODULES:
            raise
        out.error(f"this needs the Python package {exc.name!r}, which is not installed; "
                  "install secinstall with its dependencies (python -m pip install secinstall)")
        return 1


def run() -> None:
    """The `secinstall` command and `python -m secinstall`: `main`, then exit with its
    code."""
    code = main()
    # The interpreter's last garbage collection walks every object still alive (tens of
    # thousands after an install) only to free memory that the exit frees anyway: measured,
    # a fifth to a third of a warm install's way out. Frozen objects are left out of it;
    # atexit handlers, and the closing of files as their objects go, still run.
    gc.freeze()
    sys.exit(code)
