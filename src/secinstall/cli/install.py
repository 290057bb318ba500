"""`install` and `lock`: the pipeline, run to install or to write a lock file."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .options import EPILOG, add_install_options, install_options
from .output import Output, output_path

if TYPE_CHECKING:  # kept out of start-up: `--help` imports this module
    from ..models import InstallOptions
    from ..target import Target

INSTALL_DESCRIPTION = """\
Install wheels, verified before anything is written: every file's sha256 is checked
against the index and your pins, its PEP 740 attestations against the publisher policy,
each wheel's RECORD is checked, and the whole install is one transaction (on any failure
the environment is put back exactly as it was). An SBOM fragment records what was
installed and how it was verified.

A fully pinned input (every requirement name==version with --hash) or a pylock.toml is
installed with no resolver; anything else is resolved by pip's resolver (pip install
--dry-run --report), wheels only. TLS is verified against the operating system's trust
store.
"""

LOCK_DESCRIPTION = """\
Resolve the requirements exactly as install would, download and verify every file
(hashes, attestations, wheel checks), and write a pylock.toml (PEP 751) with each wheel's
URL, size, upload time and hashes and each package's verified publisher
(attestation-identities), or a hashed requirements file. Nothing is installed.
"""


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("install", parents=[common], help="install verified wheels",
                       description=INSTALL_DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_install_options(p)
    p.set_defaults(func=_cmd_install)

    p = sub.add_parser("lock", parents=[common], help="resolve, verify and write a lock file",
                       description=LOCK_DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_install_options(p, installs=False)
    p.add_argument("-o", "--output", metavar="FILE",
                   help="where to write (default: pylock.toml, or stdout for "
                        "--format requirements)")
    p.add_argument("--format", choices=("pylock", "requirements"), default="pylock",
                   help="pylock (PEP 751, default) or a hashed requirements file")
    p.set_defaults(func=_cmd_lock)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def attestation_summary(verified: Sequence[Any], out: Output) -> None:
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
        from ..errors import first_few

        names = [v.fetched.path.name for v in missing]
        shown = ", ".join(names) if out.verbosity >= 1 else first_few(names)
        out.warn(f"{len(missing)} file(s) have no PEP 740 provenance, so their publisher is "
                 f"unverified: {shown} (--attestations require refuses such files)")


def _say_satisfied(options: InstallOptions, target: Target, out: Output) -> None:
    """Nothing was installed, and pip's resolver doesn't list what already satisfies the
    requirements: say what does, as pip does."""
    from packaging.utils import canonicalize_name

    from ..install import find_installed

    installed = find_installed(target, satisfying=True)
    names = dict.fromkeys(canonicalize_name(ur.req.name) for ur in options.requirements
                          if not ur.is_constraint)
    have = [installed[name] for name in names if name in installed]
    for dist in have:
        out.info(f"Already installed: {dist.name} {dist.version}")
    if not have:
        out.info("Nothing to install")


def _cmd_install(args: argparse.Namespace, out: Output) -> int:
    from ..fragment import FragmentBuilder

    # Started first: its imports take longer than ours (closed by run_install).
    fragment = None if args.dry_run else FragmentBuilder()
    try:
        options, target = install_options(args)  # imports the pipeline meanwhile
        report = options.report  # pip's configuration may give it (PIP_REPORT)
        report_file = None if report in (None, "-") else output_path(report, "--report")
    except BaseException:
        if fragment is not None:
            fragment.close()
        raise
    from ..pipeline import run_install
    from ..progress import make_progress
    from ..report import build_report

    if report == "-":  # the messages make way for it (main knew of --report - only)
        out.stream = sys.stderr
    weakened = options.weakenings
    for w in weakened:
        out.warn(f"verification weakened: {w}")
    out.debug(f"target: {target.python} ({target.kind}, Python {target.python_version}) "
              f"at {target.root}")
    from ..target import applies

    for ur in options.requirements:  # left out of the plan: said, as pip says it
        if not ur.is_constraint and not applies(ur.req, target.markers):
            out.info(f"Ignoring {ur.req.name}: markers '{ur.req.marker}' don't match your "
                     "environment")
    if target.destdir is not None:
        out.debug(f"--root {target.destdir}: the files, and secinstall's records, go under it")
    if target.cross is not None:
        out.debug(f"wheels for {target.tags[0]} (--platform, --python-version, "
                  "--implementation, --abi)")
        if target.cross.other_python and not args.no_compile:
            out.debug("no bytecode compiled: it would be for the interpreter's Python, "
                      "not the one given by --python-version or --implementation")
    outcome = run_install(options, target, log=out.debug,
                          progress=make_progress(out.verbosity >= 0 and args.progress_bar != "off",
                                                 color=not args.no_color),
                          fragment=fragment)
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
        attestation_summary(outcome.verified, out)
    names = ", ".join(f"{v.dist.name} {v.dist.version}" for v in outcome.verified)
    if outcome.result is None:
        out.info(f"Would install: {names}" if names else "Nothing to install")
    elif names:
        removed = ", ".join(f"{d.name} {d.version}" for d in outcome.result.removed)
        out.info(f"Installed: {names}" + (f" (replaced {removed})" if removed else ""))
        if outcome.sbom is not None:
            out.debug(f"SBOM fragment: {outcome.sbom}")
    elif not outcome.unchanged:
        _say_satisfied(options, target, out)
    if report:
        text = json.dumps(build_report(outcome, weakened=weakened), indent=2)
        if report_file is None:
            print(text)
        else:
            from ..files import write_file

            write_file(report_file, text + "\n")
    return 0


def _cmd_lock(args: argparse.Namespace, out: Output) -> int:
    from ..lockfiles.pylock import pylock_text
    from ..lockfiles.requirements import requirements_text
    from ..pipeline import run_install

    options, target = install_options(args, installs=False)
    output = args.output or ("pylock.toml" if args.format == "pylock" else "-")
    output_file = None if output == "-" else output_path(output, "-o/--output")
    # Every file is verified, also those already installed in the target.
    options = dataclasses.replace(options, dry_run=True, force_reinstall=True)
    for w in options.weakenings:
        out.warn(f"verification weakened: {w}")
    outcome = run_install(options, target, log=out.debug)
    attestation_summary(outcome.verified, out)
    if args.format == "pylock":
        text = pylock_text(outcome, indexes=options.sources.index_urls)
    else:
        text = requirements_text(outcome, filename=output)
    if output_file is None:
        print(text, end="")
    else:
        from ..files import write_file

        write_file(output_file, text)
        out.info(f"Locked {len(outcome.verified)} distribution(s), each verified, in {output}")
    return 0
