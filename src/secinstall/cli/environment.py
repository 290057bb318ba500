"""Commands about an installed environment: `uninstall`, `sbom`, `audit`, `recover`,
`policy show`."""

from __future__ import annotations

import argparse
from typing import Any

from .options import add_policy_options, add_target_options, target_of, usage_policy
from .output import Output, output_path

UNINSTALL_DESCRIPTION = """\
Uninstall distributions as pip does: every file their RECORD lists, and their modules'
bytecode, is removed. All of them are removed in one transaction: on any failure, or
Ctrl-C, the environment is put back exactly as it was. An SBOM fragment records what was
removed, as one records each install.

Names are taken as pip takes them: a version specifier is ignored, and a name that is not
installed is skipped with a warning. A distribution without a RECORD is refused before
anything is removed (which files are its is not known); files its RECORD names outside
the environment are left alone, with a warning, as pip leaves them. secinstall never asks
for confirmation, as uv doesn't: -y is accepted for pip's sake.
"""


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("uninstall", parents=[common], help="uninstall distributions",
                       description=UNINSTALL_DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="a distribution's name (a requirement specifier's version is "
                        "ignored, as in pip)")
    p.add_argument("-r", "--requirement", action="append", default=[], metavar="FILE",
                   help="uninstall every distribution a requirements file names "
                        "(repeatable)")
    p.add_argument("-y", "--yes", action="store_true",
                   help="accepted, as pip's: secinstall never asks for confirmation")
    add_target_options(p)
    p.add_argument("--break-system-packages", action="store_true", default=None,
                   help="uninstall even from an externally managed environment (PEP 668), "
                        "as pip does with this flag (a weakening, reported)")
    p.add_argument("--isolated", action="store_true",
                   help="ignore pip's user configuration and PIP_* environment variables")
    p.add_argument("--root-user-action", choices=("warn", "ignore"), help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_uninstall)

    p = sub.add_parser(
        "sbom", parents=[common], help="write an SBOM of an environment",
        description="Write one SBOM for a whole environment: the fragments secinstall wrote "
                    "at each install (with hashes and verification evidence), merged with "
                    "every other installed distribution (marked unverified) and the SBOMs "
                    "that packages ship under PEP 770. As CycloneDX 1.6 JSON, or as SPDX 2.3 "
                    "JSON (the same content: the evidence is each package's comment), which "
                    "needs the extra secinstall[spdx] (spdx-tools).")
    add_target_options(p)
    p.add_argument("--format", choices=("cyclonedx-json", "spdx-json"),
                   default="cyclonedx-json",
                   help="cyclonedx-json (CycloneDX 1.6, the default) or spdx-json (SPDX 2.3; "
                        "needs pip install 'secinstall[spdx]')")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    p.set_defaults(func=_cmd_sbom)

    p = sub.add_parser(
        "recover", parents=[common], help="finish or roll back an interrupted install",
        description="Finish or roll back a transaction that a killed secinstall process "
                    "left in the environment (every install does this first, too).")
    add_target_options(p)
    p.set_defaults(func=_cmd_recover)

    p = sub.add_parser("policy", parents=[common], help="show the effective usage policy")
    p.add_argument("action", choices=("show",))
    add_policy_options(p)
    p.set_defaults(func=_cmd_policy)

    p = sub.add_parser(
        "audit", parents=[common],
        help="report known vulnerabilities of an installed environment",
        description="Report the known vulnerabilities of every installed distribution, from "
                    "the policy's osv-dir and from the JSON API of one index each: the one it "
                    "was installed from, as secinstall's SBOM fragments record it, if that is "
                    "in vulnerability-indexes (none otherwise); for what another tool "
                    "installed, the first of vulnerability-indexes. -v shows what was asked "
                    "for each.")
    add_target_options(p)
    add_policy_options(p)
    p.add_argument("--cert", action="append", default=[], metavar="PATH",
                   help="also trust the CAs in this PEM bundle")
    p.set_defaults(func=_cmd_audit)


def _cmd_uninstall(args: argparse.Namespace, out: Output) -> int:
    from ..errors import RequirementsError
    from ..requirements import parse_files
    from ..uninstall import uninstall
    from .options import Settings, externally_managed, require_virtualenv

    names = [ur.req.name for ur in parse_files(args.requirement,
                                               args=args.names).requirements]
    if not names:
        raise RequirementsError("nothing to uninstall: give names or -r FILE")
    target = target_of(args)
    s = Settings(args, site_prefix=target.pip_site_prefix)
    require_virtualenv(s, args, target, "uninstall")  # first, as in pip
    marker = externally_managed(args, s, target, None, "uninstall")
    weakened = [f"uninstalling from an externally managed environment despite its PEP 668 "
                f"marker {marker} (--break-system-packages)"] if marker else []
    for w in weakened:
        out.warn(f"verification weakened: {w}")
    done = uninstall(target, names, weakened=weakened, log=out.debug)
    for note in done.notes:
        out.warn(note)
    for name in done.skipped:
        out.warn(f"Skipping {name} as it is not installed.")
    for dist, files in done.removed:
        out.debug(f"  {dist.name} {dist.version}: {files} file(s) removed")
    if done.removed:
        out.info("Uninstalled: " + ", ".join(f"{d.name} {d.version}" for d, _ in done.removed))
    if done.sbom is not None:
        out.debug(f"SBOM fragment: {done.sbom}")
    return 0


def _cmd_sbom(args: argparse.Namespace, out: Output) -> int:
    from ..sbom import environment_sbom

    output_file = None if args.output in (None, "-") else output_path(args.output,
                                                                      "-o/--output")
    target = target_of(args)
    text = environment_sbom(target, fmt=args.format)
    if output_file is not None:
        from ..files import write_file

        write_file(output_file, text + "\n")
        out.info(f"wrote {args.format} SBOM of {target.root} to {args.output}")
    else:
        print(text)
    return 0


def _cmd_recover(args: argparse.Namespace, out: Output) -> int:
    from ..transaction import environment_lock, recover

    target = target_of(args)
    with environment_lock(target.state_dir):
        done = recover(target.state_dir)
    for line in done:
        out.info(line)
    if not done:
        out.info(f"nothing to recover in {target.root}")
    return 0


def _cmd_policy(args: argparse.Namespace, out: Output) -> int:
    from ..policy import describe

    for line in describe(usage_policy(args)):
        print(line)
    return 0


def _cmd_audit(args: argparse.Namespace, out: Output) -> int:
    from .. import tls
    from ..client import Client, redact_url
    from ..errors import first_few
    from ..install import find_installed
    from ..sbom import recorded_files
    from ..vulnerabilities import audit

    policy = usage_policy(args)
    target = target_of(args)
    installed = find_installed(target)
    recorded, unread = recorded_files(target, installed)
    for problem in unread:
        out.debug("SBOM fragment(s) not read, so what they record counts as installed by "
                  f"another tool: {problem}")
    with Client(ssl_context=tls.create_context(args.cert),
                credential_urls=policy.vulnerability_indexes) as client:
        result = audit(installed, client=client, osv_dir=policy.osv_dir,
                       api_indexes=policy.vulnerability_indexes, recorded=recorded,
                       ignore=policy.vulnerabilities_ignore)
    for a in result.audited:
        out.debug(f"{a.name} {a.version}: {a.why}")
    findings, unchecked = result.findings, result.unchecked
    for f in findings:
        out.info(f"{f.name} {f.version}: {f.advisory.describe()}"
                 + (f" {f.advisory.link}" if f.advisory.link else ""))
    no_data = [a for a in unchecked if a.no_data is not None]
    if no_data:
        indexes = ", ".join(dict.fromkeys(redact_url(a.no_data or "") for a in no_data))
        out.warn(f"{len(no_data)} distribution(s) not checked for known vulnerabilities: the "
                 f"JSON API of {indexes} has no vulnerability data for them (HTTP 404 or 410; "
                 "for what another tool installed, it may not come from there): "
                 + first_few([f"{a.name} {a.version}" for a in no_data])
                 + "; set osv-dir (a directory of OSV records) to check them offline")
    if no_source := [a for a in unchecked if a.no_data is None]:
        out.warn("not checked for known vulnerabilities (no JSON API to ask, and no "
                 "osv-dir): " + "; ".join(f"{a.name} {a.version}, {a.why}" for a in no_source)
                 + "; add such an index to vulnerability-indexes (from "
                 f"{policy.origin('vulnerability-indexes')}) if it serves a JSON API "
                 "(/pypi/<name>/<version>/json), or set osv-dir (a directory of OSV records)")
    summary = f"{len(findings)} known vulnerabilit{'y' if len(findings) == 1 else 'ies'} found"
    if unchecked:
        summary += f" ({len(unchecked)} of {len(result.audited)} distributions not checked)"
    out.info(summary)
    return 1 if findings else 0
