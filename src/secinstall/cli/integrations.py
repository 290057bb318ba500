"""Integrations: `serve` (the verifying index), `hook` (pip's configuration) and `run`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import SecinstallError
from .options import (
    EPILOG,
    Settings,
    add_attestation_options,
    add_cache_options,
    add_source_options,
    attestation_policy,
    cache_dir_from,
    sources_from,
)
from .output import Output


def register(sub: Any, common: argparse.ArgumentParser) -> None:
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


def _add_serve_options(p: argparse.ArgumentParser) -> None:
    add_source_options(p, "upstream (default: pip's configuration, as for install)")
    add_attestation_options(p.add_argument_group("verification (as for install)"))
    add_cache_options(p.add_argument_group("run"))


def _serve_settings(args: argparse.Namespace) -> tuple[Any, list[str]]:
    """(ServeSettings, weakened) from the arguments merged with pip's configuration, in
    which the hook's own index URL stands for the index pip used before the hook."""
    from ..models import InstallOptions
    from ..serve import ServeSettings

    s = Settings(args)
    sources = sources_from(args, s)
    policy = attestation_policy(args)
    # The same options weaken verification the same way as for install.
    weakened = InstallOptions(requirements=(), sources=sources, attestations=policy).weakenings
    return ServeSettings(
        sources=sources, policy=policy, cache_dir=cache_dir_from(s, args),
        no_cache=bool(s("no-cache-dir", args.no_cache_dir, False)),
    ), weakened


def _cmd_serve(args: argparse.Namespace, out: Output) -> int:
    from ..serve import DEFAULT_PORT, IndexServer
    from ..target import resolve_target

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
    from ..client import redact_url  # here: it imports urllib3, which start-up needn't

    try:
        server.start()
        upstream = settings.sources.index_urls or settings.sources.find_links
        log(f"Serving verified wheels at {server.url} from "
            f"{', '.join(map(redact_url, upstream))} (Ctrl-C stops)")
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    log(f"Stopped: {len(server.index.served)} file(s) served, "
        f"{len(server.index.refused)} refused")
    return 0


def _cmd_hook(args: argparse.Namespace, out: Output) -> int:
    from .. import hook
    from ..serve import DEFAULT_PORT

    site_prefix = None
    if args.python:
        from ..target import resolve_target

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


def _cmd_run(args: argparse.Namespace, out: Output) -> int:
    from ..run import record, run_command, summary
    from ..target import resolve_target

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
