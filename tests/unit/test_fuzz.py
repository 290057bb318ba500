"""Property tests (hypothesis, fixed budgets): whatever the input, each parser of untrusted
data returns a valid result or raises a `SecinstallError` subclass, never anything else.

Parsers: requirements (files and strings), wheel file names, wheel archives and their
RECORD, the simple API (PEP 691 JSON, PEP 503 HTML), PEP 740 provenance, PEP 751 lock files.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from packaging.utils import NormalizedName

from secinstall.errors import SecinstallError, WheelError
from secinstall.index import parse_html, parse_json
from secinstall.lockfiles.pylock import plan_from_pylock
from secinstall.models import FetchedFile, IndexFile, PlannedDist
from secinstall.requirements import parse_files, parse_requirement
from secinstall.resolve import choose_file
from secinstall.target import Target, resolve_target
from secinstall.verify.attestations import load_provenance
from secinstall.verify.wheel import WheelInfo, check_wheel

T = TypeVar("T")

# A fixed budget per property; no example database (it would be written into the tree).
FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
PAGE = "https://index.example/simple/demo/"


@functools.cache
def _target() -> Target:
    return resolve_target()


_SCRATCH: list[Path] = []


@pytest.fixture(scope="module", autouse=True)
def _scratch_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    # hypothesis runs many examples per test and refuses function-scoped fixtures (they
    # would be shared by all examples anyway): one directory for the module.
    _SCRATCH[:] = [tmp_path_factory.mktemp("fuzz")]


def _scratch() -> Path:
    return _SCRATCH[0]


def clean(call: Callable[[], T]) -> T | SecinstallError:
    """The result of `call`, or the `SecinstallError` it raised (anything else fails)."""
    try:
        return call()
    except SecinstallError as exc:
        assert exc.message, f"{type(exc).__name__} without a message"
        return exc


# -- requirements ----------------------------------------------------------------------------

REQ_PIECES = st.sampled_from([
    "demo", "demo==1.0", "Demo_Pkg[extra] >= 1, < 2", "demo @ https://x/demo-1.0-py3-none-any.whl",
    "demo; python_version < '3'", "--hash=sha256:" + "a" * 64, "--hash=md5:abc", "-r other.txt",
    "-c c.txt", "--index-url https://x/simple", "-i", "--extra-index-url", "-f ./links",
    "--no-index", "--require-hashes", "--pre", "--trusted-host x", "-e .", "--no-binary :all:",
    "${HOME}", "\\", "#", " # comment", "./local.whl", "file:///tmp/x.whl", "git+https://x/y",
    "demo-1.0.tar.gz", "[", "]", "(", ")", ";", "@", "==", "~=1", "*", "\t", "\r", "\x00",
    "\ufeff", "é", "-", "--", "--hash", "=", ":",
])
REQ_TEXT = st.lists(st.one_of(REQ_PIECES, st.text(max_size=12)), max_size=8).map(" ".join)


@FUZZ
@given(REQ_TEXT)
@example("x; " + "(" * 3000 + "python_version > '3'" + ")" * 3000)
def test_requirement_strings(text: str) -> None:
    result = clean(lambda: parse_requirement(text))
    if not isinstance(result, SecinstallError):
        assert result.req.name


@FUZZ
@given(st.lists(st.one_of(REQ_TEXT, st.text(max_size=40)), max_size=8).map("\n".join),
       st.sampled_from(["utf-8", "utf-16", "latin-1"]), st.booleans())
def test_requirements_files(text: str, encoding: str, as_constraints: bool) -> None:
    path = _scratch() / "requirements.txt"
    try:
        path.write_bytes(text.encode(encoding, errors="replace"))
    except UnicodeEncodeError:
        assume(False)
    (_scratch() / "other.txt").write_text("demo==1.0\n", encoding="utf-8")
    clean(lambda: parse_files([], [path]) if as_constraints else parse_files([path]))


@FUZZ
@given(st.binary(max_size=300))
def test_requirements_files_of_random_bytes(data: bytes) -> None:
    path = _scratch() / "requirements-bytes.txt"
    path.write_bytes(data)
    clean(lambda: parse_files([path]))


# -- wheel archives, RECORD, and file names --------------------------------------------------

NAME, VERSION = "demo", "1.0"
DIST_INFO = f"{NAME}-{VERSION}.dist-info"
GOOD_METADATA = f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n".encode()
GOOD_WHEEL = b"Wheel-Version: 1.0\nGenerator: fuzz\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
MEMBER_NAMES = st.one_of(
    st.sampled_from([
        f"{NAME}/__init__.py", f"{NAME}/x.py", f"{DIST_INFO}/METADATA", f"{DIST_INFO}/WHEEL",
        f"{DIST_INFO}/RECORD", f"{DIST_INFO}/entry_points.txt", f"{NAME}-{VERSION}.data/purelib/x",
        f"{NAME}-{VERSION}.data/scripts/../../x", f"{NAME}-{VERSION}.data/evil/x",
        "../x", "/abs", "C:/x", "a\\b", "x.pth", "other-1.0.dist-info/METADATA", f"{NAME}/",
        "", ".", "./x", "a//b", f"{NAME}/\u00e9.py",
    ]),
    st.text(max_size=20),
)
COMPRESSION = st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                               zipfile.ZIP_LZMA])
ALGORITHMS = st.sampled_from(sorted(hashlib.algorithms_available | {"", "sha256", "nope"}))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


@st.composite
def record_texts(draw: st.DrawFn, members: list[tuple[str, bytes]]) -> str:
    """RECORD text: true lines, lying lines, odd hash algorithms, sizes and quoting."""
    lines = []
    for name, data in members:
        kind = draw(st.sampled_from(["true", "true", "lie", "odd", "skip"]))
        if kind == "true":
            lines.append(f"{name},sha256={_b64(data)},{len(data)}")
        elif kind == "lie":
            lines.append(f"{name},sha256={_b64(data + b'x')},{len(data) + 1}")
        elif kind == "odd":
            algo = draw(ALGORITHMS)
            value = draw(st.text(max_size=20))
            size = draw(st.sampled_from(["", "-1", "abc", "99999999999999999999", str(len(data))]))
            lines.append(f'"{name}",{algo}={value},{size}')
    lines += draw(st.lists(st.text(max_size=40), max_size=3))
    lines.append(f"{DIST_INFO}/RECORD,,")
    return "\n".join(lines)


def _write_zip(path: Path, members: list[tuple[str, bytes, int, int]]) -> None:
    import warnings

    with zipfile.ZipFile(path, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicate names are part of the fuzz
        for name, data, compression, attr in members:
            info = zipfile.ZipInfo(name or "_", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = compression
            info.external_attr = attr
            zf.writestr(info, data)


def _fetched(path: Path, name: str = NAME, version: str = VERSION) -> FetchedFile:
    file = IndexFile(filename=path.name, url=path.as_uri(), hashes={})
    dist = PlannedDist(name=NormalizedName(name), version=version, file=file, pinned={},
                       requested=True)
    return FetchedFile(dist=dist, path=path, hashes={"sha256": "0" * 64}, size=0,
                       from_cache=False)


def _check(path: Path, name: str = NAME, version: str = VERSION) -> WheelInfo | SecinstallError:
    result = clean(lambda: check_wheel(_fetched(path, name, version), _target().tags))
    assert isinstance(result, (WheelInfo, WheelError)), result
    return result


@st.composite
def damage(draw: st.DrawFn) -> Callable[[bytes], bytes]:
    """Nothing, a truncation, or a few bytes overwritten anywhere in the archive."""
    kind = draw(st.sampled_from(["none", "none", "truncate", "flip"]))
    if kind == "truncate":
        keep = draw(st.floats(0, 1))
        return lambda data: data[: int(len(data) * keep)]
    if kind == "flip":
        spots = draw(st.lists(st.tuples(st.floats(0, 1, exclude_max=True),
                                        st.integers(0, 255)), min_size=1, max_size=4))

        def flip(data: bytes) -> bytes:
            out = bytearray(data)
            for where, value in spots:
                out[int(len(out) * where)] = value
            return bytes(out)

        return flip
    return lambda data: data


@FUZZ
@given(st.lists(st.tuples(MEMBER_NAMES, st.binary(max_size=64), COMPRESSION,
                          st.integers(0, 2**32 - 1)), max_size=6),
       st.booleans(), st.data(), damage())
def test_random_wheel_archives(members: list[tuple[str, bytes, int, int]], with_base: bool,
                               data: st.DataObject, damaged: Callable[[bytes], bytes]) -> None:
    base = [(f"{NAME}/__init__.py", b"X = 1\n"), (f"{DIST_INFO}/METADATA", GOOD_METADATA),
            (f"{DIST_INFO}/WHEEL", GOOD_WHEEL)] if with_base else []
    everything = [*base, *((n, d) for n, d, _, _ in members)]
    record = data.draw(record_texts(everything))
    path = _scratch() / f"{NAME}-{VERSION}-py3-none-any.whl"
    _write_zip(path, [*((n, d, zipfile.ZIP_DEFLATED, 0o100644 << 16) for n, d in base),
                      *members,
                      (f"{DIST_INFO}/RECORD", record.encode(), zipfile.ZIP_DEFLATED, 0)])
    path.write_bytes(damaged(path.read_bytes()))
    _check(path)


@FUZZ
@given(st.one_of(st.text(max_size=400), st.binary(max_size=200).map(
    lambda b: b.decode("latin-1"))),
       st.sampled_from(["RECORD", "METADATA", "WHEEL", "entry_points.txt"]))
def test_wheel_with_random_dist_info_file(text: str, which: str) -> None:
    files = {"METADATA": GOOD_METADATA, "WHEEL": GOOD_WHEEL, "entry_points.txt": b""}
    files[which] = text.encode("utf-8", errors="surrogateescape") if which != "RECORD" else b""
    members = [(f"{NAME}/__init__.py", b"X = 1\n"),
               *((f"{DIST_INFO}/{k}", v) for k, v in files.items())]
    if which == "RECORD":
        record = text
    else:
        record = "\n".join([*(f"{n},sha256={_b64(d)},{len(d)}" for n, d in members),
                            f"{DIST_INFO}/RECORD,,"])
    path = _scratch() / f"{NAME}-{VERSION}-py3-none-any.whl"
    _write_zip(path, [*((n, d, zipfile.ZIP_DEFLATED, 0o100644 << 16) for n, d in members),
                      (f"{DIST_INFO}/RECORD", record.encode("utf-8", "surrogateescape"),
                       zipfile.ZIP_DEFLATED, 0)])
    _check(path)


FILENAMES = st.one_of(
    # No "/" or NUL (not file names) and no surrogates (not encodable as one).
    st.text(alphabet=st.characters(exclude_characters="/\x00", exclude_categories=["Cs"]),
            min_size=1, max_size=40),
    st.lists(st.sampled_from(["demo", "Demo", "1.0", "1.0.post1", "py3", "none", "any",
                              "cp311", "manylinux_2_17_x86_64", "1abc", "", "-", "_", ".",
                              "win_amd64", "2.0"]), min_size=1, max_size=6).map("-".join),
).map(lambda s: s if s.endswith(".whl") else s + ".whl")


@FUZZ
@given(FILENAMES, st.sampled_from([NAME, "other"]), st.sampled_from([VERSION, "2.0", "x"]))
def test_wheel_file_names(filename: str, name: str, version: str) -> None:
    assume(filename not in (".whl",) and len(filename.encode()) < 250)
    directory = Path(tempfile.mkdtemp(dir=_scratch()))
    path = directory / filename
    _write_zip(path, [(f"{NAME}/__init__.py", b"", zipfile.ZIP_STORED, 0)])
    _check(path, name, version)


@FUZZ
@given(st.lists(FILENAMES, max_size=6), st.sampled_from(["1.0", "2.0", "1.0.0"]))
def test_choosing_among_hostile_file_names(filenames: list[str], version: str) -> None:
    files = [IndexFile(filename=f, url=f"https://x/{i}", hashes={"sha256": "0" * 64})
             for i, f in enumerate(filenames)]
    result = clean(lambda: choose_file(NAME, version, files, _target(), {}, "fuzz"))
    if isinstance(result, IndexFile):
        assert result in files


# -- the simple API --------------------------------------------------------------------------

JSON_KEYS = st.sampled_from(["files", "filename", "url", "hashes", "sha256", "yanked",
                             "provenance", "size", "requires-python", "upload-time", "meta",
                             "api-version", "core-metadata", "name", "versions"])
JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                        st.text(max_size=20), st.sampled_from([
                            "demo-1.0-py3-none-any.whl", "http://[::1", "//evil/x.whl",
                            "https://other/x.whl", "../../x.whl", ">=3.8", "a" * 64]))
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(JSON_KEYS, inner, max_size=5)), max_leaves=20)


def _file_entries() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"filename": JSON_LEAVES, "url": JSON_LEAVES},
        optional={"hashes": JSON_VALUES, "yanked": JSON_VALUES, "provenance": JSON_VALUES,
                  "size": JSON_VALUES, "requires-python": JSON_VALUES,
                  "upload-time": JSON_VALUES})


def _assert_valid_files(files: list[IndexFile]) -> None:
    for f in files:
        assert isinstance(f.filename, str) and isinstance(f.url, str)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in f.hashes.items())
        for optional in (f.requires_python, f.yanked, f.upload_time, f.provenance_url):
            assert optional is None or isinstance(optional, str), f
        assert f.size is None or (isinstance(f.size, int) and not isinstance(f.size, bool))


@FUZZ
@given(st.one_of(
    st.binary(max_size=200),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"meta": JSON_VALUES, "files": st.lists(_file_entries(), max_size=4)})
    .map(lambda v: json.dumps(v).encode()),
))
@example(b"[" * 100_000)
@example(b'{"files": [{"filename": "x.whl", "url": "http://[::1/x.whl"}]}')
def test_simple_api_json(body: bytes) -> None:
    result = clean(lambda: parse_json(body, PAGE, "fuzz"))
    if isinstance(result, list):
        _assert_valid_files(result)


ATTRIBUTES = st.sampled_from(["href", "data-yanked", "data-requires-python", "data-provenance",
                              "data-dist-info-metadata", "HREF"])
ATTR_VALUES = st.one_of(st.text(max_size=30), st.sampled_from([
    "demo-1.0-py3-none-any.whl#sha256=" + "a" * 64, "http://[::1/x.whl", "x.whl#md5=1",
    "https://[bad/demo-1.0.tar.gz", "#", "", "javascript:x", "demo-1.0.whl#sha256="]))


@st.composite
def html_pages(draw: st.DrawFn) -> bytes:
    parts = []
    for _ in range(draw(st.integers(0, 5))):
        attrs = draw(st.lists(st.tuples(ATTRIBUTES, ATTR_VALUES), max_size=3))
        rendered = " ".join(f'{k}="{v}"' for k, v in attrs)
        tag = draw(st.sampled_from(["a", "A", "base", "meta", "a"]))
        parts.append(f"<{tag} {rendered}>{draw(st.text(max_size=10))}</{tag}>")
        parts.append(draw(st.text(max_size=10)))
    return "".join(parts).encode("utf-8", errors="surrogateescape")


@FUZZ
@given(st.one_of(st.binary(max_size=300), html_pages()))
@example(b'<a href="http://[::1/demo-1.0-py3-none-any.whl">x</a>')
@example(b'<base href="http://[::1/"><a href="demo-1.0-py3-none-any.whl">x</a>')
def test_simple_api_html(body: bytes) -> None:
    result = clean(lambda: parse_html(body, PAGE, "fuzz"))
    if isinstance(result, list):
        _assert_valid_files(result)


# -- PEP 740 provenance ----------------------------------------------------------------------

PROVENANCE_KEYS = st.sampled_from([
    "version", "attestation_bundles", "publisher", "attestations", "kind", "repository",
    "envelope", "statement", "signature", "verification_material", "certificate",
    "transparency_entries", "claims", "environment", "workflow",
])
PROVENANCE_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(PROVENANCE_KEYS, inner, max_size=4)),
    max_leaves=25)


@FUZZ
@given(st.one_of(
    st.binary(max_size=200),
    PROVENANCE_VALUES.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["attestation_bundles", "envelope", "version"]),
                    PROVENANCE_VALUES, min_size=1).map(lambda v: json.dumps(v).encode()),
))
@example(b"[" * 100_000)
@example(b'{"attestation_bundles": ' + b"[" * 100_000)
def test_provenance(data: bytes) -> None:
    clean(lambda: load_provenance(data, source="fuzz.provenance"))


# -- PEP 751 lock files ----------------------------------------------------------------------

LOCK_KEYS = st.sampled_from([
    "lock-version", "created-by", "requires-python", "environments", "extras",
    "dependency-groups", "default-groups", "packages", "name", "version", "marker",
    "wheels", "sdist", "url", "path", "hashes", "sha256", "size", "upload-time", "index",
    "attestation-identities", "kind", "repository", "dependencies", "vcs", "directory",
    "archive", "tool",
])
LOCK_LEAVES = st.one_of(st.booleans(), st.integers(-10, 10**6), st.text(max_size=20),
                        st.sampled_from(["1.0", "demo", "demo-1.0-py3-none-any.whl", ">=3.8",
                                         "a" * 64, "python_version >= '3'", "GitHub"]))
LOCK_VALUES = st.recursive(LOCK_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(LOCK_KEYS, inner, max_size=5)),
    max_leaves=25)


def _toml(value: Any) -> str:
    """`value` as a TOML value (inline tables and arrays)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic strings
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"


@FUZZ
@given(st.one_of(
    st.dictionaries(LOCK_KEYS, LOCK_VALUES, max_size=6),
    st.fixed_dictionaries({"lock-version": st.sampled_from(["1.0", "2.0", "x"]),
                           "created-by": LOCK_LEAVES,
                           "packages": st.lists(st.dictionaries(LOCK_KEYS, LOCK_VALUES,
                                                                max_size=6), max_size=3)}),
), st.booleans())
def test_pylock(document: dict[str, Any], garble: bool) -> None:
    text = "\n".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in document.items())
    if garble:
        text = text[: len(text) // 2]
    path = _scratch() / "pylock.toml"
    path.write_text(text, encoding="utf-8")
    clean(lambda: plan_from_pylock(path, _target()))
