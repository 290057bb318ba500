"""`verify`: check local distribution files against their PEP 740 provenance, offline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import SecinstallError
from .output import Output


def register(sub: Any, common: argparse.ArgumentParser) -> None:
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


def _cmd_verify(args: argparse.Namespace, out: Output) -> int:
    import hashlib

    from ..errors import ConfigError
    from ..verify.attestations import load_provenance, parse_publisher, verify_file

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
