"""Requirements and constraints files in pip's format, and requirement strings."""

from __future__ import annotations

import codecs
import optparse
import os
import re
import shlex
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from secinstall.errors import RequirementsError
from secinstall.models import UserRequirement

__all__ = ["RequirementSet", "parse_files", "parse_requirement"]


@dataclass(frozen=True)
class RequirementSet:
    """Everything the requirements/constraints files and arguments asked for."""

    requirements: tuple[UserRequirement, ...]
    constraints: tuple[UserRequirement, ...]
    # Options found inside files (pip allows these lines in requirements files).
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    require_hashes: bool = False
    trusted_hosts: tuple[str, ...] = ()
    pre: bool = False


# pip's STRONG_HASHES, with the length of each hex digest.
_HASH_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
# The regular expressions below are pip's (pip/_internal/req/req_file.py).
_COMMENT_RE = re.compile(r"(^|\s+)#.*$")
_ENV_VAR_RE = re.compile(r"(?P<var>\$\{(?P<name>[A-Z0-9_]+)\})")
_PEP263_RE = re.compile(rb"coding[:=]\s*([-\w.]+)")
# PEP 751 lock file names.
_PYLOCK_RE = re.compile(r"^pylock\.([^.]+\.)?toml$")
# Order matters: the UTF-16 LE BOM is a prefix of the UTF-32 LE one.
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF16, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)
# Names pip takes for a local archive rather than a project (pip/_internal/utils/filetypes.py).
_ARCHIVE_EXTENSIONS = (".whl", ".zip", ".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz",
                       ".tar.xz", ".txz", ".tlz", ".tar.lz", ".tar.lzma")
_URL_SCHEMES = frozenset({"http", "https", "file", "ftp"})
_VCS = frozenset({"git", "hg", "svn", "bzr"})
_OPERATORS = ("~=", "==", "!=", "<=", ">=", "<", ">", "===")
_NAME_AT_URL = "write `name @ URL` instead, e.g. `name @ file:///path/to/name-1.0-py3-none-any.whl`"
_BUILD = ("installing it means building it, which runs its code, and secinstall installs "
          "wheels only: build a wheel (e.g. `python -m build --wheel`) and install the .whl "
          "file")

# Options pip accepts in files that secinstall refuses, with the reason.
_REFUSED = {
    "editables": "editable requirements are built from source, which secinstall never does; "
    + _NAME_AT_URL,
    "no_binary": "not supported: secinstall installs wheels only",
    "config_settings": "not supported: secinstall never builds from source",
    "no_require_hashes": "not supported: pinned hashes are always checked",
    "features_enabled": "not supported (secinstall has no pip feature flags); remove it",
    "all_releases": "not supported; use --pre to allow pre-releases",
    "only_final": "not supported; final releases are the default",
}
# Accepted and ignored: secinstall only installs wheels anyway.
_IGNORED = frozenset({"only_binary", "prefer_binary"})


def parse_requirement(text: str, *, source: str = "command line") -> UserRequirement:
    """Parse one requirement string (PEP 508, `name @ URL` included) written at `source`."""
    return UserRequirement(req=_parse_req_string(text, source), hashes={}, source=source)


def parse_files(
    requirements: Sequence[str | Path] = (),
    constraints: Sequence[str | Path] = (),
    *,
    args: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> RequirementSet:
    """Parse command-line requirements, then requirements files, then constraints files.

    `environ` is used for `${VAR}` expansion (default: the process environment). Every
    problem found is collected, then raised once as a `RequirementsError`.
    """
    state = _State(os.environ if environ is None else environ)
    for text in args:
        try:
            state.add(parse_requirement(text), place=None)
        except RequirementsError as exc:
            state.problems.append(exc.message)
    for path in requirements:
        state.parse_file(str(path), where=str(path), constraint=False, stack=())
    for path in constraints:
        state.parse_file(str(path), where=str(path), constraint=True, stack=())
    if state.problems:
        raise _problems_error(state.problems)
    return state.result()


def _problems_error(problems: list[str]) -> RequirementsError:
    if len(problems) == 1:
        return RequirementsError(problems[0])
    more = len(problems) - 1
    return RequirementsError(
        f"{problems[0]} (and {more} more problem{'s' if more > 1 else ''})", details=problems
    )


class _OptionError(Exception):
    pass


class _LineParser(optparse.OptionParser):
    """pip's per-line option parser, raising instead of exiting."""

    def __init__(self) -> None:
        super().__init__(add_help_option=False)
        # Defaults of None for "append" so one parser can serve every line.
        add = self.add_option
        add("-i", "--index-url", "--pypi-url", dest="index_url")
        add("--extra-index-url", dest="extra_index_urls", action="append")
        add("--no-index", action="store_true")
        add("-c", "--constraint", dest="constraints", action="append")
        add("-r", "--requirement", dest="requirements", action="append")
        add("-e", "--editable", dest="editables", action="append")
        add("-f", "--find-links", dest="find_links", action="append")
        add("--no-binary", action="append")
        add("--only-binary", action="append")
        add("--prefer-binary", action="store_true")
        add("--require-hashes", action="store_true")
        add("--no-require-hashes", action="store_true")
        add("--pre", action="store_true")
        add("--all-releases", action="append")
        add("--only-final", action="append")
        add("--trusted-host", dest="trusted_hosts", action="append")
        add("--use-feature", dest="features_enabled", action="append")
        add("--hash", dest="hashes", action="append")
        add("-C", "--config-settings", dest="config_settings", action="append")

    def error(self, msg: str) -> NoReturn:
        raise _OptionError(msg)


@dataclass
class _State:
    environ: Mapping[str, str]
    parser: _LineParser = field(default_factory=_LineParser)
    problems: list[str] = field(default_factory=list)
    requirements: list[UserRequirement] = field(default_factory=list)
    constraints: list[UserRequirement] = field(default_factory=list)
    #: For each project, its requirements and where each was found (realpath, line).
    seen: dict[NormalizedName, list[tuple[UserRequirement, object]]] = field(default_factory=dict)
    index_url: str | None = None
    extra_index_urls: list[str] = field(default_factory=list)
    find_links: list[str] = field(default_factory=list)
    trusted_hosts: list[str] = field(default_factory=list)
    no_index: bool = False
    require_hashes: bool = False
    pre: bool = False

    def result(self) -> RequirementSet:
        return RequirementSet(
            requirements=tuple(self.requirements),
            constraints=tuple(self.constraints),
            index_url=self.index_url,
            extra_index_urls=tuple(dict.fromkeys(self.extra_index_urls)),
            find_links=tuple(dict.fromkeys(self.find_links)),
            no_index=self.no_index,
            require_hashes=self.require_hashes,
            trusted_hosts=tuple(dict.fromkeys(self.trusted_hosts)),
            pre=self.pre,
        )

    def add(self, ureq: UserRequirement, place: object) -> None:
        if ureq.is_constraint:
            # Several constraints on one project are allowed: they all apply.
            self.constraints.append(ureq)
            return
        name = canonicalize_name(ureq.req.name)
        earlier = self.seen.setdefault(name, [])
        for other, other_place in earlier:
            if place is not None and place == other_place:
                return  # the same line, reached again through two -r includes
            # Different markers may select different pins per environment (as universal
            # lock files do); the resolver evaluates them, so only same-marker lines clash.
            if str(other.req.marker) != str(ureq.req.marker):
                continue
            if str(other.req) == str(ureq.req) and other.hashes == ureq.hashes:
                return
            # pip's legacy resolver's "Double requirement given" (pip/_internal/resolution/legacy).
            self.problems.append(
                f"{ureq.source}: Double requirement given: {ureq.req} "
                f"(already given as {other.req} at {other.source}); list {name} once"
            )
            return
        earlier.append((ureq, place))
        self.requirements.append(ureq)

    def parse_file(
        self, path: str, *, where: str, constraint: bool, stack: tuple[str, ...]
    ) -> None:
        """Parse `path`; `where` names who asked for it (the path or "file:line")."""
        kind = "constraints" if constraint else "requirements"
        # Nested files are named by the line that includes them.
        prefix = "" if where == path else f"{where}: "
        scheme = urllib.parse.urlsplit(path).scheme.lower()
        if scheme in ("http", "https"):
            self.problems.append(
                f"{prefix}{path}: fetching {kind} files from URLs is not supported; "
                "download it first"
            )
            return
        if scheme == "file":
            from urllib.request import url2pathname  # loads http.client and ssl: only here

            path = url2pathname(urllib.parse.urlsplit(path).path)
        if _PYLOCK_RE.match(os.path.basename(path)):
            self.problems.append(f"{prefix}{path}: pylock.toml files are not supported yet")
            return
        real = os.path.realpath(path)
        if real in stack:
            chain = " -> ".join([*stack[stack.index(real):], real])
            self.problems.append(f"{prefix}{path} includes itself ({chain})")
            return
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            self.problems.append(f"{prefix}could not open {kind} file {path}: {exc.strerror}")
            return
        try:
            content = _decode(data)
        except (UnicodeDecodeError, LookupError) as exc:
            self.problems.append(
                f"{path}: cannot be decoded ({exc}); save it as UTF-8 or declare its "
                "encoding in a `# -*- coding: ... -*-` first line"
            )
            return
        for lineno, line in _preprocess(content, self.environ):
            self._parse_line(line, path, lineno, constraint, (*stack, real))

    def _parse_line(
        self, line: str, path: str, lineno: int, constraint: bool, stack: tuple[str, ...]
    ) -> None:
        loc = f"{path}:{lineno}"
        args_str, options_str = _break_args_options(line)
        try:
            # shlex is slow (a long --hash list takes milliseconds): only for quoting.
            words = (shlex.split(options_str) if any(c in options_str for c in "'\"\\")
                     else options_str.split())
            opts, leftover = self.parser.parse_args(words, self.parser.get_default_values())
        except (ValueError, _OptionError) as exc:
            self.problems.append(f"{loc}: {exc} (in {options_str!r})")
            return
        if leftover:
            self.problems.append(
                f"{loc}: unexpected {' '.join(leftover)!r} after the options; "
                "put each requirement on its own line"
            )
            return
        given = {
            o.dest: o.get_opt_string()
            for o in self.parser.option_list
            if o.dest and getattr(opts, o.dest, None)
        }
        if args_str:
            self._requirement_line(args_str, opts, given, loc, (stack[-1], lineno), constraint)
            return
        for dest, opt in given.items():
            if dest in _REFUSED:
                value = getattr(opts, dest)
                shown = opt if value is True else f"{opt} {' '.join(value)}"
                self.problems.append(f"{loc}: {shown}: {_REFUSED[dest]}")
            elif dest == "hashes":
                self.problems.append(
                    f"{loc}: {opt} without a requirement; is the `\\` missing at the end "
                    "of the line before?"
                )
        self._option_line(opts, path, loc, stack)

    def _requirement_line(
        self,
        text: str,
        opts: optparse.Values,
        given: dict[str, str],
        loc: str,
        place: tuple[str, int],
        constraint: bool,
    ) -> None:
        others = [opt for dest, opt in given.items() if dest != "hashes"]
        if others:
            self.problems.append(
                f"{loc}: only --hash may follow a requirement on its line, found "
                f"{', '.join(others)}; put other options on a line of their own"
            )
        hashes, problems = _parse_hashes(opts.hashes or [], loc)
        self.problems.extend(problems)
        try:
            req = _parse_req_string(text, loc)
        except RequirementsError as exc:
            self.problems.append(exc.message)
            return
        if constraint and req.extras:
            # pip/_internal/req/req_install.py: check_invalid_constraint_type.
            self.problems.append(
                f"{loc}: constraints cannot have extras ({req}); "
                f"constrain {req.name} without [{','.join(sorted(req.extras))}]"
            )
            return
        self.add(UserRequirement(req, hashes, loc, is_constraint=constraint), place)

    def _option_line(
        self, opts: optparse.Values, path: str, loc: str, stack: tuple[str, ...]
    ) -> None:
        for value, nested_constraint in [
            *((v, False) for v in opts.requirements or ()),
            *((v, True) for v in opts.constraints or ()),
        ]:
            # pip: nested files are relative to the including file; -r/-c pick the kind.
            nested = value
            if not urllib.parse.urlsplit(value).scheme and not os.path.isabs(value):
                nested = os.path.normpath(os.path.join(os.path.dirname(path), value))
            self.parse_file(nested, where=loc, constraint=nested_constraint, stack=stack)
        if opts.no_index:
            self.no_index = True
        if opts.index_url:
            self.index_url = opts.index_url
        self.extra_index_urls.extend(opts.extra_index_urls or ())
        for link in opts.find_links or ():
            # pip: a find-links path is relative to the requirements file when it exists there.
            beside = os.path.join(os.path.dirname(os.path.abspath(path)), link)
            self.find_links.append(beside if Path(beside).exists() else link)
        self.trusted_hosts.extend(opts.trusted_hosts or ())
        self.require_hashes = self.require_hashes or bool(opts.require_hashes)
        self.pre = self.pre or bool(opts.pre)


def _decode(data: bytes) -> str:
    """pip's decoding: a BOM, else a PEP 263 coding line, else UTF-8."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(encoding)
    for line in data.split(b"\n")[:2]:
        if line[:1] == b"#" and (match := _PEP263_RE.search(line)):
            return data.decode(match.group(1).decode("ascii"))
    # pip falls back to the locale's encoding here; a wrong guess changes names
    # silently, so secinstall asks for a declared encoding instead.
    return data.decode("utf-8")


def _preprocess(content: str, environ: Mapping[str, str]) -> Iterator[tuple[int, str]]:
    """pip's join_lines, ignore_comments and expand_env_variables, in that order."""
    for lineno, joined in _join_lines(content.splitlines()):
        line = _COMMENT_RE.sub("", joined).strip()
        if not line:
            continue
        for var, name in _ENV_VAR_RE.findall(line):
            # pip leaves unset or empty variables as written.
            if value := environ.get(name):
                line = line.replace(var, value)
        yield lineno, line


def _join_lines(lines: list[str]) -> Iterator[tuple[int, str]]:
    """Join lines ending in `\\` with the next; a comment line ends the continuation."""
    start = 0
    parts: list[str] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.endswith("\\") or _COMMENT_RE.match(line):
            if _COMMENT_RE.match(line):
                line = " " + line  # so the comment is still removed once joined
            if parts:
                yield start, "".join([*parts, line])
                parts = []
            else:
                yield lineno, line
        else:
            if not parts:
                start = lineno
            parts.append(line.strip("\\"))
    if parts:
        yield start, "".join(parts)


def _break_args_options(line: str) -> tuple[str, str]:
    """Split at the first token starting with "-": markers must not go through shlex."""
    tokens = line.split(" ")
    for i, token in enumerate(tokens):
        if token.startswith("-"):
            return " ".join(tokens[:i]).strip(), " ".join(tokens[i:])
    return line.strip(), ""


_HEX = re.compile(r"[0-9a-fA-F]+")


def _parse_hashes(values: list[str], loc: str) -> tuple[dict[str, frozenset[str]], list[str]]:
    hashes: dict[str, set[str]] = {}
    problems = []
    for value in values:
        algo, sep, digest = value.partition(":")
        length = _HASH_HEX_LENGTHS.get(algo)
        if not sep:
            problems.append(
                f"{loc}: --hash {value!r} must be a hash name followed by a value, "
                "like --hash=sha256:abcde..."
            )
        elif length is None:
            problems.append(
                f"{loc}: --hash={value}: hash algorithm {algo!r} is not allowed; "
                f"use one of {', '.join(_HASH_HEX_LENGTHS)}"
            )
        elif len(digest) != length or not _HEX.fullmatch(digest):
            problems.append(
                f"{loc}: --hash={value}: a {algo} digest is {length} hexadecimal "
                f"characters, got {len(digest)} characters {digest!r}"
            )
        else:
            hashes.setdefault(algo, set()).add(digest.lower())
    return {algo: frozenset(digests) for algo, digests in hashes.items()}, problems


def _url_scheme(text: str) -> str | None:
    """The scheme when pip would take `text` for a URL (pip's is_url), else None."""
    if ":" not in text:
        return None
    scheme = text.split(":", 1)[0].lower()
    vcs = scheme.split("+", 1)[0]
    return scheme if scheme in _URL_SCHEMES or vcs in _VCS else None


def _looks_like_path(text: str) -> bool:
    # pip's _looks_like_path and is_archive_file: such names are taken for local files.
    return (
        "/" in text
        or os.sep in text
        or (os.altsep is not None and os.altsep in text)
        or text.startswith(".")
        or text.lower().endswith(_ARCHIVE_EXTENSIONS)
    )


def _wheel_reference(text: str, where: str) -> str | None:
    """`name @ URL` for a wheel given by path or URL alone (its name is in the file name),
    as pip accepts `pip install ./dist/pkg-1.0-py3-none-any.whl`."""
    if not text.lower().endswith(".whl") or " @ " in text:
        return None
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    url = text if _url_scheme(text) else None
    filename = text.rsplit("/", 1)[-1]
    try:
        project = parse_wheel_filename(urllib.parse.unquote(filename))[0]
    except InvalidWheelFilename as exc:
        raise RequirementsError(f"{where}: {text!r}: {exc}") from exc
    if url is None:
        path = Path(os.path.expanduser(text))
        if not path.is_file():
            raise RequirementsError(f"{where}: {text!r}: no such wheel file")
        url = path.resolve().as_uri()
    return f"{project} @ {url}"


def _parse_req_string(text: str, where: str) -> Requirement:
    text = text.strip()
    # pip splits markers off first, at "; " for URLs and at ";" otherwise.
    name, _, marker = text.partition("; " if _url_scheme(text) else ";")
    name, marker = name.strip(), marker.strip()
    before_at = name.split("@", 1)[0].strip()
    wheel = _wheel_reference(name, where)
    if wheel is not None:
        return Requirement(f"{wheel} ; {marker}" if marker else wheel)
    if (scheme := _url_scheme(before_at)) and scheme not in _URL_SCHEMES:
        raise RequirementsError(f"{where}: {name!r} is a version-control URL: {_BUILD}")
    if scheme:
        raise RequirementsError(
            f"{where}: {name!r} is a URL without a project name; {_NAME_AT_URL}"
        )
    if _looks_like_path(before_at):
        if Path(os.path.expanduser(before_at)).is_dir():
            raise RequirementsError(f"{where}: {name!r} is a directory, a project's "
                                    f"source: {_BUILD}")
        raise RequirementsError(
            f"{where}: {name!r} looks like a path, which secinstall does not install "
            f"without a project name; {_NAME_AT_URL}"
        )
    try:
        req = Requirement(f"{name} ; {marker}" if marker else name)
    except RecursionError as exc:  # hostile nesting in a marker
        raise RequirementsError(f"{where}: Invalid requirement: nested too deeply") from exc
    except InvalidRequirement as exc:
        message = f"{where}: Invalid requirement: {text!r}: {exc}"
        if "=" in name and not any(op in name for op in _OPERATORS):
            message += "\nHint: = is not a valid operator. Did you mean == ?"
        raise RequirementsError(message) from exc
    if req.url is not None and not _url_scheme(req.url):
        raise RequirementsError(
            f"{where}: {req.name} @ {req.url}: the URL after `@` must be absolute "
            "(https://... or file:///...)"
        )
    return req
